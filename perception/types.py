"""Plain data types that cross module boundaries in perception (and out to ROS and the tree).

They are numpy-free dataclasses on purpose: the behaviour tree, the ROS adapters and the
JSON writers all read them without importing torch or OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

#: The classifier's classes, in the order of its output logits.
LABELS: Tuple[str, ...] = ("masked", "unmasked", "incorrect")
#: Labels that make a person worth following and alerting on.
ALERT_LABELS: Tuple[str, ...] = ("unmasked", "incorrect")

Box = Tuple[float, float, float, float]  # x_min, y_min, x_max, y_max in pixels
Point = Tuple[float, float]


class BoxSize:
    """Width and height of ``self.box`` in pixels, for the detector's faces and the tracks.

    The face height is what the alert gate, the follow and the range estimate read."""

    box: Box

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Face(BoxSize):
    """A face found by the detector in one frame."""

    box: Box
    score: float
    #: Five landmarks (left eye, right eye, nose, left mouth corner, right mouth corner);
    #: empty when the detector did not give them.
    landmarks: Tuple[Point, ...] = ()


@dataclass(frozen=True)
class Classification:
    """The classifier's verdict on one face crop."""

    label: str
    score: float
    #: Probability of every class in LABELS order.
    probabilities: Tuple[float, ...]


@dataclass
class Track(BoxSize):
    """One person's face followed across frames, with a label smoothed over the track."""

    track_id: int
    box: Box
    label: str
    score: float
    #: Frames in which a detection confirmed this track.
    hits: int = 1
    #: Consecutive frames since the last detection confirmed it.
    frames_since_detection: int = 0
    #: Consecutive frames in which the visual tracker lost it.
    lost_frames: int = 0
    face_score: float = 0.0
    landmarks: Tuple[Point, ...] = ()
    #: Smoothed probability of every class in LABELS order (empty before classification).
    probabilities: Tuple[float, ...] = ()

    @property
    def alert_probability(self) -> float:
        """Probability that this face needs an alert: unmasked or mask below the nose.

        The two alert classes are summed: a face the classifier hesitates between
        'unmasked' and 'incorrect' on is certainly one to report.
        """
        if len(self.probabilities) != len(LABELS):
            return 1.0 if self.label in ALERT_LABELS else 0.0
        return float(sum(p for p, name in zip(self.probabilities, LABELS)
                         if name in ALERT_LABELS))

    @property
    def center(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    @property
    def needs_alert(self) -> bool:
        return self.label in ALERT_LABELS


@dataclass
class FrameResult:
    """What the pipeline made of one frame: the live tracks and how long each stage took."""

    frame_index: int
    tracks: List[Track] = field(default_factory=list)
    #: Seconds spent per stage ("detect", "track", "classify", "total").
    timings: Dict[str, float] = field(default_factory=dict)
    #: True when the detector ran on this frame (otherwise tracks come from KCF alone).
    detected: bool = False
    #: Frame size (width, height) in pixels, for normalising positions.
    frame_size: Optional[Tuple[int, int]] = None
