"""Following faces between detections: one OpenCV KCF tracker per face, stable ids.

MTCNN costs tens of milliseconds a frame; a KCF update costs about one. So the pipeline
detects every few frames and lets KCF carry each face in between. This module owns what
ties the two together:

- ids: every face gets an integer id that stays with it while it is seen, so the behaviour
  tree can follow *one* person;
- association: fresh detections are matched to existing tracks by box overlap (IoU), with
  the Hungarian method (scipy) when available, else greedily by best overlap;
- loss: a track whose KCF update fails, or whose box leaves the image, counts lost frames;
  one that the detector no longer confirms counts missed detections; either limit drops it;
- a label smoothed over the track: an exponential average of the classifier's class
  probabilities plus hysteresis, so that one misclassified frame never flips a person
  from "masked" to "unmasked" (and never raises a false alert).

The tracker works in whatever pixel coordinates the frames it is given have; it knows
nothing about the detector or the classifier (the pipeline wires them).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from perception.types import LABELS, Box, Classification, Face, Point, Track

#: Label of a track that has not been classified yet (never an alert label).
UNKNOWN = "unknown"


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when either is empty."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


#: A detection of similar size can continue a track when its centre is within this many
#: face widths of the track's (predicted) centre, and never less than MIN_GATE_PX: small
#: faces seen from a turning robot move more than their own width between frames.
GATE_WIDTHS = 2.0
MIN_GATE_PX = 30.0


def similarity(track_box: Box, detection_box: Box) -> float:
    """How likely a detection is the tracked face: IoU, or closeness of the centres.

    IoU alone fails for small faces seen from a moving robot: a 30 px face that moved 20 px
    between two processed frames no longer overlaps its old box, and would start a new
    track (and a new person). So a detection of similar size whose centre lies near the
    track's centre also counts, scored 1 at the same centre down to 0 at
    GATE_WIDTHS widths away.
    """
    overlap = iou(track_box, detection_box)
    tw, th = track_box[2] - track_box[0], track_box[3] - track_box[1]
    dw, dh = detection_box[2] - detection_box[0], detection_box[3] - detection_box[1]
    size = max(tw, th)
    if size <= 0 or dw <= 0 or not 0.5 <= max(dw, dh) / size <= 2.0:
        return overlap
    size = max(size, MIN_GATE_PX)
    dx = (track_box[0] + track_box[2] - detection_box[0] - detection_box[2]) / 2.0
    dy = (track_box[1] + track_box[3] - detection_box[1] - detection_box[3]) / 2.0
    closeness = 1.0 - (dx * dx + dy * dy) ** 0.5 / (GATE_WIDTHS * size)
    return max(overlap, closeness)


def match_boxes(track_boxes: Sequence[Box], detection_boxes: Sequence[Box],
                min_iou: float) -> List[Tuple[int, int]]:
    """Pairs (track index, detection index) maximising total similarity (IoU, or centre
    closeness for similar sizes, see ``similarity``), each pair >= ``min_iou``.

    Hungarian assignment (scipy.optimize.linear_sum_assignment) when scipy is installed;
    otherwise greedy by descending IoU, which gives the same answer when faces do not
    overlap each other (the usual case).
    """
    if not track_boxes or not detection_boxes:
        return []
    overlaps = np.array([[similarity(t, d) for d in detection_boxes] for t in track_boxes])
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # pragma: no cover - scipy ships with scikit-image here
        linear_sum_assignment = None
    pairs = []
    if linear_sum_assignment is not None:
        rows, cols = linear_sum_assignment(-overlaps)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols)]
    else:  # pragma: no cover
        order = np.dstack(np.unravel_index(np.argsort(-overlaps, axis=None), overlaps.shape))[0]
        used_t, used_d = set(), set()
        for r, c in order:
            if r not in used_t and c not in used_d:
                pairs.append((int(r), int(c)))
                used_t.add(r)
                used_d.add(c)
    return [(r, c) for r, c in pairs if overlaps[r, c] >= min_iou]


def visible_fraction(box: Box, width: int, height: int) -> float:
    """Share of ``box``'s area that lies inside a width x height image."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    if area <= 0:
        return 0.0
    ix = min(box[2], width) - max(box[0], 0.0)
    iy = min(box[3], height) - max(box[1], 0.0)
    return float(max(0.0, ix) * max(0.0, iy) / area)


