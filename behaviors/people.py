"""Who is who: one ``PersonRegistry`` decides which person a track is, so one person raises
one alert and is followed once.

A visual track ends when a person leaves the image; on the next patrol lap the same
person gets a new track id. Alerts and follows are per track, so without a registry a
person would be alerted on every encounter. The registry hands out person ids for tracks
(a person's id is the track id of their alert), and says who has been alerted and who
followed; behaviours ask it and never keep their own lists. Like norfair's
re-identification, which is a part of its tracker, it is plain Python below the tree: no
py_trees, no ROS. It knows a track is an alerted person in two ways:

- the tracker lost the face and found it again moments later at the same spot in the
  image under a new id (``continuity_s``);
- the face lands where an alerted person was seen, or they wear the same clothes and
  could have walked there since (``PersonMemory``, below).

Each alert remembers two things:

- where the person was: placed on the odometry map from one camera frame (bearing from the
  box centre, range from the face's pixel height and a typical face height);
- what they wore: colour histograms of the torso below the face (``torso_signature``).

A new face is the same person when it lands within ``radius_m`` of a remembered one in
clothes that do not clearly differ, or when the clothes match and the person could have
walked there since (``walk_speed``).
Each later track recognised as an alerted person, whose clothes match the sighting it was
recognised by, adds a sighting (place, time, clothes as seen from there): a person walks
on, and a torso seen from further away, in other light, drifts from the histogram taken at
the alert, so the memory must keep up with them in steps it can check.
Two people in the same clothes who pass the same spot will be taken for one (a known
limit, documented in the README); no face recognition is used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from behaviors.control import Pose2D
from common.geometry import focal_length_px
from perception.types import ALERT_LABELS, Box, Track

Point = Tuple[float, float]


def locate_face(box: Sequence[float], frame_size: Tuple[int, int], robot: Pose2D,
                horizontal_fov: float, face_height_m: float) -> Point:
    """Estimate the odometry-frame position of a face from one image box.

    Pinhole camera at the robot's origin looking along +x: bearing from the box centre,
    range from the box height. Errors of 20-30 % in range are normal (faces differ in
    size); the memory's radius absorbs them.
    """
    width, height = frame_size
    fx = focal_length_px(width, horizontal_fov)
    u = (box[0] + box[2]) / 2.0
    box_h = max(1.0, box[3] - box[1])
    bearing = math.atan2(width / 2.0 - u, fx)
    rng = fx * face_height_m / box_h / max(math.cos(bearing), 0.2)
    heading = robot.yaw + bearing
    return (robot.x + rng * math.cos(heading), robot.y + rng * math.sin(heading))


#: Two torsos wear the same clothes below this Bhattacharyya distance. Measured on the
#: alert snapshots of the scenario loop (56 alerts, 5 passes, each actor seen in several
#: runs, from other places and in other light): the same person at most 0.14 apart, two
#: people at least 0.37 (a pink and a red shirt side by side).
CLOTHES_MATCH_DISTANCE = 0.3

#: Two torsos wear clearly other clothes at or above this distance: then a face that lands
#: where an alerted person was seen is not taken for them by place alone. In the crowd,
#: people walk lanes 0.4 m apart, and without it a stranger passing an alerted person's
#: spot was taken for them and never alerted. Measured on every recognition of two crowd
#: and one lobby run (each attributed to its actor from the simulator's trace): the same
#: person at most 0.27 apart (46 recognitions), two people at least 0.47 (16).
CLOTHES_DIFFER_DISTANCE = 0.6

#: Share of the torso's width that each side view covers (see ``torso_signature``).
_SIDE_SHARE = 0.6
#: Below this saturation (of 255) a pixel has no reliable hue: grey, black and white.
_GREY_SATURATION = 50


def _smooth(hist: Any, axis: int, wrap: bool) -> Any:
    """Spread each count to its neighbours along ``axis`` (hue wraps: red sits at both 0
    and 180), so a slight change of light does not move a colour into a disjoint bin."""
    import numpy as np

    if wrap:
        return 0.5 * hist + 0.25 * (np.roll(hist, 1, axis=axis) + np.roll(hist, -1, axis=axis))
    pad = [(0, 0)] * hist.ndim
    pad[axis] = (1, 1)
    padded = np.pad(hist, pad, mode="edge")
    body, before, after = ([slice(None)] * hist.ndim for _ in range(3))
    body[axis], before[axis], after[axis] = slice(1, -1), slice(None, -2), slice(2, None)
    return (0.5 * padded[tuple(body)]
            + 0.25 * (padded[tuple(before)] + padded[tuple(after)]))


def _colour_histogram(hsv: Any) -> Optional[Any]:
    """Normalised histogram of a torso patch: 12 hues x 6 saturations for coloured pixels,
    and 6 brightness levels for grey ones (black, grey and white share every hue, so by
    hue alone a black jacket, a grey wall and a white shirt look the same); None for an
    empty patch."""
    import cv2
    import numpy as np

    coloured = (hsv[..., 1] >= _GREY_SATURATION).astype(np.uint8)
    colours = cv2.calcHist([hsv], [0, 1], coloured, [12, 6], [0, 180, _GREY_SATURATION, 256])
    greys = cv2.calcHist([hsv], [2], 1 - coloured, [6], [0, 256])
    hist = np.concatenate([_smooth(_smooth(colours, 0, True), 1, False).ravel(),
                           _smooth(greys, 0, False).ravel()]).astype(np.float32)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def torso_signature(frame_bgr: Any, box: Sequence[float]) -> Optional[Tuple[Any, ...]]:
    """The clothes below a face: colour histograms (``_colour_histogram``) of the whole
    torso and of its left and right sides (each ``_SIDE_SHARE`` of the width), or None
    when the torso is out of the picture (a close-up) or too small to say anything.

    The sides are there for crowds: someone nearer the camera often covers one side of a
    torso (in the loop, a red shirt in front of a pink one pushed the pink one's whole-torso
    histogram 0.37 away from her own); the uncovered side still shows the clothes."""
    import cv2
    import numpy as np

    height, width = frame_bgr.shape[:2]
    w, h = box[2] - box[0], box[3] - box[1]
    cx = (box[0] + box[2]) / 2.0
    x1, x2 = int(max(0, cx - 0.8 * w)), int(min(width, cx + 0.8 * w))
    y1, y2 = int(max(0, box[3] + 0.5 * h)), int(min(height, box[3] + 2.0 * h))
    if x2 - x1 < 6 or y2 - y1 < 6:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(frame_bgr[y1:y2, x1:x2]), cv2.COLOR_BGR2HSV)
    side = max(1, int(round(_SIDE_SHARE * (x2 - x1))))
    parts = [_colour_histogram(patch)
             for patch in (hsv, hsv[:, :side], hsv[:, -side:])]
    if parts[0] is None:
        return None
    return tuple(p for p in parts if p is not None)


def clothes_distance(a: Optional[Sequence[Any]], b: Optional[Sequence[Any]]) -> float:
    """How different two torsos look: the smallest Bhattacharyya distance (0 same, 1
    disjoint) between any view of one and any view of the other (``torso_signature``), so
    a torso half hidden by a passer-by still matches its own clothes; NaN when either is
    missing."""
    import cv2

    if a is None or b is None:
        return math.nan
    return min(float(cv2.compareHist(x, y, cv2.HISTCMP_BHATTACHARYYA)) for x in a for y in b)


def same_clothes(a: Any, b: Any, max_distance: float = CLOTHES_MATCH_DISTANCE) -> bool:
    """``clothes_distance`` below ``max_distance``; False when either is unknown."""
    return clothes_distance(a, b) < max_distance  # NaN compares False


@dataclass(frozen=True)
class Sighting:
    """Where and when an alerted person was seen, and their clothes as seen from there.

    ``track_id`` and ``label`` are those of the person's alert, for every sighting of them.
    """
    position: Point
    stamp: float
    track_id: int
    label: str
    signature: Any = None


class PersonMemory:
    """Sightings of alerted people; answers "is this face someone we alerted?".

    A person is forgotten ``memory_s`` after their last sighting. Each person keeps the
    sighting of their alert and at most ``max_sightings - 1`` later ones (the newest), so
    a person who stays in view for hours does not grow the memory without bound.
    """

    def __init__(self, radius_m: float = 1.2, memory_s: float = 600.0,
                 walk_speed: float = 1.5, max_sightings: int = 8) -> None:
        if not radius_m > 0:
            raise ValueError("radius_m must be > 0, got %r" % (radius_m,))
        if not memory_s >= 0:
            raise ValueError("memory_s must be >= 0, got %r" % (memory_s,))
        if not walk_speed >= 0:
            raise ValueError("walk_speed must be >= 0 m/s, got %r" % (walk_speed,))
        if not (isinstance(max_sightings, int) and max_sightings >= 1):
            raise ValueError("max_sightings must be an integer >= 1, got %r" % (max_sightings,))
        self.radius_m = float(radius_m)
        self.memory_s = float(memory_s)
        self.walk_speed = float(walk_speed)
        self.max_sightings = max_sightings
        self.sightings: List[Sighting] = []

    def remember(self, position: Point, stamp: float, track_id: int, label: str,
                 signature: Any = None) -> None:
        """A new person, alerted on as ``track_id``: their first sighting."""
        self.sightings.append(Sighting(position, stamp, track_id, label, signature))

    def seen_again(self, person: Sighting, position: Point, stamp: float,
                   signature: Any = None) -> bool:
        """A later track recognised as ``person`` (a sighting ``match`` returned): remember
        where they are now and how their clothes look from here, so the next track is
        compared with this sighting too. Kept only when the clothes confirm it is them
        (True): a match by place alone may be someone else walking past the spot, and
        remembering that stranger's clothes under ``person`` would take the stranger for
        ``person`` from then on, everywhere, and never alert on them."""
        if not same_clothes(signature, person.signature):
            return False
        self.sightings.append(Sighting(position, stamp, person.track_id, person.label,
                                       signature))
        theirs = [i for i, s in enumerate(self.sightings) if s.track_id == person.track_id]
        if len(theirs) > self.max_sightings:
            del self.sightings[theirs[1]]  # the oldest after the alert's own
        return True

    def match(self, position: Point, now: float, signature: Any = None
              ) -> Optional[Sighting]:
        """The sighting this face belongs to, if any (nearest first): within ``radius_m``
        unless the clothes clearly differ (``CLOTHES_DIFFER_DISTANCE``; unknown clothes
        do not differ), or in the same clothes where they could have walked since."""
        best, best_d = None, float("inf")
        for seen in self.sightings:
            age = now - seen.stamp
            if age > self.memory_s:
                continue
            d = math.hypot(position[0] - seen.position[0], position[1] - seen.position[1])
            if d >= best_d:
                continue
            clothes = clothes_distance(signature, seen.signature)  # NaN when unknown
            by_place = d <= self.radius_m and not clothes >= CLOTHES_DIFFER_DISTANCE
            by_clothes = (clothes < CLOTHES_MATCH_DISTANCE
                          and d <= self.radius_m + self.walk_speed * max(0.0, age))
            if by_place or by_clothes:
                best, best_d = seen, d
        return best

    def describe_nearest(self, position: Point, now: float, signature: Any = None) -> str:
        """For the log, when an alert is raised: the nearest remembered person, how far,
        how long ago, and how different the clothes (why they were not taken for them)."""
        distances = [(math.hypot(position[0] - p.position[0], position[1] - p.position[1]), i)
                     for i, p in enumerate(self.sightings) if now - p.stamp <= self.memory_s]
        if not distances:
            return "nobody remembered"
        d, index = min(distances)
        seen = self.sightings[index]
        return ("nearest: track %d, %.1f m away, seen %.1f s ago, clothes distance %.2f"
                % (seen.track_id, d, now - seen.stamp,
                   clothes_distance(signature, seen.signature)))

    def __str__(self) -> str:  # short, for the tree viewer
        people = len({s.track_id for s in self.sightings})
        return "%d person(s) alerted, %d sighting(s)" % (people, len(self.sightings))


@dataclass(frozen=True)
class Recognition:
    """A track taken for a person alerted earlier, and why (for the log and the viewer)."""

    #: The person: the track id of their alert.
    person: int
    #: "continues track N" (the tracker re-found the face) or "place or clothes".
    how: str
    #: For a match by place or clothes: whether it became a sighting of the person.
    kept: bool = False
    #: For a match by place or clothes: clothes distance to the matched sighting.
    clothes: float = math.nan


class PersonRegistry:
    """The one place that says who a track is, who was alerted and who was followed.

    Per perception result, the alert behaviour asks, for each confirmed unmasked face that
    is not yet known, ``continuation()`` and then ``recognise()``; a face that is neither
    raises an alert and is recorded with ``alerted()``. ``saw()`` keeps the last place in
    the image of every known track, for ``continuation()``. The follow asks
    ``may_follow()``, ``successor()`` and records ``followed()``.
    """

    def __init__(self, radius_m: float = 1.2, memory_s: float = 600.0,
                 continuity_s: float = 1.5, walk_speed: float = 1.5,
                 max_sightings: int = 8) -> None:
        if not continuity_s >= 0:
            raise ValueError("continuity_s must be >= 0, got %r" % (continuity_s,))
        self.memory = PersonMemory(radius_m, memory_s, walk_speed, max_sightings)
        self.continuity_s = float(continuity_s)
        #: track id -> person id, for every alerted or recognised track
        self._person: Dict[int, int] = {}
        self._alerted: List[int] = []
        self._followed: List[int] = []
        #: track id -> (stamp, box) where each known track was last seen in the image; only
        #: entries younger than ``continuity_s`` can still be continued, older ones are dropped
        self._last_seen: Dict[int, Tuple[float, Box]] = {}

    @classmethod
    def from_config(cls, config: Any) -> "PersonRegistry":
        """Built from behaviors.config.Config's person_radius_m, person_memory_s and
        continuity_s."""
        return cls(config.person_radius_m, config.person_memory_s, config.continuity_s)

    # --- answers ---------------------------------------------------------------------
    def person_of(self, track_id: int) -> Optional[int]:
        """The person a track is (the track id of their alert), or None when unknown."""
        return self._person.get(track_id)

    def is_known(self, track_id: int) -> bool:
        """Alerted, or recognised as someone alerted: no (further) alert for this track."""
        return track_id in self._person

    def is_recognised(self, track_id: int) -> bool:
        """Taken for a person alerted as another track: neither alerted nor followed."""
        return track_id in self._person and self._person[track_id] != track_id

    def may_follow(self, track_id: int) -> bool:
        """Each track is followed once, and a recognised one not at all: the robot does not
        keep returning to someone it has already reported."""
        return track_id not in self._followed and not self.is_recognised(track_id)

    @property
    def alerted_tracks(self) -> Tuple[int, ...]:
        return tuple(self._alerted)

    @property
    def recognised_tracks(self) -> Tuple[int, ...]:
        return tuple(t for t, p in self._person.items() if p != t)

    @property
    def followed_tracks(self) -> Tuple[int, ...]:
        return tuple(self._followed)

    @property
    def recent_tracks(self) -> Tuple[int, ...]:
        """Known tracks whose place in the image is still remembered for continuation."""
        return tuple(self._last_seen)

    def describe_nearest(self, position: Point, now: float, signature: Any = None) -> str:
        return self.memory.describe_nearest(position, now, signature)

    # --- what happened ---------------------------------------------------------------
    def saw(self, track: Track, stamp: float) -> None:
        """A known track in view in the result of ``stamp``."""
        if track.track_id in self._person and track.lost_frames == 0:
            self._last_seen[track.track_id] = (stamp, track.box)

    def continuation(self, track: Track, stamp: float, visible: Sequence[int]
                     ) -> Optional[int]:
        """The known track that ``track`` continues, recorded as the same person: last seen
        moments ago, close in the image, and not detected in this frame itself (two faces
        detected at once are two people). ``visible``: ids the detector found this frame."""
        for track_id, (seen, _) in list(self._last_seen.items()):
            if stamp - seen > self.continuity_s:
                del self._last_seen[track_id]  # too old to be continued, ever
        cx, cy = track.center
        size = max(track.width, track.height)
        for track_id, (seen, box) in self._last_seen.items():
            if track_id in visible:
                continue
            bx, by = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
            if ((cx - bx) ** 2 + (cy - by) ** 2) ** 0.5 <= 2.0 * size:
                self._person[track.track_id] = self._person.get(track_id, track_id)
                self._last_seen[track.track_id] = (stamp, track.box)
                return track_id
        return None

    def recognise(self, track: Track, where: Optional[Point], now: float,
                  signature: Any = None) -> Optional[Recognition]:
        """Whether a face placed at ``where`` (odometry frame) in these clothes is a person
        alerted earlier; if so it is recorded as them, and kept as a sighting when the
        clothes confirm it (PersonMemory.seen_again)."""
        if where is None:
            return None
        same = self.memory.match(where, now, signature)
        if same is None or same.label not in ALERT_LABELS:
            return None
        self._person[track.track_id] = same.track_id
        kept = self.memory.seen_again(same, where, now, signature)
        return Recognition(same.track_id, "place or clothes", kept,
                           clothes_distance(signature, same.signature))

    def alerted(self, track: Track, stamp: float, where: Optional[Point], now: float,
                signature: Any = None) -> None:
        """An alert was raised for ``track``: a new person, whose id is this track's."""
        self._alerted.append(track.track_id)
        self._person[track.track_id] = track.track_id
        self._last_seen[track.track_id] = (stamp, track.box)
        if where is not None:
            self.memory.remember(where, now, track.track_id, track.label, signature)

    def followed(self, track_id: int) -> None:
        """The follow is done with ``track_id`` (approached, lost, or handed on)."""
        if track_id >= 0 and track_id not in self._followed:
            self._followed.append(track_id)

    def successor(self, tracks: Sequence[Track], track_id: int) -> Optional[Track]:
        """The largest visible track of the same person as ``track_id``, other than it: the
        tracker lost the face (a fast turn, someone passing in front) and found it again
        under a new id."""
        person = self._person.get(track_id, track_id)
        same = [t for t in tracks if t.track_id != track_id and t.lost_frames == 0
                and self._person.get(t.track_id) == person]
        return max(same, key=lambda t: t.height) if same else None

    def __str__(self) -> str:  # short, for the tree viewer's blackboard view
        return "%s; %d track(s) recognised, %d followed" % (
            self.memory, len(self.recognised_tracks), len(self._followed))
