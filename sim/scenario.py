"""A scenario file (worlds/<name>.yaml): robot start, patrol route, time limit, expected alerts.

The YAML beside each world is, with the world file, the only description of a scenario:
the simulator, Gazebo's launch file, the patrol node and the scenario tests all read it
here. It is checked against ``worlds/scenario.schema.yaml`` (JSON Schema, so other tools
can use it too); errors name the file and the offending field. This module needs only
PyYAML, so the patrol node can read its route without importing MuJoCo.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from common.errors import InputError

#: The repository's worlds/ folder (worlds, scenarios, models, the robot).
WORLDS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "worlds")
SCHEMA_PATH = os.path.join(WORLDS_DIR, "scenario.schema.yaml")
DEFAULT_ROBOT = os.path.join("robot", "mask_patrol_robot.urdf")
DEFAULT_MIN_CLEARANCE = 0.2


@dataclass(frozen=True)
class Scenario:
    """What a scenario YAML says, with paths made absolute."""

    path: str
    name: str
    world_path: str
    robot_path: str
    start: Tuple[float, float, float]
    waypoints: Tuple[Tuple[float, float], ...]
    loop: bool
    time_limit: float
    min_clearance: float
    expect_alert: Tuple[str, ...]
    expect_no_alert: Tuple[str, ...]
    description: str = ""


def available_worlds() -> List[str]:
    """Names of the worlds in worlds/ that have a scenario beside them."""
    names = []
    for entry in sorted(os.listdir(WORLDS_DIR)):
        stem, ext = os.path.splitext(entry)
        if ext == ".world" and os.path.isfile(os.path.join(WORLDS_DIR, stem + ".yaml")):
            names.append(stem)
    return names


def find_scenario(name_or_path: str) -> str:
    """The scenario YAML for a world name ('lobby'), a .world path or a .yaml path."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise InputError("world: expected a world name (%s) or a .world/.yaml path, got %r"
                         % (", ".join(available_worlds()), name_or_path))
    text = os.path.expanduser(name_or_path.strip())
    stem, ext = os.path.splitext(text)
    if ext in (".world", ".sdf"):
        path = stem + ".yaml"
        if not os.path.isfile(text):
            raise InputError("world file %s does not exist" % text)
        if not os.path.isfile(path):
            raise InputError("%s has no scenario beside it: write %s (see worlds/README.md)"
                             % (text, path))
        return os.path.abspath(path)
    if ext in (".yaml", ".yml"):
        if not os.path.isfile(text):
            raise InputError("scenario file %s does not exist" % text)
        return os.path.abspath(text)
    path = os.path.join(WORLDS_DIR, text + ".yaml")
    if os.sep in text or not os.path.isfile(path):
        raise InputError("unknown world %r: use one of %s, or a path to a .world file"
                         % (name_or_path, ", ".join(available_worlds())))
    return path


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario (YAML only; world_check cross-checks the actors)."""
    path = find_scenario(name_or_path)
    data = _read_yaml(path)
    errors = validate(data, load_schema())
    if errors:
        raise InputError("%s: %s" % (path, "; ".join(errors[:5])))
    folder = os.path.dirname(path)
    world_path = os.path.normpath(os.path.join(folder, data["world"]))
    if not os.path.isfile(world_path):
        raise InputError("%s: world: file %s does not exist" % (path, world_path))
    robot = data["robot"]
    robot_path = os.path.normpath(os.path.join(folder, robot.get("model", DEFAULT_ROBOT)))
    if not os.path.isfile(robot_path):
        raise InputError("%s: robot.model: file %s does not exist" % (path, robot_path))
    start = robot["start"]
    expected = data["expected"]
    both = sorted(set(expected["alert"]) & set(expected["no_alert"]))
    if both:
        raise InputError("%s: expected: %s listed under both alert and no_alert"
                         % (path, ", ".join(both)))
    return Scenario(
        path=path,
        name=os.path.splitext(os.path.basename(path))[0],
        world_path=world_path,
        robot_path=robot_path,
        start=(float(start["x"]), float(start["y"]), float(start["yaw"])),
        waypoints=tuple((float(p[0]), float(p[1])) for p in data["patrol"]["waypoints"]),
        loop=bool(data["patrol"].get("loop", True)),
        time_limit=float(data["time_limit"]),
        min_clearance=float(data.get("min_clearance", DEFAULT_MIN_CLEARANCE)),
        expect_alert=tuple(expected["alert"]),
        expect_no_alert=tuple(expected["no_alert"]),
        description=str(data.get("description", "")).strip(),
    )


_SCHEMA_CACHE: Dict[str, Any] = {}


def load_schema() -> Dict[str, Any]:
    if "schema" not in _SCHEMA_CACHE:
        _SCHEMA_CACHE["schema"] = _read_yaml(SCHEMA_PATH)
    return _SCHEMA_CACHE["schema"]


def _read_yaml(path: str) -> Any:
    import yaml

    try:
        with open(path) as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise InputError("cannot read %s: %s" % (path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " line %d" % (mark.line + 1) if mark is not None else ""
        raise InputError("%s:%s is not valid YAML (%s)" % (path, where, getattr(exc, "problem", exc)))


_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


def validate(value: Any, schema: Dict[str, Any], where: str = "") -> List[str]:
    """Errors of ``value`` against the JSON Schema subset our schema uses ([] when valid)."""
    name = where or "the file"
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _TYPES[kind]) and not (kind in ("number", "integer") and isinstance(value, bool))
        if ok and kind == "number" and not math.isfinite(float(value)):
            ok = False
        if not ok:
            return ["%s must be %s %s, got %r" % (name, "an" if kind[0] in "aeiou" else "a", kind, value)]
    errors: List[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s must be one of %s, got %r" % (name, schema["enum"], value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append("%s must be >= %s, got %r" % (name, schema["minimum"], value))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append("%s must be > %s, got %r" % (name, schema["exclusiveMinimum"], value))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append("%s is missing %r" % (name, key))
        props = schema.get("properties", {})
        for key, item in value.items():
            child = "%s.%s" % (where, key) if where else str(key)
            if key in props:
                errors.extend(validate(item, props[key], child))
            elif schema.get("additionalProperties", True) is False:
                errors.append("%s: unknown field %r (allowed: %s)" % (name, key, ", ".join(props)))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append("%s needs at least %d items, got %d" % (name, schema["minItems"], len(value)))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append("%s allows at most %d items, got %d" % (name, schema["maxItems"], len(value)))
        if schema.get("uniqueItems") and len(set(map(repr, value))) != len(value):
            errors.append("%s has repeated items: %r" % (name, value))
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(validate(item, schema["items"], "%s[%d]" % (name, i)))
    return errors
