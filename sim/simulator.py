"""The headless simulator: a world + scenario in MuJoCo, driven like Gazebo's TurtleBot3.

    sim = Simulator("lobby")              # or a .world / scenario .yaml path
    sim.set_cmd_vel(0.2, 0.0)             # what cmd_vel would say (m/s, rad/s)
    sim.step(0.01)                        # advance simulated time
    frame = sim.render_camera()           # 640x480 BGR uint8, like camera/image_raw
    ranges = sim.scan()                   # 360 ranges (m), like scan
    x, y, yaw, v, w = sim.odometry()      # like odom (world frame, as the Gazebo plugin's
                                          # odometrySource=world)

Everything about the scene comes from the world file, its scenario YAML and the robot URDF
(see sim.world, sim.robot); this class only runs it. Actors follow their SDF trajectories
in simulated time, so a slow machine changes nothing but wall-clock speed. The class has no
ROS in it: sim/ros_bridge.py publishes its output on Gazebo's topics.
"""
from __future__ import annotations

import math
import os
import sys
from collections import deque
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np

from sim.mjcf import (CAMERA, COLLISION_GROUP, LASER, ROBOT_BODY, ROBOT_COLLISION_GROUP,
                      ROBOT_VISUAL_GROUP, TIMESTEP, VISUAL_GROUP, build_mjcf)
from sim.robot import RobotModel, footprint_radius, load_robot
from sim.scenario import Scenario
from sim.topdown import TopDownMap
from sim.world import World, load_world


def _prepare_offscreen_gl() -> None:
    """Choose OSMesa (no display needed) before mujoco is imported, and load torch's triton
    first when it is installed: triton carries its own LLVM, and loading it after OSMesa
    (which pulls in the system libLLVM) segfaults. That happens when one process renders and
    then builds a FaceDetector (facenet-pytorch imports torch._dynamo, which imports triton).
    Loading triton first costs ~0.15 s and nothing else."""
    import importlib.util

    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if os.environ["MUJOCO_GL"] == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
        if "mujoco" not in sys.modules and importlib.util.find_spec("triton") is not None:
            try:
                importlib.import_module("triton._C.libtriton")
            except ImportError:
                pass


_prepare_offscreen_gl()
import mujoco  # noqa: E402

#: Seconds of simulated time between two points of the robot's trail on the map.
TRAIL_PERIOD = 0.25


