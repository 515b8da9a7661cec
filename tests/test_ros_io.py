"""ROS message adapters: bad camera frames and odometry are refused with a clear message
(the node logs it and drops the input, so the safety guard keeps the robot stopped)."""
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
