"""Follow a person without a mask: pick a confirmed track and servo to it.

The branch is a sequence without memory, so its guard is re-checked every tick (the
py_trees eternal-guard idiom)::

    Follow Unmasked (Sequence, memory=False)
    ├── Unmasked Confirmed?   picks a target, or keeps the one being followed
    └── Servo To Face         visual servoing; done when the person has been approached,
                              gives up when lost or out of time

The alert itself is raised by behaviors.raise_alerts for every confirmed face, followed or
not. Each track is followed once, and tracks recognised as a person alerted earlier are not
followed at all, so the robot does not keep returning to someone it has already reported.

What is being followed lives on the blackboard (``/follow/target``), not inside a
behaviour, so a safety stop that preempts the branch for a moment does not forget it, and
the viewer shows it. Giving up starts a cool-down (``/follow/cooldown_until``) during which
no follow starts and the patrol resumes.

How far the person is comes from the laser: the nearest return along the face's bearing
(a face's size says the distance only to 20-30 %, faces differ); the robot closes in to
``follow_standoff_m``. The face size (``target_face_height``) is used only when the scan
has no return there (or there is no fresh scan). Every command is also cut to the
clearance like any other (behaviors.clearance), so the robot slows down near anything in
its way and never comes nearer than the stop distance.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.blackboard_keys import read
from behaviors.clock import Clock
from behaviors.config import Config
from behaviors.control import ZERO, VisualServo
from behaviors.modes import FOLLOW_UNMASKED
from behaviors.raise_alerts import is_confirmed_unmasked
from behaviors.velocity import VelocityBehaviour
from common.geometry import focal_length_px
from perception.types import ALERT_LABELS, Box

_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowTarget:
    """The track being followed and what is known of it."""

    track_id: int
    label: str
    #: Clock time the follow started (the follow budget counts from here).
    started_at: float
    #: Stamp of the newest frame in which the track was seen (the lost timeout counts from
    #: here).
    last_seen: float
    box: Box
    frame_size: Tuple[int, int]

    def __str__(self) -> str:  # short, for the tree viewer's blackboard view
        return "track %d (%s)" % (self.track_id, self.label)


class SelectTarget(py_trees.behaviour.Behaviour):
    """Guard: SUCCESS while a follow is under way or a new one can start, else FAILURE.

    A new follow starts on the largest (closest) track whose label needs an alert, that
    the detector has confirmed in at least ``confirm_frames`` frames, that the tracker has
    not lost, in a fresh perception result, and not during the cool-down.
    """

    def __init__(self, name: str, config: Config, clock: Clock) -> None:
        super().__init__(name)
        self.config = config
        self.clock = clock
        self.blackboard = self.attach_blackboard_client(name=name)
        for key in (keys.PERCEPTION, keys.PEOPLE):
            self.blackboard.register_key(key=key, access=_READ)
        for key in (keys.FOLLOW_TARGET, keys.FOLLOW_COOLDOWN_UNTIL, keys.PATROL_RESUME_NEAREST):
            self.blackboard.register_key(key=key, access=_WRITE)

    def update(self) -> py_trees.common.Status:
        now = self.clock()
        target = read(self.blackboard, keys.FOLLOW_TARGET)
        if target is not None:
            self.feedback_message = "following track %d (%s)" % (target.track_id, target.label)
            return py_trees.common.Status.SUCCESS
        cooldown_until = read(self.blackboard, keys.FOLLOW_COOLDOWN_UNTIL, 0.0)
        if now < cooldown_until:
            self.feedback_message = "cooling down after a follow, %.0f s left" % (
                cooldown_until - now)
            return py_trees.common.Status.FAILURE
        output = read(self.blackboard, keys.PERCEPTION)
        if output is None:
            self.feedback_message = "no perception result yet"
            return py_trees.common.Status.FAILURE
        age = now - output.stamp
        if age > self.config.result_max_age_s:
            self.feedback_message = "perception result %.1f s old, too old to act on" % age
            return py_trees.common.Status.FAILURE
        people = read(self.blackboard, keys.PEOPLE)
        candidates = [t for t in output.result.tracks if is_confirmed_unmasked(t, self.config)
                      and (people is None or people.may_follow(t.track_id))]
        if not candidates:
            waiting = [t for t in output.result.tracks if t.label in ALERT_LABELS]
            self.feedback_message = (
                "no confirmed unmasked face (%d track(s), %d unconfirmed unmasked)"
                % (len(output.result.tracks), len(waiting)))
            return py_trees.common.Status.FAILURE
        best = max(candidates, key=lambda t: t.height)
        self.blackboard.set(keys.FOLLOW_TARGET, FollowTarget(
            track_id=best.track_id, label=best.label, started_at=now, last_seen=output.stamp,
            box=best.box, frame_size=output.frame_size), overwrite=True)
        # The follow takes the robot off its route: resume the patrol from the nearest point.
        self.blackboard.set(keys.PATROL_RESUME_NEAREST, True, overwrite=True)
        self.feedback_message = "new target: track %d (%s, %d hits)" % (
            best.track_id, best.label, best.hits)
        return py_trees.common.Status.SUCCESS


class ServoToFace(VelocityBehaviour):
    """Visual servoing on the target's face box; RUNNING while following.

    Steers only on a fresh sighting (no older than ``steer_max_age_s``); otherwise it
    holds still and waits, because steering on an old box overshoots. FAILURE (give up,
    start the cool-down, drop the target) when the track has been out of sight for
    ``lost_timeout_s``, the ``follow_budget_s`` is spent, or the person now wears a mask.
    """

    def __init__(self, name: str, config: Config, clock: Clock) -> None:
        super().__init__(name)
        self.config = config
        self.clock = clock
        self.servo = VisualServo(config.follow_k_linear, config.follow_k_angular,
                                 config.target_face_height, config.max_linear_speed,
                                 config.max_angular_speed)
        for key in (keys.PERCEPTION, keys.CAMERA_HFOV):
            self.blackboard.register_key(key=key, access=_READ)
        # PEOPLE is written to: the registry records whom the follow is done with.
        for key in (keys.FOLLOW_TARGET, keys.FOLLOW_COOLDOWN_UNTIL, keys.PEOPLE):
            self.blackboard.register_key(key=key, access=_WRITE)
        self._held_since: Optional[float] = None

    def update(self) -> py_trees.common.Status:
        now = self.clock()
        target = read(self.blackboard, keys.FOLLOW_TARGET)
        if target is None:
            self.command(ZERO)
            self.feedback_message = "no target"
            return py_trees.common.Status.FAILURE
        output = read(self.blackboard, keys.PERCEPTION)
        track = output.track(target.track_id) if output is not None else None
        if output is not None and (track is None or track.lost_frames > 0):
            people = read(self.blackboard, keys.PEOPLE)
            successor = (people.successor(output.result.tracks, target.track_id)
                         if people is not None else None)
            if successor is not None:
                # Raise Alerts took it for the person followed: the tracker lost the face
                # and found it again under a new id. Without this the robot waited for the
                # old id until it gave up.
                _log.info("follow goes on with track %d, the same person as track %d",
                          successor.track_id, target.track_id)
                self._mark_followed(target.track_id)
                target = dataclasses.replace(target, track_id=successor.track_id)
                self.blackboard.set(keys.FOLLOW_TARGET, target, overwrite=True)
                track = successor
        if track is not None and track.lost_frames == 0 and output.stamp >= target.last_seen \
                and track.frames_since_detection <= self.config.steer_max_frames_undetected:
            if track.label not in ALERT_LABELS:
                return self._give_up(now, "track %d now wears a mask" % target.track_id)
            target = dataclasses.replace(target, last_seen=output.stamp, box=track.box,
                                         label=track.label, frame_size=output.frame_size)
            self.blackboard.set(keys.FOLLOW_TARGET, target, overwrite=True)
        unseen = now - target.last_seen
        if unseen > self.config.lost_timeout_s:
            return self._give_up(now, "lost track %d for %.1f s" % (target.track_id, unseen))
        if now - target.started_at > self.config.follow_budget_s:
            return self._give_up(now, "follow budget of %.0f s spent on track %d"
                                 % (self.config.follow_budget_s, target.track_id))
        if unseen > self.config.steer_max_age_s:
            # The box describes where the face was before the robot last turned: steering on
            # it again overshoots. Hold still until a fresh sighting.
            self.command(ZERO)
            self.feedback_message = "track %d out of sight for %.1f s, waiting" % (
                target.track_id, unseen)
            return py_trees.common.Status.RUNNING
        ratio = self._range_ratio(target)
        if self._approached(target, ratio):
            if self._held_since is None:
                self._held_since = now
            elif now - self._held_since >= self.config.follow_hold_s:
                return self._give_up(now, "approached track %d" % target.track_id)
        else:
            self._held_since = None
        twist = self.command(self.servo.command(target.box, target.frame_size, ratio))
        self.feedback_message = "following track %d: %.2f m/s, %.2f rad/s, %s%s" % (
            target.track_id, twist.linear_x, twist.angular_z,
            "person %.2f m away by the laser" % (ratio * self.config.follow_standoff_m)
            if ratio is not None else "distance by face size",
            " (%s)" % self.limited if self.limited else "")
        return py_trees.common.Status.RUNNING

    def _range_ratio(self, target: FollowTarget) -> Optional[float]:
        """The laser's distance to the person over ``follow_standoff_m``, or None when the
        scan has no return towards the face (or there is no fresh scan)."""
        clearance = read(self.blackboard, keys.SAFETY_CLEARANCE)
        if clearance is None:
            return None
        width = target.frame_size[0]
        fov = read(self.blackboard, keys.CAMERA_HFOV)
        fx = focal_length_px(width, fov.value if fov is not None else self.config.camera_hfov)
        centre = (target.box[0] + target.box[2]) / 2.0
        bearing = math.atan2(width / 2.0 - centre, fx)
        # The body below a face is wider than the face: look twice its width, >= 2 degrees.
        half_window = max(math.radians(2.0),
                          math.atan2(target.box[2] - target.box[0], fx))
        measured = clearance.distance_towards(bearing, half_window)
        if not math.isfinite(measured):
            return None
        return measured / self.config.follow_standoff_m

    def _mark_followed(self, track_id: int) -> None:
        people = read(self.blackboard, keys.PEOPLE)
        if people is not None:
            people.followed(track_id)

    def _approached(self, target: FollowTarget, range_ratio: Optional[float]) -> bool:
        """The person is (nearly) at the standoff distance, by the laser or else by the face
        size, and the face is near the image centre."""
        width, height = target.frame_size
        face = (target.box[3] - target.box[1]) / float(height)
        offset = abs((target.box[0] + target.box[2]) / 2.0 - width / 2.0) / (width / 2.0)
        close = (range_ratio <= 1.0 / 0.85 if range_ratio is not None
                 else face >= 0.85 * self.config.target_face_height)
        return close and offset < 0.25

    def _give_up(self, now: float, why: str) -> py_trees.common.Status:
        self.command(ZERO)
        self._held_since = None
        self._mark_followed(target_id(self.blackboard))
        self.blackboard.set(keys.FOLLOW_TARGET, None, overwrite=True)
        self.blackboard.set(keys.FOLLOW_COOLDOWN_UNTIL, now + self.config.cooldown_s,
                            overwrite=True)
        self.feedback_message = "gave up: %s; cooling down %.0f s" % (why, self.config.cooldown_s)
        _log.info("follow ended: %s", why)
        return py_trees.common.Status.FAILURE


def target_id(client) -> int:
    target = read(client, keys.FOLLOW_TARGET)
    return target.track_id if target is not None else -1


def create_follow_branch(config: Config, clock: Clock) -> py_trees.behaviour.Behaviour:
    return py_trees.composites.Sequence(name=FOLLOW_UNMASKED, memory=False, children=[
        SelectTarget("Unmasked Confirmed?", config, clock),
        ServoToFace("Servo To Face", config, clock),
    ])
