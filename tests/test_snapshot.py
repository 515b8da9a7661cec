"""behaviors.snapshot on a real py_trees tree: structure, statuses after ticks, the tip, the
blackboard, the py_trees_js shape, and the change detection that gates publishing."""
from __future__ import annotations

import json
import operator

import py_trees
import pytest
from py_trees.blackboard import Blackboard
from py_trees.common import ComparisonExpression, ParallelPolicy, Status

from behaviors.snapshot import (COLOURS, Change, ChangeDetector, check_snapshot, short_text,
                                tree_snapshot)
from common.errors import InputError


@pytest.fixture(autouse=True)
def clean_blackboard():
    """py_trees' blackboard is process-global: give every test an empty one."""
    Blackboard.clear()
    yield
    Blackboard.clear()


def make_tree():
    """A small patrol-shaped tree from py_trees' own behaviours, with blackboard clients.

    Root (parallel) ticks Gather (writes /faces = 3) and Decide (selector): Follow Unmasked
    fails because /faces is not above 5, so Patrol (running for 2 ticks, then success) runs.
    """
    b = {}
    b["count"] = py_trees.behaviours.SetBlackboardVariable("Count Faces", "/faces", 3,
                                                           overwrite=True)
    b["camera"] = py_trees.behaviours.Success("Camera OK")
    b["gather"] = py_trees.composites.Sequence("Gather", memory=False,
                                               children=[b["count"], b["camera"]])
    b["seen"] = py_trees.behaviours.CheckBlackboardVariableValue(
        "Unmasked Seen?", ComparisonExpression("/faces", 5, operator.gt))
    b["track"] = py_trees.behaviours.Running("Track")
    b["follow"] = py_trees.composites.Sequence("Follow Unmasked", memory=False,
                                               children=[b["seen"], b["track"]])
    b["patrol"] = py_trees.behaviours.TickCounter("Patrol", duration=2,
                                                  completion_status=Status.SUCCESS)
    b["decide"] = py_trees.composites.Selector("Decide", memory=False,
                                               children=[b["follow"], b["patrol"]])
    b["root"] = py_trees.composites.Parallel(
        "Root", policy=ParallelPolicy.SuccessOnAll(synchronise=False),
        children=[b["gather"], b["decide"]])
    tree = py_trees.trees.BehaviourTree(b["root"])
    visitor = py_trees.visitors.SnapshotVisitor()
    tree.visitors.append(visitor)
    return tree, visitor, b


def by_name(snapshot):
    return {entry["name"]: entry for entry in snapshot["behaviours"].values()}


def test_structure_matches_the_tree_and_the_renderer_shape():
    tree, _, b = make_tree()
    snapshot = tree_snapshot(tree)
    assert check_snapshot(snapshot) is snapshot
    # survives JSON, as it travels in a std_msgs/String
    snapshot = json.loads(json.dumps(snapshot))
    everything = list(b["root"].iterate())
    assert set(snapshot["behaviours"]) == {str(node.id) for node in everything}
    for node in everything:
        entry = snapshot["behaviours"][str(node.id)]
        assert entry["id"] == str(node.id)
        assert entry["name"] == node.name
        assert entry["status"] == "INVALID"
        assert entry["data"]["Class"] == type(node).__module__ + "." + type(node).__name__
        assert entry.get("children", []) == [str(child.id) for child in node.children]
        assert entry["colour"] in COLOURS.values()
    assert by_name(snapshot)["Root"]["colour"] == COLOURS["Parallel"]
    assert by_name(snapshot)["Decide"]["colour"] == COLOURS["Selector"]
    assert by_name(snapshot)["Gather"]["colour"] == COLOURS["Sequence"]
    assert by_name(snapshot)["Track"]["colour"] == COLOURS["Behaviour"]
    assert by_name(snapshot)["Root"]["details"].startswith("SuccessOnAll")
    # never ticked: nothing visited, no tip; 'changed' is the string the JS compares
    assert snapshot["visited_path"] == []
    assert snapshot["tip"] is None
    assert snapshot["changed"] == "true"
    assert tree_snapshot(tree, changed=False)["changed"] == "false"
    assert isinstance(snapshot["timestamp"], float)


def test_statuses_tip_and_visited_path_after_ticks():
    tree, visitor, b = make_tree()
    tree.tick()
    snapshot = tree_snapshot(tree, visited=visitor.visited, timestamp=123.5)
    check_snapshot(snapshot)
    assert snapshot["timestamp"] == 123.5
    statuses = {name: entry["status"] for name, entry in by_name(snapshot).items()}
    # each status is what py_trees holds ...
    for node in b["root"].iterate():
        assert statuses[node.name] == node.status.name
    # ... and what the tree's logic implies: /faces=3 is not > 5, so Patrol runs
    assert statuses["Unmasked Seen?"] == "FAILURE"
    assert statuses["Follow Unmasked"] == "FAILURE"
    assert statuses["Track"] == "INVALID"
    assert statuses["Patrol"] == "RUNNING"
    assert statuses["Decide"] == "RUNNING"
    assert statuses["Gather"] == "SUCCESS"
    assert statuses["Root"] == "RUNNING"
    assert snapshot["tip"] == str(b["patrol"].id)
    # the visited path is the ticked behaviours, parents before children, Track not among them
    names = [snapshot["behaviours"][i]["name"] for i in snapshot["visited_path"]]
    assert names == ["Root", "Gather", "Count Faces", "Camera OK", "Decide",
                     "Follow Unmasked", "Unmasked Seen?", "Patrol"]
    assert set(snapshot["visited_path"]) == {str(i) for i in visitor.visited}
    # feedback messages travel as data and as the line under the name
    seen = by_name(snapshot)["Unmasked Seen?"]
    assert seen["data"]["Feedback"] == b["seen"].feedback_message != ""
    assert seen["details"] == short_text(b["seen"].feedback_message, 80)

    tree.tick()
    tree.tick()  # Patrol's counter runs out: it succeeds, and so do Decide and Root
    snapshot = tree_snapshot(tree, visited=visitor.visited)
    statuses = {name: entry["status"] for name, entry in by_name(snapshot).items()}
    assert statuses["Patrol"] == statuses["Decide"] == statuses["Root"] == "SUCCESS"


