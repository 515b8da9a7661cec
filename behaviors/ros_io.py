"""The small adapter between ROS messages and the plain types the tree and perception use.

It is the only module in behaviors/ that touches ROS message classes; it never creates
nodes, publishers or subscribers (the node files do). Every conversion of outside input
checks it and raises InputError with a message that names the problem, so a node can log it
and keep the robot stopped instead of crashing.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from common.errors import InputError
from common.range_scan import RangeScan
from common.ros_messages import laser_scan_ranges, yaw_from_quaternion
from perception.types import FrameResult

#: Frames larger than this (either side, pixels) are refused: a camera misconfiguration.
MAX_FRAME_SIDE = 4096
_ENCODINGS = {"bgr8": 3, "rgb8": 3, "mono8": 1, "bgra8": 4, "rgba8": 4}


def image_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 BGR, checking encoding and size."""
    encoding = msg.encoding.lower()
    if encoding not in _ENCODINGS:
        raise InputError("camera image has encoding %r; mask_patrol needs one of %s "
                         "(set the camera driver's output encoding)"
                         % (msg.encoding, ", ".join(sorted(_ENCODINGS))))
    check_frame_size(msg.width, msg.height)
    channels = _ENCODINGS[encoding]
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise InputError("camera image %dx%d %s has step %d and %d data bytes, too few for its "
                         "size (a truncated or corrupt frame)"
                         % (msg.width, msg.height, msg.encoding, msg.step, len(msg.data)))
    buf = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    rows = buf.reshape(msg.height, msg.step)[:, :msg.width * channels]
    image = rows.reshape(msg.height, msg.width, channels)
    if encoding == "bgr8":
        return image.copy()
    if encoding == "rgb8":
        return image[:, :, ::-1].copy()
    if encoding == "mono8":
        return np.repeat(image, 3, axis=2)
    if encoding == "bgra8":
        return image[:, :, :3].copy()
    return image[:, :, 2::-1].copy()  # rgba8


def compressed_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> BGR, with a clear error for bad data."""
    import cv2

    image = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("compressed camera image (format %r, %d bytes) cannot be decoded"
                         % (msg.format, len(msg.data)))
    check_frame_size(image.shape[1], image.shape[0])
    return image


def check_frame_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise InputError("camera image is empty (%dx%d)" % (width, height))
    if width > MAX_FRAME_SIDE or height > MAX_FRAME_SIDE:
        raise InputError("camera image %dx%d is larger than %d px a side; lower the camera "
                         "resolution" % (width, height, MAX_FRAME_SIDE))


def odometry_to_pose(msg) -> Tuple[float, float, float, float, float]:
    """nav_msgs/Odometry -> (x, y, yaw, linear velocity, angular velocity); NaN is refused."""
    p = msg.pose.pose.position
    q = msg.pose.pose.orientation
    t = msg.twist.twist
    values = (p.x, p.y, q.x, q.y, q.z, q.w, t.linear.x, t.angular.z)
    if not all(math.isfinite(v) for v in values):
        raise InputError("odometry contains NaN or infinite values (pose %.3g, %.3g; twist "
                         "%.3g, %.3g); check the base driver" % (p.x, p.y, t.linear.x, t.angular.z))
    return (p.x, p.y, yaw_from_quaternion(q.x, q.y, q.z, q.w), t.linear.x, t.angular.z)


def scan_to_ranges(msg, expected_frame: Optional[str] = None) -> RangeScan:
    """sensor_msgs/LaserScan -> RangeScan (see common.range_scan for what its values mean).

    Refused with InputError: non-finite angles or range limits, a zero or non-finite
    angle_increment, ranges whose number does not fit angle_min..angle_max at
    angle_increment (an empty scan included), and, with ``expected_frame``, any other frame
    (a leading '/' is ignored). Either convention for angle_max is accepted: the last beam's
    angle (LaserScan's definition) or one increment past it (drivers of full-circle
    scanners, the TurtleBot3 LDS-01's included, publish 0..2 pi with 360 beams). A NaN
    range refuses the whole scan (see common.range_scan).
    """
    frame = msg.header.frame_id.lstrip("/")
    if expected_frame is not None and frame != expected_frame.lstrip("/"):
        raise InputError("laser scan is in frame %r, expected the laser's frame %r; set the "
                         "scanner driver's frame_id to %r"
                         % (msg.header.frame_id, expected_frame, expected_frame))
    angle_min, angle_max, step = (float(v) for v in (msg.angle_min, msg.angle_max,
                                                     msg.angle_increment))
    if not (math.isfinite(step) and step != 0.0):
        raise InputError("laser scan in %r has angle_increment %r; it must be a non-zero "
                         "number (check the scanner driver)" % (frame, msg.angle_increment))
    if not (math.isfinite(angle_min) and math.isfinite(angle_max)):
        raise InputError("laser scan in %r has angles %r..%r; they must be finite"
                         % (frame, msg.angle_min, msg.angle_max))
    range_min, range_max = float(msg.range_min), float(msg.range_max)
    if not (math.isfinite(range_min) and math.isfinite(range_max) and 0.0 <= range_min < range_max):
        raise InputError("laser scan in %r has range_min %.4g and range_max %.4g; they must "
                         "be finite with 0 <= range_min < range_max"
                         % (frame, msg.range_min, msg.range_max))
    raw = laser_scan_ranges(msg, dtype=np.float64)
    beams = (angle_max - angle_min) / step + 1.0  # angle_max at the last beam
    if not (len(raw) > 0 and (abs(len(raw) - beams) < 0.5 or abs(len(raw) - (beams - 1.0)) < 0.5)):
        raise InputError("laser scan in %r has %d ranges, but angles %.4f..%.4f rad at %.6f "
                         "rad per beam make %d; the message is truncated or its angles are "
                         "wrong" % (frame, len(raw), angle_min, angle_max, step,
                                    int(round(beams))))
    nan = int(np.isnan(raw).sum())
    if nan:
        raise InputError("laser scan in %r has %d NaN range(s) of %d; REP 117 makes NaN an "
                         "invalid reading and an invalid beam may hide something, so the "
                         "scan is refused (check the scanner and its driver)"
                         % (frame, nan, len(raw)))
    ranges = raw.copy()
    ranges[np.isneginf(raw)] = range_min
    ranges[np.isfinite(raw) & ((raw < range_min) | (raw > range_max))] = np.inf
    return RangeScan(angle_min=angle_min, angle_increment=step, ranges=ranges,
                     range_min=range_min, range_max=range_max, frame=frame)


def frame_result_to_msg(result: Optional[FrameResult], header):
    """FrameResult -> mask_patrol/FaceDetectionArray (empty when there is no result)."""
    from mask_patrol.msg import FaceDetection, FaceDetectionArray

    out = FaceDetectionArray()
    out.header = header
    for track in (result.tracks if result is not None else []):
        det = FaceDetection()
        det.x_min, det.y_min, det.x_max, det.y_max = (float(v) for v in track.box)
        det.label = track.label
        det.score = float(track.score)
        det.face_score = float(track.face_score)
        det.track_id = int(track.track_id)
        points = list(track.landmarks)[:5]
        flat = [float(c) for point in points for c in point]
        det.landmarks = flat + [float("nan")] * (10 - len(flat))
        out.detections.append(det)
    return out
