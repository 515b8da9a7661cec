"""What happened in a simulated run, judged against its scenario's expected outcome.

A run leaves three records: the simulator's ground-truth trace (``trace.jsonl``: robot
pose, actor poses, the command the base obeyed, 10 Hz of simulated time, and a first line
with the camera geometry), the patrol node's event log (``events.jsonl``: mode changes,
alerts) and the alert store. The alert store knows faces only as image boxes, so each alert
is attributed to the actor whose head the camera saw at that bearing and distance. The
demo's summary and the scenario tests both read an ``Outcome``; neither re-derives it.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from behaviors.modes import FOLLOW_UNMASKED
from common.geometry import wrap_angle
from common.errors import InputError


@dataclass
class Trace:
    meta: Dict[str, Any]
    rows: List[Dict[str, Any]]


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    rows = []
    try:
        with open(path, "r") as handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    # The last line may be cut short by a kill; earlier lines must be whole.
                    if handle.readline():
                        raise InputError("%s line %d is not JSON" % (path, number))
    except OSError as exc:
        raise InputError("cannot read %s (%s): was the run started with trace:=true?"
                         % (path, exc.strerror or exc))
    return rows


def read_trace(path: str) -> Trace:
    rows = read_jsonl(path)
    meta = rows[0]["meta"] if rows and "meta" in rows[0] else {}
    return Trace(meta=meta, rows=[r for r in rows if "t" in r])


def face_cost(box: Sequence[float], face: Sequence[float], width: float, height: float
              ) -> float:
    """How badly a face box matches a face the simulator says the camera sees.

    ``face`` is [u, v, pixel height, depth] from sim.faces_in_view; position counts in
    image fractions, size as a log ratio (a box twice too big costs 0.2).
    """
    u_box, v_box = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    h_box = max(1.0, box[3] - box[1])
    return (abs(face[0] - u_box) / width + abs(face[1] - v_box) / height
            + 0.3 * abs(math.log(max(face[2], 1.0) / h_box)))


def attribute(box: Sequence[float], rows: Sequence[Dict[str, Any]], meta: Dict[str, Any],
              max_cost: float = 0.35) -> Optional[str]:
    """The actor whose face best matches ``box`` in any of ``rows`` (the trace rows at the
    moment of the frame the box was found in), or None when no face in view is close."""
    width, height = float(meta.get("width", 640)), float(meta.get("height", 480))
    best, best_cost = None, max_cost
    for row in rows:
        for actor, face in row.get("faces", {}).items():
            cost = face_cost(box, face, width, height)
            if cost < best_cost:
                best, best_cost = actor, cost
    return best


@dataclass
class Outcome:
    """The judged run. ``ok`` is True when every expectation of the scenario holds."""

    world: str
    expected_alert: Tuple[str, ...]
    expected_no_alert: Tuple[str, ...]
    alerts: List[Dict[str, Any]] = field(default_factory=list)   # each with "actor"
    sim_time: float = 0.0
    distance_driven: float = 0.0
    follow_time: float = 0.0
    #: Closest approach over the whole run (people walk up to a standing robot too).
    min_clearance: float = float("inf")
    min_clearance_what: str = ""
    #: Closest approach while the robot itself drove forward towards it (walls: any
    #: direction; people: within 60 degrees of the heading): what "the robot never drives
    #: into a wall or a person" is judged on. Scripted people also walk up to a robot that
    #: stands still, or turn next to it; that is not the robot's doing.
    min_clearance_driving: float = float("inf")
    min_clearance_driving_what: str = ""
    min_clearance_allowed: float = 0.0
    time_limit: float = 0.0

    def alerts_for(self, actor: str) -> List[Dict[str, Any]]:
        return [a for a in self.alerts if a["actor"] == actor]

    @property
    def missing(self) -> List[str]:
        return [a for a in self.expected_alert
                if not any(x["stamp"] <= self.time_limit for x in self.alerts_for(a))]

    @property
    def duplicated(self) -> List[str]:
        return [a for a in self.expected_alert if len(self.alerts_for(a)) > 1]

    @property
    def unexpected(self) -> List[Dict[str, Any]]:
        return [a for a in self.alerts if a["actor"] not in self.expected_alert]

    @property
    def ok(self) -> bool:
        return (not self.missing and not self.duplicated and not self.unexpected
                and self.min_clearance_driving >= self.min_clearance_allowed
                and self.min_clearance > 0.0)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "world": self.world, "ok": self.ok, "sim_time_s": round(self.sim_time, 1),
            "alerts_expected": list(self.expected_alert),
            "alerts_raised": [{k: a[k] for k in ("id", "actor", "label", "score", "stamp",
                                                 "track_id")} for a in self.alerts],
            "missing": self.missing, "duplicated": self.duplicated,
            "unexpected": [a["actor"] or "unknown" for a in self.unexpected],
            "follow_time_s": round(self.follow_time, 1),
            "distance_driven_m": round(self.distance_driven, 2),
            "min_clearance_m": round(self.min_clearance, 3),
            "min_clearance_to": self.min_clearance_what,
            "min_clearance_driving_m": round(self.min_clearance_driving, 3),
            "min_clearance_driving_to": self.min_clearance_driving_what,
            "min_clearance_allowed_m": self.min_clearance_allowed,
        }


def driving_towards(row: Dict[str, Any], cone: float = math.radians(60)) -> bool:
    """The robot drives forward and its nearest obstacle is a wall/box, or a person ahead."""
    if row["cmd"][0] <= 0.01:
        return False
    nearest = row.get("nearest") or ""
    if not nearest.startswith("actor "):
        return True
    pose = row["actors"].get(nearest[len("actor "):])
    if pose is None:
        return True
    rx, ry, ryaw = row["robot"]
    bearing = math.atan2(pose[1] - ry, pose[0] - rx) - ryaw
    return abs(wrap_angle(bearing)) < cone


def mode_intervals(events: List[Dict[str, Any]], end: float) -> List[Tuple[str, float, float]]:
    """(mode, start, end) from the node's mode-change events."""
    changes = [(e["t"], e["mode"]) for e in events if e.get("event") == "mode"]
    out = []
    for i, (t, mode) in enumerate(changes):
        t_end = changes[i + 1][0] if i + 1 < len(changes) else end
        out.append((mode, t, t_end))
    return out


