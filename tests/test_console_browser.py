"""The console in headless Chromium against stores that running patrol_nodes fill.

A private ROS master, the real patrol_node (real detector and classifier) looking at a real
face photo on tests/ros_nodes/fake_robot.py, ``alerts serve`` on the node's store, and
Chromium driven over the DevTools protocol (tests/test_viewer.py): the page must show the
node's alert when it is committed, and a mouse click on Acknowledge must become a row of
the store's events table. A second test runs two robots in their own namespaces under one
master and wants both robots' alerts on one page.

MASK_PATROL_CONSOLE_SCREENSHOT=docs/console.png keeps the first test's screenshot.
"""
from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from typing import List, Sequence

import pytest

from behaviors.alerts import AlertStore, read_alerts
from behaviors.control import Pose2D
from conftest import fixture_paths, head_patch, paste, wall
from rosgraph_harness import REPO, RosGraph, free_port
from behaviors.console.auth import write_token_file
from test_viewer import save_screenshot, start_chromium, wait_for

pytestmark = pytest.mark.ros

FAKE_ROBOT = os.path.join(REPO, "tests", "ros_nodes", "fake_robot.py")
UNMASKED = os.path.join(REPO, "tests", "fixtures", "without_mask", "27.jpg")
#: A node loads two models and must see the face for a few frames: generous, and only a
#: deadline for a wait that ends as soon as the alert is there.
ALERT_WAIT_S = 150.0

ITEMS_JS = """JSON.stringify(Array.from(document.querySelectorAll('#alerts li.alert')).map(
  function (li) { return {uid: li.dataset.uid, status: li.dataset.status,
                          robot: li.dataset.robot, label: li.dataset.label}; }))"""


def start_patrol(graph: RosGraph, db: str, name: str, namespace: str = "",
                 extra: Sequence[str] = ()) -> subprocess.Popen:
    env = {"ROS_NAMESPACE": namespace} if namespace else {}
    return graph.spawn(["rosrun", "mask_patrol", "patrol_node", "_alert_db:=%s" % db,
                        "_confirm_frames:=2", "_detect_every:=3"] + list(extra), name, env=env)


def start_camera(graph: RosGraph, out: str, name: str, namespace: str = "") -> None:
    env = {"ROS_NAMESPACE": namespace} if namespace else {}
    graph.spawn([sys.executable, FAKE_ROBOT, "--image", UNMASKED, "--rate", "10",
                 "--cmd-log", os.path.join(out, name + ".cmd.jsonl")], name, env=env)


def seed_earlier_alerts(db: str) -> None:
    """Alerts from earlier in the day (other people, real photos, lobby poses) so the page
    is seen as staff see it: several alerts, some already handled."""
    people = fixture_paths("without_mask")[2:5]
    poses = [Pose2D(8.6, -2.4, 0.1), Pose2D(8.9, 2.2, 1.6), Pose2D(1.3, 2.6, 3.1)]
    with AlertStore(db, world="lobby", session="morning") as store:
        for i, (photo, pose) in enumerate(zip(people, poses)):
            frame = wall()
            box = paste(frame, head_patch(photo, 150), 230 + 40 * i, 140)
            store.record(100.0 + 40 * i, 3 + i, ("unmasked", "incorrect", "unmasked")[i],
                         (0.93, 0.81, 0.88)[i], box, frame, pose)
        store.add_event(1, "acknowledge", "Dana (security)", "Walking over with masks")
        store.add_event(1, "resolve", "Dana (security)", "Visitor put on a mask")
        store.add_event(2, "acknowledge", "Sam (front desk)", "")


def start_console(graph: RosGraph, tmp: str, dbs: List[str]):
    token_file, token = write_token_file(tmp)
    port = free_port()
    argv = [sys.executable, "-m", "behaviors.alert_cli", "serve", "--port", str(port),
            "--token-file", token_file]
    for db in dbs:
        argv += ["--db", db]
    proc = graph.spawn(argv, "console", env={"PYTHONPATH": REPO + os.pathsep +
                                             os.environ.get("PYTHONPATH", "")})
    base = "http://127.0.0.1:%d/" % port

    def listening():
        assert proc.poll() is None, graph.log_text("console")
        return "alerts console:" in graph.log_text("console")

    wait_for("the console to listen", listening, timeout=60)
    return base, token


def items(tools) -> List[dict]:
    return json.loads(tools.evaluate(ITEMS_JS))


def click(tools, selector: str) -> None:
    """A real mouse click at the middle of the element (what a person does)."""
    rect = json.loads(tools.evaluate(
        "(function(){var r=document.querySelector(%s).getBoundingClientRect();"
        "return JSON.stringify([r.x+r.width/2, r.y+r.height/2]);})()" % json.dumps(selector)))
    for kind in ("mousePressed", "mouseReleased"):
        tools.call("Input.dispatchMouseEvent", type=kind, x=rect[0], y=rect[1], button="left",
                   clickCount=1)


def node_log_tail(graph: RosGraph, name: str) -> str:
    return graph.log_text(name)[-2500:]


