"""The control laws (behaviors.control) and the settings they are tuned by (behaviors.config)."""
from __future__ import annotations

import math

import pytest

from behaviors.config import Config
from behaviors.control import (GoToGoal, Pose2D, Twist2D, VisualServo, distance, integrate,
                               nearest)
from common.geometry import wrap_angle

W, H = 640, 480


def servo(**kwargs) -> VisualServo:
    settings = dict(k_linear=0.4, k_angular=0.8, target_height=0.2, max_linear=0.3,
                    max_angular=1.0)
    settings.update(kwargs)
    return VisualServo(**settings)


def face(cx: float, height_fraction: float):
    h = height_fraction * H
    return (cx - h / 2, 200 - h / 2, cx + h / 2, 200 + h / 2)


def test_servo_centred_face_at_target_size_holds_still():
    twist = servo().command(face(W / 2, 0.2), (W, H))
    assert twist.linear_x == pytest.approx(0.0, abs=1e-9)
    assert twist.angular_z == pytest.approx(0.0, abs=1e-9)


def test_servo_turns_towards_the_face():
    right = servo().command(face(W * 0.75, 0.2), (W, H))
    left = servo().command(face(W * 0.25, 0.2), (W, H))
    assert right.angular_z < 0 < left.angular_z  # ROS: positive angular.z turns left
    assert right.angular_z == pytest.approx(-0.8 * 0.5)
    assert left.angular_z == pytest.approx(-right.angular_z)


def test_servo_drives_to_a_small_face_and_never_reverses():
    far = servo().command(face(W / 2, 0.1), (W, H))
    assert far.linear_x == pytest.approx(0.4 * (0.2 - 0.1) / 0.2)
    near = servo().command(face(W / 2, 0.5), (W, H))
    assert near.linear_x == 0.0  # too close: stop, do not back away blind
    tiny = servo().command(face(W / 2, 0.01), (W, H))
    assert tiny.linear_x <= 0.3


def test_servo_clamps_to_the_speed_limits():
    twist = servo(k_linear=10.0, k_angular=10.0).command(face(W - 5, 0.02), (W, H))
    assert twist.linear_x == pytest.approx(0.3)
    assert twist.angular_z == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", ["k_linear", "k_angular", "target_height", "max_linear",
                                 "max_angular"])
def test_servo_refuses_bad_settings_by_name(bad):
    with pytest.raises(ValueError, match=bad):
        servo(**{bad: -1.0})
    with pytest.raises(ValueError, match="target_height"):
        servo(target_height=1.5)
    with pytest.raises(ValueError, match="frame_size"):
        servo().command(face(10, 0.1), (0, H))


def goto(**kwargs) -> GoToGoal:
    settings = dict(k_linear=0.5, k_angular=1.5, max_linear=0.3, max_angular=1.0,
                    heading_tolerance=0.5)
    settings.update(kwargs)
    return GoToGoal(**settings)


def test_goal_behind_turns_on_the_spot_the_short_way():
    twist = goto().command(Pose2D(0, 0, 0), (-1.0, 0.2))  # behind, slightly to the left
    assert twist.linear_x == 0.0
    assert twist.angular_z > 0
    twist = goto().command(Pose2D(0, 0, 0), (-1.0, -0.2))
    assert twist.linear_x == 0.0
    assert twist.angular_z < 0


def test_goal_ahead_drives_forwards_and_slows_on_arrival():
    far = goto().command(Pose2D(0, 0, 0), (5.0, 0.0))
    close = goto().command(Pose2D(0, 0, 0), (0.2, 0.0))
    assert far.linear_x == pytest.approx(0.3)
    assert 0 < close.linear_x < far.linear_x
    assert goto().command(Pose2D(1, 1, 0), (1.0, 1.0)).is_zero


def test_heading_error_wraps_across_pi():
    # Facing almost -pi, goal almost straight ahead at +pi: a small correction, not a spin.
    twist = goto().command(Pose2D(0, 0, -math.pi + 0.05), (-2.0, -0.05))
    assert twist.linear_x > 0
    assert abs(twist.angular_z) < 0.2
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(-3 * math.pi / 2) == pytest.approx(math.pi / 2)


@pytest.mark.parametrize("start", [(0, 0, 0), (0, 0, math.pi), (3, -2, 1.0), (-1, 2, -2.5)])
def test_go_to_goal_reaches_the_goal_by_integration(start):
    pose, goal, dt = Pose2D(*start), (1.5, 0.5), 0.1
    controller = goto()
    for _ in range(600):
        if distance(pose, goal) < 0.05:
            break
        pose = integrate(pose, controller.command(pose, goal), dt)
    assert distance(pose, goal) < 0.05


def test_go_to_goal_refuses_bad_settings_by_name():
    with pytest.raises(ValueError, match="heading_tolerance"):
        goto(heading_tolerance=2.0)
    with pytest.raises(ValueError, match="max_linear"):
        goto(max_linear=0.0)


def test_integrate_is_exact_for_arcs():
    pose = Pose2D(0, 0, 0)
    for _ in range(100):  # one full circle of radius 0.5 in 100 steps
        pose = integrate(pose, Twist2D(0.5 * 2 * math.pi / 10.0, 2 * math.pi / 10.0), 0.1)
    assert (pose.x, pose.y) == pytest.approx((0.0, 0.0), abs=1e-6)
    straight = integrate(Pose2D(1, 1, math.pi / 2), Twist2D(0.2, 0.0), 1.0)
    assert (straight.x, straight.y) == pytest.approx((1.0, 1.2))


def test_nearest_waypoint():
    points = [(0, 0), (4, 0), (4, 4), (0, 4)]
    assert nearest(Pose2D(3.5, 3.0, 0), points) == 2
    assert nearest(Pose2D(0, 0, 0), []) is None


def test_config_defaults_are_valid_and_documented_values():
    config = Config()
    assert config.tick_hz == 10.0
    # a stall is seen at the first tick after the limit, and a late tick still stops the
    # robot within 0.5 s of it
    assert config.camera_stale_s + 2 * config.tick_period_s <= 0.5
    assert config.odometry_stale_s + 2 * config.tick_period_s <= 0.5
    assert config.scan_stale_s + 2 * config.tick_period_s <= 0.5
    assert config.confirm_frames == 3
    assert config.tick_period_s == pytest.approx(0.1)


@pytest.mark.parametrize("field,value", [
    ("tick_hz", 0), ("camera_stale_s", -0.1), ("odometry_stale_s", float("nan")),
    ("confirm_frames", 0), ("confirm_frames", 2.5), ("follow_k_linear", -1),
    ("target_face_height", 1.2), ("lost_timeout_s", 0), ("cooldown_s", -1),
    ("max_linear_speed", "fast"), ("waypoint_tolerance", 0), ("goal_heading_tolerance", 3.0),
    ("waypoints", [(0, 0), (1, float("inf"))]), ("waypoints", [(0,)]),
])
def test_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})


def test_config_from_dict_refuses_unknown_keys():
    config = Config.from_dict({"tick_hz": 5.0, "waypoints": [[0, 0], [1, 2]]})
    assert config.tick_hz == 5.0 and config.waypoints == ((0.0, 0.0), (1.0, 2.0))
    with pytest.raises(ValueError, match="max_speed"):
        Config.from_dict({"max_speed": 1.0})
