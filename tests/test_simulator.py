"""The headless simulator: the real MuJoCo model of the real worlds, rendered offscreen.

Expected values come from the commands and the world files (v * t, the SDF trajectories,
where the walls are), never from a previous run.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from common.errors import InputError
from rosgraph_harness import REPO, RosGraph
from sim.robot import collision_shapes_in_root, footprint_radius
from sim.simulator import Simulator


def run(sim: Simulator, seconds: float, dt: float = 0.01) -> None:
    end = sim.time + seconds
    while sim.time < end - 1e-9:
        sim.step(dt)


def angle_diff(a: float, b: float) -> float:
    return math.atan2(math.sin(a - b), math.cos(a - b))


@pytest.fixture(scope="module")
def lobby():
    sim = Simulator("lobby")
    yield sim
    sim.close()


def test_starts_where_the_scenario_says(lobby):
    x, y, yaw, v, w = lobby.odometry()
    assert (x, y, yaw) == pytest.approx(lobby.scenario.start, abs=1e-6)
    assert (v, w) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert lobby.time == 0.0


def test_drives_forward_about_v_times_t():
    sim = Simulator("corridor")  # starts at (0, -0.5) facing +x down the corridor
    v, seconds = 0.25, 4.0
    sim.set_cmd_vel(v, 0.0)
    run(sim, seconds)
    x, y, yaw, speed, turn = sim.odometry()
    accel = sim.robot.wheel_acceleration
    expected = v * seconds - v * v / (2.0 * accel)  # the wheels ramp up at `accel`
    assert x - sim.start[0] == pytest.approx(expected, rel=0.08)
    assert abs(y - sim.start[1]) < 0.02 and abs(yaw) < 0.02
    assert speed == pytest.approx(v, rel=0.05) and abs(turn) < 0.02
    assert sim.time == pytest.approx(seconds)
    sim.set_cmd_vel(0.0, 0.0)
    run(sim, 0.5)  # a stop command halts it within 0.5 s (what the watchdogs rely on)
    assert abs(sim.odometry()[3]) < 0.01
    sim.set_cmd_vel(-v, 0.0)
    run(sim, 2.0)
    assert sim.odometry()[3] == pytest.approx(-v, rel=0.05)


def test_turns_about_w_times_t():
    sim = Simulator("lobby", start=(5.0, 2.5, 0.0))
    w, seconds = 0.5, 3.0
    sim.set_cmd_vel(0.0, w)
    run(sim, seconds)
    x, y, yaw, speed, turn = sim.odometry()
    assert angle_diff(yaw, 0.0) == pytest.approx(w * seconds, rel=0.1)
    assert turn == pytest.approx(w, rel=0.1) and abs(speed) < 0.02
    assert math.hypot(x - 5.0, y - 2.5) < 0.03  # turning in place


def test_actors_follow_their_trajectories_in_sim_time():
    sim = Simulator("lobby")
    ben = sim.world.actor("ben")
    start = sim.actor_poses()["ben"]
    run(sim, 2.0, dt=0.05)
    for name, pose in sim.actor_poses().items():
        x, y, _, yaw = sim.world.actor(name).trajectory.pose_at(2.0)
        assert pose == pytest.approx((x, y, yaw))
    # the mocap body that the camera renders is where the trajectory says
    sim.render_camera()
    body = sim.data.xpos[sim.model.body("actor:ben").id]
    assert body[:2] == pytest.approx(sim.actor_poses()["ben"][:2], abs=1e-6)
    moved = math.hypot(sim.actor_poses()["ben"][0] - start[0], sim.actor_poses()["ben"][1] - start[1])
    first, second = ben.trajectory.waypoints[0], ben.trajectory.waypoints[1]
    mean_speed = math.hypot(second[1] - first[1], second[2] - first[2]) / (second[0] - first[0])
    assert 0.3 * mean_speed * 2.0 < moved < 1.5 * mean_speed * 2.0  # walking, eased start
    x, y, yaw = sim.actor_poses()["anna"]  # anna stands still
    x0, y0, yaw0 = start_pose(sim, "anna")
    assert (x, y) == pytest.approx((x0, y0)) and abs(angle_diff(yaw, yaw0)) < 1e-6
    # after one period of the loop ben is back where he started
    run(sim, ben.trajectory.period - 2.0, dt=0.05)
    assert sim.actor_poses()["ben"][:2] == pytest.approx(start[:2], abs=1e-6)
    sim.close()


def start_pose(sim, name):
    x, y, _, yaw = sim.world.actor(name).trajectory.pose_at(0.0)
    return (x, y, yaw)


def test_camera_frame_is_bgr_640x480_with_the_urdf_intrinsics(lobby):
    frame = lobby.render_camera()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # not blank
    fx, fy, cx, cy = lobby.camera_intrinsics()
    assert fx == pytest.approx(320.0 / math.tan(lobby.robot.camera.horizontal_fov / 2.0))
    assert (cx, cy) == (320.0, 240.0)
    # the background colour of the world file shows at the top of the image (sky above walls)
    b, g, r = frame[5, 320].astype(int)
    assert r < g < b  # the worlds' pale blue <background>


def test_lobby_frame_has_faces_that_the_detector_finds(detector):
    # Facing north-east from the middle of the lobby: ben (no mask) walks towards the robot
    # at about 1 m and chen (mask below the nose) stands by the north wall about 4 m away.
    sim = Simulator("lobby", start=(7.0, 0.5, math.pi / 4))
    frame = sim.render_camera()
    visible = sim.visible_faces()
    assert {"ben", "chen"} <= set(visible)
    faces = detector.detect(frame)
    for name in ("ben", "chen"):
        u, v, distance = visible[name]
        assert 1.0 <= distance <= 4.5
        hits = [f for f in faces if f.box[0] <= u <= f.box[2] and f.box[1] - f.height <= v <= f.box[3]]
        assert hits, "no face found at %s's face plate (%.0f, %.0f); faces: %s" % (
            name, u, v, [f.box for f in faces])
    sim.close()


def test_masked_face_is_detected_too(detector):
    sim = Simulator("lobby", start=(6.8, -2.5, 0.0))  # anna, masked, ~3.3 m ahead
    u, v, distance = sim.visible_faces()["anna"]
    faces = detector.detect(sim.render_camera())
    assert any(f.box[0] <= u <= f.box[2] and f.box[1] - f.height <= v <= f.box[3] for f in faces)
    sim.close()


def test_a_face_turned_away_is_not_visible():
    # Behind the walker, looking the way he looks (-x): his head is in view, his face is not.
    sim = Simulator("corridor", start=(13.5, 0.3, math.pi))
    u, v, depth = sim.project(_head_centre(sim, "walker"))
    assert 0 <= u < 640 and 0 <= v < 480 and depth < 2.0
    assert "walker" not in sim.visible_faces()
    sim.close()
    sim = Simulator("corridor", start=(9.0, -0.3, 0.0))  # in front of him, looking +x
    assert "walker" in sim.visible_faces()
    sim.close()


def _head_centre(sim, name):
    x, y, z, yaw = sim.world.actor(name).trajectory.pose_at(sim.time)
    return (x, y, z + 1.68)


def test_min_clearance_reports_the_wall_it_drives_into():
    sim = Simulator("corridor", start=(4.0, -0.5, -math.pi / 2))  # facing the south wall
    before, what = sim.min_clearance()
    assert what == "walls/wall_south"
    # the robot's front is the furthest forward point of its URDF collision shapes
    front = max(shape.pose[0] + (shape.size[0] / 2.0 if shape.kind == "box" else shape.size[0])
                for _, shape in collision_shapes_in_root(sim.robot))
    assert before == pytest.approx(1.0 - front, abs=0.01)  # the wall's inner face is at y = -1.5
    sim.set_cmd_vel(0.25, 0.0)
    run(sim, 6.0)
    after, what = sim.min_clearance()
    assert what == "walls/wall_south" and after < 0.01
    assert sim.odometry()[1] - front > -1.5 - 0.01  # the wall stopped it; it did not pass through
    sim.close()


def test_min_clearance_sees_actors():
    sim = Simulator("lobby", start=(9.6, -2.2, 0.0))  # face to face with anna, 0.6 m apart
    distance, what = sim.min_clearance()
    assert what == "actor anna" and distance < 0.5
    sim.close()


def test_topdown_map_draws_the_robot_moving():
    sim = Simulator("corridor")
    first = sim.render_topdown()
    assert first.ndim == 3 and first.dtype == np.uint8
    sim.set_cmd_vel(0.3, 0.0)
    run(sim, 3.0, dt=0.05)
    second = sim.render_topdown()
    assert second.shape == first.shape and np.abs(second.astype(int) - first).sum() > 0
    sim.close()


def test_bad_arguments_are_refused():
    with pytest.raises(InputError, match="lobby"):
        Simulator("no_such_world")
    with pytest.raises(ValueError, match="start"):
        Simulator("corridor", start=(1.0, 2.0))
    sim = Simulator("corridor")
    with pytest.raises(ValueError, match="dt"):
        sim.step(0.0)
    with pytest.raises(ValueError, match="finite"):
        sim.set_cmd_vel(float("nan"), 0.0)
    sim.close()


# --- the laser scanner ------------------------------------------------------------------
def scanner_xy(sim: Simulator):
    """Where the URDF puts the scanner, in the world, for the robot's pose now."""
    x, y, yaw, _, _ = sim.odometry()
    dx, dy = sim.robot.link_pose(sim.robot.laser.link)[:2]
    return x + dx * math.cos(yaw) - dy * math.sin(yaw), y + dx * math.sin(yaw) + dy * math.cos(yaw)


