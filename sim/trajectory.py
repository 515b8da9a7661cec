"""An actor's scripted trajectory, played back the way Gazebo Classic plays it.

Gazebo (physics/Actor.cc + common::PoseAnimation + ignition::math::Spline) moves an actor
along its ``<script><trajectory>`` waypoints in simulated time:

- position: a cubic Hermite spline through the waypoints, tangent
  ``0.5 * (1 - tension) * (p[i+1] - p[i-1])`` (Catmull-Rom at tension 0, no overshoot and a
  stop at every waypoint at tension 1); the ends use their one neighbour, or wrap around
  when the first and last waypoint are the same point (a closed loop);
- a waypoint list that does not start at time 0 gets the first pose copied to time 0;
- ``delay_start`` seconds pass before the script starts and, when ``loop`` is true, again
  before each repeat (the actor holds its first pose meanwhile); without ``loop`` the actor
  stays at the last waypoint.

Orientation is interpolated by the shortest rotation between neighbouring waypoints' yaw
(Gazebo uses a rotation spline; both agree at the waypoints and for the quarter turns our
worlds use). Roll and pitch are ignored: people stand upright.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from common.geometry import wrap_angle

#: (time, x, y, z, yaw)
Waypoint = Tuple[float, float, float, float, float]


@dataclass(frozen=True)
class Trajectory:
    """Waypoints (sorted by time) plus Gazebo's script options; ``pose_at`` plays it."""

    waypoints: Tuple[Waypoint, ...]
    tension: float = 0.0
    loop: bool = True
    delay_start: float = 0.0
    auto_start: bool = True

    def __post_init__(self) -> None:
        if not self.waypoints:
            raise ValueError("a trajectory needs at least one waypoint")
        if not 0.0 <= self.tension <= 1.0:
            raise ValueError("tension must be in [0, 1], got %r" % (self.tension,))
        if self.delay_start < 0:
            raise ValueError("delay_start must be >= 0, got %r" % (self.delay_start,))
        times = [w[0] for w in self.waypoints]
        if any(t < 0 for t in times):
            raise ValueError("waypoint times must be >= 0, got %r" % (times,))
        if len(set(times)) != len(times):
            raise ValueError("waypoint times must be distinct, got %r" % (times,))
        points = sorted(self.waypoints)
        if points[0][0] > 0.0:  # Gazebo adds the first pose at time 0
            points.insert(0, (0.0,) + tuple(points[0][1:]))  # type: ignore[arg-type]
        object.__setattr__(self, "waypoints", tuple(points))
        object.__setattr__(self, "_times", [w[0] for w in points])
        object.__setattr__(self, "_tangents", _tangents([w[1:4] for w in points], self.tension))

    @property
    def duration(self) -> float:
        """Length of one pass of the script (the last waypoint's time)."""
        return self.waypoints[-1][0]

    @property
    def period(self) -> float:
        """Time between two starts of a looping script (delay included)."""
        return self.delay_start + self.duration

    def script_time(self, sim_time: float) -> float:
        """Where in the script the actor is at ``sim_time`` (< 0 while waiting to start)."""
        if not self.auto_start:
            return -1.0
        t = sim_time - self.delay_start
        if t < 0:
            return t
        if self.duration <= 0:
            return 0.0
        if not self.loop:
            return min(t, self.duration)
        t = math.fmod(sim_time, self.period) - self.delay_start
        return t if t >= 0 else 0.0  # later cycles hold the first pose during the delay

    def pose_at(self, sim_time: float) -> Tuple[float, float, float, float]:
        """(x, y, z, yaw) of the actor at ``sim_time`` seconds of simulated time; yaw in
        (-pi, pi]."""
        t = self.script_time(sim_time)
        points = self.waypoints
        if t <= 0 or len(points) == 1:
            return points[0][1], points[0][2], points[0][3], wrap_angle(points[0][4])
        if t >= self.duration:
            return points[-1][1], points[-1][2], points[-1][3], wrap_angle(points[-1][4])
        i = bisect.bisect_right(self._times, t) - 1  # type: ignore[attr-defined]
        i = min(max(i, 0), len(points) - 2)
        t0, t1 = points[i][0], points[i + 1][0]
        s = (t - t0) / (t1 - t0)
        h00 = 2 * s ** 3 - 3 * s ** 2 + 1
        h10 = s ** 3 - 2 * s ** 2 + s
        h01 = -2 * s ** 3 + 3 * s ** 2
        h11 = s ** 3 - s ** 2
        m0, m1 = self._tangents[i], self._tangents[i + 1]  # type: ignore[attr-defined]
        xyz = [h00 * points[i][k + 1] + h10 * m0[k] + h01 * points[i + 1][k + 1] + h11 * m1[k]
               for k in range(3)]
        yaw0 = points[i][4]
        yaw = wrap_angle(yaw0 + s * wrap_angle(points[i + 1][4] - yaw0))
        return xyz[0], xyz[1], xyz[2], yaw


def _tangents(points: Sequence[Sequence[float]], tension: float) -> List[Tuple[float, ...]]:
    """ignition::math::Spline::RecalcTangents, for a list of xyz points."""
    n = len(points)
    if n < 2:
        return [(0.0, 0.0, 0.0)] * n
    k = 0.5 * (1.0 - tension)
    closed = all(abs(a - b) < 1e-9 for a, b in zip(points[0], points[-1]))

    def diff(a, b):
        return tuple(k * (x - y) for x, y in zip(a, b))

    out = []
    for i in range(n):
        if i == 0:
            out.append(diff(points[1], points[n - 2] if closed else points[0]))
        elif i == n - 1:
            out.append(out[0] if closed else diff(points[i], points[i - 1]))
        else:
            out.append(diff(points[i + 1], points[i - 1]))
    return out