def test_console_shows_a_live_alert_from_patrol_node_and_records_an_acknowledge(tmp_path):
    out = str(tmp_path)
    db = os.path.join(out, "lobby-robot", "alerts.sqlite")
    seed_earlier_alerts(db)
    with RosGraph(os.path.join(out, "logs")) as graph:
        # the lobby's route and walls: the page's map draws them (the fake robot stays at 0, 0)
        start_patrol(graph, db, "patrol_node", extra=["_scenario:=lobby"])
        base, token = start_console(graph, out, [db])
        tools = start_chromium(graph, os.path.join(out, "chromium-profile"))
        try:
            tools.call("Page.navigate", url=base + "login?token=" + token)
            wait_for("the page to show the three earlier alerts",
                     lambda: len(items(tools)) == 3)
            assert tools.evaluate("location.href") == base  # the token left the address bar
            start_camera(graph, out, "fake_robot")

            def new_alert():
                assert any(p.poll() is None for p in graph._procs), "processes died"
                shown = [i for i in items(tools) if i["uid"] not in ("0:1", "0:2", "0:3")]
                return shown[0] if shown else None

            try:
                fresh = wait_for("patrol_node's alert on the page", new_alert,
                                 timeout=ALERT_WAIT_S, period=0.5)
            except AssertionError:
                raise AssertionError("no new alert on the page; patrol_node log:\n"
                                     + node_log_tail(graph, "patrol_node"))
            alert_id = int(fresh["uid"].split(":")[1])
            row = [r for r in read_alerts(db) if r.id == alert_id][0]
            assert row.session != "morning" and row.world == "lobby"
            assert fresh["status"] == "open"
            assert row.label == fresh["label"] and fresh["robot"] == "lobby-robot"

            click(tools, 'li.alert[data-uid="%s"]' % fresh["uid"])
            wait_for("the detail of the new alert", lambda: tools.evaluate(
                "document.getElementById('d-title').textContent").startswith(
                    "Alert #%d " % alert_id))
            wait_for("the face snapshot to load", lambda: tools.evaluate(
                "document.getElementById('d-face').naturalWidth") > 0)
            click(tools, "#actor")
            tools.evaluate("document.getElementById('actor').value = ''")
            tools.call("Input.insertText", text="Dana (security)")
            click(tools, "#note")
            tools.call("Input.insertText", text="Asked the visitor to wear a mask")
            click(tools, "#ack-btn")

            def acknowledged_in_sqlite():
                conn = sqlite3.connect(db)
                try:
                    return conn.execute(
                        "SELECT alert_id, kind, actor, note FROM events WHERE alert_id = ?",
                        (alert_id,)).fetchall()
                finally:
                    conn.close()

            rows = wait_for("the acknowledge in the events table", acknowledged_in_sqlite)
            assert rows == [(alert_id, "acknowledge", "Dana (security)",
                             "Asked the visitor to wear a mask")]
            wait_for("the page to show it acknowledged", lambda: any(
                i["uid"] == fresh["uid"] and i["status"] == "acknowledged"
                for i in items(tools)))
            history = tools.evaluate("document.getElementById('d-history').innerText")
            assert "Acknowledged by Dana (security)" in history
            # the status filter: only the one earlier alert nobody handled is still open
            click(tools, '#status-filter button[data-status="open"]')
            wait_for("the open filter", lambda: [(i["uid"], i["status"]) for i in items(tools)]
                     == [("0:3", "open")])
            assert "status=open" in tools.evaluate("document.getElementById('export-csv').href")
            click(tools, '#status-filter button[data-status=""]')
            wait_for("all alerts again", lambda: len(items(tools)) == 4)
            wait_for("the map to draw the robot in the lobby", lambda: tools.evaluate(
                "!!document.getElementById('map-robot') && "
                "document.getElementById('map-world').textContent.indexOf('lobby') === 0"))
            shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
        finally:
            tools.close()
        console_log = graph.log_text("console")
    assert "Traceback" not in console_log and token not in console_log
    save_screenshot(shot, str(tmp_path / "console.png"), "MASK_PATROL_CONSOLE_SCREENSHOT", 200)


def test_two_robots_in_their_namespaces_show_on_one_page(tmp_path):
    out = str(tmp_path)
    dbs = [os.path.join(out, name, "alerts.sqlite") for name in ("robot1", "robot2")]
    for db in dbs:
        AlertStore(db).close()  # the console starts first, on empty stores
    with RosGraph(os.path.join(out, "logs")) as graph:
        base, token = start_console(graph, out, dbs)
        for name, db in zip(("robot1", "robot2"), dbs):
            start_patrol(graph, db, "patrol_node_" + name, namespace=name)
            start_camera(graph, out, "fake_robot_" + name, namespace=name)
        tools = start_chromium(graph, os.path.join(out, "chromium-profile"))
        try:
            tools.call("Page.navigate", url=base + "login?token=" + token)
            wait_for("the page to list both robots", lambda: tools.evaluate(
                "(document.getElementById('robots') || {}).innerText || ''").split() == ["robot1", "robot2"])

            def both_robots():
                return {item["robot"] for item in items(tools)} >= {"robot1", "robot2"}

            try:
                wait_for("alerts of both robots on the page", both_robots,
                         timeout=ALERT_WAIT_S * 1.5, period=0.5)
            except AssertionError:
                raise AssertionError("page shows %s; logs:\n%s\n%s" % (
                    items(tools), node_log_tail(graph, "patrol_node_robot1"),
                    node_log_tail(graph, "patrol_node_robot2")))
        finally:
            tools.close()
        nodes = subprocess.run(["rosnode", "list"], env=graph.env, capture_output=True,
                               text=True, timeout=60).stdout.split()
        topics = subprocess.run(["rostopic", "list"], env=graph.env, capture_output=True,
                                text=True, timeout=60).stdout.split()
    assert {"/robot1/patrol_node", "/robot2/patrol_node"} <= set(nodes), nodes
    assert {"/robot1/camera/image_raw", "/robot2/camera/image_raw"} <= set(topics), topics
    assert "/camera/image_raw" not in topics  # each robot on its own camera
    stores = [read_alerts(db) for db in dbs]
    assert all(stores), "each robot wrote its own store"