def beam(sim: Simulator, angle: float) -> int:
    """Index of the beam nearest to ``angle`` (radians, counter-clockwise from forward)."""
    laser = sim.robot.laser
    return int(round((angle % (2 * math.pi) - laser.angle_min) / laser.angle_increment)) % laser.samples


def world_shape(sim: Simulator, name: str):
    return next(s for m in sim.world.models for s in m.collisions if s.name == name)


def test_scan_reads_the_corridor_walls_where_the_world_file_puts_them():
    sim = Simulator("corridor", start=(4.0, -0.5, -math.pi / 2))  # facing the south wall
    laser = sim.robot.laser
    ranges = sim.scan()
    assert ranges.shape == (laser.samples,) == (360,) and ranges.dtype == np.float32
    sx, sy = scanner_xy(sim)
    south, north = world_shape(sim, "walls/wall_south"), world_shape(sim, "walls/wall_north")
    ahead = sy - (south.pose[1] + south.size[1] / 2.0)  # 1.064 m: the scanner sits behind the centre
    behind = (north.pose[1] - north.size[1] / 2.0) - sy
    assert ranges[beam(sim, 0.0)] == pytest.approx(ahead, abs=0.02)
    assert ranges[beam(sim, math.pi)] == pytest.approx(behind, abs=0.02)
    # east wall 9.9 m and west wall 5.5 m away along the corridor: beyond range_max
    assert ranges[beam(sim, math.pi / 2)] == np.inf and ranges[beam(sim, -math.pi / 2)] == np.inf
    finite = ranges[np.isfinite(ranges)]
    assert len(finite) > 0 and finite.min() >= laser.range_min and finite.max() < laser.range_max
    sim.close()


