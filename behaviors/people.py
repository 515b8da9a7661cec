"""Who has already been alerted on, so one person raises one alert.

A visual track ends when a person leaves the image; on the next patrol lap the same
person gets a new track id. Alerts and follows are per track, so without a memory a
person would be alerted on every encounter. Each alert therefore remembers two things:

- where the person was: placed on the odometry map from one camera frame (bearing from the
  box centre, range from the face's pixel height and a typical face height);
- what they wore: a hue-saturation histogram of the torso below the face.

A new face is the same person when it lands within ``radius_m`` of a remembered one, or
when the clothes match and the person could have walked there since (``walk_speed``).
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
from typing import Any, List, Optional, Sequence, Tuple

from behaviors.control import Pose2D

Point = Tuple[float, float]


def locate_face(box: Sequence[float], frame_size: Tuple[int, int], robot: Pose2D,
                horizontal_fov: float, face_height_m: float) -> Point:
    """Estimate the odometry-frame position of a face from one image box.

    Pinhole camera at the robot's origin looking along +x: bearing from the box centre,
    range from the box height. Errors of 20-30 % in range are normal (faces differ in
    size); the memory's radius absorbs them.
    """
    width, height = frame_size
    fx = (width / 2.0) / math.tan(horizontal_fov / 2.0)
    u = (box[0] + box[2]) / 2.0
    box_h = max(1.0, box[3] - box[1])
    bearing = math.atan2(width / 2.0 - u, fx)
    rng = fx * face_height_m / box_h / max(math.cos(bearing), 0.2)
    heading = robot.yaw + bearing
    return (robot.x + rng * math.cos(heading), robot.y + rng * math.sin(heading))


def torso_signature(frame_bgr: Any, box: Sequence[float]) -> Optional[Any]:
    """Normalised hue-saturation histogram of the clothes below a face, or None when the
    torso is out of the picture (a close-up) or too small to say anything."""
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
    hist = cv2.calcHist([hsv], [0, 1], None, [12, 6], [0, 180, 0, 256])
    # Spread each count to the neighbouring bins (hue wraps: red sits at both 0 and 180),
    # so a slight change of light does not move a colour into a disjoint bin.
    hist = 0.5 * hist + 0.25 * (np.roll(hist, 1, axis=0) + np.roll(hist, -1, axis=0))
    padded = np.pad(hist, ((0, 0), (1, 1)), mode="edge")
    hist = (0.5 * padded[:, 1:-1] + 0.25 * (padded[:, :-2] + padded[:, 2:])).astype(np.float32)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def clothes_distance(a: Any, b: Any) -> float:
    """Bhattacharyya distance between two torso histograms (0 same, 1 disjoint); NaN when
    either is missing."""
    import cv2

    if a is None or b is None:
        return math.nan
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def same_clothes(a: Any, b: Any, max_distance: float = 0.35) -> bool:
    """Bhattacharyya distance between two torso histograms below ``max_distance``."""
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
        """The sighting this face belongs to, if any (nearest first)."""
        best, best_d = None, float("inf")
        for seen in self.sightings:
            age = now - seen.stamp
            if age > self.memory_s:
                continue
            d = math.hypot(position[0] - seen.position[0], position[1] - seen.position[1])
            reachable = d <= self.radius_m + self.walk_speed * max(0.0, age)
            if (d <= self.radius_m or (reachable and same_clothes(signature, seen.signature))) \
                    and d < best_d:
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
