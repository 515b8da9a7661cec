"""What the laser scan lets the base do: the robot's footprint, the scan limits, and the
clearance that every velocity command of the tree is cut to.

Why a limiter and not only a guard condition: whether an obstacle is a danger depends on
the command. A wall 0.2 m ahead forbids driving forwards, not turning away from it or
reversing. The safety guard ticks before the branches below it choose this tick's
command, so it could only judge the previous one: stopping on it hands the base back on
the next tick (the previous command is then the guard's zero) and the robot stutters on
into the wall, and holding the stop until the obstacle leaves never lets the patrol turn
away from a wall (a deadlock). ``VelocityBehaviour.command`` is the one place every command
goes through, so the cut happens there, on this tick's command, and only on the part that
moves towards the obstacle; the behaviour gets back what went out and can wait or choose
another goal. The guard keeps what does not depend on the command (no fresh scan when one
is required stops everything) and computes the clearance once per tick, so the tree viewer
shows it and the limits on ``/safety/clearance`` and ``/safety/limits``.

Geometry, in base_link (x forwards, y to the left; the numbers are the URDF's, and
tests/test_scan_safety.py checks them against worlds/robot/mask_patrol_robot.urdf):

- the body seen from above is a rectangle from REAR_M to FRONT_M, HALF_WIDTH_M to each side
  (the wheels stick out furthest);
- the scanner (base_scan) sits on the axis at SCAN_X_M, 0.064 m behind base_link; each
  beam's point is moved into base_link before it is judged;
- driving straight, forwards or back, sweeps a lane as wide as the body plus LANE_MARGIN_M on
  each side: ``ahead_m`` / ``behind_m`` is the gap between the body and the nearest point in
  that lane, so a wall beside the robot does not stop it driving along;
- turning in place sweeps a circle around base_link through the rectangle's rear corners
  (TURN_RADIUS_M, 1 cm beyond the body's farthest point): anything inside it stops
  turning. Something at the stop distance ahead is outside it, so the robot can always
  turn away from what stopped it;
- a point inside the body itself means contact: no motion at all.

An arc is judged as its straight part plus its turn; the slow zone leaves the margin for
its sideways sweep.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from behaviors.control import Twist2D
from common.range_scan import RangeScan

#: The body from above, in base_link (m): front and rear face, half the width at the wheels.
FRONT_M = 0.069
REAR_M = -0.197
HALF_WIDTH_M = 0.1525
#: Where the scanner (base_scan) sits in base_link (m); TurtleBot3 waffle_pi's LDS mount.
SCAN_X_M = -0.064
SCAN_Y_M = 0.0
#: Turning in place sweeps a circle through the rectangle's rear corners.
TURN_RADIUS_M = math.hypot(REAR_M, HALF_WIDTH_M)
#: Extra width on each side of the lane that straight motion sweeps (m): odometry and the
#: patrol's small heading corrections move the body sideways a little.
LANE_MARGIN_M = 0.05
#: Speed (m/s) still allowed just outside the stop distance, so the robot does reach it (a
#: speed scaled down to zero only ever approaches it) and then stops within 1-2 cm.
CRAWL_SPEED = 0.05


@dataclass(frozen=True)
class ScanLimits:
    """The laser's settings as the guard and the limiter use them (behaviors.config)."""

    stop_distance_m: float
    slow_distance_m: float
    scan_stale_s: float
    require_scan: bool
    max_linear_speed: float

    @classmethod
    def from_config(cls, config) -> "ScanLimits":
        return cls(config.stop_distance_m, config.slow_distance_m, config.scan_stale_s,
                   config.require_scan, config.max_linear_speed)

    def speed_cap(self, gap_m: float) -> float:
        """The fastest speed (m/s) allowed towards something ``gap_m`` from the body: none
        within the stop distance, full speed beyond the slow distance, falling linearly
        (never below a crawl) in between."""
        if gap_m <= self.stop_distance_m:
            return 0.0
        if gap_m >= self.slow_distance_m:
            return math.inf
        fraction = (gap_m - self.stop_distance_m) / (self.slow_distance_m - self.stop_distance_m)
        return max(CRAWL_SPEED, self.max_linear_speed * fraction)

    def __str__(self) -> str:  # for the tree viewer
        return "stop %.2f m, slow %.2f m, scan %s, stale after %.2f s" % (
            self.stop_distance_m, self.slow_distance_m,
            "required" if self.require_scan else "optional", self.scan_stale_s)


