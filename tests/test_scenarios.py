"""Closed-loop scenario tests: the simulator and patrol_node under roslaunch, judged by the
scenario YAML beside each world (worlds/<name>.yaml) and the run's ground-truth trace.

Each world runs once (launch/patrol_sim.launch, as a user would start it) and several
tests read that run: the expected alerts (each exactly once, masked people never), the
clearance kept to walls and people, following an unmasked person and returning to patrol.
The crossing run also reports how near the robot came to the person who walks across its
path (its stop distance). Two more corridor runs stall the camera mid-follow and the laser
mid-patrol, and check the robot stops within 0.5 s of simulated time.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
from typing import Dict, Sequence

import pytest

from behaviors.tree import FOLLOW_UNMASKED, PATROL, SAFETY_GUARD
from rosgraph_harness import REPO, RosGraph
from sim.faces_in_view import bearing_error
from sim.outcome import (Outcome, driving_towards, judge_run, mode_intervals, read_jsonl,
                         read_trace)
from sim.scenario import available_worlds, load_scenario

pytestmark = pytest.mark.scenario

#: Simulated seconds per wall second. 1.0 is what the real robot gets; the tests keep it,
#: and the simulator paces itself (it reports the factor it reached in its log).
RTF = float(os.environ.get("MASK_PATROL_TEST_RTF", "1.0"))
STALL_HELPER = os.path.join(REPO, "tests", "ros_nodes", "stall_sensor.py")


def run_scenario(world: str, out: str, duration: float, stall: Sequence[str] = ()) -> str:
    """roslaunch patrol_sim.launch for ``duration`` simulated seconds; returns ``out``.
    ``stall``: arguments for tests/ros_nodes/stall_sensor.py, to stall a sensor mid-run."""
    with RosGraph(os.path.join(out, "logs")) as graph:
        launch = graph.roslaunch("patrol_sim.launch", {
            "world": world, "duration": str(duration), "output_dir": out,
            "real_time_factor": str(RTF), "record": "false"})
        if stall:
            graph.spawn([sys.executable, STALL_HELPER] + list(stall), "stall_helper")
        launch.wait(timeout=duration / RTF + 300)
        log = graph.log_text("roslaunch")
    # roslaunch exits 0 even when a node died: check the run itself finished.
    assert "simulated time done" in log, "the simulator did not finish:\n" + log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    return out


_RUNS: Dict[str, str] = {}


def scenario_run(world: str, tmp_path_factory) -> str:
    if world not in _RUNS:
        scenario = load_scenario(world)
        out = str(tmp_path_factory.mktemp("run_" + world))
        _RUNS[world] = run_scenario(world, out, scenario.time_limit)
    return _RUNS[world]


def outcome_of(world: str, tmp_path_factory) -> Outcome:
    return judge_run(load_scenario(world), scenario_run(world, tmp_path_factory))


def explain_alerts(outcome: Outcome, out: str) -> str:
    """A failure message that says why: the judged report in full (a dict in an assertion
    is cut short) and the node's own reasons for every alert and recognition. CI keeps
    only its log; the run's folder is gone by the time anyone reads it."""
    import glob
    import json

    reasons = []
    for path in sorted(glob.glob(os.path.join(out, "logs", "roslog", "latest",
                                              "patrol_node*.log"))):
        with open(path, errors="replace") as handle:
            reasons += [line.rstrip() for line in handle if "raise_alerts" in line]
    return "%s\npatrol_node on alerts and recognitions:\n%s" % (
        json.dumps(outcome.as_dict(), indent=1, default=str), "\n".join(reasons) or "(none)")


@pytest.mark.parametrize("world", available_worlds())
def test_expected_people_raise_exactly_one_alert_and_masked_people_none(world, tmp_path_factory):
    outcome = outcome_of(world, tmp_path_factory)
    report = explain_alerts(outcome, scenario_run(world, tmp_path_factory))
    assert outcome.missing == [], report
    assert outcome.duplicated == [], report
    assert outcome.unexpected == [], report
    for actor in outcome.expected_no_alert:
        assert outcome.alerts_for(actor) == [], report


