"""Velocity control laws for a differential-drive base: follow a face, drive to a point.

They are plain math on plain numbers (no numpy, no py_trees, no ROS) so they can be tested
as laws, reused by the simulator's scripted agents, and reasoned about in isolation from the
tree that decides *which* law runs. Every command they return is already clamped to the
speed limits and never drives backwards: the camera looks forwards, so reversing would mean
moving blind.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from common.geometry import wrap_angle


@dataclass(frozen=True)
class Twist2D:
    """The planar velocity command the tree writes and the ROS node publishes as cmd_vel."""

    #: Forward speed, m/s (geometry_msgs/Twist linear.x).
    linear_x: float = 0.0
    #: Turn rate, rad/s, positive = counter-clockwise / to the left (angular.z).
    angular_z: float = 0.0

    @property
    def is_zero(self) -> bool:
        return self.linear_x == 0.0 and self.angular_z == 0.0

    def __str__(self) -> str:  # short, for the tree viewer's blackboard view
        return "v=%.2f m/s w=%.2f rad/s" % (self.linear_x, self.angular_z)


#: The command that stops the robot; written whenever a behaviour lets go of the base.
ZERO = Twist2D(0.0, 0.0)


@dataclass(frozen=True)
class Pose2D:
    """Robot pose in the odometry frame: metres and radians (yaw from +x, counter-clockwise)."""

    x: float
    y: float
    yaw: float

    def __str__(self) -> str:
        return "(%.2f, %.2f, %.2f rad)" % (self.x, self.y, self.yaw)


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _positive(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError("%s must be a finite number > 0, got %r" % (name, value))
    return float(value)


class VisualServo:
    """Keep a face centred and at a target apparent size: the turtlebot_follower law.

    The error terms are normalised by the image, so the gains do not depend on the camera's
    resolution: ``x_error`` is -1 at the left edge and +1 at the right edge, and the size
    error is relative to the target height. A face that looks larger than the target (the
    person is close, or walks towards the robot) gives zero forward speed, never reverse.
    With ``range_ratio`` (a measured distance to the person over the distance to keep, e.g.
    from the laser) the forward speed follows the measured distance instead, by the same
    law: apparent size falls as one over distance, so the size error is 1 - 1 / ratio.
    """

    def __init__(self, k_linear: float, k_angular: float, target_height: float,
                 max_linear: float, max_angular: float) -> None:
        self.k_linear = _positive("k_linear", k_linear)
        self.k_angular = _positive("k_angular", k_angular)
        self.target_height = _positive("target_height", target_height)
        if self.target_height >= 1.0:
            raise ValueError("target_height is a fraction of the frame height and must be "
                             "< 1, got %r" % (target_height,))
        self.max_linear = _positive("max_linear", max_linear)
        self.max_angular = _positive("max_angular", max_angular)

    def command(self, box: Sequence[float], frame_size: Tuple[int, int],
                range_ratio: Optional[float] = None) -> Twist2D:
        """Velocity towards the face in ``box`` (x_min, y_min, x_max, y_max) in a frame (w, h)."""
        width, height = frame_size
        if width <= 0 or height <= 0:
            raise ValueError("frame_size must be positive, got %r" % (frame_size,))
        x_min, y_min, x_max, y_max = box
        half_width = width / 2.0
        x_error = clamp(((x_min + x_max) / 2.0 - half_width) / half_width, -1.0, 1.0)
        face_height = max(0.0, (y_max - y_min) / float(height))
        angular = clamp(-self.k_angular * x_error, -self.max_angular, self.max_angular)
        if range_ratio is not None and range_ratio > 0:
            size_error = 1.0 - 1.0 / range_ratio  # = the face-height error at that distance
        else:
            size_error = (self.target_height - face_height) / self.target_height
        linear = clamp(self.k_linear * size_error, 0.0, self.max_linear)
        return Twist2D(linear, angular)


class GoToGoal:
    """Drive to a point on odometry: turn towards it, then drive while correcting heading.

    When the goal is more than ``heading_tolerance`` off the nose the robot turns on the spot
    (driving forwards while pointing away only spirals); within the tolerance the forward
    speed is scaled by cos(heading error) so it fades out smoothly as the error grows.
    Forward speed is proportional to the distance, so the robot slows down on arrival.
    """

    def __init__(self, k_linear: float, k_angular: float, max_linear: float,
                 max_angular: float, heading_tolerance: float) -> None:
        self.k_linear = _positive("k_linear", k_linear)
        self.k_angular = _positive("k_angular", k_angular)
        self.max_linear = _positive("max_linear", max_linear)
        self.max_angular = _positive("max_angular", max_angular)
        self.heading_tolerance = _positive("heading_tolerance", heading_tolerance)
        if self.heading_tolerance >= math.pi / 2.0:
            raise ValueError("heading_tolerance must be < pi/2 (beyond it the robot would drive "
                             "away from the goal), got %r" % (heading_tolerance,))

    def command(self, pose: Pose2D, goal: Tuple[float, float]) -> Twist2D:
        dx, dy = goal[0] - pose.x, goal[1] - pose.y
        dist = math.hypot(dx, dy)
        if dist == 0.0:
            return ZERO
        heading_error = wrap_angle(math.atan2(dy, dx) - pose.yaw)
        angular = clamp(self.k_angular * heading_error, -self.max_angular, self.max_angular)
        if abs(heading_error) > self.heading_tolerance:
            return Twist2D(0.0, angular)
        linear = clamp(self.k_linear * dist * math.cos(heading_error), 0.0, self.max_linear)
        return Twist2D(linear, angular)


def distance(pose: Pose2D, point: Tuple[float, float]) -> float:
    return math.hypot(point[0] - pose.x, point[1] - pose.y)


def nearest(pose: Pose2D, points: Sequence[Tuple[float, float]]) -> Optional[int]:
    """Index of the point closest to the robot (None when there are none)."""
    if not points:
        return None
    return min(range(len(points)), key=lambda i: distance(pose, points[i]))


def integrate(pose: Pose2D, twist: Twist2D, dt: float) -> Pose2D:
    """Unicycle kinematics for one step: where a perfect diff-drive base would be after ``dt``.

    Tests and the simulator's dead-reckoning use it; exact for constant twist (arc motion).
    """
    v, w = twist.linear_x, twist.angular_z
    if abs(w) < 1e-9:
        return Pose2D(pose.x + v * dt * math.cos(pose.yaw), pose.y + v * dt * math.sin(pose.yaw),
                      pose.yaw)
    yaw = pose.yaw + w * dt
    return Pose2D(pose.x + v / w * (math.sin(yaw) - math.sin(pose.yaw)),
                  pose.y - v / w * (math.cos(yaw) - math.cos(pose.yaw)),
                  wrap_angle(yaw))
