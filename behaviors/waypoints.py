"""Load the patrol route from YAML: a list of ``{x, y}`` points in the odometry frame.

Two layouts are accepted so one scenario file can carry the route beside its other facts::

    - {x: 0.0, y: 0.0}          # a bare list
    - {x: 2.5, y: 1.0}

    waypoints:                  # or a mapping with a 'waypoints' list (other keys ignored)
      - {x: 0.0, y: 0.0}

Every problem is reported as InputError naming the file and the entry, because this file
is written by hand by whoever sets up a site.
"""
from __future__ import annotations

import math
from typing import Any, List, Tuple

from common.errors import InputError

Waypoint = Tuple[float, float]


def load_waypoints(path: str) -> Tuple[Waypoint, ...]:
    """Read and check a waypoints file; returns ((x, y), ...) in file order."""
    import yaml

    try:
        with open(path, "r") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise InputError("cannot read waypoints file %s (%s); pass the path of a YAML file "
                         "with a list of {x, y}" % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        raise InputError("waypoints file %s is not valid YAML (%s)"
                         % (path, str(exc).replace("\n", " ")))
    return parse_waypoints(data, source=path)


def parse_waypoints(data: Any, source: str = "waypoints") -> Tuple[Waypoint, ...]:
    """Check already-parsed YAML (a list, or a mapping with a 'waypoints' list)."""
    if isinstance(data, dict):
        if "waypoints" not in data:
            raise InputError("%s has no 'waypoints' key; write a list of {x, y} under "
                             "'waypoints:'" % (source,))
        data = data["waypoints"]
    if not isinstance(data, list) or not data:
        raise InputError("%s must hold a non-empty list of {x, y} waypoints, found %s"
                         % (source, "an empty list" if data == [] else type(data).__name__))
    points: List[Waypoint] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "x" not in item or "y" not in item:
            raise InputError("%s: waypoint %d is %r; each waypoint needs numeric x and y, "
                             "e.g. {x: 1.0, y: 2.0}" % (source, i, item))
        try:
            x, y = float(item["x"]), float(item["y"])
        except (TypeError, ValueError):
            raise InputError("%s: waypoint %d has non-numeric x or y (%r, %r)"
                             % (source, i, item["x"], item["y"]))
        if isinstance(item["x"], bool) or isinstance(item["y"], bool) \
                or not (math.isfinite(x) and math.isfinite(y)):
            raise InputError("%s: waypoint %d must have finite numeric x and y, got (%r, %r)"
                             % (source, i, item["x"], item["y"]))
        points.append((x, y))
    return tuple(points)