@pytest.mark.parametrize("world", available_worlds())
def test_robot_never_drives_into_a_wall_or_a_person(world, tmp_path_factory):
    outcome = outcome_of(world, tmp_path_factory)
    assert outcome.distance_driven > 1.0, "the robot hardly moved: %s" % outcome.as_dict()
    # Actors are scripted and may walk up to a standing robot; the robot itself must keep its
    # distance whenever it drives forward, and nothing may ever overlap it.
    assert outcome.min_clearance_driving >= outcome.min_clearance_allowed, outcome.as_dict()
    assert outcome.min_clearance > 0.0, outcome.as_dict()


def test_robot_follows_the_unmasked_walker_and_returns_to_patrol(tmp_path_factory):
    out = scenario_run("corridor", tmp_path_factory)
    trace = read_trace(os.path.join(out, "trace.jsonl"))
    events = read_jsonl(os.path.join(out, "events.jsonl"))
    intervals = mode_intervals(events, trace.rows[-1]["t"])
    follows = [(s, e) for mode, s, e in intervals if mode == FOLLOW_UNMASKED]
    assert follows, "the robot never followed anyone: %s" % intervals
    start, end = max(follows, key=lambda f: f[1] - f[0])
    assert end - start >= 2.0, "the follow lasted only %.1f s" % (end - start)
    rows = [r for r in trace.rows if start <= r["t"] <= end]
    first, last = rows[0], rows[-1]
    # The robot itself closed in on the walker: measured against where the walker ended up.
    wx, wy = last["actors"]["walker"][:2]
    before = math.hypot(wx - first["robot"][0], wy - first["robot"][1])
    after = math.hypot(wx - last["robot"][0], wy - last["robot"][1])
    assert before - after > 0.3, "robot did not close in (%.2f m -> %.2f m)" % (before, after)
    # The walker's face stayed near the image centre while it was in view (after the first
    # second: the follow starts wherever the face was confirmed, often near the edge).
    errors = [abs(bearing_error(r["faces"]["walker"][0], trace.meta["width"]))
              for r in rows if "walker" in r.get("faces", {}) and r["t"] >= start + 1.0]
    assert len(errors) >= 10, "the walker's face was rarely in view during the follow"
    assert statistics.median(errors) < 0.35, "face far off centre: median %.2f" % (
        statistics.median(errors))
    # Back to patrol afterwards.
    later = [mode for mode, s, _ in intervals if s >= end]
    assert later and later[0] in (PATROL, SAFETY_GUARD), intervals
    assert PATROL in later, intervals


#: crossing.world: the person who steps out from behind a pillar across the robot's path.
CROSSER = "cara"
#: The half-width of the lane the laser watches ahead of the robot (behaviors.clearance:
#: HALF_WIDTH_M + LANE_MARGIN_M) plus half the depth of a side-on person's torso.
LANE_HALF_WIDTH_M = 0.1525 + 0.05 + 0.13


