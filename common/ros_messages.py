"""Conversions between numpy / plain numbers and ROS message classes, shared by the robot's
node (behaviors.ros_io) and the simulator's bridge (sim.ros_bridge).

Only message classes are imported, and only when a function needs them, like the mock/
modules of py_trees_ros_tutorials: the simulator does not depend on the robot's code.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np


def bgr_to_image(image: np.ndarray, header=None):
    """BGR uint8 array -> sensor_msgs/Image (bgr8)."""
    from sensor_msgs.msg import Image

    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return msg


def ranges_to_laser_scan(ranges: np.ndarray, angle_min: float, angle_increment: float,
                         range_min: float, range_max: float, frame_id: str,
                         scan_time: float = 0.0, header=None):
    """Ranges (m, one per beam; +inf / -inf / NaN kept as they are, REP 117) ->
    sensor_msgs/LaserScan. ``angle_max`` is the last beam's angle; ``scan_time`` the period
    between scans (s); ``time_increment`` 0, as Gazebo's laser plugin: every beam at once."""
    from sensor_msgs.msg import LaserScan

    values = np.asarray(ranges, dtype=np.float32).ravel()
    msg = LaserScan()
    if header is not None:
        msg.header = header
    msg.header.frame_id = frame_id
    msg.angle_min = float(angle_min)
    msg.angle_increment = float(angle_increment)
    msg.angle_max = float(angle_min + angle_increment * max(len(values) - 1, 0))
    msg.time_increment = 0.0
    msg.scan_time = float(scan_time)
    msg.range_min, msg.range_max = float(range_min), float(range_max)
    msg.ranges = values.tolist()
    return msg


def laser_scan_ranges(msg, dtype: Optional[type] = np.float32) -> np.ndarray:
    """sensor_msgs/LaserScan -> its ranges as a 1-D numpy array (values untouched)."""
    return np.asarray(msg.ranges, dtype=dtype).ravel()


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion_from_yaw(yaw: float) -> Tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))
