"""py-trees-tree-viewer end to end: a real ROS master, a publisher of real py_trees snapshots,
the viewer's console script, and headless Chromium reading the drawn tree from the page's DOM
(over the DevTools protocol). Plus the offline --file mode and the one-line errors.

Run as a script (``python3 tests/test_viewer.py --publish TOPIC DIR``) this file is the
publisher process that the ROS test starts.
"""
from __future__ import annotations

import base64
import json
import operator
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import Any, Callable, Dict, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from rosgraph_harness import RosGraph, free_port  # noqa: E402

VIEWER = os.path.join(os.path.dirname(sys.executable), "py-trees-tree-viewer")
#: The glow colours py_trees_js gives each status (its _canvas_update_node_style).
RENDERER_COLOURS = {"RUNNING": "blue", "SUCCESS": "green", "FAILURE": "red", "INVALID": "gray"}


# --------------------------------------------------------------------------------------
# the publisher process (a stand-in for patrol_node's snapshot publishing)
# --------------------------------------------------------------------------------------

def build_tree():
    """A real py_trees tree: a parallel of a blackboard-writing gather branch and a selector
    whose patrol leaf runs for two ticks and then succeeds."""
    import py_trees
    from py_trees.common import ComparisonExpression, ParallelPolicy, Status

    gather = py_trees.composites.Sequence("Gather", memory=False, children=[
        py_trees.behaviours.SetBlackboardVariable("Count Faces", "/faces", 3, overwrite=True),
        py_trees.behaviours.Success("Camera OK")])
    follow = py_trees.composites.Sequence("Follow Unmasked", memory=False, children=[
        py_trees.behaviours.CheckBlackboardVariableValue(
            "Unmasked Seen?", ComparisonExpression("/faces", 5, operator.gt)),
        py_trees.behaviours.Running("Track")])
    patrol = py_trees.behaviours.TickCounter("Patrol", duration=2,
                                             completion_status=Status.SUCCESS)
    decide = py_trees.composites.Selector("Decide", memory=False, children=[follow, patrol])
    root = py_trees.composites.Parallel(
        "Patrol Demo", policy=ParallelPolicy.SuccessOnAll(synchronise=False),
        children=[gather, decide])
    tree = py_trees.trees.BehaviourTree(root)
    visitor = py_trees.visitors.SnapshotVisitor()
    tree.visitors.append(visitor)
    return tree, visitor


def publish(topic: str, out_dir: str) -> None:
    """Tick the tree, publish snapshot 1 (latched), wait for the test's go, tick until the
    tree changes, publish snapshot 2; write each published snapshot to OUT_DIR for the test.
    """
    import rospy
    from std_msgs.msg import String

    from behaviors.snapshot import ChangeDetector, tree_snapshot

    rospy.init_node("snapshot_publisher")
    publisher = rospy.Publisher(topic, String, queue_size=1, latch=True)
    tree, visitor = build_tree()
    detector = ChangeDetector()
    phase = 1
    while not rospy.is_shutdown() and phase <= 2:
        tree.tick()
        change = detector.check(tree)
        if change:
            snapshot = tree_snapshot(tree, changed=change.tree, visited=visitor.visited)
            publisher.publish(String(data=json.dumps(snapshot)))
            path = os.path.join(out_dir, "published%d.json" % phase)
            with open(path + ".tmp", "w") as handle:
                json.dump(snapshot, handle)
            os.rename(path + ".tmp", path)
            phase += 1
            while phase == 2 and not os.path.exists(os.path.join(out_dir, "go")):
                if rospy.is_shutdown():
                    return
                time.sleep(0.05)
    rospy.spin()  # stay up: the latched snapshot lives as long as its publisher


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0,
             period: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(period)
    raise AssertionError("timed out after %.0f s waiting for %s (last error: %s)"
                         % (timeout, what, last_error))


