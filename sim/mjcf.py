"""Build the MuJoCo model (MJCF text + in-memory texture assets) of a loaded world and robot.

What goes in, and why it looks the way it does:

- static models: each SDF ``<collision>`` becomes a hidden collision geom (group 3) and
  each ``<visual>`` a rendered, contact-free geom (group 0), as Gazebo separates them;
- the robot: one body per URDF link (fixed joints become jointless child bodies, which
  MuJoCo welds and never self-collides), hinge joints for the wheels driven by velocity
  actuators, frictionless ball casters, and a camera where the URDF mounts the sensor.
  ``integrator="implicitfast"`` keeps stiff wheel velocity servos stable at a 2 ms step;
  a site where the URDF mounts the laser scanner, for the simulator's ray casts. The
  robot's geoms have groups of their own, so those rays never hit the robot itself;
- each actor: a mocap body (moved kinematically, no contacts, like Gazebo's static actors)
  with its box visuals; a textured box becomes a mesh with the same per-face texture
  coordinates as Gazebo's box mesh, so the face photo is upright and unmirrored on the
  plate's +x side exactly as in Gazebo;
- lighting: the scene's ambient colour as MuJoCo's headlight ambient (no headlight diffuse,
  Gazebo has none), SDF directional lights as directional lights, the background colour as
  a flat skybox; no shadows, no reflections, no multisampling (8x faster offscreen).
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple
from xml.sax.saxutils import quoteattr

import numpy as np

from common.errors import InputError
from sim.geometry import Shape, matrix, quat_of_pose, quat_wxyz
from sim.robot import RobotModel
from sim.world import World

TIMESTEP = 0.002
ROBOT_BODY = "robot"
CAMERA = "robot_camera"
LASER = "robot_laser"
#: Geom groups: 0 rendered visuals of the world and the actors, 3 the world's collision-only
#: shapes (not drawn); the robot's own visuals (1, drawn) and collision shapes (4) apart.
VISUAL_GROUP, COLLISION_GROUP = 0, 3
ROBOT_VISUAL_GROUP, ROBOT_COLLISION_GROUP = 1, 4
#: Velocity servo gain of a wheel (N m per rad/s). Stiffer servos (0.2 and up) make this
#: light, tall robot hop on its soft contacts and overshoot the commanded distance.
WHEEL_KV = 0.1
#: Rotation from a Gazebo camera frame (looks along +x, z up) to a MuJoCo camera frame
#: (looks along -z, y up): columns are MuJoCo's x, y, z axes in the Gazebo frame.
_CAMERA_FIX = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def build_mjcf(world: World, robot: RobotModel,
               start: Tuple[float, float, float]) -> Tuple[str, Dict[str, bytes]]:
    """MJCF text and its texture assets (PNG bytes by file name) for MjModel.from_xml_string."""
    assets: Dict[str, bytes] = {}
    asset_xml: List[str] = [
        '<texture name="sky" type="skybox" builtin="flat" width="16" height="16" rgb1="%s" rgb2="%s"/>'
        % (_vec(world.background), _vec(world.background)),
        '<material name="matte" specular="0" shininess="0" reflectance="0"/>',
    ]
    body_xml: List[str] = []
    textures: Dict[str, str] = {}

    for direction, diffuse in world.lights:
        body_xml.append('<light name="sun" directional="true" castshadow="false" pos="0 0 10" '
                        'dir="%s" diffuse="%s" specular="0.1 0.1 0.1"/>' % (_vec(direction), _vec(diffuse)))
    if world.ground is not None:
        g = world.ground
        body_xml.append('<geom name="ground" type="plane" size="%s %s 0.1" rgba="%s" material="matte" '
                        'friction="1 0.005 0.0001"/>' % (_f(g.size[0] / 2), _f(g.size[1] / 2), _vec(g.rgba)))
    for model in world.models:
        for shape in model.collisions:
            body_xml.append(_geom(shape, "static:" + shape.name, collide=True, group=COLLISION_GROUP))
        for shape in model.visuals:
            body_xml.append(_geom(shape, "visual:" + shape.name, collide=False, group=VISUAL_GROUP))

    body_xml.append(_robot_xml(robot, start))

    for actor in world.actors:
        x, y, z, yaw = actor.trajectory.pose_at(0.0)
        parts = ['<body name=%s mocap="true" pos="%s" quat="%s">'
                 % (quoteattr("actor:" + actor.name), _vec((x, y, z)), _vec(quat_of_pose((0, 0, 0, 0, 0, yaw))))]
        for i, shape in enumerate(actor.visuals):
            name = "actor:%s/%d" % (actor.name, i)
            if shape.texture:
                tex = textures.get(shape.texture)
                if tex is None:
                    tex = "tex%d" % len(textures)
                    textures[shape.texture] = tex
                    assets[tex + ".png"] = _png_bytes(shape.texture)
                    asset_xml.append('<texture name="%s" type="2d" file="%s.png"/>' % (tex, tex))
                    asset_xml.append('<material name="%s" texture="%s" specular="0" shininess="0" '
                                     'reflectance="0"/>' % (tex, tex))
                mesh = "mesh_" + name.replace(":", "_").replace("/", "_")
                asset_xml.append(_textured_box_mesh(mesh, shape.size))
                parts.append('<geom name=%s type="mesh" mesh="%s" material="%s" pos="%s" quat="%s" '
                             'contype="0" conaffinity="0" group="%d"/>'
                             % (quoteattr(name), mesh, tex, _vec(shape.pose[:3]),
                                _vec(quat_of_pose(shape.pose)), VISUAL_GROUP))
            else:
                parts.append(_geom(shape, name, collide=False, group=VISUAL_GROUP))
        parts.append("</body>")
        body_xml.append("\n".join(parts))

    cam = robot.camera
    actuators = [
        '<velocity name="%s" joint="%s" kv="%s" forcerange="%s %s"/>'
        % (joint, joint, _f(WHEEL_KV), _f(-robot.wheel_torque), _f(robot.wheel_torque))
        for joint in (robot.left_wheel_joint, robot.right_wheel_joint)
    ]
    return """<mujoco model=%s>
  <compiler angle="radian" autolimits="true" inertiafromgeom="false"/>
  <option timestep="%s" integrator="implicitfast"/>
  <visual>
    <global offwidth="%d" offheight="%d"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="%s" diffuse="0 0 0" specular="0 0 0"/>
    <map znear="0.01" zfar="50"/>
  </visual>
  <asset>
    %s
  </asset>
  <worldbody>
    %s
  </worldbody>
  <actuator>
    %s
  </actuator>
