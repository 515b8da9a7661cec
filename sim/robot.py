"""The robot as its URDF describes it: links, joints, collision shapes, wheels and camera.

Gazebo spawns ``worlds/robot/mask_patrol_robot.urdf``; the headless simulator builds its
MuJoCo robot from the same file, so wheel radius, wheel separation, the camera's mount, field
of view, resolution and rate, and the laser scanner's mount, beams, range and rate have a
single source. The diff-drive, camera and laser numbers are read from the
``libgazebo_ros_diff_drive.so``, ``libgazebo_ros_camera.so`` and ``libgazebo_ros_laser.so``
sensor and plugin blocks and checked against the link geometry, so the two cannot drift
apart silently.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import InputError
from common.geometry import focal_length_px
from sim.geometry import IDENTITY, Pose6, Shape, compose, matrix, parse_numbers
from sim.scenario import DEFAULT_ROBOT, WORLDS_DIR


@dataclass
class RobotLink:
    name: str
    collisions: List[Shape] = field(default_factory=list)
    visuals: List[Shape] = field(default_factory=list)
    mass: float = 0.0
    #: Centre of mass pose and principal inertia (ixx, iyy, izz) in the link frame.
    inertial_pose: Pose6 = IDENTITY
    inertia: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Coulomb friction from the Gazebo ``<mu1>`` of this link (None: the default).
    friction: Optional[float] = None


@dataclass
class RobotJoint:
    name: str
    kind: str  # fixed, continuous, revolute
    parent: str
    child: str
    origin: Pose6
    axis: Tuple[float, float, float] = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class CameraModel:
    """The camera sensor: it looks along +x of ``link`` (Gazebo's convention)."""

    link: str
    width: int
    height: int
    horizontal_fov: float
    rate: float
    near: float
    far: float
    frame_id: str

    @property
    def fx(self) -> float:
        """Focal length in pixels, as gazebo_ros_camera computes it for camera_info."""
        return focal_length_px(self.width, self.horizontal_fov)

    @property
    def vertical_fov(self) -> float:
        return 2.0 * math.atan(self.height / (2.0 * self.fx))

    def intrinsics(self) -> Tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels; square pixels, centred principal point."""
        return self.fx, self.fx, self.width / 2.0, self.height / 2.0


@dataclass(frozen=True)
class LaserModel:
    """A planar ray sensor (Gazebo ``<sensor type="ray">``): beams in the x-y plane of
    ``link``, at angles ``angle_min + i * angle_increment`` counter-clockwise from +x."""

    link: str
    samples: int
    angle_min: float
    angle_max: float
    range_min: float
    range_max: float
    rate: float
    topic: str
    frame_id: str

    @property
    def angle_increment(self) -> float:
        """Gazebo spaces ``samples`` beams from angle_min to angle_max inclusive."""
        return (self.angle_max - self.angle_min) / (self.samples - 1) if self.samples > 1 else 0.0

    def angles(self) -> np.ndarray:
        return self.angle_min + self.angle_increment * np.arange(self.samples)


@dataclass
class RobotModel:
    path: str
    name: str
    root: str
    links: Dict[str, RobotLink]
    joints: List[RobotJoint]
    left_wheel_joint: str
    right_wheel_joint: str
    wheel_radius: float
    wheel_separation: float
    #: Wheel acceleration limit in m/s^2 at the rim (0: unlimited), as the Gazebo plugin.
    wheel_acceleration: float
    wheel_torque: float
    camera: CameraModel
    #: The laser scanner, or None for a robot file without one.
    laser: Optional[LaserModel] = None

    def children(self, link: str) -> List[RobotJoint]:
        return [j for j in self.joints if j.parent == link]

    def link_pose(self, link: str) -> Pose6:
        """Pose of ``link`` in the root frame (base_footprint) with all joints at zero."""
        chain = []
        current = link
        while current != self.root:
            joint = next((j for j in self.joints if j.child == current), None)
            if joint is None:
                raise InputError("%s: link %r is not connected to %r" % (self.path, link, self.root))
            chain.append(joint.origin)
            current = joint.parent
        return compose(IDENTITY, *reversed(chain)) if chain else IDENTITY

    def camera_pose(self) -> Pose6:
        """Camera pose in the root frame; it looks along this frame's +x."""
        return self.link_pose(self.camera.link)


def load_robot(path: Optional[str] = None) -> RobotModel:
    """Parse and check the robot URDF (default: worlds/robot/mask_patrol_robot.urdf)."""
    path = os.path.abspath(path or os.path.join(WORLDS_DIR, DEFAULT_ROBOT))
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise InputError("cannot read robot file %s: %s" % (path, exc.strerror)) from None
    except ET.ParseError as exc:
        raise InputError("%s is not valid XML: %s" % (path, exc)) from None
    if root.tag != "robot":
        raise InputError("%s: expected a URDF <robot>, found <%s>" % (path, root.tag))
    try:
        return _build(path, root)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError("%s: %s" % (path, exc)) from None


def _build(path: str, root: ET.Element) -> RobotModel:
    links: Dict[str, RobotLink] = {}
    for element in root.findall("link"):
        link = _parse_link(element)
        links[link.name] = link
    joints = [_parse_joint(e) for e in root.findall("joint")]
    for joint in joints:
        for end in (joint.parent, joint.child):
            if end not in links:
                raise ValueError("joint %r refers to unknown link %r" % (joint.name, end))
    children = {j.child for j in joints}
    roots = [name for name in links if name not in children]
    if len(roots) != 1:
        raise ValueError("expected one root link, found %s" % (roots,))
    for gz in root.findall("gazebo"):
        ref = gz.get("reference")
        mu = gz.find("mu1")
        if ref in links and mu is not None:
            links[ref].friction = float(mu.text)
    drive = _plugin(root, "libgazebo_ros_diff_drive.so")
    if drive is None:
        raise ValueError("no libgazebo_ros_diff_drive.so plugin: the robot cannot drive")
    left = _text(drive, "leftJoint")
    right = _text(drive, "rightJoint")
    by_name = {j.name: j for j in joints}
    for wheel in (left, right):
        if wheel not in by_name or by_name[wheel].kind not in ("continuous", "revolute"):
            raise ValueError("diff drive wheel joint %r is not a continuous joint of the URDF" % wheel)
    separation = float(_text(drive, "wheelSeparation"))
    radius = float(_text(drive, "wheelDiameter")) / 2.0
    geo_sep = abs(by_name[left].origin[1] - by_name[right].origin[1])
    if abs(geo_sep - separation) > 2e-3:
        raise ValueError("diff drive wheelSeparation %.4f does not match the wheel joints' %.4f"
                         % (separation, geo_sep))
    for wheel in (left, right):
        shapes = [s for s in links[by_name[wheel].child].collisions if s.kind == "cylinder"]
        if not shapes or abs(shapes[0].size[0] - radius) > 1e-3:
            raise ValueError("diff drive wheelDiameter %.4f does not match the collision cylinder "
                             "of %s" % (2 * radius, by_name[wheel].child))
    model = RobotModel(
        path=path, name=root.get("name", "robot"), root=roots[0], links=links, joints=joints,
        left_wheel_joint=left, right_wheel_joint=right, wheel_radius=radius,
        wheel_separation=separation,
        wheel_acceleration=float(_text(drive, "wheelAcceleration", "0")),
        wheel_torque=float(_text(drive, "wheelTorque", "5")),
        camera=_parse_camera(root, links),
        laser=_parse_laser(root, links),
    )
    model.camera_pose()  # the camera must hang off the root
    if model.laser is not None:
        model.link_pose(model.laser.link)
    return model


def _parse_link(element: ET.Element) -> RobotLink:
    name = element.get("name") or ""
    link = RobotLink(name=name)
    for i, col in enumerate(element.findall("collision")):
        link.collisions.append(_parse_shape(col, "%s/collision%d" % (name, i), name))
    for i, vis in enumerate(element.findall("visual")):
        shape = _parse_shape(vis, "%s/visual%d" % (name, i), name)
        color = vis.find("material/color")
        if color is not None:
            rgba = parse_numbers(color.get("rgba", ""), 4, "%s visual color" % name)
            shape = Shape(shape.kind, shape.size, shape.pose, rgba, shape.name)  # type: ignore[arg-type]
        link.visuals.append(shape)
    inertial = element.find("inertial")
    if inertial is not None:
        mass = inertial.find("mass")
        link.mass = float(mass.get("value")) if mass is not None else 0.0
        link.inertial_pose = _origin(inertial, "%s inertial" % name)
        tensor = inertial.find("inertia")
        if tensor is not None:
            link.inertia = tuple(float(tensor.get(k, "0")) for k in ("ixx", "iyy", "izz"))  # type: ignore[assignment]
    return link


def _parse_shape(element: ET.Element, name: str, link: str) -> Shape:
    pose = _origin(element, "%s origin" % name)
    geometry = element.find("geometry")
    if geometry is None or len(geometry) == 0:
        raise ValueError("%s has no geometry" % name)
    geo = geometry[0]
    if geo.tag == "box":
        size = parse_numbers(geo.get("size", ""), 3, "%s box size" % name)
    elif geo.tag == "cylinder":
        size = (float(geo.get("radius", "nan")), float(geo.get("length", "nan")))
    elif geo.tag == "sphere":
        size = (float(geo.get("radius", "nan")),)
    else:
        raise ValueError("%s: geometry <%s> is not supported (box, cylinder, sphere)" % (name, geo.tag))
    if not all(math.isfinite(v) and v > 0 for v in size):
        raise ValueError("%s: sizes must be positive numbers, got %r" % (name, size))
    return Shape(geo.tag, tuple(size), pose, name=name)


def _parse_joint(element: ET.Element) -> RobotJoint:
    name = element.get("name") or ""
    kind = element.get("type") or ""
    if kind not in ("fixed", "continuous", "revolute"):
        raise ValueError("joint %r: type %r is not supported (fixed, continuous, revolute)" % (name, kind))
    parent = element.find("parent")
    child = element.find("child")
    if parent is None or child is None:
        raise ValueError("joint %r needs <parent> and <child>" % name)
    axis = element.find("axis")
    axis_xyz = parse_numbers(axis.get("xyz", ""), 3, "joint %s axis" % name) if axis is not None else (1.0, 0.0, 0.0)
    return RobotJoint(
        name=name, kind=kind, parent=parent.get("link", ""), child=child.get("link", ""),
        origin=_origin(element, "joint %s origin" % name),
        axis=axis_xyz,  # type: ignore[arg-type]
    )


def _origin(element: ET.Element, what: str) -> Pose6:
    origin = element.find("origin")
    if origin is None:
        return IDENTITY
    xyz = parse_numbers(origin.get("xyz", "0 0 0"), 3, what + " xyz")
    rpy = parse_numbers(origin.get("rpy", "0 0 0"), 3, what + " rpy")
    return xyz + rpy  # type: ignore[return-value]


def _plugin(root: ET.Element, filename: str) -> Optional[ET.Element]:
    for plugin in root.iter("plugin"):
        if plugin.get("filename") == filename:
            return plugin
    return None


def _text(element: ET.Element, tag: str, default: Optional[str] = None) -> str:
    child = element.find(tag)
    if child is None or not (child.text or "").strip():
        if default is None:
            raise ValueError("<%s> is missing in plugin %s" % (tag, element.get("filename")))
        return default
    return child.text.strip()


def _parse_camera(root: ET.Element, links: Dict[str, RobotLink]) -> CameraModel:
    for gz in root.findall("gazebo"):
        sensor = gz.find("sensor")
        if sensor is None or sensor.get("type") != "camera":
            continue
        ref = gz.get("reference")
        if ref not in links:
            raise ValueError("camera sensor refers to unknown link %r" % ref)
        cam = sensor.find("camera")
        plugin = sensor.find("plugin")
        if cam is None or plugin is None or plugin.get("filename") != "libgazebo_ros_camera.so":
            raise ValueError("camera sensor needs <camera> and a libgazebo_ros_camera.so plugin")
        return CameraModel(
            link=ref,
            width=int(_text(cam, "image/width")),
            height=int(_text(cam, "image/height")),
            horizontal_fov=float(_text(cam, "horizontal_fov")),
            rate=float(_text(sensor, "update_rate", "30")),
            near=float(_text(cam, "clip/near", "0.05")),
            far=float(_text(cam, "clip/far", "100")),
            frame_id=_text(plugin, "frameName", ref),
        )
    raise ValueError("no camera sensor (<gazebo reference=...><sensor type=\"camera\">)")


def _parse_laser(root: ET.Element, links: Dict[str, RobotLink]) -> Optional[LaserModel]:
    for gz in root.findall("gazebo"):
        sensor = gz.find("sensor")
        if sensor is None or sensor.get("type") not in ("ray", "gpu_ray"):
            continue
        ref = gz.get("reference")
        if ref not in links:
            raise ValueError("ray sensor refers to unknown link %r" % ref)
        plugin = sensor.find("plugin")
        horizontal = sensor.find("ray/scan/horizontal")
        if horizontal is None or sensor.find("ray/range") is None or plugin is None \
                or plugin.get("filename") not in ("libgazebo_ros_laser.so", "libgazebo_ros_gpu_laser.so"):
            raise ValueError("ray sensor needs <ray><scan><horizontal>, <ray><range> and a "
                             "libgazebo_ros_laser.so plugin")
        pose = sensor.find("pose")
        if pose is not None and any(v != 0.0 for v in parse_numbers(pose.text or "", 6, "ray sensor pose")):
            raise ValueError("ray sensor <pose> must be zero: mount it with its link's joint")
        ray = sensor.find("ray")
        laser = LaserModel(
            link=ref,
            samples=int(_text(horizontal, "samples")) * int(float(_text(horizontal, "resolution", "1"))),
            angle_min=float(_text(horizontal, "min_angle", "0")),
            angle_max=float(_text(horizontal, "max_angle", "0")),
            range_min=float(_text(ray, "range/min")),
            range_max=float(_text(ray, "range/max")),
            rate=float(_text(sensor, "update_rate", "10")),
            topic=_text(plugin, "topicName", "scan"),
            frame_id=_text(plugin, "frameName", ref),
        )
        if laser.samples < 1 or not laser.angle_max >= laser.angle_min:
            raise ValueError("ray sensor needs samples >= 1 and max_angle >= min_angle, got %d "
                             "samples, %g..%g rad" % (laser.samples, laser.angle_min, laser.angle_max))
        if not 0.0 <= laser.range_min < laser.range_max or not laser.rate > 0:
            raise ValueError("ray sensor needs 0 <= range min < range max and update_rate > 0, "
                             "got %g..%g m at %g Hz" % (laser.range_min, laser.range_max, laser.rate))
        return laser
    return None


def collision_shapes_in_root(model: RobotModel) -> List[Tuple[str, Shape]]:
    """Every collision shape with its pose in the root frame (joints at zero)."""
    out = []
    for name, link in model.links.items():
        base = model.link_pose(name)
        for shape in link.collisions:
            out.append((name, Shape(shape.kind, shape.size, compose(base, shape.pose), shape.rgba, shape.name)))
    return out


def footprint_radius(model: RobotModel) -> float:
    """Radius of the smallest circle around the root origin that holds every collision shape
    seen from above (for drawing and for quick clearance bounds)."""
    radius = 0.0
    for _, shape in collision_shapes_in_root(model):
        corners = _corners_xy(shape)
        radius = max(radius, max(math.hypot(x, y) for x, y in corners))
    return radius


def _corners_xy(shape: Shape) -> Sequence[Tuple[float, float]]:
    m = matrix(shape.pose)
    if shape.kind == "box":
        hx, hy, hz = (s / 2.0 for s in shape.size)
        pts = [(sx * hx, sy * hy, sz * hz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    else:
        r = shape.size[0]
        hz = shape.size[1] / 2.0 if shape.kind == "cylinder" else r
        pts = [(sx * r, sy * r, sz * hz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    out = []
    for p in pts:
        v = m @ np.array([p[0], p[1], p[2], 1.0])
        out.append((float(v[0]), float(v[1])))
    return out