def create_kcf():
    """A fresh OpenCV KCF tracker, or a RuntimeError that says how to get one back."""
    import cv2

    if not hasattr(cv2, "TrackerKCF_create"):
        raise RuntimeError(
            "this OpenCV (%s) has no cv2.TrackerKCF_create: a plain opencv-python(-headless) "
            "wheel overwrote opencv-contrib-python-headless; reinstall it with "
            "`.venv/bin/pip install --force-reinstall --no-deps "
            "opencv-contrib-python-headless==4.11.0.86`" % cv2.__version__)
    return cv2.TrackerKCF_create()


def _kcf_rect(box: Box, width: int, height: int) -> Optional[Tuple[int, int, int, int]]:
    """The (x, y, w, h) integer rectangle KCF wants, clipped to the image; None if tiny."""
    x1, y1 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x2, y2 = min(width, int(round(box[2]))), min(height, int(round(box[3])))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


#: KCF follows a region up to this much larger than the face on each side (fraction of the
#: face size): a small face alone has too little texture, and KCF drops it as soon as the
#: robot turns; with the hair, neck and shoulders around it, it holds on.
KCF_PAD = 0.5
#: ... but only until the region is this many pixels: a bigger face has texture enough,
#: and KCF's cost grows with the region's area (measured at 320x240: ~3 ms per update up
#: to 48 px, 7 ms at 64 px, 13 ms at 80 px). Padding every face by 0.5 took
#: bench/perception.py from ratio 3.8 to 3.0; growing regions only to 48 px kept 3.8.
#: A 32 px face (the smallest KCF follows) is padded by 0.25.
KCF_MIN_REGION_PX = 48.0


#: Faces shorter than this (pixels) are not given to KCF: on a patch that small it reports
#: success while sticking to the background. They are predicted from their velocity and
#: re-detected on the next frame instead.
KCF_MIN_FACE_PX = 32


def kcf_pad(box: Box) -> float:
    """Padding (fraction per side) that grows the face box to KCF_MIN_REGION_PX, <= KCF_PAD."""
    size = max(box[2] - box[0], box[3] - box[1], 1.0)
    return min(KCF_PAD, max(0.0, (KCF_MIN_REGION_PX / size - 1.0) / 2.0))


def _padded(box: Box, pad: float) -> Box:
    w, h = box[2] - box[0], box[3] - box[1]
    return (box[0] - pad * w, box[1] - pad * h, box[2] + pad * w, box[3] + pad * h)


def _move_points(points: Tuple[Point, ...], old: Box, new: Box) -> Tuple[Point, ...]:
    """Carry landmarks along when KCF moves a box (same place relative to the box)."""
    ow, oh = old[2] - old[0], old[3] - old[1]
    if not points or ow <= 0 or oh <= 0:
        return points
    sx, sy = (new[2] - new[0]) / ow, (new[3] - new[1]) / oh
    return tuple((new[0] + (x - old[0]) * sx, new[1] + (y - old[1]) * sy) for x, y in points)