def judge_run(scenario, run_dir: str) -> Outcome:
    """Read a run folder (trace.jsonl, events.jsonl, alerts.sqlite) and judge it."""
    from behaviors.alerts import read_alerts

    trace = read_trace(os.path.join(run_dir, "trace.jsonl"))
    events_path = os.path.join(run_dir, "events.jsonl")
    events = read_jsonl(events_path) if os.path.exists(events_path) else []
    db = os.path.join(run_dir, "alerts.sqlite")
    records = read_alerts(db) if os.path.exists(db) else []
    outcome = Outcome(world=scenario.name, expected_alert=tuple(scenario.expect_alert),
                      expected_no_alert=tuple(scenario.expect_no_alert),
                      min_clearance_allowed=scenario.min_clearance,
                      time_limit=scenario.time_limit)
    if not trace.rows:
        return outcome
    outcome.sim_time = trace.rows[-1]["t"] - trace.rows[0]["t"]
    for a, b in zip(trace.rows, trace.rows[1:]):
        outcome.distance_driven += math.hypot(b["robot"][0] - a["robot"][0],
                                              b["robot"][1] - a["robot"][1])
    for row in trace.rows:
        if row["clearance"] < outcome.min_clearance:
            outcome.min_clearance, outcome.min_clearance_what = row["clearance"], row["nearest"]
        if driving_towards(row) and row["clearance"] < outcome.min_clearance_driving:
            outcome.min_clearance_driving = row["clearance"]
            outcome.min_clearance_driving_what = row["nearest"]
    for mode, start, end in mode_intervals(events, trace.rows[-1]["t"]):
        if mode == FOLLOW_UNMASKED:
            outcome.follow_time += end - start
    for record in records:
        # The stamp is the frame's (behaviors.alerts); the trace is at 10 Hz.
        rows = [r for r in trace.rows if abs(r["t"] - record.stamp) <= 0.15]
        outcome.alerts.append({"id": record.id, "stamp": record.stamp, "label": record.label,
                               "score": record.score, "track_id": record.track_id,
                               "box": record.box, "face_path": record.face_path,
                               "actor": attribute(record.box, rows, trace.meta)})
    return outcome
