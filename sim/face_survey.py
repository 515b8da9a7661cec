"""Every person's face as the patrol camera sees it, run through the live pipeline.

Two retrained classifiers that scored better on the VOC photos each alerted on a masked
person in the simulator (a red printed mask, 14-26 px, seen at an angle), and it took a
12-minute scenario pass to find out. This survey asks the same question in about a
minute: it stands the robot at several distances and angles in front of each actor,
renders the camera, runs ``FramePipeline`` on the frame as ``patrol_node`` does, and reads
the class probabilities of the face found where that actor's face is. A view counts as a
wrong decision when a masked face reaches the alert gate, or an unmasked / incorrectly
worn one does not. A person counts as wrong (and the command exits 1) when any view of a
masked person reaches the gate, or fewer than ``ALERT_SHARE`` of the found views of a
person to alert on do (or none of their views finds the face).

    python -m sim.face_survey                      # every world, the shipped weights
    python -m sim.face_survey --world crowd --weights W.pt --json survey.json
    python -m sim.face_survey --world crowd --distances 5 6 --set detector=centerface

``--set`` changes one setting of the settings file for the survey (a detector, its
smallest face), so a detector is surveyed as the robot would run it.

One frame is one classification, so this is harsher than the robot, which smooths a
track's label over several detections before it raises an alert. The two sides are judged
differently on purpose: one frame of a masked face over the gate can start a false alert
that staff act on, while one frame of an unmasked face under it only delays an alert.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from common.errors import InputError
from perception.types import ALERT_LABELS

#: Distances (m) from the face and bearings (degrees, 0 = straight in front of the face)
#: the robot looks from: the faces the patrol passes are 12-60 px high at 1.5-4.5 m.
DISTANCES = (1.5, 2.5, 3.5, 4.5)
BEARINGS = (-45.0, -25.0, 0.0, 25.0, 45.0)


@dataclass(frozen=True)
class FaceView:
    """One look at one actor: where from, how big the face was, what the classifier said."""

    world: str
    actor: str
    label: str
    distance: float
    bearing: float
    face_px: float
    #: Class probabilities in LABELS order; empty when the detector found no face there.
    probabilities: Tuple[float, ...]
    #: The face's Track.alert_probability, the figure the alert gate is applied to; None
    #: when the detector found no face there.
    alert_probability: Optional[float]

    def wrong(self, gate: float) -> bool:
        """Whether this frame alone would lead the robot to the wrong decision."""
        p = self.alert_probability
        if p is None:
            return False
        return (p >= gate) != (self.label in ALERT_LABELS)


def patrol_pipeline(weights_path: Optional[str] = None,
                    overrides: Optional[Dict[str, Any]] = None):
    """The FramePipeline that patrol_node builds from the settings file (config/patrol.yaml),
    so the survey sees what the robot's classifier sees; ``weights_path`` replaces only the
    classifier, to survey candidate weights; ``overrides`` replace settings of the file, as
    a launch file's parameters would (an unknown or bad one raises ValueError)."""
    from behaviors.settings import load_settings_file, read_settings

    params = dict(overrides or {})
    if weights_path:
        params["weights"] = weights_path
    _, perception, _ = read_settings(params, load_settings_file())
    return perception.build_pipeline()


