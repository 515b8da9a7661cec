"""Every tunable number of the behaviour tree in one validated dataclass.

The robot's values live in the ROS package's ``config/patrol.yaml`` (the one settings file
every launch file loads; behaviors.settings reads it). The defaults here are those values
(tests/test_settings.py checks it), so tests that build a Config and ``create_root()``
with no arguments see the robot's numbers. Validation happens at construction, so a
typo'd gain fails at start-up with the field's name instead of as a runaway robot later.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Tuple

Waypoint = Tuple[float, float]


@dataclass(frozen=True)
class Config:
    """Behaviour tree settings. Times are seconds of the injected clock (sim time works)."""

    #: How often the node ticks the tree (Hz). The tree does not time itself; the node does.
    tick_hz: float = 10.0
    #: A camera frame older than this stops the robot. 0.3 s, not twist_mux's 0.5 s: the
    #: check runs once per tick (0.1 s), so a stall is acted on 0.4 s after the last frame,
    #: and a tick that comes late on a busy computer still stops the robot within 0.5 s
    #: (at 0.4 s a scenario run once saw the stop one tick late, 0.6 s after the stall).
    camera_stale_s: float = 0.3
    #: Odometry older than this stops the robot: we cannot steer without knowing where we
    #: are (same reasoning for 0.3 s).
    odometry_stale_s: float = 0.3
    #: A perception result about a frame older than this is not used to steer towards a face;
    #: the robot waits for a newer one (MTCNN may take 0.1-1 s per frame on a busy CPU).
    result_max_age_s: float = 1.0
    #: A track must be confirmed by the detector in this many frames (Track.hits) before the
    #: robot follows it or raises an alert: one-frame false positives are common.
    confirm_frames: int = 3

    #: Steer only on a box the detector confirmed within this many processed frames: in
    #: between, KCF (or the velocity prediction) may hold on to the background once the
    #: face leaves the picture, and chasing that box drives the robot into the person.
    steer_max_frames_undetected: int = 10
    #: Steer only on a sighting at most this old (s). The robot turns while it waits for
    #: perception (0.1-0.3 s a result here); re-applying a command computed from an older
    #: box overshot by half the image in the corridor scenario. In between: hold still.
    steer_max_age_s: float = 0.35

    #: Alert (and follow) only when the smoothed probability of "unmasked or mask below the
    #: nose" reaches this: a masked face the classifier hesitates on must not become an
    #: alert that staff act on (0.65 let a hesitant masked face through; CHANGELOG.md).
    alert_min_probability: float = 0.75
    #: Alert (and follow) only a face at least this tall (px). Below it the classifier has
    #: too few pixels to be trusted, the distance from the face height is off by metres (one
    #: pixel is 11% of a 9 px face), so the person cannot be recognised later on the map,
    #: and the snapshot shows staff nobody. Faces grow as the robot drives on, so a person
    #: is alerted a little later, not missed (the measurement is in CHANGELOG.md).
    alert_min_face_px: float = 12.0
    #: A new track that appears within this long (s) after an alerted track was last seen,
    #: within two face widths of where it was, is that same person (the tracker lost and
    #: re-found the face).
    continuity_s: float = 1.5

    #: Visual servo: turn rate (rad/s) per unit of normalised horizontal error (edge = 1).
    #: 1.2: at 0.8 the robot fell behind a person walking past at 1 m/s (the face drifted
    #: to half-way to the image edge in the corridor scenario); at 1.5, with 0.2-0.3 s of
    #: perception lag, it overshot.
    follow_k_angular: float = 1.2
    #: Visual servo: forward speed (m/s) per unit of relative face-height error.
    follow_k_linear: float = 0.4
    #: Face height, as a fraction of the frame height, at which the robot stops closing in
    #: (about 1.3 m from a face with a 60-degree, 640x480 camera).
    target_face_height: float = 0.18
    #: Follow closes in to this distance (m) between the camera, at the body's front, and
    #: the person's nearest point by the laser along the face's bearing. The laser sees the
    #: body (0.13 m up), which stands out in front of the face: closing in to the distance
    #: at which the face has target_face_height (1.2 m) kept the robot 1.4 m from a person
    #: in the corridor, too far to see them well. The face size stands in only when the
    #: laser has no return towards the face.
    follow_standoff_m: float = 1.0
    #: Give up a follow when the target has not been seen for this long.
    lost_timeout_s: float = 3.0
    #: Give up a follow after this long even if the person is still in view.
    follow_budget_s: float = 30.0
    #: A follow is done once the face has been held at the target size, near the image
    #: centre, for this long: the person has been approached; the patrol goes on.
    follow_hold_s: float = 3.0
    #: After a follow ends, do not start another one for this long (resume the patrol).
    #: A followed track is never followed again, so this only spaces out follows.
    cooldown_s: float = 5.0

    #: Horizontal field of view of the camera (rad), used until the first camera_info arrives
    #: (the node then takes it from the K matrix and width); the URDF camera's value.
    camera_hfov: float = 1.085595
    #: Typical height of a face box (m), to estimate a person's distance from one frame.
    face_height_m: float = 0.2
    #: A new track whose face lands this close (m) to a person alerted earlier is that person.
    person_radius_m: float = 1.2
    #: How long (s) an alerted person is remembered after they were last recognised.
    person_memory_s: float = 600.0

    #: Laser scan (behaviors.clearance). Stop motion towards anything nearer than this (m)
    #: to the robot's body. The scenarios allow no closer approach than 0.35 m to anything.
    #: The laser sees a person's legs (0.13 m up), and a side-on torso stands out up to
    #: 0.06 m beyond them; at 0.05 m/s (the crawl before the stop) the robot rolls 1-2 cm
    #: more before the base obeys. At 0.3 m it stopped 0.24-0.28 m from a person's torso
    #: (the crossing world); 0.45 m keeps the torso beyond 0.35 m with that margin.
    stop_distance_m: float = 0.45
    #: Forward and reverse speed fall linearly from max_linear_speed at this gap (m) to a
    #: crawl (0.05 m/s) at stop_distance_m, so the robot arrives at the stop slowly instead
    #: of braking hard from full speed.
    slow_distance_m: float = 0.9
    #: A scan older than this (s) counts as missing. A scan stall must stop the robot
    #: within 0.5 s, and it is seen at the first tick after this limit (0.3 s + 0.1 s, with
    #: a tick to spare, as for the camera). The scanner sends one every 0.2 s (5 Hz), so
    #: one lost scan holds the robot for a tick or two.
    scan_stale_s: float = 0.3
    #: Without a fresh scan the robot does not move (the guard holds it). false: with no
    #: fresh scan nothing limits the speed, for a robot that has no scanner at all.
    require_scan: bool = True
    #: Patrol: when an obstacle holds the robot short of its waypoint for this long (s), the
    #: patrol gives that waypoint up and drives to the next one.
    patrol_blocked_wait_s: float = 5.0

    #: Speed limits for every command the tree writes (TurtleBot3 waffle: 0.26 m/s, 1.8 rad/s).
    max_linear_speed: float = 0.3
    max_angular_speed: float = 1.0

    #: Patrol: go-to-goal gains and the distance at which a waypoint counts as reached.
    goal_k_linear: float = 0.5
    goal_k_angular: float = 1.5
    #: Turn on the spot while the goal is more than this off the nose (radians).
    goal_heading_tolerance: float = 0.5
    waypoint_tolerance: float = 0.25
    #: Patrol route in the odometry frame, visited in order and looped; empty = stand still.
    #: Load a file with behaviors.waypoints.load_waypoints().
    waypoints: Tuple[Waypoint, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "waypoints":
                continue
            if f.name == "require_scan":
                if not isinstance(value, bool):
                    raise ValueError("require_scan must be true or false, got %r" % (value,))
                continue
            if f.name in ("confirm_frames", "steer_max_frames_undetected"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError("%s must be an integer >= 1, got %r" % (f.name, value))
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError("%s must be a finite number, got %r" % (f.name, value))
            minimum_ok = value >= 0 if f.name == "cooldown_s" else value > 0
            if not minimum_ok:
                raise ValueError("%s must be %s, got %r"
                                 % (f.name, ">= 0" if f.name == "cooldown_s" else "> 0", value))
        if self.alert_min_probability > 1.0:
            raise ValueError("alert_min_probability must be <= 1, got %r"
                             % (self.alert_min_probability,))
        if self.target_face_height >= 1.0:
            raise ValueError("target_face_height is a fraction of the frame height and must "
                             "be < 1, got %r" % (self.target_face_height,))
        if self.slow_distance_m <= self.stop_distance_m:
            raise ValueError("slow_distance_m must be larger than stop_distance_m, got %r and "
                             "%r" % (self.slow_distance_m, self.stop_distance_m))
        if self.goal_heading_tolerance >= math.pi / 2.0:
            raise ValueError("goal_heading_tolerance must be < pi/2, got %r"
                             % (self.goal_heading_tolerance,))
        object.__setattr__(self, "waypoints", _check_waypoints(self.waypoints))

    @property
    def tick_period_s(self) -> float:
        return 1.0 / self.tick_hz

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Config":
        """Build from a mapping (ROS params, YAML); unknown keys are refused by name.

        Keys that are not fields are an error rather than ignored: a misspelt parameter
        would otherwise silently keep its default.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError("unknown behaviour-tree setting(s) %s; known settings are %s"
                             % (", ".join(unknown), ", ".join(sorted(known))))
        kwargs: Dict[str, Any] = dict(values)
        if "waypoints" in kwargs:
            kwargs["waypoints"] = _check_waypoints(kwargs["waypoints"])
        return cls(**kwargs)


def _check_waypoints(waypoints: Any) -> Tuple[Waypoint, ...]:
    try:
        points = tuple((float(p[0]), float(p[1])) for p in waypoints)
    except (TypeError, ValueError, IndexError, KeyError):
        raise ValueError("waypoints must be a sequence of (x, y) pairs, got %r" % (waypoints,))
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError("waypoints[%d] must be finite, got (%r, %r)" % (i, x, y))
    return points
