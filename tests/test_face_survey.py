"""sim.face_survey: each actor's face seen from patrol distances, through the live pipeline.

The expected labels come from the world files (what each actor's face texture shows) and
the alert gate from the tree's Config; nothing is taken from a previous run.
"""
from __future__ import annotations

import math

import pytest

from behaviors.config import Config
from conftest import run_module
from perception.types import ALERT_LABELS
from sim.face_survey import FaceView, patrol_pipeline, render, summarise, survey_world
from sim.simulator import Simulator


@pytest.fixture(scope="module")
def pipeline():
    return patrol_pipeline()


def test_place_robot_puts_the_camera_in_front_of_a_face():
    with Simulator("lobby") as sim:
        x, y, yaw = sim.actor_poses()["eli"]
        rx, ry = x + 2.0 * math.cos(yaw), y + 2.0 * math.sin(yaw)
        sim.place_robot(rx, ry, yaw + math.pi)
        ox, oy, oyaw, v, w = sim.odometry()
        assert (ox, oy) == pytest.approx((rx, ry), abs=1e-9)
        assert math.cos(oyaw - (yaw + math.pi)) == pytest.approx(1.0)
        assert v == 0.0 and w == 0.0
        seen = sim.visible_faces()
        fx, fy, cx, cy = sim.camera_intrinsics()
        assert "eli" in seen and abs(seen["eli"][0] - cx) < 0.1 * cx
        with pytest.raises(ValueError, match="finite"):
            sim.place_robot(float("nan"), 0.0, 0.0)


@pytest.mark.parametrize("world", ["lobby", "crowd"])
def test_shipped_classifier_decides_every_surveyed_person_right(pipeline, world):
    # Two retrained classifiers that alerted on crowd's mia and lobby's dora in the
    # scenario suite each had masked views at or above the gate here. No masked view may
    # reach the gate; a person to alert on may miss it in a few views (one frame only
    # delays an alert: the shipped weights have sam at 0.74 in one of 18).
    gate = Config().alert_min_probability
    views = survey_world(world, pipeline)
    with Simulator(world) as sim:
        labels = {actor.name: actor.label for actor in sim.world.actors}
    assert {v.actor for v in views} == set(labels)
    assert all(v.label == labels[v.actor] for v in views)
    found = [v for v in views if v.probabilities]
    assert len(found) >= 0.75 * len(views)
    assert min(v.face_px for v in found) < 25 and max(v.face_px for v in found) > 50
    masked_wrong = [(v.actor, v.distance, v.bearing, round(v.alert_probability, 2))
                    for v in found if v.label not in ALERT_LABELS and v.wrong(gate)]
    assert masked_wrong == []
    summary = summarise(views, gate)
    assert summary["people_wrong"] == [], render(summary)
    assert summary["alert_wrong"] <= 0.1 * summary["alert_views"]


def test_summary_counts_wrong_decisions_on_both_sides():
    views = [FaceView("w", "a", "masked", 2.0, 0.0, 30.0, (0.2, 0.5, 0.3), 0.8),  # wrong
             FaceView("w", "a", "masked", 3.0, 0.0, 20.0, (0.9, 0.05, 0.05), 0.1),  # right
             FaceView("w", "b", "incorrect", 2.0, 0.0, 30.0, (0.3, 0.1, 0.6), 0.7),  # wrong
             FaceView("w", "b", "incorrect", 2.0, 25.0, 0.0, (), None)]  # not found
    summary = summarise(views, gate=0.75)
    assert (summary["masked_views"], summary["masked_wrong"]) == (2, 1)
    assert (summary["alert_views"], summary["alert_wrong"]) == (1, 1)
    assert summary["actors"]["w/b"]["views"] == 2 and summary["actors"]["w/b"]["found"] == 1
    assert summary["actors"]["w/a"]["p_alert_max"] == pytest.approx(0.8)
    # one masked view at the gate is enough to get a person wrong; an alert person found
    # once and missed there is wrong too
    assert summary["people_wrong"] == ["w/a", "w/b"]


def test_a_person_to_alert_on_may_miss_the_gate_in_a_quarter_of_the_views():
    def views(missed, seen):
        return [FaceView("w", "c", "unmasked", 2.0, 0.0, 30.0, (0.5, 0.3, 0.2), 0.5)
                for _ in range(missed)] + [
            FaceView("w", "c", "unmasked", 2.0, 0.0, 30.0, (0.1, 0.8, 0.1), 0.9)
            for _ in range(seen - missed)]
    assert summarise(views(1, 4), gate=0.75)["people_wrong"] == []
    assert summarise(views(2, 4), gate=0.75)["people_wrong"] == ["w/c"]
    assert summarise(views(0, 1), gate=0.75)["people_wrong"] == []


def test_command_line_reports_and_refuses_bad_input(tmp_path):
    out = tmp_path / "survey.json"
    done = run_module("sim.face_survey", "--world", "corridor", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "corridor/walker" in done.stdout and "below it: 0 of" in done.stdout
    assert done.stdout.strip().endswith("views): none")
    assert out.is_file()
    bad = run_module("sim.face_survey", "--world", "no_such_world")
    assert bad.returncode == 2 and "no_such_world" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_a_setting_changes_the_surveyed_pipeline_as_a_launch_parameter_would():
    # In the crowd's far faces (5-6 m) CenterFace found 4 of 83 views with the robot's
    # min_face_size 20 and 23 with 12 (MTCNN: 30); --set is how that was measured.
    pipeline = patrol_pipeline(overrides={"detector": "centerface", "min_face_size": 12})
    assert pipeline.detector.backend == "centerface"
    assert pipeline.detector.min_face_size == 12
    with pytest.raises(ValueError, match="unknown setting.*min_face_sise"):
        patrol_pipeline(overrides={"min_face_sise": 12})


def test_views_from_beyond_six_metres_are_surveyed(pipeline):
    views = survey_world("crowd", pipeline, distances=(6.5,), bearings=(0.0,))
    assert views and {v.distance for v in views} == {6.5}


@pytest.mark.parametrize("args,words", [
    (["--set", "detector=yolo"], "detector must be one of mtcnn, centerface, got 'yolo'"),
    (["--set", "detector"], "expected KEY=VALUE"),
    (["--distances", "0.1"], "--distances must be in [0.5, 20] m"),
    (["--weights", "/no/such.pt"], "weights file /no/such.pt does not exist"),
])
def test_bad_settings_and_distances_are_one_clear_error(args, words):
    bad = run_module("sim.face_survey", "--world", "corridor", *args)
    assert bad.returncode == 2 and words in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    assert ("--set" in bad.stderr.splitlines()[-1]) == (args[0] == "--set")