def http_get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class DevTools:
    """The few Chrome DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, websocket_url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(websocket_url, max_size=None, open_timeout=10)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.next_id:  # skip events
                if "error" in message:
                    raise RuntimeError("%s failed: %s" % (method, message["error"]))
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError("page JS failed: %s" % result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


def start_chromium(graph: RosGraph, profile: str) -> DevTools:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert os.path.exists(chromium), "chromium is missing: scripts/setup.sh installs it"
    graph.spawn([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
                 "--window-size=1280,800", "--remote-debugging-address=127.0.0.1",
                 "--remote-debugging-port=0", "about:blank"], "chromium")
    port_file = os.path.join(profile, "DevToolsActivePort")

    def devtools_port():
        with open(port_file) as handle:
            return int(handle.read().split()[0])

    port = wait_for("chromium's DevToolsActivePort", devtools_port)
    _, body = http_get("http://127.0.0.1:%d/json/list" % port)
    page = [target for target in json.loads(body) if target["type"] == "page"][0]
    tools = DevTools(page["webSocketDebuggerUrl"])
    tools.call("Page.enable")
    tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=800,
               deviceScaleFactor=1, mobile=False)
    return tools


#: Read what the page drew, from its DOM: each behaviour's name (the renderer's html overlay),
#: the status viewer.js stamped on it, and the glow colour of its SVG box (the renderer's
#: status colour, an feFlood inside the filter the box refers to).
DRAWN_JS = """JSON.stringify({
  nodes: Array.from(document.querySelectorAll('#canvas .html-element')).map(function (el) {
    var id = el.getAttribute('data-behaviour-id');
    var group = id && document.querySelector('g[data-behaviour-id="' + id + '"]');
    var box = group && group.querySelector('[joint-selector=box]');
    var filter = box && box.getAttribute('filter');
    var flood = null;
    if (filter) {
      var filter_id = filter.replace(/^url\\(["']?#/, '').replace(/["']?\\)$/, '');
      var element = document.getElementById(filter_id);
      var fe = element && element.querySelector('feFlood');
      flood = fe && fe.getAttribute('flood-color');
    }
    return {id: id, name: el.querySelector('.html-name').textContent,
            status: el.getAttribute('data-status'), tip: el.classList.contains('is-tip'),
            glow: flood};
  }),
  blackboard: (document.getElementById('blackboard_view') || {}).innerText || '',
  header: (document.getElementById('viewer_header') || {}).innerText || ''
})"""


def drawn_matches(tools: DevTools, snapshot: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The page's drawing if it shows exactly ``snapshot``'s behaviours and statuses."""
    drawn = json.loads(tools.evaluate(DRAWN_JS))
    by_id = {node["id"]: node for node in drawn["nodes"]}
    if set(by_id) != set(snapshot["behaviours"]):
        return None
    for behaviour_id, behaviour in snapshot["behaviours"].items():
        if by_id[behaviour_id]["status"] != behaviour["status"]:
            return None
    return drawn


def check_drawing(drawn: Dict[str, Any], snapshot: Dict[str, Any]) -> None:
    behaviours = snapshot["behaviours"]
    assert sorted(node["name"] for node in drawn["nodes"]) == \
        sorted(b["name"] for b in behaviours.values())
    for node in drawn["nodes"]:
        expected = behaviours[node["id"]]
        assert node["name"] == expected["name"]
        assert node["glow"] == RENDERER_COLOURS[expected["status"]], node
        assert node["tip"] == (node["id"] == snapshot["tip"]), node
    for key, value in snapshot["blackboard"]["data"].items():
        assert "%s: %s" % (key, value) in drawn["blackboard"]


# --------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------

@pytest.mark.ros
def test_live_tree_from_ros_is_drawn_in_chromium(tmp_path):
    assert os.path.exists(VIEWER), "console script missing: pip install -e . (setup.sh)"
    topic = "/patrol_node/tree/snapshots"
    port = free_port()
    with RosGraph(str(tmp_path / "logs")) as graph:
        graph.spawn([sys.executable, os.path.abspath(__file__), "--publish", topic,
                     str(tmp_path)], "publisher")
        first_path = tmp_path / "published1.json"
        wait_for("the first published snapshot", first_path.exists)
        first = json.loads(first_path.read_text())
        viewer = graph.spawn([VIEWER, "--topic", topic, "--port", str(port)], "viewer")
        base = "http://127.0.0.1:%d/" % port

        def viewer_has_snapshot():
            assert viewer.poll() is None, graph.log_text("viewer")
            status, body = http_get(base + "status")
            return json.loads(body)["snapshots"] >= 1

        wait_for("the viewer to receive the latched snapshot", viewer_has_snapshot)
        _, served = http_get(base + "snapshot")
        assert json.loads(served) == first

        tools = start_chromium(graph, str(tmp_path / "chromium-profile"))
        try:
            tools.call("Page.navigate", url=base)
            drawn = wait_for("the page to draw the first snapshot",
                             lambda: drawn_matches(tools, first))
            check_drawing(drawn, first)
            assert "topic " + topic in drawn["header"]
            statuses = {b["status"] for b in first["behaviours"].values()}
            assert statuses == {"RUNNING", "SUCCESS", "FAILURE", "INVALID"}
            # the picture: all four statuses on show (let the async paper settle first)
            time.sleep(0.5)
            shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])

            (tmp_path / "go").write_text("go")  # the publisher ticks on: the tree changes
            second_path = tmp_path / "published2.json"
            wait_for("the second published snapshot", second_path.exists)
            second = json.loads(second_path.read_text())
            drawn = wait_for("the page to follow the tree live",
                             lambda: drawn_matches(tools, second))
            check_drawing(drawn, second)
            changed = [i for i in second["behaviours"]
                       if second["behaviours"][i]["status"] != first["behaviours"][i]["status"]]
            assert changed, "the second snapshot should differ from the first"
        finally:
            tools.close()
    save_screenshot(shot, str(tmp_path / "viewer.png"), "MASK_PATROL_VIEWER_SCREENSHOT", 50)


def save_screenshot(png: bytes, path: str, copy_to_env: str, min_colours: int) -> None:
    """Write a 1280x800 screenshot, copy it where ``$copy_to_env`` says (to refresh the
    README's picture), and fail when it looks blank (fewer than ``min_colours``)."""
    with open(path, "wb") as handle:
        handle.write(png)
    target = os.environ.get(copy_to_env)
    if target:
        shutil.copyfile(path, target)
    from PIL import Image

    image = Image.open(path).convert("RGB")
    assert image.size == (1280, 800)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > min_colours, "the screenshot looks blank"


def run_viewer(args: List[str], env: Optional[Dict[str, str]] = None,
               timeout: float = 30.0) -> subprocess.CompletedProcess:
    merged = dict(os.environ)
    merged.update(env or {})
    return subprocess.run([VIEWER] + args, capture_output=True, text=True, env=merged,
                          timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: List[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


def test_file_mode_serves_page_renderer_and_snapshot(tmp_path):
    from behaviors.snapshot import tree_snapshot

    tree, visitor = build_tree()
    tree.tick()
    snapshots = [tree_snapshot(tree, visited=visitor.visited)]
    tree.tick()
    tree.tick()
    snapshots.append(tree_snapshot(tree, visited=visitor.visited))
    path = tmp_path / "trees.json"
    path.write_text(json.dumps(snapshots))
    port = free_port()
    proc = subprocess.Popen([VIEWER, "--file", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = "http://127.0.0.1:%d/" % port
        wait_for("the viewer to listen", lambda: http_get(base + "status")[0] == 200)
        status = json.loads(http_get(base + "status")[1])
        assert status["snapshots"] == 2 and str(path) in status["source"]
        assert json.loads(http_get(base + "snapshot")[1]) == snapshots[-1]
        code, page = http_get(base)
        assert code == 200
        assets = _Assets()
        assets.feed(page.decode("utf-8"))
        assert any(url.startswith("js/py_trees") for url in assets.urls)
        for url in assets.urls:  # every file the page loads is served
            code, body = http_get(base + url)
            assert code == 200 and len(body) > 100, url
        _, renderer = http_get(base + "js/py_trees-0.6.js")
        assert b"var py_trees = (function()" in renderer
        # the event stream replays both snapshots, oldest first
        with urllib.request.urlopen(base + "events", timeout=5) as stream:
            seen = []
            while len(seen) < 2:
                line = stream.readline().decode("utf-8")
                if line.startswith("data: {\"changed\""):
                    seen.append(json.loads(line[len("data: "):]))
        assert seen == snapshots
        with pytest.raises(urllib.error.HTTPError) as missing:
            http_get(base + "js/../server.py")
        assert missing.value.code == 404
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_port_in_use_is_one_clear_line(tmp_path):
    path = tmp_path / "tree.json"
    from behaviors.snapshot import tree_snapshot

    tree, _ = build_tree()
    path.write_text(json.dumps(tree_snapshot(tree)))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        line = one_line_error(run_viewer(["--file", str(path), "--port", str(port)]))
    assert "port %d" % port in line and "--port" in line


def test_no_master_is_one_clear_line():
    nobody = "http://127.0.0.1:%d" % free_port()
    line = one_line_error(run_viewer(["--port", str(free_port())],
                                     env={"ROS_MASTER_URI": nobody}))
    assert nobody in line and "roscore" in line and "--file" in line


def test_bad_file_and_options_are_one_clear_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "bad.json" in one_line_error(run_viewer(["--file", str(bad)]))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"timestamp": 1.0, "visited_path": []}))
    assert "'behaviours'" in one_line_error(run_viewer(["--file", str(wrong)]))
    assert "--file" in one_line_error(run_viewer(["--no-ros"]))
    assert "--port" in one_line_error(run_viewer(["--port", "70000", "--no-ros"]))


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--publish":
    publish(sys.argv[2], sys.argv[3])
