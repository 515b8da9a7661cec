"""The laser keeps the robot off people, walls and pillars (issue 16): the real tree, ticked
with synthetic scans in base_scan (tree_harness.laser_scan: beam i at i degrees, 0 = ahead).

Motion towards something within the stop distance is cut, motion away from it and turning
stay allowed; the speed falls in the slow zone; no fresh scan stops the robot when a scan is
required; a scan with NaN ranges or no ranges never reaches the tree.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from behaviors import blackboard_keys as keys
from behaviors import clearance as cl
from behaviors import ros_io
from behaviors.config import Config
from behaviors.control import ZERO, Twist2D
from behaviors.tree import PATROL
from common.errors import InputError
from common.range_scan import RangeScan
from common.ros_messages import ranges_to_laser_scan
from tree_harness import FACE_BOX, TreeHarness, laser_scan, make_track

#: The limits these tests' distances were chosen for (the shipped ones are in patrol.yaml).
LIMITS = dict(stop_distance_m=0.3, slow_distance_m=0.7)
AHEAD = Config(waypoints=((3.0, 0.0),), **LIMITS)          # the patrol drives straight ahead
TO_THE_LEFT = Config(waypoints=((0.0, 3.0),), **LIMITS)    # the patrol turns on the spot first
BODY_TO_SCANNER = cl.FRONT_M - cl.SCAN_X_M       # front face to base_scan, on the axis


def scan_with(direction_deg: float, laser_range: float, width_deg: int = 10):
    """A scan with returns ``laser_range`` metres from the scanner on the beams within
    ``width_deg`` of ``direction_deg``, nothing elsewhere."""
    ranges = np.full(360, np.inf)
    for offset in range(-width_deg, width_deg + 1):
        ranges[int(round(direction_deg + offset)) % 360] = laser_range
    return laser_scan(ranges)


def ahead(gap):
    """Something ``gap`` metres in front of the body, straight ahead."""
    return scan_with(0, gap + BODY_TO_SCANNER, width_deg=3)


def behind(gap):
    return scan_with(180, gap + (cl.SCAN_X_M - cl.REAR_M), width_deg=3)


def harness(config, scan):
    h = TreeHarness(config)
    h.scan = scan
    return h


def reverse(h, speed=0.2):
    """Ask for reverse through the real Patrol's command path this tick (no behaviour of
    ours reverses: the camera looks forwards; the limiter must still judge it)."""
    return h.behaviour(PATROL).command(Twist2D(-speed, 0.0))


# --- the footprint is the URDF's ----------------------------------------------------------
def test_the_footprint_and_the_scanner_mount_are_the_urdfs():
    from sim.robot import _corners_xy, collision_shapes_in_root, footprint_radius, load_robot

    robot = load_robot()  # worlds/robot/mask_patrol_robot.urdf
    corners = [c for _, shape in collision_shapes_in_root(robot) for c in _corners_xy(shape)]
    assert max(x for x, _ in corners) == pytest.approx(cl.FRONT_M, abs=1e-3)
    assert min(x for x, _ in corners) == pytest.approx(cl.REAR_M, abs=1e-3)
    assert max(abs(y) for _, y in corners) == pytest.approx(cl.HALF_WIDTH_M, abs=1e-3)
    # the rectangle's corner: at most 1.5 cm beyond the body's farthest point, never inside
    assert 0 <= cl.TURN_RADIUS_M - footprint_radius(robot) < 0.015
    x, y = robot.link_pose(robot.laser.link)[:2]
    assert (x, y) == (pytest.approx(cl.SCAN_X_M), pytest.approx(cl.SCAN_Y_M))
    assert robot.laser.frame_id == "base_scan"


# --- obstacle ahead ---------------------------------------------------------------------
def test_far_obstacle_ahead_does_not_slow_the_patrol():
    free = harness(AHEAD, laser_scan()).tick()
    far = harness(AHEAD, ahead(1.5)).tick()
    assert far == free and far.linear_x == pytest.approx(0.3)


def test_obstacle_ahead_in_the_slow_zone_slows_the_patrol_towards_the_stop_distance():
    speeds = [harness(AHEAD, ahead(gap)).tick().linear_x for gap in (0.65, 0.5, 0.35, 0.31)]
    assert speeds == sorted(speeds, reverse=True)
    assert speeds[1] == pytest.approx(0.3 * (0.5 - 0.3) / (0.7 - 0.3), abs=0.01)
    assert 0 < speeds[-1] <= cl.CRAWL_SPEED  # it crawls up to the stop distance
    h = harness(AHEAD, ahead(0.5))
    h.tick()
    assert h.tip() == PATROL and "slowed to 0.15 m/s" in h.behaviour(PATROL).feedback_message


def test_obstacle_ahead_within_the_stop_distance_stops_forward_motion_not_turning():
    h = harness(AHEAD, ahead(0.2))
    command = h.tick()
    assert command.linear_x == 0.0
    assert h.tip() == PATROL  # the command was cut, the guard did not take over
    assert "stopped 0.20 m ahead" in h.behaviour(PATROL).feedback_message
    turning = harness(TO_THE_LEFT, ahead(0.2)).tick()
    assert turning.linear_x == 0.0 and turning.angular_z > 0.5  # turns away on the spot


def test_obstacle_ahead_allows_reversing_away_from_it():
    h = harness(AHEAD, ahead(0.1))
    h.tick()
    assert reverse(h) == Twist2D(-0.2, 0.0)
    assert h.read(keys.COMMAND) == Twist2D(-0.2, 0.0)


# --- obstacle behind or beside ------------------------------------------------------------
def test_obstacle_behind_blocks_reversing_but_not_driving_forwards():
    h = harness(AHEAD, behind(0.2))
    assert h.tick().linear_x == pytest.approx(0.3)
    assert reverse(h).linear_x == 0.0
    assert "stopped 0.20 m behind" in h.behaviour(PATROL).limited
    slowed = harness(AHEAD, behind(0.5))
    slowed.tick()
    assert reverse(slowed).linear_x == pytest.approx(-0.15, abs=0.01)


def test_obstacle_to_the_side_does_not_block_straight_motion():
    for side in (90, 270):
        h = harness(AHEAD, scan_with(side, 0.4))  # 0.25 m beside the wheels
        command = h.tick()
        assert command.linear_x == pytest.approx(0.3)
        assert h.behaviour(PATROL).limited == ""
        assert reverse(h).linear_x == pytest.approx(-0.2)


def test_something_inside_the_turning_circle_stops_turning_but_not_driving_on():
    beside_rear_corner = scan_with(100, 0.2, width_deg=3)  # 4-5 cm off the left wheel
    h = harness(TO_THE_LEFT, beside_rear_corner)
    assert h.tick() == ZERO
    assert "no turning" in h.behaviour(PATROL).limited
    assert harness(AHEAD, beside_rear_corner).tick().linear_x == pytest.approx(0.3)


# --- closed loop: drive at a wall ---------------------------------------------------------
def wall_scan(pose, wall_x):
    """The scan a robot at ``pose`` sees of a wall across its path at x = wall_x."""
    yaw = pose.yaw
    lx = pose.x + cl.SCAN_X_M * math.cos(yaw)
    cos = np.cos(yaw + np.radians(np.arange(360)))
    with np.errstate(divide="ignore"):
        ranges = np.where(cos > 1e-6, (wall_x - lx) / cos, np.inf)
    ranges[ranges > 3.5] = np.inf
    return laser_scan(ranges)


def test_the_patrol_stops_at_the_stop_distance_then_skips_the_waypoint_it_cannot_reach():
    route = Config(waypoints=((3.0, 0.0), (0.0, 3.0)), **LIMITS)
    h = TreeHarness(route)
    gaps, skipped_at = [], None
    for i in range(170):
        h.scan = wall_scan(h.pose, 1.5)
        h.tick(move=True)
        gaps.append(1.5 - (h.pose.x + cl.FRONT_M))
        if skipped_at is None and h.read(keys.PATROL_WAYPOINT) == 1:
            skipped_at = i * 0.1
    assert min(gaps) >= 0.3 - 0.02, "drove into the stop distance"
    assert min(gaps) < 0.35, "stopped far short of the stop distance"
    patrol = h.behaviour(PATROL)
    assert patrol.skipped >= 1 and patrol.reached == 0
    # it reached the stop distance after about 5 s, waited 5 s, then gave the waypoint up
    assert skipped_at is not None and 9.0 < skipped_at < 13.0
    assert h.pose.y > 0.1  # and turned away towards the next waypoint


def test_an_obstacle_that_goes_away_lets_the_patrol_drive_on_without_skipping():
    h = harness(AHEAD, ahead(0.2))
    for _ in range(20):
        assert h.tick().linear_x == 0.0
    assert "held" in h.behaviour(PATROL).feedback_message
    h.scan = laser_scan()  # the person stepped aside
    assert h.tick().linear_x > 0
    assert h.behaviour(PATROL).skipped == 0 and h.read(keys.PATROL_WAYPOINT) == 0


# --- follow -------------------------------------------------------------------------------
def face_bearing_scan(distance_from_camera):
    """A person's legs along the bearing of FACE_BOX (slightly left of centre)."""
    fx = 320.0 / math.tan(Config().camera_hfov / 2)
    bearing = math.degrees(math.atan2(320.0 - (FACE_BOX[0] + FACE_BOX[2]) / 2, fx))
    return scan_with(bearing, distance_from_camera + BODY_TO_SCANNER, width_deg=4)


