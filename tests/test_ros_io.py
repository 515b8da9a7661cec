"""ROS message adapters: bad camera frames, odometry and laser scans are refused with a clear
message (the node logs it and drops the input, so the safety guard keeps the robot stopped)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CompressedImage, Image

from behaviors import ros_io
from common.ros_messages import (bgr_to_image, laser_scan_ranges, quaternion_from_yaw,
                                 ranges_to_laser_scan)
from common.errors import InputError
from perception.types import FrameResult, Track


def image(width=4, height=3, encoding="bgr8", channels=3, data=None):
    msg = Image(width=width, height=height, encoding=encoding, step=width * channels)
    msg.data = data if data is not None else bytes(range(width * height * channels))
    return msg


def test_bgr_and_rgb_frames_come_out_as_the_same_bgr_array():
    bgr = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(3, 4, 3)
    from_bgr = ros_io.image_to_bgr(bgr_to_image(bgr))
    rgb_msg = image(data=bgr[:, :, ::-1].tobytes(), encoding="rgb8")
    assert np.array_equal(from_bgr, bgr)
    assert np.array_equal(ros_io.image_to_bgr(rgb_msg), bgr)
    mono = ros_io.image_to_bgr(image(encoding="mono8", channels=1))
    assert mono.shape == (3, 4, 3)


@pytest.mark.parametrize("msg,words", [
    (image(encoding="16UC1", channels=2), "encoding"),
    (image(width=0, height=0, data=b""), "empty"),
    (image(width=5000, height=10, data=b"\0" * 150000), "larger than"),
    (image(data=b"\0" * 10), "truncated"),
])
def test_bad_frames_are_refused_with_a_message_naming_the_problem(msg, words):
    with pytest.raises(InputError, match=words):
        ros_io.image_to_bgr(msg)


def test_undecodable_compressed_frame_is_refused():
    with pytest.raises(InputError, match="cannot be decoded"):
        ros_io.compressed_to_bgr(CompressedImage(format="jpeg", data=b"not a jpeg"))


def test_odometry_pose_and_yaw_and_nan_refused():
    msg = Odometry()
    msg.pose.pose.position.x, msg.pose.pose.position.y = 1.5, -2.0
    qx, qy, qz, qw = quaternion_from_yaw(0.7)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = qx, qy, qz, qw
    x, y, yaw, _, _ = ros_io.odometry_to_pose(msg)
    assert (x, y) == (1.5, -2.0) and yaw == pytest.approx(0.7)
    msg.pose.pose.position.x = math.nan
    with pytest.raises(InputError, match="NaN"):
        ros_io.odometry_to_pose(msg)


def test_frame_result_becomes_a_detection_array_with_landmarks_padded():
    from std_msgs.msg import Header

    track = Track(track_id=3, box=(1.0, 2.0, 30.0, 40.0), label="unmasked", score=0.9,
                  face_score=0.99, landmarks=((5.0, 6.0), (7.0, 8.0)))
    msg = ros_io.frame_result_to_msg(FrameResult(frame_index=0, tracks=[track]), Header())
    (det,) = msg.detections
    assert (det.track_id, det.label, det.x_max) == (3, "unmasked", 30.0)
    assert list(det.landmarks[:4]) == [5.0, 6.0, 7.0, 8.0]
    assert all(math.isnan(v) for v in det.landmarks[4:])
    assert ros_io.frame_result_to_msg(None, Header()).detections == []


def test_ranges_become_a_laser_scan_and_back_through_the_wire_format():
    from io import BytesIO

    from sensor_msgs.msg import LaserScan

    ranges = np.array([1.0, np.inf, -np.inf, np.nan, 3.25], dtype=np.float32)
    msg = ranges_to_laser_scan(ranges, 0.0, 0.5, 0.12, 3.5, "base_scan", scan_time=0.2)
    assert (msg.header.frame_id, msg.angle_max, msg.scan_time) == ("base_scan", 2.0, pytest.approx(0.2))
    buffer = BytesIO()
    msg.serialize(buffer)
    back = LaserScan()
    back.deserialize(buffer.getvalue())
    out = laser_scan_ranges(back)
    assert out.dtype == np.float32 and out.shape == (5,)
    assert out[0] == 1.0 and out[1] == np.inf and out[2] == -np.inf and np.isnan(out[3])
    assert out[4] == 3.25


# --- laser scans ------------------------------------------------------------------------
def scan_msg(ranges, angle_min=0.0, angle_increment=2 * math.pi / 359, frame="base_scan",
             range_min=0.12, range_max=3.5):
    """A LaserScan as Gazebo's plugin (and our simulator) writes one: angle_max at the last beam."""
    return ranges_to_laser_scan(np.asarray(ranges, dtype=np.float32), angle_min, angle_increment,
                                range_min, range_max, frame)