</mujoco>
""" % (quoteattr(world.name), _f(TIMESTEP), cam.width, cam.height, _vec(world.ambient),
       "\n    ".join(asset_xml), "\n    ".join(body_xml), "\n    ".join(actuators)), assets


def _robot_xml(robot: RobotModel, start: Tuple[float, float, float]) -> str:
    x, y, yaw = start
    lines = ['<body name="%s" pos="%s" quat="%s">' % (ROBOT_BODY, _vec((x, y, 0.0)),
                                                      _vec(quat_of_pose((0, 0, 0, 0, 0, yaw))))]
    lines.append('<freejoint name="robot_root"/>')
    lines += _link_xml(robot, robot.root)
    cam = robot.camera
    pose = robot.camera_pose()
    rot = matrix(pose)[:3, :3] @ _CAMERA_FIX
    lines.append('<camera name="%s" pos="%s" quat="%s" fovy="%s"/>'
                 % (CAMERA, _vec(pose[:3]), _vec(quat_wxyz(rot)), _f(math.degrees(cam.vertical_fov))))
    if robot.laser is not None:
        pose = robot.link_pose(robot.laser.link)
        lines.append('<site name="%s" pos="%s" quat="%s" size="0.01"/>'
                     % (LASER, _vec(pose[:3]), _vec(quat_of_pose(pose))))
    lines.append("</body>")
    return "\n    ".join(lines)


def _link_xml(robot: RobotModel, name: str) -> List[str]:
    """Inertial and geoms of one link (in the current body), then its child links' bodies."""
    link = robot.links[name]
    out: List[str] = []
    if link.mass > 0:
        out.append('<inertial pos="%s" quat="%s" mass="%s" diaginertia="%s"/>'
                   % (_vec(link.inertial_pose[:3]), _vec(quat_of_pose(link.inertial_pose)),
                      _f(link.mass), _vec(link.inertia)))
    for i, shape in enumerate(link.collisions):
        friction = link.friction
        # priority makes this geom's condim/friction win over the floor's in their contact
        extra = ' condim="1" priority="1"' if friction is not None and friction <= 0 else (
            ' friction="%s 0.005 0.0001"' % _f(friction) if friction is not None else "")
        out.append(_geom(shape, "robot:%s/collision%d" % (name, i), collide=True,
                         group=ROBOT_COLLISION_GROUP, extra=extra))
    for i, shape in enumerate(link.visuals):
        out.append(_geom(shape, "robot:%s/visual%d" % (name, i), collide=False, group=ROBOT_VISUAL_GROUP))
    for joint in robot.children(name):
        out.append('<body name=%s pos="%s" quat="%s">' % (quoteattr("robot:" + joint.child),
                                                          _vec(joint.origin[:3]), _vec(quat_of_pose(joint.origin))))
        if joint.kind != "fixed":
            out.append('<joint name="%s" type="hinge" axis="%s" damping="0.001"/>'
                       % (joint.name, _vec(joint.axis)))
        out += ["  " + line for line in _link_xml(robot, joint.child)]
        out.append("</body>")
    return out


