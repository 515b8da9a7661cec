"""RangeScan: one planar laser scan as the tree reads it, checked and free of ROS.

``behaviors.ros_io.scan_to_ranges`` builds it from a sensor_msgs/LaserScan; a test or the
simulator can build it directly. Its ``ranges`` hold one distance per beam, in metres, with
one meaning for everything that is not a distance:

- a reading within [range_min, range_max] is the distance to the nearest thing on the beam;
- ``inf``: no return, nothing within range_max on that beam. The message's +inf (REP 117)
  and finite readings outside [range_min, range_max] (sensor_msgs/LaserScan says to discard
  them; the TurtleBot3 LDS-01 driver writes 0.0 for no return) become ``inf``;
- a message's -inf (REP 117: something nearer than range_min) becomes ``range_min``: there
  is something at most that far away.

There is no NaN: REP 117 makes NaN an invalid reading, and an invalid reading may hide a
person, so a scan holding one is refused whole (the safety guard then has no fresh scan and
stops the robot) instead of being read as "nothing there". The constructor refuses it, and
an empty scan or an angle step that is zero, with InputError.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import InputError


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

    def __post_init__(self) -> None:
        ranges = np.array(self.ranges, dtype=np.float64)  # a copy nobody else can change
        ranges.flags.writeable = False
        object.__setattr__(self, "ranges", ranges)
        step = float(self.angle_increment)
        if ranges.ndim != 1 or len(ranges) == 0:
            raise InputError("laser scan in %r has no ranges; a scan needs one range per beam"
                             % (self.frame,))
        if not (math.isfinite(step) and step != 0.0 and math.isfinite(self.angle_min)):
            raise InputError("laser scan in %r has angle_min %r and angle_increment %r; they "
                             "must be finite and the increment non-zero (check the scanner "
                             "driver)" % (self.frame, self.angle_min, self.angle_increment))
        nan = int(np.isnan(ranges).sum())
        if nan:
            raise InputError("laser scan in %r has %d NaN range(s) of %d (invalid readings); "
                             "the whole scan is refused, since an invalid beam may hide "
                             "something (check the scanner)" % (self.frame, nan, len(ranges)))

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
