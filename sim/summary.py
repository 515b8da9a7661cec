"""Summarise a simulated patrol run: ``python -m sim.summary --world lobby --run-dir DIR``.

Writes DIR/summary.json and DIR/summary.md (alerts raised vs expected, time spent
following, distance driven, closest approach), exports the alert store to DIR/alerts.csv,
prints the Markdown, and exits 1 when the run missed its scenario's expectations.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from common.errors import InputError
from sim.outcome import Outcome, judge_run
from sim.scenario import load_scenario

ARTIFACTS = ("camera_annotated.mp4", "topdown.mp4", "alerts.sqlite", "alerts.csv",
             "snapshots", "trace.jsonl", "events.jsonl")


def render_markdown(outcome: Outcome, run_dir: str) -> str:
    d = outcome.as_dict()
    lines = ["# Patrol run: %s" % outcome.world, "",
             "Result: **%s**" % ("as expected" if outcome.ok else "NOT as expected"), "",
             "| what | value |", "|---|---|",
             "| simulated time | %.1f s |" % d["sim_time_s"],
             "| alerts expected | %s |" % (", ".join(d["alerts_expected"]) or "none"),
             "| alerts raised | %d |" % len(d["alerts_raised"]),
             "| missing | %s |" % (", ".join(d["missing"]) or "none"),
             "| raised twice | %s |" % (", ".join(d["duplicated"]) or "none"),
             "| unexpected | %s |" % (", ".join(d["unexpected"]) or "none"),
             "| time spent following | %.1f s |" % d["follow_time_s"],
             "| distance driven | %.2f m |" % d["distance_driven_m"],
             "| closest approach while driving | %.2f m to %s (allowed %.2f m) |"
             % (d["min_clearance_driving_m"], d["min_clearance_driving_to"] or "-",
                d["min_clearance_allowed_m"]),
             "| closest approach at all | %.2f m to %s (people also walk up to the robot) |"
             % (d["min_clearance_m"], d["min_clearance_to"] or "-"),
             "", "## Alerts", "",
             "| id | sim time | actor | label | score | face snapshot |", "|---|---|---|---|---|---|"]
    for a in outcome.alerts:
        lines.append("| %d | %.1f s | %s | %s | %.2f | %s |" % (
            a["id"], a["stamp"], a["actor"] or "unknown", a["label"], a["score"],
            os.path.relpath(a["face_path"], run_dir)))
    lines += ["", "## Files", ""]
    for name in ARTIFACTS:
        present = os.path.exists(os.path.join(run_dir, name))
        lines.append("- %s%s" % (name, "" if present else " (missing)"))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.summary", description=__doc__)
    parser.add_argument("--world", required=True, help="world name or scenario path")
    parser.add_argument("--run-dir", required=True, help="output_dir of the run")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.world)
        outcome = judge_run(scenario, args.run_dir)
        db = os.path.join(args.run_dir, "alerts.sqlite")
        if os.path.exists(db):
            from behaviors.alert_cli import main as alerts_main

            alerts_main(["export", "--db", db, "--format", "csv",
                         "--out", os.path.join(args.run_dir, "alerts.csv")])
    except InputError as exc:
        print("summary: error: %s" % exc, file=sys.stderr)
        return 2
    with open(os.path.join(args.run_dir, "summary.json"), "w") as handle:
        json.dump(outcome.as_dict(), handle, indent=2)
    text = render_markdown(outcome, args.run_dir)
    with open(os.path.join(args.run_dir, "summary.md"), "w") as handle:
        handle.write(text)
    try:
        print(text)
    except BrokenPipeError:  # `| head` closed the pipe: the files are written, that is enough
        pass
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