@dataclass(frozen=True, eq=False)
class Clearance:
    """Free space around the body in one fresh scan, and the limits that apply to it."""

    #: Gap (m) between the body's front and the nearest point in the lane ahead (inf: none).
    ahead_m: float
    #: The same behind the rear.
    behind_m: float
    #: Nothing inside the turning circle.
    turn_free: bool
    limits: ScanLimits
    #: The scan this was measured on (for Follow's distance to the person).
    scan: RangeScan

    @classmethod
    def measure(cls, scan: RangeScan, limits: ScanLimits) -> "Clearance":
        x, y = points_in_base_link(scan)
        in_lane = np.abs(y) <= HALF_WIDTH_M + LANE_MARGIN_M
        touching = bool(np.any((np.abs(y) <= HALF_WIDTH_M) & (x >= REAR_M) & (x <= FRONT_M)))
        ahead = _nearest(x[in_lane & (x > FRONT_M)] - FRONT_M)
        behind = _nearest(REAR_M - x[in_lane & (x < REAR_M)])
        if touching:
            ahead = behind = 0.0
        turn_free = not np.any(np.hypot(x, y) < TURN_RADIUS_M)
        return cls(ahead, behind, turn_free, limits, scan)

    def limit(self, twist: Twist2D) -> Tuple[Twist2D, str]:
        """``twist`` cut to what the clearance allows, and why ("" = unchanged). Only the
        motion towards an obstacle is cut: reversing away from a wall ahead, driving away
        from something behind, and turning with the turning circle free all stay."""
        v, w = twist.linear_x, twist.angular_z
        why = []
        if v != 0.0:
            gap, where = (self.ahead_m, "ahead") if v > 0 else (self.behind_m, "behind")
            cap = self.limits.speed_cap(gap)
            if abs(v) > cap:
                v = math.copysign(cap, v) if cap > 0 else 0.0
                why.append("%s %.2f m %s" % ("stopped" if cap == 0 else
                                             "slowed to %.2f m/s" % cap, gap, where))
        if w != 0.0 and not self.turn_free:
            w = 0.0
            why.append("no turning: something within %.2f m of base_link" % TURN_RADIUS_M)
        if not why:
            return twist, ""
        return Twist2D(v, w), "; ".join(why)

    def distance_towards(self, bearing: float, half_window: float) -> float:
        """Distance (m) from the camera, which sits at the body's front (0.066 m), to the
        nearest return within ``half_window`` radians of ``bearing`` (from the robot's +x,
        counter-clockwise); inf when the scan has no return there."""
        x, y = points_in_base_link(self.scan)
        dx, dy = x - FRONT_M, y
        off = np.abs((np.arctan2(dy, dx) - bearing + math.pi) % (2.0 * math.pi) - math.pi)
        return _nearest(np.hypot(dx, dy)[(off <= half_window) & (dx > 0)])

    def __str__(self) -> str:  # for the tree viewer
        return "ahead %s, behind %s, turning %s" % (
            _metres(self.ahead_m), _metres(self.behind_m),
            "free" if self.turn_free else "blocked")


def points_in_base_link(scan: RangeScan) -> Tuple[np.ndarray, np.ndarray]:
    """x and y (m, base_link) of every return of ``scan`` (beams with no return left out)."""
    ranges = scan.ranges
    hit = np.isfinite(ranges)
    angles = scan.angles()[hit]
    return (SCAN_X_M + ranges[hit] * np.cos(angles), SCAN_Y_M + ranges[hit] * np.sin(angles))


def _nearest(values: np.ndarray) -> float:
    return float(values.min()) if len(values) else math.inf


def _metres(value: float) -> str:
    return "%.2f m" % value if math.isfinite(value) else "clear"