def test_crossing_the_laser_keeps_the_robot_clear_of_the_person_crossing_its_path(tmp_path_factory):
    scenario = load_scenario("crossing")
    out = scenario_run("crossing", tmp_path_factory)
    trace = read_trace(os.path.join(out, "trace.jsonl"))
    near = [r for r in trace.rows if r["nearest"] == "actor " + CROSSER]
    assert near, "%s was never the nearest thing to the robot: it met her too late" % CROSSER
    closest = min(near, key=lambda r: r["clearance"])
    driving = [r for r in near if driving_towards(r)]
    closest_driving = min(driving, key=lambda r: r["clearance"]) if driving else None
    # The crossing stop distance, for the report (pytest -s shows it).
    print("\ncrossing stop distance: closest approach of the robot body to %s %.3f m at "
          "t=%.1f s (robot %s, cmd %s); while driving towards her %s" % (
              CROSSER, closest["clearance"], closest["t"], closest["robot"], closest["cmd"],
              "%.3f m at t=%.1f s" % (closest_driving["clearance"], closest_driving["t"])
              if closest_driving else "never"))
    # She was in the lane ahead of the patrolling robot, within the slow distance, and the
    # speed was cut: otherwise she crossed too early or too late (or the robot had stopped to
    # follow someone) and the run proves nothing.
    events = read_jsonl(os.path.join(out, "events.jsonl"))
    patrol = [(s, e) for mode, s, e in mode_intervals(events, trace.rows[-1]["t"])
              if mode == PATROL]
    cut = []
    for r in trace.rows:
        if not any(s <= r["t"] <= e for s, e in patrol):
            continue
        x, y, yaw = r["robot"]
        cx, cy = r["actors"][CROSSER][:2]
        ahead = (cx - x) * math.cos(yaw) + (cy - y) * math.sin(yaw)
        side = -(cx - x) * math.sin(yaw) + (cy - y) * math.cos(yaw)
        if 0.0 < ahead < 1.2 and abs(side) < LANE_HALF_WIDTH_M and r["cmd"][0] < 0.25:
            cut.append(r)
    assert cut, "the patrolling robot never slowed for %s in its lane" % CROSSER
    if closest_driving is not None:
        assert closest_driving["clearance"] >= scenario.min_clearance, closest_driving
    assert closest["clearance"] > 0.0, closest


def moving(row) -> bool:
    return abs(row["cmd"][0]) + abs(row["cmd"][1]) > 1e-3


def assert_stall_stops_the_robot_within_half_a_second(out: str, sensor: str) -> None:
    """From the trace of a run whose ``sensor`` ("camera" or "scan") stalled: the robot
    moved before, obeyed only zero commands from 0.5 s of simulated time into the stall
    on, and moved again after it. Prints when the last moving command came."""
    trace = read_trace(os.path.join(out, "trace.jsonl"))
    stalled = [r for r in trace.rows if r[sensor + "_stalled"]]
    assert stalled, "the %s never stalled: the helper's mode never lasted long enough" % sensor
    t0 = stalled[0]["t"]
    before = [r for r in trace.rows if t0 - 1.0 <= r["t"] < t0]
    assert any(moving(r) for r in before), \
        "the robot was not moving before the stall, so the test proves nothing"
    late = [r for r in stalled if r["t"] >= t0 + 0.5]
    assert late, "the stall was shorter than 0.5 s"
    assert all(r["cmd"] == [0.0, 0.0] for r in late), [(r["t"], r["cmd"]) for r in late[:8]]
    last = max((r["t"] for r in stalled if moving(r)), default=t0)
    print("\n%s stall at t %.1f s: last command that moved %.2f s after it (sim time)"
          % (sensor, t0, last - t0))
    after = [r for r in trace.rows if r["t"] > stalled[-1]["t"] + 1.0]
    assert any(moving(r) for r in after), "the robot did not move again after the stall"


def test_camera_stall_mid_follow_stops_the_robot_within_half_a_second(tmp_path):
    out = run_scenario("corridor", str(tmp_path), duration=40.0, stall=[
        "--sensor", "camera", "--mode", "follow", "--after", "2.0", "--stall", "3.0"])
    assert_stall_stops_the_robot_within_half_a_second(out, "camera")


def test_scan_stall_mid_patrol_stops_the_robot_within_half_a_second(tmp_path):
    # 4 s into the patrol the laser goes silent for 3 s: scan_stale_s (0.3 s) after the
    # last scan, and a tick, the guard holds the robot; when scans return it drives on.
    out = run_scenario("corridor", str(tmp_path), duration=20.0, stall=[
        "--sensor", "scan", "--mode", "patrol", "--after", "4.0", "--stall", "3.0"])
    assert_stall_stops_the_robot_within_half_a_second(out, "scan")