def test_scan_sees_a_box_beside_the_robot():
    sim = Simulator("corridor", start=(6.0, 0.0, 0.0))  # the bench is on the left, 1.05 m away
    bench = next(m for m in sim.world.models if m.name == "bench").collisions[0]
    sx, sy = scanner_xy(sim)
    expected = (bench.pose[1] - bench.size[1] / 2.0) - sy
    assert sim.scan()[beam(sim, math.pi / 2)] == pytest.approx(expected, abs=0.02)
    sim.close()


def test_scan_sees_an_actors_body():
    sim = Simulator("lobby", start=(9.6, -2.2, 0.0))  # face to face with anna
    anna = sim.world.actor("anna")
    legs = min(anna.visuals, key=lambda s: s.pose[2])  # the lowest box: in the scan plane
    x, _, _, _ = anna.trajectory.pose_at(sim.time)
    sx, _ = scanner_xy(sim)
    expected = x - legs.size[0] / 2.0 - sx  # she faces the robot (yaw pi): depth along x
    assert expected < 1.0
    assert sim.scan()[beam(sim, 0.0)] == pytest.approx(expected, abs=0.02)
    sim.close()


def test_scan_does_not_see_the_robot_itself():
    sim = Simulator("lobby", start=(5.0, 2.5, 0.0))  # open floor
    ranges = sim.scan()
    assert not np.isneginf(ranges).any()
    assert np.all(ranges > footprint_radius(sim.robot))
    # ... although the mast stands in the forward beam: a ray that may hit the robot's
    # geoms stops at it, nearer than range_min (mujoco imported after sim.simulator, which
    # orders the GL and triton libraries)
    import mujoco

    site = sim.model.site("robot_laser").id
    geom = np.array([-1], dtype=np.int32)
    forward = sim.data.site_xmat[site].reshape(3, 3)[:, 0].copy()
    hit = mujoco.mj_ray(sim.model, sim.data, sim.data.site_xpos[site].copy(), forward, None, 1, -1, geom)
    assert sim.model.geom(int(geom[0])).name.startswith("robot:") and 0 <= hit < sim.robot.laser.range_min
    sim.close()