def parse_setting(text: str) -> Tuple[str, Any]:
    """'detector=centerface' -> ('detector', 'centerface'); the value is read as YAML, as in
    the settings file ('min_face_size=12' gives the number 12)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError("expected KEY=VALUE, e.g. detector=centerface, got %r"
                                         % text)
    return key.strip(), yaml.safe_load(value)


def survey_world(world: str, pipeline, distances: Sequence[float] = DISTANCES,
                 bearings: Sequence[float] = BEARINGS) -> List[FaceView]:
    """Look at every actor of ``world`` (at time 0) from each distance and bearing.

    Views from inside a wall, or where something hides the face, are left out; so are
    views in which the detector finds no face where the actor's face is (``probabilities``
    empty), which are reported, not judged."""
    from sim.simulator import Simulator

    views = []
    reach = max(6.0, max(distances) + 1.0)  # the farthest face that counts as in view
    with Simulator(world) as sim:
        poses = sim.actor_poses()
        for actor in sim.world.actors:
            x, y, yaw = poses[actor.name]
            for distance in distances:
                for bearing in bearings:
                    heading = yaw + math.radians(bearing)
                    rx, ry = x + distance * math.cos(heading), y + distance * math.sin(heading)
                    sim.place_robot(rx, ry, math.atan2(y - ry, x - rx))
                    seen = sim.visible_faces(max_angle=math.radians(60.0), max_distance=reach)
                    if actor.name not in seen:
                        continue
                    u, v, _ = seen[actor.name]
                    frame = sim.render_camera()
                    pipeline.reset()
                    tracks = pipeline.process(frame).tracks
                    hit = [t for t in tracks if t.box[0] <= u <= t.box[2]
                           and t.box[1] <= v <= t.box[3] and t.probabilities]
                    best = min(hit, key=lambda t: abs((t.box[0] + t.box[2]) / 2.0 - u),
                               default=None)
                    views.append(FaceView(
                        world=sim.scenario.name, actor=actor.name, label=actor.label,
                        distance=float(distance), bearing=float(bearing),
                        face_px=float(best.height) if best else 0.0,
                        probabilities=tuple(best.probabilities) if best else (),
                        alert_probability=best.alert_probability if best else None))
    return views


#: Share of the found views of a person to alert on that must reach the gate.
ALERT_SHARE = 0.75


def person_is_wrong(entry: Dict) -> bool:
    """Whether the robot would likely get this person wrong (see the module docstring)."""
    if entry["label"] not in ALERT_LABELS:
        return entry["wrong"] > 0
    return entry["found"] == 0 or entry["found"] - entry["wrong"] < ALERT_SHARE * entry["found"]


def summarise(views: Sequence[FaceView], gate: float) -> Dict:
    """Per actor: views, faces found, wrong decisions, lowest and highest p(alert); and the
    people the robot would likely get wrong."""
    actors: Dict[str, Dict] = {}
    for view in views:
        entry = actors.setdefault("%s/%s" % (view.world, view.actor), {
            "label": view.label, "views": 0, "found": 0, "wrong": 0,
            "p_alert_min": None, "p_alert_max": None})
        entry["views"] += 1
        p = view.alert_probability
        if p is None:
            continue
        entry["found"] += 1
        entry["wrong"] += int(view.wrong(gate))
        entry["p_alert_min"] = p if entry["p_alert_min"] is None else min(entry["p_alert_min"], p)
        entry["p_alert_max"] = p if entry["p_alert_max"] is None else max(entry["p_alert_max"], p)
    judged = [v for v in views if v.alert_probability is not None]
    masked = [v for v in judged if v.label not in ALERT_LABELS]
    alert = [v for v in judged if v.label in ALERT_LABELS]
    return {"gate": gate, "actors": actors,
            "masked_views": len(masked), "masked_wrong": sum(v.wrong(gate) for v in masked),
            "alert_views": len(alert), "alert_wrong": sum(v.wrong(gate) for v in alert),
            "people_wrong": sorted(name for name, entry in actors.items()
                                   if person_is_wrong(entry))}


def render(summary: Dict) -> str:
    """The report printed by the command line."""
    header = ("actor", "label", "views", "found", "wrong", "p(alert) min-max")
    lines = ["%-20s %-9s %5s %5s %5s  %s" % header]
    for name, entry in summary["actors"].items():
        spread = ("-" if entry["p_alert_min"] is None
                  else "%.2f-%.2f" % (entry["p_alert_min"], entry["p_alert_max"]))
        lines.append("%-20s %-9s %5d %5d %5d  %s" % (name, entry["label"], entry["views"],
                                                     entry["found"], entry["wrong"], spread))
    lines.append("masked views at or above the alert gate %.2f: %d of %d"
                 % (summary["gate"], summary["masked_wrong"], summary["masked_views"]))
    lines.append("unmasked or incorrect views below it: %d of %d"
                 % (summary["alert_wrong"], summary["alert_views"]))
    lines.append("people likely decided wrong (any masked view at the gate, or under %d%% of "
                 "an alert person's views): %s" % (round(100 * ALERT_SHARE),
                                                   ", ".join(summary["people_wrong"]) or "none"))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from behaviors.config import Config
    from sim.scenario import available_worlds

    parser = argparse.ArgumentParser(prog="python -m sim.face_survey",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", action="append",
                        help="world name or scenario path (repeatable; default: every world)")
    parser.add_argument("--weights", default=None,
                        help="classifier weights (default: the shipped ones)")
    parser.add_argument("--gate", type=float, default=Config().alert_min_probability,
                        help="alert gate on p(unmasked) + p(incorrect) (default: the tree's "
                             "alert_min_probability, %(default)s)")
    parser.add_argument("--json", default=None, help="also write every view to this file")
    parser.add_argument("--distances", type=float, nargs="+", default=DISTANCES, metavar="M",
                        help="distances from each face in metres (default: %s)"
                             % " ".join(str(d) for d in DISTANCES))
    parser.add_argument("--set", type=parse_setting, action="append", default=[],
                        metavar="KEY=VALUE", dest="settings",
                        help="change one setting of the settings file for the survey, e.g. "
                             "detector=centerface or min_face_size=12 (repeatable)")
    args = parser.parse_args(argv)
    if not 0.0 < args.gate <= 1.0:
        parser.error("--gate must be in (0, 1], got %r" % args.gate)
    if not all(0.5 <= d <= 20.0 for d in args.distances):
        parser.error("--distances must be in [0.5, 20] m, got %s" % (args.distances,))
    try:
        try:
            pipeline = patrol_pipeline(args.weights, dict(args.settings))
        except InputError:
            raise  # a missing or broken weights file (an InputError is a ValueError): below
        except ValueError as exc:
            parser.error("--set: %s" % exc)  # a key or value the settings refuse
        views: List[FaceView] = []
        for world in args.world or available_worlds():
            views += survey_world(world, pipeline, distances=args.distances)
    except InputError as exc:  # a world or weights file that is missing or broken
        print("face_survey: error: %s" % exc, file=sys.stderr)
        return 2
    summary = summarise(views, args.gate)
    print(render(summary))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"summary": summary, "views": [asdict(v) for v in views]}, handle,
                      indent=1)
    return 0 if not summary["people_wrong"] else 1


if __name__ == "__main__":
    sys.exit(main())