def follow(scan):
    h = harness(AHEAD, scan)
    h.see([make_track(4)])
    command = h.tick()
    assert h.tip() == "Servo To Face"
    return h, command


def test_follow_keeps_the_standoff_measured_by_the_laser_not_the_face_size():
    # FACE_BOX is larger than the target size: by the face alone the robot would hold still
    _, by_face = follow(laser_scan())
    assert by_face.linear_x == 0.0
    h, far = follow(face_bearing_scan(2.5))  # the laser says the person is 2.5 m away
    assert far.linear_x == pytest.approx(0.4 * (1 - 1.0 / 2.5), abs=0.02)
    assert "person 2.50 m away by the laser" in h.behaviour("Servo To Face").feedback_message
    _, at_standoff = follow(face_bearing_scan(0.95))
    assert at_standoff.linear_x == 0.0


def test_follow_uses_the_face_size_when_the_laser_has_no_return_towards_the_face():
    small_face = (300.0, 220.0, 330.0, 260.0)  # far away by its size
    h = harness(AHEAD, scan_with(180, 0.8))  # a return, but behind the robot
    h.see([make_track(4, box=small_face)])
    command = h.tick()
    assert command.linear_x > 0.2
    assert "distance by face size" in h.behaviour("Servo To Face").feedback_message


