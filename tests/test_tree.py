"""The whole tree as create_root() builds it: its shape, that it never finishes, that it can
be drawn with no ROS, and that stopping it stops the robot."""
from __future__ import annotations

import os
import subprocess
import sys

import py_trees
import pytest

from behaviors import blackboard_keys as keys
from behaviors import ros_io
from behaviors.config import Config
from behaviors.control import ZERO
from common.errors import InputError
from common.ros_messages import ranges_to_laser_scan
from behaviors.tree import (FOLLOW_UNMASKED, IDLE, MODES, PATROL, SAFETY_GUARD, active_branch,
                            create_root, current_command)
from tree_harness import TreeHarness, make_track

ROUTE = Config(waypoints=((2.0, 0.0), (2.0, 2.0)))


def test_create_root_needs_no_arguments_and_has_the_documented_shape():
    py_trees.blackboard.Blackboard.clear()
    root = create_root()
    assert isinstance(root, py_trees.composites.Parallel)
    assert isinstance(root.policy, py_trees.common.ParallelPolicy.SuccessOnAll)
    assert [c.name for c in root.children] == ["Topics2BB", "Perceive", "Raise Alerts",
                                               "Priorities"]
    gather, _, _, priorities = root.children
    assert [c.name for c in gather.children] == ["Reset Command", "Camera2BB", "Odometry2BB",
                                                 "EStop2BB", "CameraInfo2BB", "Scan2BB"]
    assert [c.name for c in priorities.children] == list(MODES)
    assert MODES == ("Safety Guard", "Follow Unmasked", "Patrol")
    follow = priorities.children[1]
    assert [c.name for c in follow.children] == ["Unmasked Confirmed?", "Servo To Face"]
    assert isinstance(follow, py_trees.composites.Sequence) and not follow.memory


def test_active_branch_names_the_mode_that_holds_the_tip():
    h = TreeHarness(ROUTE)
    assert active_branch(h.root) == IDLE  # never ticked
    h.tick()
    assert active_branch(h.root) == PATROL
    h.see([make_track(3)])
    h.tick()
    assert active_branch(h.root) == FOLLOW_UNMASKED
    h.tick(dt=1.0, feed=False)  # camera and odometry go stale: the guard holds the robot
    assert active_branch(h.root) == SAFETY_GUARD


def test_create_root_refuses_a_non_config():
    with pytest.raises(ValueError, match="config"):
        create_root({"tick_hz": 10})


def test_py_trees_render_draws_the_tree_without_ros(tmp_path):
    env = dict(os.environ)
    env.pop("ROS_MASTER_URI", None)
    render = os.path.join(os.path.dirname(sys.executable), "py-trees-render")
    proc = subprocess.run([render, "behaviors.tree.create_root"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for ext in ("dot", "png", "svg"):
        assert (tmp_path / ("mask_patrol." + ext)).stat().st_size > 100
    dot = (tmp_path / "mask_patrol.dot").read_text()
    for name in ("Safety Guard", "Follow Unmasked", "Servo To Face", "Patrol", "Perceive"):
        assert name in dot


def test_root_never_finishes_whatever_happens():
    h = TreeHarness(ROUTE)
    scenes = [
        lambda: None,                                      # plain patrol
        lambda: h.see([make_track(1)]),                    # follow + alert
        lambda: h.inbox.put_estop(True),                   # safety
        lambda: h.inbox.put_estop(False),
        lambda: h.see([]),                                 # lost, give up, patrol again
    ]
    for scene in scenes:
        scene()
        for _ in range(30):
            h.tick(move=True)
            assert h.root.status == py_trees.common.Status.RUNNING
    assert len(h.alerts) == 1


def test_every_ticked_behaviour_explains_itself():
    h = TreeHarness(ROUTE)
    h.see([make_track(1, box=(400, 200, 440, 240))])
    h.tick()
    h.tick()
    ticked = [b for b in h.root.iterate() if b.status != py_trees.common.Status.INVALID and
              not isinstance(b, py_trees.composites.Composite)]
    expected = {"Camera2BB", "Unsafe?", "Unmasked Confirmed?", "Raise Alerts",
                "Servo To Face", "Perceive"}
    assert {b.name for b in ticked} >= expected
    for behaviour in ticked:
        assert behaviour.feedback_message, behaviour.name
    assert "following track 1" in h.behaviour("Servo To Face").feedback_message


def test_interrupting_or_shutting_down_the_tree_zeroes_the_command():
    h = TreeHarness(ROUTE)
    assert h.tick().linear_x > 0  # patrolling
    h.root.stop(py_trees.common.Status.INVALID)  # what a node does before it exits
    assert current_command() == ZERO
    assert h.tick().linear_x > 0
    h.see([make_track(2, box=(400, 200, 440, 240))])
    assert not h.tick().is_zero  # following
    h.shutdown()  # BehaviourTree.shutdown() alone (it does not terminate) also stops it
    assert h.read(keys.COMMAND) == ZERO


def test_switching_branches_never_leaves_an_old_command_behind():
    h = TreeHarness(ROUTE)
    patrol = h.tick()
    assert patrol.linear_x > 0
    h.see([make_track(2, box=(100, 200, 140, 240))])  # a small face on the left
    follow = h.tick()
    assert h.tip() == "Servo To Face"
    # The preempted patrol released the base without erasing the new follow command.
    assert follow.angular_z > 0 and follow != patrol
    h.tick(feed=False)
    h.clock.advance(1.0)
    assert h.tick(feed=False) == ZERO  # inputs went quiet: stopped, not the last command


def test_scan2bb_puts_the_newest_scan_on_the_blackboard_and_the_tree_acts_on_it():
    import math

    import numpy as np

    ahead = np.full(360, np.inf, dtype=np.float32)
    ahead[:5] = ahead[-5:] = 0.15  # something right in front of the robot
    msg = ranges_to_laser_scan(ahead, 0.0, 2 * math.pi / 359, 0.12, 3.5, "base_scan")
    scan = ros_io.scan_to_ranges(msg, expected_frame="base_scan")

    without = TreeHarness(ROUTE)
    without.scan = None
    for _ in range(3):
        assert without.tick() == ZERO  # a scan is required: no scan, no motion
    assert without.read(keys.SCAN) is None and "no scan yet" in without.behaviour("Scan2BB").feedback_message

    h = TreeHarness(ROUTE)
    h.scan = None
    with pytest.raises(InputError, match="scan_to_ranges"):
        h.inbox.put_scan(ahead)  # a bare array: the node converts and checks every scan
    seen = []
    for _ in range(5):
        arrived = h.clock()
        h.inbox.put_scan(scan)
        seen.append(h.tick(move=True))  # the tick comes 0.1 s later
        item = h.read(keys.SCAN)
        assert item.value is scan and item.stamp == arrived  # stamped on arrival, like the others
    assert item.seq == 5 and "scan #5, 0.10 s old" in h.behaviour("Scan2BB").feedback_message
    assert "nearest 0.15 m" in str(item)  # what the tree viewer shows
    # 2 cm in front of the body, within the turning circle: no driving on, no turning.
    assert all(c == ZERO for c in seen) and h.tip() == PATROL
