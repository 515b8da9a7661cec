"""Angles and the pinhole camera: one definition of each, for the robot and the simulator."""
from __future__ import annotations

import math
from typing import Sequence


def wrap_angle(angle: float) -> float:
    """The same angle in [-pi, pi), so a heading error takes the short way round."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def focal_length_px(width: float, horizontal_fov: float) -> float:
    """Focal length in pixels of a pinhole camera ``width`` pixels wide with this field of
    view (radians): the ``fx`` of its camera_info K matrix."""
    if not (width > 0 and 0.0 < horizontal_fov < math.pi):
        raise ValueError("a camera needs width > 0 and a field of view in (0, pi) rad, got "
                         "width %r, fov %r" % (width, horizontal_fov))
    return (width / 2.0) / math.tan(horizontal_fov / 2.0)


def horizontal_fov(width: float, fx: float) -> float:
    """Horizontal field of view (radians) of a pinhole camera: the inverse of
    ``focal_length_px``."""
    if not (width > 0 and fx > 0 and math.isfinite(width) and math.isfinite(fx)):
        raise ValueError("a camera needs width > 0 and fx > 0, got width %r, fx %r"
                         % (width, fx))
    return 2.0 * math.atan((width / 2.0) / fx)


def fov_from_camera_info(width: float, k: Sequence[float]) -> float:
    """Horizontal field of view from a sensor_msgs/CameraInfo's width and row-major K."""
    if len(k) != 9:
        raise ValueError("camera_info K must have 9 numbers, got %d" % len(k))
    return horizontal_fov(width, float(k[0]))
