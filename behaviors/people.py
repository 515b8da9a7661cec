"""Where the people already alerted on stand, so one person raises one alert.

A visual track ends when a person leaves the image; on the next patrol lap the same
person gets a new track id. Alerts and follows are per track, so without a memory a
standing person would be alerted on every lap. Each alert therefore also places its
person on the odometry map from one camera frame (bearing from the box centre, range
from the face's pixel height and a typical face height); a new track whose face lands
within ``radius_m`` of a remembered person with the same kind of label, within
``memory_s``, is taken to be that person. This is deliberately simple: a person who walks
more than ``radius_m`` away before being seen again is alerted again (documented limit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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


@dataclass(frozen=True)
class RememberedPerson:
    position: Point
    stamp: float
    track_id: int
    label: str


class PersonMemory:
    """Alerted people's estimated positions; answers "is this face someone we alerted?"."""

    def __init__(self, radius_m: float = 1.2, memory_s: float = 600.0) -> None:
        if not radius_m > 0:
            raise ValueError("radius_m must be > 0, got %r" % (radius_m,))
        if not memory_s >= 0:
            raise ValueError("memory_s must be >= 0, got %r" % (memory_s,))
        self.radius_m = float(radius_m)
        self.memory_s = float(memory_s)
        self.people: List[RememberedPerson] = []

    def remember(self, position: Point, stamp: float, track_id: int, label: str) -> None:
        self.people.append(RememberedPerson(position, stamp, track_id, label))

    def match(self, position: Point, now: float) -> Optional[RememberedPerson]:
        """The nearest remembered person within the radius and memory window, if any."""
        best, best_d = None, self.radius_m
        for person in self.people:
            if now - person.stamp > self.memory_s:
                continue
            d = math.hypot(position[0] - person.position[0], position[1] - person.position[1])
            if d <= best_d:
                best, best_d = person, d
        return best

    def __str__(self) -> str:  # short, for the tree viewer
        return "%d person(s) alerted" % len(self.people)
