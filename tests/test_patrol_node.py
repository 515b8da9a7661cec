"""ROS graph tests of patrol_node: a private master, the real node, the real model, a real
face photo on a stand-in camera (tests/ros_nodes/fake_robot.py).

They check what an integrator relies on: an alert with snapshots for an unmasked face,
none for a masked face, zero velocity soon after the camera or the laser stalls, alerts
that survive ``kill -9``, and a clear error (and no motion) for a bad waypoints file.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import cv2
import pytest

from behaviors.alerts import read_alerts
from rosgraph_harness import REPO, RosGraph

pytestmark = pytest.mark.ros

FIXTURES = os.path.join(REPO, "tests", "fixtures")
UNMASKED = os.path.join(FIXTURES, "without_mask", "27.jpg")
MASKED = os.path.join(FIXTURES, "with_mask", "with_mask218.jpg")
FAKE_ROBOT = os.path.join(REPO, "tests", "ros_nodes", "fake_robot.py")
#: The robot's torch-free install (ROBOT=1 scripts/setup.sh; make test builds it).
ROBOT_PYTHON = os.path.join(REPO, ".venv-robot", "bin", "python3")
#: catkin's relay for the node: it runs the node's source in whatever python runs it.
NODE_RELAY = os.path.join(REPO, "catkin_ws", "devel", "lib", "mask_patrol", "patrol_node")


def start_patrol(graph: RosGraph, out: str, extra=()) -> subprocess.Popen:
    argv = ["rosrun", "mask_patrol", "patrol_node",
            "_alert_db:=%s" % os.path.join(out, "alerts.sqlite"),
            # cool-down and budget long enough that one person gives exactly one follow
            "_confirm_frames:=2", "_detect_every:=3"] + list(extra)
    return graph.spawn(argv, "patrol_node")


def start_camera(graph: RosGraph, out: str, image: str, stall_after: float = 0.0,
                 encoding: str = "bgr8", compressed: bool = False,
                 scan_stall_after: float = 0.0):
    return graph.spawn(["python3", FAKE_ROBOT, "--image", image, "--cmd-log",
                        os.path.join(out, "cmd.jsonl"), "--stall-after", str(stall_after),
                        "--scan-stall-after", str(scan_stall_after),
                        "--encoding", encoding] + (["--compressed"] if compressed else []),
                       "fake_robot")


def wait_for(predicate, timeout: float, what: str, graph: RosGraph):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out after %.0f s waiting for %s; patrol_node log:\n%s"
                         % (timeout, what, graph.log_text("patrol_node")[-3000:]))


def alerts_in(out: str):
    db = os.path.join(out, "alerts.sqlite")
    return read_alerts(db) if os.path.exists(db) else []


def read_cmds(out: str):
    path = os.path.join(out, "cmd.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_unmasked_face_raises_one_alert_with_snapshots_and_it_survives_kill_9(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        node = start_patrol(graph, out)
        start_camera(graph, out, UNMASKED)
        alerts = wait_for(lambda: alerts_in(out), 90, "an alert in the store", graph)
        time.sleep(3.0)  # more frames of the same person: still one alert
        os.kill(node.pid, signal.SIGKILL)
        node.wait(timeout=10)
    alerts = alerts_in(out)
    assert len(alerts) == 1, [a.as_dict() for a in alerts]
    alert = alerts[0]
    assert alert.label in ("unmasked", "incorrect")
    face = cv2.imread(alert.face_path)
    frame = cv2.imread(alert.frame_path)
    assert face is not None and face.size > 0, alert.face_path
    assert frame is not None and frame.shape[:2] == (480, 640), alert.frame_path
    # the box lies where fake_robot put the face (left of centre)
    assert alert.x_min < 200 < alert.x_max


def test_patrol_node_runs_in_the_robot_install_without_torch(tmp_path):
    # What a Raspberry Pi-class robot runs: the node in .venv-robot, where torch,
    # torchvision and facenet-pytorch are not installed at all, so any import of them
    # would kill the node before its first alert.
    assert os.path.isfile(ROBOT_PYTHON), (
        "%s is missing: run ROBOT=1 bash scripts/setup.sh (make test does)" % ROBOT_PYTHON)
    absent = subprocess.run([ROBOT_PYTHON, "-c", "import torch"], capture_output=True)
    assert absent.returncode != 0, "torch is importable in .venv-robot: the test proves nothing"
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        graph.spawn([ROBOT_PYTHON, NODE_RELAY,
                     "_alert_db:=%s" % os.path.join(out, "alerts.sqlite"),
                     "_confirm_frames:=2", "_detect_every:=3"], "patrol_node")
        start_camera(graph, out, UNMASKED)
        alerts = wait_for(lambda: alerts_in(out), 90, "an alert in the store", graph)
        log = graph.log_text("patrol_node")
    assert [a.label for a in alerts] in (["unmasked"], ["incorrect"]), log[-2000:]
    assert "Traceback" not in log, log[-2000:]
    assert "(detector mtcnn, runtime onnx)" in log, log[-2000:]  # patrol.yaml's defaults


def test_masked_face_raises_no_alert(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        start_patrol(graph, out)
        start_camera(graph, out, MASKED)
        # detections flow (the node is working) ...
        wait_for(lambda: "ticking" in graph.log_text("patrol_node"), 60, "node start", graph)
        time.sleep(12.0)
    # ... and yet nothing was alerted
    assert alerts_in(out) == []
    cmds = read_cmds(out)
    assert cmds, "patrol_node published no cmd_vel at all"
    assert all(c["v"] >= 0.0 for c in cmds if "v" in c), "the robot reversed"


def test_camera_stall_stops_the_robot_within_half_a_second(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        start_patrol(graph, out)
        start_camera(graph, out, UNMASKED, stall_after=25.0)
        wait_for(lambda: any(e.get("event") == "last_frame" for e in read_cmds(out)), 60,
                 "the camera stall", graph)
        time.sleep(2.0)
    rows = read_cmds(out)
    stall = next(e["wall"] for e in rows if e.get("event") == "last_frame")
    before = [r for r in rows if "v" in r and r["wall"] < stall]
    after = [r for r in rows if "v" in r and r["wall"] > stall + 0.5 + 0.15]
    assert any(abs(r["w"]) > 1e-3 or abs(r["v"]) > 1e-3 for r in before), \
        "the robot never moved towards the face before the stall, so the test proves nothing"
    assert after, "no commands after the stall: the node stopped publishing"
    assert all(r["v"] == 0.0 and r["w"] == 0.0 for r in after), after[:5]


def test_scan_stall_mid_patrol_stops_the_robot_within_half_a_second(tmp_path):
    out = str(tmp_path)
    route = tmp_path / "route.yaml"
    # fake_robot's odometry stays at the origin, so the patrol drives on towards the first
    # waypoint ahead: forward commands until the laser goes silent.
    route.write_text("- {x: 5.0, y: 0.0}\n- {x: -5.0, y: 0.0}\n")
    with RosGraph(os.path.join(out, "logs")) as graph:
        start_patrol(graph, out, ["_waypoints:=%s" % route])
        # a masked face: no alert, no follow, the patrol branch drives
        start_camera(graph, out, MASKED, scan_stall_after=25.0)
        wait_for(lambda: any(e.get("event") == "last_scan" for e in read_cmds(out)), 60,
                 "the scan stall", graph)
        time.sleep(2.0)
    rows = read_cmds(out)
    stall = next(e["wall"] for e in rows if e.get("event") == "last_scan")
    before = [r for r in rows if "v" in r and stall - 3.0 <= r["wall"] < stall]
    # scan_stale_s (0.3 s in patrol.yaml) after the last scan, plus a tick or two; delivery
    after = [r for r in rows if "v" in r and r["wall"] > stall + 0.5 + 0.15]
    assert any(r["v"] > 1e-3 for r in before), \
        "the robot was not patrolling forwards before the stall, so the test proves nothing"
    assert after, "no commands after the stall: the node stopped publishing"
    assert all(r["v"] == 0.0 and r["w"] == 0.0 for r in after), after[:5]
    assert alerts_in(out) == []


@pytest.mark.parametrize("param,content,words", [
    ("waypoints", "waypoints: [{x: 1.0}]\n", "waypoint 0"),   # malformed route
    ("weights", None, "perception.train"),                     # missing model file
])
def test_bad_start_up_input_is_one_clear_error_and_the_robot_stays_stopped(
        tmp_path, param, content, words):
    out = str(tmp_path)
    bad = tmp_path / ("bad_" + param)
    if content is not None:
        bad.write_text(content)
    with RosGraph(os.path.join(out, "logs")) as graph:
        node = start_patrol(graph, out, ["_%s:=%s" % (param, bad)])
        node.wait(timeout=90)
        log = graph.log_text("patrol_node")
    assert node.returncode == 2, log[-2000:]  # exits once: no crash loop
    assert str(bad) in log and words in log, log[-2000:]
    assert "Traceback" not in log, log[-2000:]


def test_frames_in_a_wrong_encoding_are_refused_and_the_robot_does_not_move(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        start_patrol(graph, out)
        start_camera(graph, out, UNMASKED, encoding="32FC1")
        wait_for(lambda: "camera frame refused" in graph.log_text("patrol_node"), 90,
                 "the node to refuse the frames", graph)
        time.sleep(3.0)
        log = graph.log_text("patrol_node")
    assert "32FC1" in log and "encoding" in log, log[-2000:]
    cmds = [c for c in read_cmds(out) if "v" in c]
    assert cmds, "patrol_node published no cmd_vel"
    assert all(c["v"] == 0.0 and c["w"] == 0.0 for c in cmds)
    assert alerts_in(out) == []


def test_a_laser_scan_in_another_frame_is_refused_with_its_frame_named(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        start_patrol(graph, out)
        graph.spawn(["rostopic", "pub", "-r", "2", "scan", "sensor_msgs/LaserScan",
                     "{header: {frame_id: laser}, angle_min: 0.0, angle_max: 0.2, "
                     "angle_increment: 0.1, range_min: 0.12, range_max: 3.5, "
                     "ranges: [1.0, 1.0, 1.0]}"], "scan")
        wait_for(lambda: "laser scan refused" in graph.log_text("patrol_node"), 90,
                 "the node to refuse the scan", graph)
        log = graph.log_text("patrol_node")
    assert "frame 'laser', expected the laser's frame 'base_scan'" in log, log[-2000:]
    assert "Traceback" not in log, log[-2000:]


def test_compressed_camera_images_work_when_configured(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        start_patrol(graph, out, ["_compressed:=true"])
        start_camera(graph, out, UNMASKED, compressed=True)
        alerts = wait_for(lambda: alerts_in(out), 90, "an alert from JPEG frames", graph)
    assert alerts[0].label in ("unmasked", "incorrect")


def test_start_up_purges_old_snapshots_and_camera_info_sets_the_field_of_view(tmp_path):
    from behaviors.alerts import AlertStore, read_events
    from tree_harness import FACE_BOX, real_frame

    out = str(tmp_path)
    db = os.path.join(out, "alerts.sqlite")
    with AlertStore(db, world="test") as store:  # an alert from an earlier run
        old = store.get(store.record(5.0, 1, "unmasked", 0.9, FACE_BOX, real_frame()))
    assert os.path.exists(old.face_path) and os.path.exists(old.frame_path)
    time.sleep(1.5)
    with RosGraph(os.path.join(out, "logs")) as graph:
        # 1e-5 days is 0.86 s: the earlier alert is older than that
        start_patrol(graph, out, ["_retention_days:=0.00001"])
        graph.spawn(["rostopic", "pub", "-l", "camera/camera_info", "sensor_msgs/CameraInfo",
                     "{width: 640, height: 480, K: [400.0, 0, 320, 0, 400.0, 240, 0, 0, 1]}"],
                    "camera_info")
        wait_for(lambda: "from camera_info" in graph.log_text("patrol_node"), 90,
                 "the field of view from camera_info", graph)
        log = graph.log_text("patrol_node")
    assert "1 alert(s) had their snapshots purged" in log, log[-2000:]
    # 2 * atan(320 / 400)
    assert "camera field of view 1.3495 rad from camera_info (width 640, fx 400.0)" in log
    assert not os.path.exists(old.face_path) and not os.path.exists(old.frame_path)
    purge = [e for e in read_events(db) if e.kind == "purge"]
    assert [(e.alert_id, e.actor) for e in purge] == [(old.id, "patrol_node")]
    assert "retention_days" in purge[0].note


def test_an_unknown_detector_is_one_clear_error_naming_the_choices(tmp_path):
    out = str(tmp_path)
    with RosGraph(os.path.join(out, "logs")) as graph:
        node = start_patrol(graph, out, ["_detector:=yolo"])
        node.wait(timeout=90)
        log = graph.log_text("patrol_node")
    assert node.returncode == 2, log[-2000:]
    assert "detector must be one of mtcnn, centerface, got 'yolo'" in log, log[-2000:]
    assert "Traceback" not in log, log[-2000:]


def test_a_corrupt_onnx_classifier_is_one_clear_error_and_the_robot_stays_stopped(tmp_path):
    out = str(tmp_path)
    bad = tmp_path / "mask_classifier.onnx"
    bad.write_bytes(b"not an onnx model")
    with RosGraph(os.path.join(out, "logs")) as graph:
        node = start_patrol(graph, out, ["_runtime:=onnx", "_detector:=centerface",
                                         "_weights:=%s" % bad])
        node.wait(timeout=90)
        log = graph.log_text("patrol_node")
    assert node.returncode == 2, log[-2000:]
    assert str(bad) in log and "python -m perception.export" in log, log[-2000:]
    assert "Traceback" not in log, log[-2000:]