def test_visited_path_without_a_visitor_is_the_non_invalid_behaviours():
    tree, _, b = make_tree()
    tree.tick()
    snapshot = tree_snapshot(b["root"])
    expected = {str(node.id) for node in b["root"].iterate() if node.status != Status.INVALID}
    assert set(snapshot["visited_path"]) == expected
    assert str(b["track"].id) not in snapshot["visited_path"]


def test_blackboard_keys_access_and_values():
    tree, visitor, b = make_tree()
    tree.tick()
    snapshot = tree_snapshot(tree, visited=visitor.visited)
    board = snapshot["blackboard"]
    assert board["behaviours"][str(b["count"].id)] == {"/faces": "w"}
    assert board["behaviours"][str(b["seen"].id)] == {"/faces": "r"}
    assert str(b["track"].id) not in board["behaviours"]
    assert board["data"] == {"/faces": str(Blackboard.storage["/faces"])}
    assert board["data"]["/faces"] == "3"
    assert by_name(snapshot)["Count Faces"]["data"]["Blackboard"] == ["/faces (w)"]
    assert tree_snapshot(tree, blackboard_data=False)["blackboard"]["data"] == {}


def test_values_are_short_and_html_safe():
    writer = py_trees.behaviours.SetBlackboardVariable(
        "Describe <face>", "/note", "<b>unmasked</b> " + "x" * 200, overwrite=True)
    root = py_trees.composites.Sequence("Seq & Co", memory=False, children=[writer])
    root.tick_once()
    snapshot = tree_snapshot(root, max_value_chars=40)
    value = snapshot["blackboard"]["data"]["/note"]
    assert "<" not in value and "&lt;b&gt;unmasked" in value
    assert value.endswith("\u2026")
    assert len(short_text("<b>unmasked</b> " + "x" * 200, 40)) == 40
    names = sorted(entry["name"] for entry in snapshot["behaviours"].values())
    assert names == ["Describe &lt;face&gt;", "Seq &amp; Co"]
    assert short_text(1.0 / 3.0) == "0.3333"
    assert short_text("two\nlines") == "two lines"


def test_activity_stream_only_when_enabled():
    tree, visitor, _ = make_tree()
    tree.tick()
    assert "activity" not in tree_snapshot(tree)
    Blackboard.enable_activity_stream(100)
    tree.tick()
    activity = tree_snapshot(tree)["activity"]
    assert len(activity) == 1 and "/faces" in activity[0] and "Count Faces" in activity[0]


def test_change_detector_reports_tree_and_blackboard_changes():
    tree, _, b = make_tree()
    detector = ChangeDetector()
    assert detector.check(tree) == Change(tree=True, blackboard=True)  # the first look
    tree.tick()
    first = detector.check(tree)
    assert first.tree and first.blackboard and first
    tree.tick()  # Patrol still running, same statuses, same tip, same value
    assert not detector.check(tree)
    assert detector.check(tree) == Change(False, False)
    tree.tick()  # Patrol succeeds: statuses change
    assert detector.check(tree) == Change(tree=True, blackboard=False)
    Blackboard.set("/faces", 9)  # only a value changes
    assert detector.check(tree) == Change(tree=False, blackboard=True)
    b["camera"].feedback_message = "camera lagging"  # a feedback message is a tree change
    assert detector.check(tree).tree
    assert not detector.check(tree)
    detector.reset()
    assert detector.check(tree).tree

    quiet = ChangeDetector(watch_blackboard=False)
    quiet.check(tree)
    Blackboard.set("/faces", 10)
    assert not quiet.check(tree)


def test_check_snapshot_names_what_is_wrong():
    tree, visitor, b = make_tree()
    tree.tick()
    good = tree_snapshot(tree, visited=visitor.visited)

    def broken(change):
        copy = json.loads(json.dumps(good))
        change(copy)
        return copy

    root_id = str(b["root"].id)
    cases = [
        (broken(lambda t: t.pop("behaviours")), "'behaviours'"),
        (broken(lambda t: t.pop("visited_path")), "'visited_path'"),
        (broken(lambda t: t.update(timestamp="now")), "'timestamp'"),
        (broken(lambda t: t.update(changed=True)), "'changed'"),
        (broken(lambda t: t["behaviours"][root_id].update(status="DONE")), "DONE"),
        (broken(lambda t: t["behaviours"][root_id]["children"].append("nope")), "nope"),
        (broken(lambda t: t["visited_path"].append("ghost")), "ghost"),
        ([], "JSON object"),
    ]
    for tree_data, words in cases:
        with pytest.raises(InputError, match=words):
            check_snapshot(tree_data, "test.json")


def test_bad_parameters_raise_value_error():
    with pytest.raises(ValueError, match="root"):
        tree_snapshot("not a tree")
    with pytest.raises(ValueError, match="max_value_chars"):
        tree_snapshot(py_trees.behaviours.Success("s"), max_value_chars=1)
    with pytest.raises(ValueError, match="max_value_chars"):
        ChangeDetector(max_value_chars=0)