def wire(msg):
    """The message after a trip through ROS serialisation, as a subscriber gets it."""
    from io import BytesIO

    buffer = BytesIO()
    msg.serialize(buffer)
    back = type(msg)()
    back.deserialize(buffer.getvalue())
    return back


def test_a_simulated_scan_arrives_as_the_same_ranges_and_angles():
    from sim.simulator import Simulator

    sim = Simulator("corridor", start=(4.0, -0.5, -math.pi / 2))  # south wall 1.06 m ahead
    laser = sim.robot.laser
    ranges = sim.scan()
    msg = wire(ranges_to_laser_scan(ranges, laser.angle_min, laser.angle_increment,
                                    laser.range_min, laser.range_max, laser.frame_id))
    scan = ros_io.scan_to_ranges(msg, expected_frame="base_scan")
    sim.close()
    assert scan.frame == "base_scan" and len(scan.ranges) == 360
    assert scan.ranges.dtype == np.float64 and not scan.ranges.flags.writeable
    assert np.allclose(scan.angles(), laser.angles(), atol=1e-6)
    assert np.array_equal(np.isinf(scan.ranges), np.isinf(ranges))
    finite = np.isfinite(ranges)
    assert np.allclose(scan.ranges[finite], ranges[finite], atol=1e-6)
    distance, angle = scan.nearest()
    assert distance == pytest.approx(1.064, abs=0.01) and abs(angle) < 0.02  # straight ahead
    assert "360 ranges in base_scan, nearest 1.06 m" in str(scan)


def test_out_of_range_readings_are_no_return_and_minus_inf_is_range_min():
    raw = [1.0, math.inf, -math.inf, 0.0, 9.0, 3.5, 0.12]
    msg = wire(scan_msg(raw, angle_increment=0.1))
    scan = ros_io.scan_to_ranges(msg)
    # +inf (nothing within range_max), 0.0 (the LDS-01 driver's "no return") and 9.0 (beyond
    # range_max) all mean no return; -inf (too close) is at most range_min
    assert list(scan.ranges) == [1.0, math.inf, pytest.approx(0.12), math.inf, math.inf, 3.5,
                                 pytest.approx(0.12)]
    assert scan.nearest() == (pytest.approx(0.12), pytest.approx(0.2))
    nothing = ros_io.scan_to_ranges(scan_msg([math.inf] * 3, angle_increment=0.1))
    assert nothing.nearest()[0] == math.inf and "no return" in str(nothing)


def test_a_scan_with_nan_readings_is_refused_whole():
    # REP 117: NaN is an invalid reading; read as "nothing there" it could hide a person
    msg = wire(scan_msg([1.0, math.nan, 2.0, math.nan], angle_increment=0.1))
    with pytest.raises(InputError, match="2 NaN range.* of 4"):
        ros_io.scan_to_ranges(msg, expected_frame="base_scan")


def test_a_full_circle_with_angle_max_one_step_past_the_last_beam_is_accepted():
    # the TurtleBot3 LDS-01 driver: 360 beams, angle_min 0, angle_max 2 pi, increment 2 pi / 360
    msg = scan_msg([2.0] * 360, angle_increment=2 * math.pi / 360)
    msg.angle_max = 2 * math.pi
    scan = ros_io.scan_to_ranges(wire(msg), expected_frame="/base_scan")
    assert len(scan.ranges) == 360 and scan.angles()[-1] == pytest.approx(2 * math.pi * 359 / 360)


def _with(**changes):
    msg = scan_msg([1.0] * 360)
    for name, value in changes.items():
        if name == "frame":
            msg.header.frame_id = value
        else:
            setattr(msg, name, value)
    return msg


@pytest.mark.parametrize("msg,words", [
    (_with(ranges=[1.0] * 300), "has 300 ranges, but .* make 360"),
    (_with(ranges=[1.0] * 362), "has 362 ranges"),
    (_with(ranges=[]), "has 0 ranges"),
    (_with(angle_increment=0.0), "angle_increment 0.0"),
    (_with(angle_increment=math.nan), "angle_increment nan"),
    (_with(angle_increment=math.inf), "angle_increment inf"),
    (_with(angle_max=math.nan), "angles .* must be finite"),
    (_with(range_max=0.1), "range_min 0.12.* range_max 0.1"),
    (_with(frame="laser"), "frame 'laser', expected the laser's frame 'base_scan'"),
    (_with(frame=""), "frame '', expected"),
])
def test_bad_scans_are_refused_with_a_message_naming_the_problem(msg, words):
    with pytest.raises(InputError, match=words):
        ros_io.scan_to_ranges(wire(msg), expected_frame="base_scan")


def test_any_frame_is_accepted_when_none_is_expected():
    assert ros_io.scan_to_ranges(_with(frame="laser")).frame == "laser"
