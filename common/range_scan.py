"""RangeScan: one planar laser scan as the tree reads it, checked and free of ROS.

``behaviors.ros_io.scan_to_ranges`` builds it from a sensor_msgs/LaserScan; a test or the
simulator can build it directly. Its ``ranges`` hold one distance per beam, in metres, with
one meaning for everything that is not a distance:

- a reading within [range_min, range_max] is the distance to the nearest thing on the beam;
- ``inf``: no return, nothing within range_max on that beam. The message's +inf (REP 117),
  NaN (an invalid reading, REP 117) and finite readings outside [range_min, range_max]
  (sensor_msgs/LaserScan says to discard them; the TurtleBot3 LDS-01 driver writes 0.0 for
  no return) all become ``inf``; ``nan_count`` says how many readings were NaN, so a reader
  can refuse a scan that is mostly invalid;
- a message's -inf (REP 117: something nearer than range_min) becomes ``range_min``: there
  is something at most that far away.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class RangeScan:
    """Beam ``i`` points ``angle_min + i * angle_increment`` radians counter-clockwise from
    the +x axis of ``frame`` and reads ``ranges[i]`` metres (read-only float64 array)."""

    angle_min: float
    angle_increment: float
    ranges: np.ndarray
    range_min: float
    range_max: float
    frame: str
    nan_count: int = 0

    def angles(self) -> np.ndarray:
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges))

    def nearest(self):
        """(distance, angle) of the nearest return, or (inf, nan) when there is none."""
        if len(self.ranges) == 0 or not np.isfinite(self.ranges).any():
            return math.inf, math.nan
        i = int(np.argmin(self.ranges))
        return float(self.ranges[i]), float(self.angle_min + self.angle_increment * i)

    def __str__(self) -> str:
        # Short for the tree viewer: never the 360 numbers.
        distance, angle = self.nearest()
        nearest = ("nearest %.2f m at %.0f deg" % (distance, math.degrees(angle))
                   if math.isfinite(distance) else "no return")
        return "%d ranges in %s, %s" % (len(self.ranges), self.frame, nearest)