class _TrackState:
    """A Track plus what only the tracker needs: the KCF object and the label's evidence."""

    def __init__(self, track: Track, kcf) -> None:
        self.track = track
        self.kcf = kcf
        #: face box minus the KCF rectangle it was started with (x1, y1, x2, y2 offsets):
        #: KCF keeps its rectangle's size, so the face box is the rectangle plus these.
        self.kcf_offsets = (0.0, 0.0, 0.0, 0.0)
        #: image motion of the box centre, pixels per frame (smoothed), to predict where a
        #: face went when KCF loses it (the robot is turning, the person walking).
        self.velocity = (0.0, 0.0)
        self.missed_detections = 0
        #: the camera turned so far since the last frame that KCF's search window, which
        #: stays where the face was, would not hold it: wait for a detection instead.
        self.outrun = False
        self.probabilities: Optional[np.ndarray] = None
        self.label_index = -1
        self.disagreements = 0
        self.classifications = 0


class FaceTracker:
    """KCF per face, IoU re-association, loss handling and a smoothed label per track.

    One round per frame, in this order::

        tracker.turn(delta_yaw, focal_px, width)  # when the camera's turn is known
        lost = tracker.update(frame)            # frames without detection: KCF moves boxes
        ids = tracker.observe(frame, faces)     # frames with detection: match, create, drop
        tracker.add_classifications({id: classification, ...})

    Parameters:
        iou_threshold: least IoU between a track's box and a detection to call them the same
            face. Faces move a few pixels between detections, so boxes overlap a lot.
        max_lost_frames: a track whose KCF update failed (or whose box left the image) on
            more than this many consecutive frames is dropped.
        max_missed_detections: a track that more than this many consecutive detection rounds
            did not confirm is dropped (KCF may happily follow a wall once the face turns).
        smoothing: weight of a new classification in the exponential average of class
            probabilities (1.0 = no smoothing).
        switch_after: how many consecutive classifications must favour a new label before
            the track's label changes. 2 or more means a single wrong frame never flips it.
        min_visible: share of a box that must stay inside the image; below it the face is
            leaving the picture and KCF's answer is counted as lost.
    """

    def __init__(self, iou_threshold: float = 0.3, max_lost_frames: int = 10,
                 max_missed_detections: int = 3, smoothing: float = 0.5,
                 switch_after: int = 2, min_visible: float = 0.5) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be in (0, 1], got %r" % (iou_threshold,))
        if int(max_lost_frames) != max_lost_frames or max_lost_frames < 0:
            raise ValueError("max_lost_frames must be an integer >= 0, got %r"
                             % (max_lost_frames,))
        if int(max_missed_detections) != max_missed_detections or max_missed_detections < 0:
            raise ValueError("max_missed_detections must be an integer >= 0, got %r"
                             % (max_missed_detections,))
        if not 0.0 < smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1], got %r" % (smoothing,))
        if int(switch_after) != switch_after or switch_after < 1:
            raise ValueError("switch_after must be an integer >= 1, got %r" % (switch_after,))
        if not 0.0 < min_visible <= 1.0:
            raise ValueError("min_visible must be in (0, 1], got %r" % (min_visible,))
        create_kcf()  # fail here, not on the first face, when OpenCV lacks KCF
        self.iou_threshold = float(iou_threshold)
        self.max_lost_frames = int(max_lost_frames)
        self.max_missed_detections = int(max_missed_detections)
        self.smoothing = float(smoothing)
        self.switch_after = int(switch_after)
        self.min_visible = float(min_visible)
        self._states: List[_TrackState] = []
        self._next_id = 1

    # -- reading -------------------------------------------------------------------------
    @property
    def tracks(self) -> List[Track]:
        """Copies of the live tracks (lost ones included: see ``Track.lost_frames``)."""
        return [dataclasses.replace(s.track) for s in self._states]

    def __len__(self) -> int:
        return len(self._states)

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so an old id never comes back)."""
        self._states = []

    # -- the frame round -----------------------------------------------------------------
    def turn(self, delta_yaw: float, focal_px: float, image_width: int) -> None:
        """The camera turned by ``delta_yaw`` radians (left positive) since the last frame:
        move every box to where a face that stood still would appear now.

        Call it before ``update``. A robot turning at 1 rad/s moves every face about 50 px
        between two frames the perception worker processes 0.1 s apart (fx 530 px): past the
        gate that ties a small face's detection to its track, so the person got a new id,
        and the alerting a "new" person, on every turn. With the turn taken out, KCF and the
        velocity see only the person's own motion. A track moved by more than half its
        width is past what KCF's search window, still at the old place, holds: it waits for
        the next detection instead of KCF.
        """
        if not focal_px > 0:
            raise ValueError("focal_px must be > 0, got %r" % (focal_px,))
        centre = image_width / 2.0
        for state in self._states:
            box = state.track.box
            u = (box[0] + box[2]) / 2.0
            bearing = np.clip(np.arctan2(centre - u, focal_px) - delta_yaw, -1.4, 1.4)
            du = float(centre - focal_px * np.tan(bearing) - u)
            moved = (box[0] + du, box[1], box[2] + du, box[3])
            state.track.landmarks = tuple((x + du, y) for x, y in state.track.landmarks)
            state.track.box = moved
            state.outrun = abs(du) > 0.5 * (box[2] - box[0])

    def update(self, frame: np.ndarray) -> List[int]:
        """Move every track with KCF on ``frame``; returns the ids lost on this frame, and
        those too small for KCF (predicted from their velocity): both need a detection.

        A lost track keeps its last box and is reported with ``lost_frames > 0`` until a
        detection re-associates it or ``max_lost_frames`` drops it.
        """
        height, width = frame.shape[:2]
        lost = []
        for state in self._states:
            track = state.track
            track.frames_since_detection += 1
            box = track.box
            if box[3] - box[1] < KCF_MIN_FACE_PX or state.outrun:
                # Too small for KCF to hold, or moved past KCF's search window by a turn:
                # move it by its velocity and ask for a detection.
                state.outrun = False
                vx, vy = state.velocity
                track.box = (box[0] + vx, box[1] + vy, box[2] + vx, box[3] + vy)
                lost.append(track.track_id)
                continue
            ok, rect = state.kcf.update(frame)
            if ok:
                x, y, w, h = (float(v) for v in rect)
                o = state.kcf_offsets
                box = (x + o[0], y + o[1], x + w + o[2], y + h + o[3])
                ok = w > 0 and h > 0 and visible_fraction(box, width, height) >= self.min_visible
            if ok:
                _note_motion(state, track.box, box)
                track.landmarks = _move_points(track.landmarks, track.box, box)
                track.box = box
                track.lost_frames = 0
            else:
                vx, vy = state.velocity
                track.box = (box[0] + vx, box[1] + vy, box[2] + vx, box[3] + vy)
                track.lost_frames += 1
                lost.append(track.track_id)
        self._states = [s for s in self._states if s.track.lost_frames <= self.max_lost_frames]
        return lost

    def observe(self, frame: np.ndarray, faces: Sequence[Face]) -> List[int]:
        """Fold one frame's detections in; returns ids of new and re-detected tracks.

        Matched tracks take the detector's box (tighter than KCF's) and restart KCF from it;
        unmatched detections start new tracks; unmatched tracks count a missed detection.
        The returned ids are the ones worth classifying: their box is a fresh detector box,
        the framing the classifier was trained on.
        """
        height, width = frame.shape[:2]
        pairs = match_boxes([s.track.box for s in self._states], [f.box for f in faces],
                            self.iou_threshold)
        matched_tracks = {r for r, _ in pairs}
        matched_faces = {c for _, c in pairs}
        fresh = []
        for r, c in pairs:
            state, face = self._states[r], faces[c]
            started = self._start_kcf(frame, face.box, width, height)
            if started is None:
                continue
            state.kcf, state.kcf_offsets = started
            track = state.track
            _correct_motion(state, track.box, face.box)
            track.box, track.face_score, track.landmarks = face.box, face.score, face.landmarks
            track.hits += 1
            track.frames_since_detection = 0
            track.lost_frames = 0
            state.missed_detections = 0
            fresh.append(track.track_id)
        for i, state in enumerate(self._states):
            if i not in matched_tracks:
                state.missed_detections += 1
        self._states = [s for s in self._states
                        if s.missed_detections <= self.max_missed_detections]
        for c, face in enumerate(faces):
            if c in matched_faces:
                continue
            started = self._start_kcf(frame, face.box, width, height)
            if started is None:
                continue
            track = Track(track_id=self._next_id, box=face.box, label=UNKNOWN, score=0.0,
                          face_score=face.score, landmarks=face.landmarks)
            self._next_id += 1
            state = _TrackState(track, started[0])
            state.kcf_offsets = started[1]
            self._states.append(state)
            fresh.append(track.track_id)
        return fresh

    def add_classifications(self, results: Dict[int, Classification]) -> None:
        """Fold classifier verdicts (by track id) into each track's smoothed label."""
        by_id = {s.track.track_id: s for s in self._states}
        for track_id, result in results.items():
            state = by_id.get(track_id)
            if state is None:
                continue
            probabilities = np.asarray(result.probabilities, dtype=np.float64)
            if probabilities.shape != (len(LABELS),):
                raise ValueError("classification for track %d has %d probabilities, expected %d"
                                 % (track_id, probabilities.size, len(LABELS)))
            self._smooth(state, probabilities)

    # -- internals -----------------------------------------------------------------------
    def _smooth(self, state: _TrackState, probabilities: np.ndarray) -> None:
        state.classifications += 1
        if state.probabilities is None:
            state.probabilities = probabilities
            state.label_index = int(np.argmax(probabilities))
        else:
            state.probabilities = ((1.0 - self.smoothing) * state.probabilities
                                   + self.smoothing * probabilities)
            best = int(np.argmax(state.probabilities))
            if best == state.label_index:
                state.disagreements = 0
            else:
                state.disagreements += 1
                if state.disagreements >= self.switch_after:
                    state.label_index = best
                    state.disagreements = 0
        state.track.label = LABELS[state.label_index]
        state.track.score = float(state.probabilities[state.label_index])
        state.track.probabilities = tuple(float(p) for p in state.probabilities)

    @staticmethod
    def _start_kcf(frame: np.ndarray, box: Box, width: int, height: int):
        """A KCF started on the padded region around ``box``, and the offsets from its
        rectangle back to the face box; None when the face is too small to track."""
        if _kcf_rect(box, width, height) is None:
            return None
        rect = _kcf_rect(_padded(box, kcf_pad(box)), width, height)
        kcf = create_kcf()
        kcf.init(frame, rect)
        x, y, w, h = rect
        return kcf, (box[0] - x, box[1] - y, box[2] - (x + w), box[3] - (y + h))


def _note_motion(state: _TrackState, old: Box, new: Box) -> None:
    """KCF moved the box by one frame: blend that into the velocity (pixels per frame)."""
    dx = (new[0] + new[2] - old[0] - old[2]) / 2.0
    dy = (new[1] + new[3] - old[1] - old[3]) / 2.0
    vx, vy = state.velocity
    state.velocity = (0.5 * vx + 0.5 * dx, 0.5 * vy + 0.5 * dy)


def _correct_motion(state: _TrackState, predicted: Box, detected: Box) -> None:
    """A detection landed ``residual`` away from where the track was predicted to be:
    correct the velocity by part of it (an alpha-beta filter on the box centre). Small
    faces far away make KCF fail every frame; then this prediction is all the tracker has."""
    rx = (detected[0] + detected[2] - predicted[0] - predicted[2]) / 2.0
    ry = (detected[1] + detected[3] - predicted[1] - predicted[3]) / 2.0
    frames = max(1, state.track.frames_since_detection)
    vx, vy = state.velocity
    state.velocity = (vx + 0.5 * rx / frames, vy + 0.5 * ry / frames)
