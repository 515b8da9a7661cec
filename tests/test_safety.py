"""The safety guard, the tree's highest priority: no motion without fresh input, e-stop first."""
from __future__ import annotations

import py_trees
import pytest

from behaviors import blackboard_keys as keys
from behaviors.config import Config
from behaviors.control import ZERO
from behaviors.safety import Unsafe
from behaviors.tree import PATROL, SAFETY_GUARD
from tree_harness import TreeHarness, make_track, real_frame

ROUTE = Config(waypoints=((3.0, 0.0), (3.0, 3.0)))


def test_no_velocity_without_any_input():
    h = TreeHarness(ROUTE)
    for _ in range(5):
        assert h.tick(feed=False) == ZERO
        assert h.tip() == "Stop"
    assert "no camera yet" in h.read(keys.SAFETY_REASON)
    assert "no odometry yet" in h.read(keys.SAFETY_REASON)


def test_no_velocity_with_camera_but_no_odometry():
    h = TreeHarness(ROUTE)
    for _ in range(3):
        h.clock.advance(0.1)
        h.feed(odometry=False)
        h.tree.tick()
        assert h.tip() == "Stop"
        assert h.read(keys.COMMAND) == ZERO
    assert h.read(keys.SAFETY_REASON) == "no odometry yet"


def test_fresh_inputs_release_the_guard_and_the_patrol_moves():
    h = TreeHarness(ROUTE)
    command = h.tick()
    assert h.tip() == PATROL
    assert command.linear_x > 0
    assert h.read(keys.SAFETY_REASON) == ""


def test_stale_camera_stops_the_robot_within_one_tick_and_recovers():
    h = TreeHarness(ROUTE)
    assert h.tick().linear_x > 0
    h.clock.advance(0.45)
    h.feed(frame=False)  # odometry keeps coming, the camera went quiet 0.55 s ago
    assert h.tick(feed=False) == ZERO
    assert h.tip() == "Stop"
    assert "camera stale" in h.read(keys.SAFETY_REASON)
    assert h.tick().linear_x > 0  # a fresh frame: the patrol carries on
    assert h.tip() == PATROL


def test_stale_odometry_stops_the_robot():
    h = TreeHarness(ROUTE)
    assert h.tick().linear_x > 0
    for _ in range(6):
        h.clock.advance(0.1)
        h.feed(odometry=False)
        h.tree.tick()
    assert h.read(keys.COMMAND) == ZERO
    assert "odometry stale" in h.read(keys.SAFETY_REASON)


def test_inputs_stamped_in_the_future_are_not_trusted():
    h = TreeHarness(ROUTE)
    h.inbox.put_frame(real_frame(), stamp=h.clock() + 5.0)
    h.inbox.put_odometry(0, 0, 0)
    h.tree.tick()
    assert h.tip() == "Stop"
    assert "future" in h.read(keys.SAFETY_REASON)


def test_estop_beats_a_confirmed_unmasked_person_but_the_alert_still_goes_out():
    h = TreeHarness(ROUTE)
    h.inbox.put_estop(True)
    h.see([make_track(7)])
    for _ in range(10):
        assert h.tick() == ZERO
        assert h.tip() == "Stop"
        h.see([make_track(7)])
    # Seeing does not need moving: staff hear of the person while the robot is held.
    assert [e.track.track_id for e in h.alerts] == [7]
    assert "e-stop engaged" in h.read(keys.SAFETY_REASON)
    h.inbox.put_estop(False)
    h.tick()
    assert h.tip() == "Servo To Face"
    assert len(h.alerts) == 1


def test_estop_preempts_a_follow_and_zeroes_the_command_that_tick():
    h = TreeHarness(ROUTE)
    small_face_on_the_left = (100.0, 200.0, 140.0, 240.0)
    h.see([make_track(3, box=small_face_on_the_left)])
    moving = h.tick()
    assert h.tip() == "Servo To Face"
    assert moving.linear_x > 0 and moving.angular_z > 0
    h.inbox.put_estop(True)
    h.see([make_track(3, box=small_face_on_the_left)])
    assert h.tick() == ZERO
    assert h.tip() == "Stop"


def test_unsafe_refuses_bad_limits_by_name():
    with pytest.raises(ValueError, match="camera_stale_s"):
        Unsafe("u", clock=lambda: 0.0, camera_stale_s=0.0, odometry_stale_s=0.5)


def test_guard_is_the_first_priority_and_built_from_py_trees_composites():
    h = TreeHarness(ROUTE)
    priorities = h.behaviour("Priorities")
    assert isinstance(priorities, py_trees.composites.Selector) and not priorities.memory
    guard = priorities.children[0]
    assert guard.name == SAFETY_GUARD
    assert isinstance(guard, py_trees.composites.Sequence) and not guard.memory
    assert [c.name for c in guard.children] == ["Unsafe?", "Stop"]