def test_scan_reports_something_nearer_than_range_min_as_minus_inf():
    sim = Simulator("corridor")
    # the scanner 0.08 m from the south wall's face, the robot overlapping it (no physics)
    sim.place_robot(4.0, -1.5 + 0.08 - 0.064, -math.pi / 2)
    ranges = sim.scan()
    assert ranges[beam(sim, 0.0)] == -np.inf  # REP 117, as Gazebo's ray sensor reports it
    sim.close()


@pytest.mark.ros
def test_sim_node_publishes_the_scan_in_sim_time(tmp_path):
    out = str(tmp_path / "scans.json")
    with RosGraph(str(tmp_path / "logs")) as graph:
        graph.spawn(["rosrun", "mask_patrol", "sim_node", "_world:=corridor"], "sim_node")
        listener = graph.spawn(["python3", os.path.join(REPO, "tests", "ros_nodes", "scan_listener.py"),
                                "--out", out, "--timeout", "120"], "scan_listener")
        listener.wait(timeout=180)
        assert listener.returncode == 0, graph.log_text("sim_node")[-3000:]
    with open(out) as handle:
        first, second = json.load(handle)
    sim = Simulator("corridor")
    laser = sim.robot.laser
    assert first["frame_id"] == "base_scan" and len(first["ranges"]) == 360
    assert (first["range_min"], first["range_max"]) == pytest.approx((laser.range_min, laser.range_max))
    assert first["angle_min"] == 0.0
    assert first["angle_increment"] == pytest.approx(laser.angle_increment)
    assert first["angle_max"] == pytest.approx(laser.angle_max, abs=1e-5)
    # stamps in simulated seconds (not wall time), one scan period apart
    assert 0.0 <= first["stamp"] < 600.0
    assert second["stamp"] - first["stamp"] == pytest.approx(1.0 / laser.rate, abs=0.011)
    # the same walls as the simulator sees at the start (the robot has not moved)
    expected = sim.scan()
    for angle in (math.pi / 2, math.pi, -math.pi / 2):
        i = beam(sim, angle)
        assert float(first["ranges"][i]) == pytest.approx(float(expected[i]), abs=0.02)
    assert float(first["ranges"][beam(sim, 0.0)]) == np.inf  # the east wall, 13.9 m away
    sim.close()