def test_follow_slows_for_something_in_its_way_and_stops_at_the_stop_distance():
    small_face = (300.0, 220.0, 330.0, 260.0)  # far away by its size, nearly straight ahead
    # something in the lane ahead, 10 degrees right of the face: not the person
    h = harness(AHEAD, scan_with(-10, 0.5 + BODY_TO_SCANNER, width_deg=2))
    h.see([make_track(4, box=small_face)])
    assert 0.12 < h.tick().linear_x < 0.16  # 0.21 m/s by the face alone
    assert "slowed" in h.behaviour("Servo To Face").feedback_message
    h = harness(AHEAD, scan_with(-10, 0.25 + BODY_TO_SCANNER, width_deg=2))
    h.see([make_track(4, box=small_face)])
    assert h.tick().linear_x == 0.0


# --- bad, missing and stale scans -----------------------------------------------------------
def test_inf_is_no_return_and_minus_inf_is_something_touching_the_body():
    msg = ranges_to_laser_scan(np.full(360, np.inf, dtype=np.float32), 0.0, 2 * math.pi / 359,
                               0.12, 3.5, "base_scan")
    h = harness(AHEAD, ros_io.scan_to_ranges(msg, expected_frame="base_scan"))
    assert h.tick().linear_x == pytest.approx(0.3)
    ranges = np.full(360, np.inf, dtype=np.float32)
    ranges[90] = -np.inf  # nearer than range_min: inside the body's outline
    msg = ranges_to_laser_scan(ranges, 0.0, 2 * math.pi / 359, 0.12, 3.5, "base_scan")
    h = harness(TO_THE_LEFT, ros_io.scan_to_ranges(msg, expected_frame="base_scan"))
    assert h.tick() == ZERO
    assert reverse(h) == ZERO
    assert h.behaviour(PATROL).limited.startswith("stopped 0.00 m behind")


