"""Patrol: the waypoint file, the loop driven in a kinematic simulation, where it resumes."""
from __future__ import annotations

import math

import pytest

from behaviors import blackboard_keys as keys
from behaviors.config import Config
from behaviors.control import ZERO, Pose2D, distance
from behaviors.waypoints import load_waypoints, parse_waypoints
from behaviors.tree import PATROL
from common.errors import InputError
from tree_harness import TreeHarness, make_track

SQUARE = ((2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (0.0, 0.0))


def drive(h: TreeHarness, ticks: int, visited=None):
    """Tick with the unicycle closing the loop; note each waypoint the robot comes within
    tolerance of, in order (consecutive repeats dropped)."""
    for _ in range(ticks):
        h.tick(move=True)
        if visited is not None:
            for i, point in enumerate(h.config.waypoints):
                if distance(h.pose, point) <= h.config.waypoint_tolerance and \
                        (not visited or visited[-1] != i):
                    visited.append(i)
    return visited


def test_patrol_visits_the_waypoints_in_order_and_loops():
    h = TreeHarness(Config(waypoints=SQUARE), start_pose=(0.0, 0.0, 0.0))
    visited = drive(h, 900, [])  # 90 s of simulated time, ~8 m per lap at <= 0.3 m/s
    assert h.tip() == PATROL
    assert len(visited) >= 6
    start = visited.index(0)
    for a, b in zip(visited[start:], visited[start + 1:]):
        assert b == (a + 1) % len(SQUARE)  # never skips, never goes backwards
    assert h.behaviour(PATROL).reached >= 5


def test_patrol_starts_from_the_nearest_waypoint():
    h = TreeHarness(Config(waypoints=SQUARE), start_pose=(0.3, 2.2, 0.0))  # near waypoint 2
    visited = drive(h, 200, [])
    assert visited[:2] == [2, 3]


def test_patrol_resumes_from_the_nearest_waypoint_after_a_follow():
    config = Config(waypoints=SQUARE, lost_timeout_s=1.0, cooldown_s=30.0)
    h = TreeHarness(config, start_pose=(0.0, 0.0, 0.0))
    drive(h, 3)
    assert h.read(keys.PATROL_WAYPOINT) == 0  # heading for (2, 0)
    # A person appears; the chase ends with the robot carried near waypoint 2.
    h.see([make_track(1, box=(300, 200, 340, 240))])
    h.tick(move=True)
    assert h.tip() == "Servo To Face"
    h.pose = Pose2D(0.2, 1.7, math.pi)
    h.see([])
    while h.tip() == "Servo To Face":
        h.tick()
    assert h.tip() == PATROL
    assert h.read(keys.PATROL_WAYPOINT) == 2  # nearest, not the old goal 0
    visited = drive(h, 120, [])
    assert visited[:2] == [2, 3]


def test_patrol_keeps_its_goal_after_a_safety_stop():
    h = TreeHarness(Config(waypoints=SQUARE), start_pose=(0.0, 0.0, 0.0))
    drive(h, 40)  # on the way from waypoint 3 (start) towards waypoint 0
    goal = h.read(keys.PATROL_WAYPOINT)
    h.inbox.put_estop(True)
    h.tick(move=True)
    assert h.tip() == "Stop"
    h.pose = Pose2D(h.pose.x, 1.9, h.pose.yaw)  # pushed by hand, nearer another waypoint
    h.inbox.put_estop(False)
    h.tick(move=True)
    assert h.tip() == PATROL
    assert h.read(keys.PATROL_WAYPOINT) == goal


def test_without_waypoints_the_patrol_stands_still():
    h = TreeHarness(Config())
    for _ in range(5):
        assert h.tick() == ZERO
        assert h.tip() == PATROL
    assert "no waypoints" in h.behaviour(PATROL).feedback_message


def test_single_waypoint_is_held():
    h = TreeHarness(Config(waypoints=((0.5, 0.0),)))
    drive(h, 60)
    assert distance(h.pose, (0.5, 0.0)) <= h.config.waypoint_tolerance
    assert h.tick() == ZERO


def test_load_waypoints_both_layouts(tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("- {x: 0, y: 0}\n- {x: 2.5, y: -1}\n")
    nested = tmp_path / "scenario.yaml"
    nested.write_text("world: lobby\nwaypoints:\n  - {x: 1, y: 2}\n")
    assert load_waypoints(str(bare)) == ((0.0, 0.0), (2.5, -1.0))
    assert load_waypoints(str(nested)) == ((1.0, 2.0),)
    Config(waypoints=load_waypoints(str(bare)))  # what the node does


@pytest.mark.parametrize("text,expected", [
    ("- {x: 1}\n", "waypoint 0"),
    ("- {x: 1, y: 2}\n- {x: one, y: 2}\n", "waypoint 1"),
    ("- {x: 1, y: .nan}\n", "finite"),
    ("[]\n", "non-empty"),
    ("world: lobby\n", "'waypoints'"),
    ("- [1, 2]\n", "waypoint 0"),
    ("waypoints: [\n", "not valid YAML"),
])
def test_bad_waypoint_files_name_the_file_and_the_problem(tmp_path, text, expected):
    path = tmp_path / "route.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_waypoints(str(path))
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_waypoint_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="missing.yaml"):
        load_waypoints(str(tmp_path / "missing.yaml"))
    with pytest.raises(InputError, match="route"):
        parse_waypoints(None, source="route")