def _geom(shape: Shape, name: str, collide: bool, group: int, extra: str = "") -> str:
    if shape.kind == "box":
        kind, size = "box", [s / 2.0 for s in shape.size]
    elif shape.kind == "cylinder":
        kind, size = "cylinder", [shape.size[0], shape.size[1] / 2.0]
    elif shape.kind == "sphere":
        kind, size = "sphere", [shape.size[0]]
    elif shape.kind == "plane":
        kind, size = "plane", [shape.size[0] / 2.0, shape.size[1] / 2.0, 0.1]
    else:
        raise InputError("%s: shape %r cannot be simulated" % (name, shape.kind))
    contact = '' if collide else ' contype="0" conaffinity="0"'
    return ('<geom name=%s type="%s" size="%s" pos="%s" quat="%s" rgba="%s" material="matte" group="%d"%s%s/>'
            % (quoteattr(name), kind, _vec(size), _vec(shape.pose[:3]), _vec(quat_of_pose(shape.pose)),
               _vec(shape.rgba), group, contact, extra))


def _textured_box_mesh(name: str, size: Sequence[float]) -> str:
    """A box mesh whose every face shows the whole texture like Gazebo's box mesh:
    u grows to the viewer's right and v downwards (image row 0 at the face's top, +z),
    seen from outside. For a face whose normal is vertical, "up" is +x."""
    hx, hy, hz = (s / 2.0 for s in size)
    vertices: List[Tuple[float, float, float]] = []
    uvs: List[Tuple[float, float]] = []
    faces: List[Tuple[int, int, int]] = []
    for normal in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)):
        n = np.array(normal, dtype=float)
        up = np.array((0.0, 0.0, 1.0)) if abs(n[2]) < 0.5 else np.array((1.0, 0.0, 0.0))
        right = np.cross(-n, up)  # viewer looks along -n with "up" up: right = forward x up
        base = len(vertices)
        half = np.array((hx, hy, hz))
        for u, v in ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)):
            p = n + right * (2 * u - 1) + up * (1 - 2 * v)
            vertices.append(tuple(p * half))
            uvs.append((u, v))
        a, b, c, d = base, base + 1, base + 2, base + 3
        p0, p1, p2 = (np.array(vertices[i]) for i in (a, b, c))
        if np.dot(np.cross(p1 - p0, p2 - p0), n) > 0:
            faces += [(a, b, c), (a, c, d)]
        else:
            faces += [(a, c, b), (a, d, c)]
    return '<mesh name="%s" vertex="%s" face="%s" texcoord="%s"/>' % (
        name, " ".join(_f(c) for v in vertices for c in v),
        " ".join(str(i) for f in faces for i in f),
        " ".join(_f(c) for uv in uvs for c in uv))


def _png_bytes(path: str) -> bytes:
    """The texture re-encoded as PNG (MuJoCo reads PNG; our textures are JPEG for size)."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("cannot read texture %s: is it a JPEG or PNG image?" % path)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise InputError("cannot re-encode texture %s as PNG" % path)
    return data.tobytes()


def _f(value: float) -> str:
    text = "%.6f" % value
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _vec(values: Sequence[float]) -> str:
    return " ".join(_f(float(v)) for v in values)