def test_a_scan_with_nan_is_refused_and_the_robot_stops_once_the_last_good_one_is_stale():
    ranges = np.full(360, np.inf, dtype=np.float32)
    ranges[7] = np.nan
    msg = ranges_to_laser_scan(ranges, 0.0, 2 * math.pi / 359, 0.12, 3.5, "base_scan")
    with pytest.raises(InputError, match="1 NaN range"):
        ros_io.scan_to_ranges(msg, expected_frame="base_scan")
    with pytest.raises(InputError, match="NaN"):
        laser_scan(np.where(np.arange(360) == 7, np.nan, np.inf))
    h = TreeHarness(AHEAD)
    assert h.tick().linear_x > 0  # good scans so far
    h.scan = None  # from now on every scan is refused: none reaches the inbox
    commands = [h.tick() for _ in range(7)]
    assert all(c.linear_x > 0 for c in commands[:2])  # the last good one is 0.3 s fresh
    assert all(c == ZERO for c in commands[3:])
    assert h.tip() == "Stop" and "scan stale" in h.read(keys.SAFETY_REASON)


@pytest.mark.parametrize("bad,words", [
    (dict(ranges=[]), "no ranges"),
    (dict(angle_increment=0.0), "angle_increment 0.0"),
    (dict(angle_increment=math.nan), "angle_increment nan"),
])
def test_an_empty_scan_or_one_without_an_angle_step_cannot_be_made(bad, words):
    values = dict(angle_min=0.0, angle_increment=0.1, ranges=[1.0] * 10, range_min=0.12,
                  range_max=3.5, frame="base_scan")
    values.update(bad)
    with pytest.raises(InputError, match=words):
        RangeScan(**values)


def test_no_scan_at_all_holds_the_robot_when_a_scan_is_required():
    h = harness(AHEAD, None)
    for _ in range(5):
        assert h.tick() == ZERO
        assert h.tip() == "Stop"
    assert h.read(keys.SAFETY_REASON) == "no scan yet"
    assert h.read(keys.SAFETY_CLEARANCE) is None


def test_a_stale_scan_stops_the_robot_and_a_fresh_one_releases_it():
    h = TreeHarness(AHEAD)
    assert h.tick().linear_x > 0
    h.clock.advance(0.55)
    h.feed(scan=False)  # camera and odometry fresh, the scanner went quiet 0.65 s ago
    assert h.tick(feed=False) == ZERO
    assert "scan stale (0.65 s old)" in h.read(keys.SAFETY_REASON)
    assert h.tick().linear_x > 0


def test_a_scan_from_the_future_is_not_trusted():
    h = harness(AHEAD, None)
    h.inbox.put_scan(laser_scan(), stamp=h.clock() + 5.0)
    h.tick()
    assert h.tip() == "Stop" and "scan stamped" in h.read(keys.SAFETY_REASON)


def test_without_require_scan_the_robot_moves_with_no_scanner_and_a_scan_still_limits_it():
    optional = Config(waypoints=((3.0, 0.0),), require_scan=False)
    h = harness(optional, None)
    assert h.tick().linear_x == pytest.approx(0.3)
    assert h.tip() == PATROL and h.read(keys.SAFETY_CLEARANCE) is None
    assert "speed not limited" in h.behaviour("Unsafe?").feedback_message
    h.scan = ahead(0.2)
    assert h.tick().linear_x == 0.0


def test_the_limits_and_the_clearance_are_on_the_blackboard_for_the_viewer():
    h = harness(AHEAD, ahead(0.5))
    h.tick()
    assert str(h.read(keys.SAFETY_LIMITS)) == \
        "stop 0.30 m, slow 0.70 m, scan required, stale after 0.30 s"
    assert str(h.read(keys.SAFETY_CLEARANCE)) == "ahead 0.50 m, behind clear, turning free"