class Simulator:
    """Runs one scenario: robot physics (diff drive), scripted actors, camera, laser and map.

    ``world``: a world name in worlds/ ('lobby'), a .world path or a scenario .yaml path.
    ``start``: (x, y, yaw) to place the robot somewhere else than the scenario's start.
    """

    def __init__(self, world: str = "lobby", start: Optional[Tuple[float, float, float]] = None) -> None:
        if start is not None:
            if len(start) != 3 or not all(math.isfinite(float(v)) for v in start):
                raise ValueError("start must be (x, y, yaw) finite numbers, got %r" % (start,))
        self.world: World = load_world(world)
        self.scenario: Scenario = self.world.scenario
        self.robot: RobotModel = load_robot(self.scenario.robot_path)
        self.start = tuple(float(v) for v in (start if start is not None else self.scenario.start))
        xml, assets = build_mjcf(self.world, self.robot, self.start)  # type: ignore[arg-type]
        self.model = mujoco.MjModel.from_xml_string(xml, assets)
        self.data = mujoco.MjData(self.model)
        cam = self.robot.camera
        self.model.vis.map.znear = cam.near / self.model.stat.extent
        self.model.vis.map.zfar = cam.far / self.model.stat.extent

        self._robot_body = self.model.body(ROBOT_BODY).id
        self._root_qpos = self.model.jnt_qposadr[self.model.joint("robot_root").id]
        self._root_dof = self.model.jnt_dofadr[self.model.joint("robot_root").id]
        self._wheel_act = [self.model.actuator(self.robot.left_wheel_joint).id,
                           self.model.actuator(self.robot.right_wheel_joint).id]
        self._actor_mocap: List[Tuple[str, int]] = []
        for actor in self.world.actors:
            body = self.model.body("actor:" + actor.name).id
            self._actor_mocap.append((actor.name, int(self.model.body_mocapid[body])))
        self._clearance_sets = self._make_clearance_sets()
        self._laser_site = -1
        if self.robot.laser is not None:
            self._laser_site = self.model.site(LASER).id
            angles = self.robot.laser.angles()
            self._beams = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)

        self._cmd = (0.0, 0.0)
        self._wheel_speed = [0.0, 0.0]  # commanded rim speeds (m/s) after the accel ramp
        self._renderer = None
        self._scene_option = None
        self._topdown: Optional[TopDownMap] = None
        self._trail: Deque[Tuple[float, float]] = deque(maxlen=4000)
        self._next_trail = 0.0
        self._update_actors()
        mujoco.mj_forward(self.model, self.data)
        self._fresh = True
        self._record_trail()

    # --- time and commands ------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated seconds since the start."""
        return float(self.data.time)

    def set_cmd_vel(self, linear_x: float, angular_z: float) -> None:
        """The velocity command (m/s forward, rad/s counter-clockwise), held until changed."""
        if not (math.isfinite(linear_x) and math.isfinite(angular_z)):
            raise ValueError("cmd_vel must be finite, got (%r, %r)" % (linear_x, angular_z))
        self._cmd = (float(linear_x), float(angular_z))

    def step(self, dt: float) -> None:
        """Advance simulated time by ``dt`` seconds (rounded to the 2 ms physics step)."""
        if not dt > 0:
            raise ValueError("dt must be > 0 s, got %r" % (dt,))
        steps = max(1, int(round(dt / TIMESTEP)))
        self._ramp_wheels(steps * TIMESTEP)
        mujoco.mj_step(self.model, self.data, nstep=steps)
        self._update_actors()
        self._fresh = False
        self._record_trail()

    def place_robot(self, x: float, y: float, yaw: float) -> None:
        """Put the robot at (x, y, yaw), standing still, without simulating the way there:
        for checks that look at the scene from many places (sim.face_survey)."""
        if not all(math.isfinite(float(v)) for v in (x, y, yaw)):
            raise ValueError("robot pose must be finite numbers, got %r" % ((x, y, yaw),))
        root = self._root_qpos
        self.data.qpos[root:root + 2] = (x, y)
        self.data.qpos[root + 3:root + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        self.data.qvel[self._root_dof:self._root_dof + 6] = 0.0
        self._cmd = (0.0, 0.0)
        self._wheel_speed = [0.0, 0.0]
        self._fresh = False

    def _ramp_wheels(self, dt: float) -> None:
        """Wheel rim speeds move towards the command at most ``wheel_acceleration`` m/s^2, as
        gazebo_ros_diff_drive does; the velocity servos then track them."""
        v, w = self._cmd
        half = self.robot.wheel_separation / 2.0
        targets = (v - w * half, v + w * half)
        limit = self.robot.wheel_acceleration * dt if self.robot.wheel_acceleration > 0 else float("inf")
        for i, target in enumerate(targets):
            delta = target - self._wheel_speed[i]
            self._wheel_speed[i] += max(-limit, min(limit, delta))
            self.data.ctrl[self._wheel_act[i]] = self._wheel_speed[i] / self.robot.wheel_radius

    def _update_actors(self) -> None:
        t = self.time
        for actor, (_, mocap) in zip(self.world.actors, self._actor_mocap):
            x, y, z, yaw = actor.trajectory.pose_at(t)
            self.data.mocap_pos[mocap] = (x, y, z)
            self.data.mocap_quat[mocap] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))

    def _forward(self) -> None:
        """Bring positions up to date with the last step (mj_step leaves them one step old)."""
        if not self._fresh:
            mujoco.mj_forward(self.model, self.data)
            self._fresh = True

    def _record_trail(self) -> None:
        if self.time >= self._next_trail:
            q = self.data.qpos[self._root_qpos:self._root_qpos + 2]
            self._trail.append((float(q[0]), float(q[1])))
            self._next_trail = self.time + TRAIL_PERIOD

    # --- state ------------------------------------------------------------------------
    def odometry(self) -> Tuple[float, float, float, float, float]:
        """(x, y, yaw, v, w): base_footprint pose in the world and its forward / turn speed."""
        q = self.data.qpos[self._root_qpos:self._root_qpos + 7]
        w_, x_, y_, z_ = (float(c) for c in q[3:7])
        yaw = math.atan2(2.0 * (w_ * z_ + x_ * y_), 1.0 - 2.0 * (y_ * y_ + z_ * z_))
        # Free joint velocity: linear of the body origin in the world frame, angular in the
        # body frame.
        qv = self.data.qvel[self._root_dof:self._root_dof + 6]
        v = float(qv[0]) * math.cos(yaw) + float(qv[1]) * math.sin(yaw)
        return float(q[0]), float(q[1]), yaw, v, float(qv[5])

    def actor_poses(self) -> Dict[str, Tuple[float, float, float]]:
        """{actor name: (x, y, yaw)} now, from their trajectories."""
        t = self.time
        out = {}
        for actor in self.world.actors:
            x, y, _, yaw = actor.trajectory.pose_at(t)
            out[actor.name] = (x, y, yaw)
        return out

    def camera_intrinsics(self) -> Tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels for camera_info (no distortion)."""
        return self.robot.camera.intrinsics()

    def camera_pose(self) -> Tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3x3, columns = Gazebo camera x fwd, y left,
        z up) of the camera now; for projecting world points into the image."""
        self._forward()
        cam = self.model.camera(CAMERA).id
        rot_mj = self.data.cam_xmat[cam].reshape(3, 3)
        # MuJoCo camera axes: x right, y up, z back -> Gazebo: x = -z, y = -x, z = y.
        rot = np.stack([-rot_mj[:, 2], -rot_mj[:, 0], rot_mj[:, 1]], axis=1)
        return self.data.cam_xpos[cam].copy(), rot

    def project(self, point) -> Optional[Tuple[float, float, float]]:
        """Pixel (u, v) and depth (m) of a world point in the camera image; None if behind."""
        pos, rot = self.camera_pose()
        local = rot.T @ (np.asarray(point, dtype=float) - pos)
        if local[0] <= 1e-6:
            return None
        fx, fy, cx, cy = self.camera_intrinsics()
        return cx - fx * local[1] / local[0], cy - fy * local[2] / local[0], float(local[0])

    def visible_faces(self, max_angle: float = math.radians(50.0),
                      max_distance: float = 6.0) -> Dict[str, Tuple[float, float, float]]:
        """Ground truth for tests: {actor: (u, v, distance)} for each face plate whose centre
        is inside the image, within ``max_distance`` m, turned at most ``max_angle`` away from
        the camera and not hidden behind anything (a ray from the camera reaches it)."""
        self._forward()
        pos, _ = self.camera_pose()
        cam = self.robot.camera
        out = {}
        for actor, (_, mocap) in zip(self.world.actors, self._actor_mocap):
            plate = next(s for s in actor.visuals if s.texture)
            x, y, z, yaw = actor.trajectory.pose_at(self.time)
            c, s = math.cos(yaw), math.sin(yaw)
            px, py, pz = plate.pose[0], plate.pose[1], plate.pose[2]
            centre = np.array([x + c * px - s * py, y + s * px + c * py, z + pz])
            pixel = self.project(centre)
            if pixel is None:
                continue
            u, v, depth = pixel
            if not (0 <= u < cam.width and 0 <= v < cam.height) or depth > max_distance:
                continue
            to_camera = pos - centre
            distance = float(np.linalg.norm(to_camera))
            facing = (c * to_camera[0] + s * to_camera[1]) / max(1e-9, math.hypot(to_camera[0], to_camera[1]))
            if math.acos(max(-1.0, min(1.0, facing))) > max_angle:
                continue
            geom = np.array([-1], dtype=np.int32)
            groups = np.zeros(6, dtype=np.uint8)
            groups[VISUAL_GROUP] = 1
            hit = mujoco.mj_ray(self.model, self.data, pos, centre - pos, groups, 1, -1, geom)
            if hit < 0 or not self.model.geom(int(geom[0])).name.startswith("actor:%s/" % actor.name):
                continue
            out[actor.name] = (float(u), float(v), distance)
        return out

    # --- clearance --------------------------------------------------------------------
    def _make_clearance_sets(self):
        m = self.model
        robot_geoms, targets, names = [], [], []
        for g in range(m.ngeom):
            name = m.geom(g).name
            if name.startswith("robot:") and m.geom_group[g] == ROBOT_COLLISION_GROUP:
                robot_geoms.append(g)
            elif name.startswith("static:"):
                targets.append(g)
                names.append(name[len("static:"):])
            elif name.startswith("actor:") and m.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
                targets.append(g)
                names.append("actor " + name[len("actor:"):].split("/")[0])
        return np.array(robot_geoms), np.array(targets), names

    def min_clearance(self) -> Tuple[float, str]:
        """(distance in m, what) between the robot's collision shapes and the nearest wall,
        box or actor (actors: their body and head boxes). Negative means overlap."""
        self._forward()
        robot_geoms, targets, names = self._clearance_sets
        if len(targets) == 0:
            return float("inf"), ""
        xpos = self.data.geom_xpos
        rbound = self.model.geom_rbound
        centre = np.linalg.norm(xpos[robot_geoms][:, None, :] - xpos[targets][None, :, :], axis=2)
        lower = centre - rbound[robot_geoms][:, None] - rbound[targets][None, :]
        order = np.argsort(lower, axis=None)
        best, what = float("inf"), ""
        for flat in order:
            i, j = np.unravel_index(flat, lower.shape)
            if lower[i, j] >= best:
                break
            d = mujoco.mj_geomDistance(self.model, self.data, int(robot_geoms[i]), int(targets[j]),
                                       max(best, 1.0) + 100.0, None)
            if d < best:
                best, what = float(d), names[j]
        return best, what

    # --- laser ------------------------------------------------------------------------
    def scan(self) -> np.ndarray:
        """The laser's ranges now (m, float32, one per beam of ``robot.laser.angles()``), as
        Gazebo's ray sensor reports them (REP 117): +inf where nothing is within range_max,
        -inf where something is nearer than range_min. The rays hit the world's walls, boxes
        and pillars (their collision and visual shapes), the floor and the actors' bodies,
        never the robot itself (its geoms are in groups the rays skip)."""
        laser = self.robot.laser
        if laser is None:
            raise ValueError("%s has no laser scanner (<sensor type=\"ray\">)" % self.robot.path)
        self._forward()
        pos = self.data.site_xpos[self._laser_site].copy()
        rot = self.data.site_xmat[self._laser_site].reshape(3, 3)
        vec = np.ascontiguousarray((self._beams @ rot.T).ravel())
        n = laser.samples
        geom = np.full(n, -1, dtype=np.int32)
        dist = np.full(n, -1.0)
        groups = np.zeros(6, dtype=np.uint8)
        groups[VISUAL_GROUP] = groups[COLLISION_GROUP] = 1
        mujoco.mj_multiRay(self.model, self.data, pos, vec, groups, 1, -1, geom, dist, n,
                           laser.range_max + 1.0)
        ranges = dist.astype(np.float32)
        ranges[(geom < 0) | (dist < 0) | (dist >= laser.range_max)] = np.inf
        ranges[(geom >= 0) & (dist >= 0) & (dist <= laser.range_min)] = -np.inf
        return ranges

    # --- images -----------------------------------------------------------------------
    def render_camera(self) -> np.ndarray:
        """The robot camera's view: height x width x 3 BGR uint8 (640x480 for our robot)."""
        self._forward()
        if self._renderer is None:
            cam = self.robot.camera
            self._renderer = mujoco.Renderer(self.model, height=cam.height, width=cam.width)
            scene = self._renderer.scene
            for flag, on in ((mujoco.mjtRndFlag.mjRND_SHADOW, 0), (mujoco.mjtRndFlag.mjRND_REFLECTION, 0),
                             (mujoco.mjtRndFlag.mjRND_FOG, 0), (mujoco.mjtRndFlag.mjRND_HAZE, 0),
                             (mujoco.mjtRndFlag.mjRND_SKYBOX, 1)):
                scene.flags[flag] = on
            option = mujoco.MjvOption()
            option.geomgroup[:] = 0
            option.geomgroup[VISUAL_GROUP] = 1
            option.geomgroup[ROBOT_VISUAL_GROUP] = 1
            self._scene_option = option
        self._renderer.update_scene(self.data, camera=CAMERA, scene_option=self._scene_option)
        rgb = self._renderer.render()
        return np.ascontiguousarray(rgb[:, :, ::-1])

    def render_topdown(self) -> np.ndarray:
        """A map (BGR): walls, people coloured by the face they show, robot, view and trail."""
        if self._topdown is None:
            self._topdown = TopDownMap(self.world, robot_radius=footprint_radius(self.robot),
                                       camera_fov=self.robot.camera.horizontal_fov)
        x, y, yaw, _, _ = self.odometry()
        return self._topdown.draw((x, y, yaw), self.actor_poses(), list(self._trail) + [(x, y)],
                                  sim_time=self.time)

    def close(self) -> None:
        """Free the offscreen renderer (also done when the object is collected)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
