"""Conversions between numpy / plain numbers and ROS message classes, shared by the robot's
node (behaviors.ros_io) and the simulator's bridge (sim.ros_bridge).

Only message classes are imported, and only when a function needs them, like the mock/
modules of py_trees_ros_tutorials: the simulator does not depend on the robot's code.
"""
from __future__ import annotations

import math
from typing import Tuple

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


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion_from_yaw(yaw: float) -> Tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))
