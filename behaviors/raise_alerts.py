"""Raise one alert per person without a mask, for every such face the robot sees.

Alerting is its own branch of the parallel root, not a step of the follow: the robot can
follow one person at a time, but in a crowd several people without a mask pass together,
and each of them must reach the staff. A face is alerted once its track is confirmed
(``confirm_frames`` detections) in a fresh result; the alert goes to an injected sink
(``alerts.AlertWriter`` records it, then the node publishes it). Each alert places the
person on the map (behaviors.people); a later track of a person already alerted there is
recognised (same place, or same clothes and near enough), neither alerted again nor
chased again, and remembered as a further sighting of that person.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.alerts import AlertEvent
from behaviors.blackboard_keys import read
from behaviors.clock import Clock
from behaviors.config import Config
from behaviors.people import PersonRegistry, locate_face, torso_signature
from perception.privacy import bystander_boxes
from perception.types import ALERT_LABELS, LABELS, Track

#: Receives each alert exactly once per person; must return quickly (see alerts.AlertWriter).
AlertSink = Callable[[AlertEvent], None]
_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE
_log = logging.getLogger(__name__)


def is_confirmed_unmasked(track: Track, config: Config) -> bool:
    """A face to alert on and to follow: in view now, confirmed by ``confirm_frames``
    detections, at least ``alert_min_face_px`` tall, and confidently unmasked or masked
    below the nose."""
    return (track.label in ALERT_LABELS and track.hits >= config.confirm_frames
            and track.lost_frames == 0
            and track.height >= config.alert_min_face_px
            and track.alert_probability >= config.alert_min_probability)


class RaiseAlerts(py_trees.behaviour.Behaviour):
    """Every tick: alert on each newly confirmed unmasked/incorrect face. Always SUCCESS.

    Who each face is comes from the ``PersonRegistry`` on ``/people``, created here in
    ``initialise()``; this behaviour tells it what happened (an alert, a recognition) and
    the follow branch asks it too. A sink that raises is retried on the next tick.
    """

    def __init__(self, name: str, config: Config, clock: Clock,
                 alert_sink: Optional[AlertSink]) -> None:
        super().__init__(name)
        if alert_sink is not None and not callable(alert_sink):
            raise ValueError("alert_sink must be callable (AlertEvent -> None), got %r"
                             % (alert_sink,))
        self.config = config
        self.clock = clock
        self.alert_sink = alert_sink
        self.blackboard = self.attach_blackboard_client(name=name)
        for key in (keys.PERCEPTION, keys.ODOMETRY, keys.CAMERA_HFOV):
            self.blackboard.register_key(key=key, access=_READ)
        self.blackboard.register_key(key=keys.PEOPLE, access=_WRITE)
        self._last_seq = -1

    def initialise(self) -> None:
        if read(self.blackboard, keys.PEOPLE) is None:
            self.blackboard.set(keys.PEOPLE, PersonRegistry.from_config(self.config))

    def update(self) -> py_trees.common.Status:
        output = read(self.blackboard, keys.PERCEPTION)
        if output is None or output.frame_seq == self._last_seq:
            return py_trees.common.Status.SUCCESS
        now = self.clock()
        if now - output.stamp > self.config.result_max_age_s:
            self.feedback_message = "perception result too old to alert on"
            return py_trees.common.Status.SUCCESS
        self._last_seq = output.frame_seq
        people: PersonRegistry = read(self.blackboard, keys.PEOPLE)
        odometry = read(self.blackboard, keys.ODOMETRY)
        pose = odometry.value if odometry is not None else None
        fov = read(self.blackboard, keys.CAMERA_HFOV)
        hfov = fov.value if fov is not None else self.config.camera_hfov
        # Only a face the detector confirmed in this frame is evidence of a second person:
        # a box KCF still carries (or predicts) may be the stale copy of a face that the
        # detector just found again under a new id.
        visible = {t.track_id for t in output.result.tracks
                   if t.lost_frames == 0 and t.frames_since_detection == 0}
        for track in output.result.tracks:
            if people.is_known(track.track_id):
                people.saw(track, output.stamp)
                continue
            if not is_confirmed_unmasked(track, self.config):
                continue
            earlier = people.continuation(track, output.stamp, visible)
            if earlier is not None:
                self.feedback_message = "track %d continues track %d, already alerted" % (
                    track.track_id, earlier)
                continue
            where = None
            signature = torso_signature(output.frame_bgr, track.box)
            if pose is not None:
                where = locate_face(track.box, output.frame_size, pose, hfov,
                                    self.config.face_height_m)
                same = people.recognise(track, where, now, signature)
                if same is not None:
                    _log.info("track %d at (%.1f, %.1f), face %.0f px, is the person alerted "
                              "as track %d (clothes distance %.2f, sighting %s)",
                              track.track_id, where[0], where[1], track.height,
                              same.person, same.clothes, "kept" if same.kept else "not kept")
                    self.feedback_message = "track %d is the person alerted as track %d" % (
                        track.track_id, same.person)
                    continue
                _log.info("alert for track %d placed at (%.1f, %.1f), face %.0f px; %s",
                          track.track_id, where[0], where[1], track.height,
                          people.describe_nearest(where, now, signature))
            # why the classifier was sure enough: the smoothed class probabilities
            _log.info("alert for track %d after %d detections: p(%s) = (%s)",
                      track.track_id, track.hits, ", ".join(LABELS),
                      ", ".join("%.2f" % p for p in track.probabilities))
            # Everyone else in the picture who raised no alert is a bystander: the store
            # blurs their faces in the frame snapshot.
            tracks = output.result.tracks
            bystanders = bystander_boxes(tracks, [track.track_id] + [
                t.track_id for t in tracks if people.is_known(t.track_id)])
            event = AlertEvent(stamp=now, track=dataclasses.replace(track),
                               frame_bgr=output.frame_bgr, frame_stamp=output.stamp,
                               robot_pose=pose, other_boxes=bystanders)
            if self.alert_sink is None:
                _log.warning("no alert sink: alert for track %d (%s) is not stored",
                             track.track_id, track.label)
            else:
                try:
                    self.alert_sink(event)
                except Exception as exc:
                    _log.exception("alert sink failed for track %d", track.track_id)
                    self.feedback_message = "alert for track %d failed (%s), will retry" % (
                        track.track_id, exc)
                    self._last_seq = -1  # look at this result again next tick
                    continue
            people.alerted(track, output.stamp, where, now, signature)
            self.feedback_message = "alert raised for track %d (%s %.2f)" % (
                track.track_id, track.label, track.score)
        return py_trees.common.Status.SUCCESS
