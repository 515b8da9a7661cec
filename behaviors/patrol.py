"""Patrol: drive the waypoint loop with a go-to-goal controller on odometry.

The lowest priority of the tree, so it runs whenever nothing more important does, and it
never finishes (RUNNING). The goal index lives on the blackboard (``/patrol/waypoint``) so
it survives preemption: after a safety stop the patrol carries on to the same waypoint,
while after a follow (which sets ``/patrol/resume_nearest``) it resumes from the waypoint
nearest to where the chase left the robot instead of driving back across the site.
"""
from __future__ import annotations

from typing import Optional

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.blackboard_keys import read
from behaviors.config import Config
from behaviors.control import ZERO, GoToGoal, distance, nearest
from behaviors.modes import PATROL
from behaviors.velocity import VelocityBehaviour

_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE


class Patrol(VelocityBehaviour):
    """Go to each waypoint in turn (looping); a waypoint within tolerance counts as reached."""

    def __init__(self, name: str, config: Config) -> None:
        super().__init__(name)
        self.waypoints = config.waypoints
        self.tolerance = config.waypoint_tolerance
        self.controller = GoToGoal(config.goal_k_linear, config.goal_k_angular,
                                   config.max_linear_speed, config.max_angular_speed,
                                   config.goal_heading_tolerance)
        self.blackboard.register_key(key=keys.ODOMETRY, access=_READ)
        for key in (keys.PATROL_WAYPOINT, keys.PATROL_RESUME_NEAREST):
            self.blackboard.register_key(key=key, access=_WRITE)
        self._replan = True
        #: Waypoints reached since the tree was built (a progress counter for tests and logs).
        self.reached = 0

    def initialise(self) -> None:
        index: Optional[int] = read(self.blackboard, keys.PATROL_WAYPOINT)
        if index is None or read(self.blackboard, keys.PATROL_RESUME_NEAREST, False):
            self._replan = True
            self.blackboard.set(keys.PATROL_RESUME_NEAREST, False, overwrite=True)

    def update(self) -> py_trees.common.Status:
        if not self.waypoints:
            self.command(ZERO)
            self.feedback_message = "no waypoints: standing still"
            return py_trees.common.Status.RUNNING
        odometry = read(self.blackboard, keys.ODOMETRY)
        if odometry is None:
            self.command(ZERO)
            self.feedback_message = "waiting for odometry"
            return py_trees.common.Status.RUNNING
        pose = odometry.value
        index = read(self.blackboard, keys.PATROL_WAYPOINT)
        if self._replan or index is None or not 0 <= index < len(self.waypoints):
            index = nearest(pose, self.waypoints)
            self._replan = False
        if distance(pose, self.waypoints[index]) <= self.tolerance:
            if len(self.waypoints) == 1:
                self.blackboard.set(keys.PATROL_WAYPOINT, index, overwrite=True)
                self.command(ZERO)
                self.feedback_message = "holding at the only waypoint"
                return py_trees.common.Status.RUNNING
            self.reached += 1
            index = (index + 1) % len(self.waypoints)
        self.blackboard.set(keys.PATROL_WAYPOINT, index, overwrite=True)
        goal = self.waypoints[index]
        twist = self.controller.command(pose, goal)
        self.command(twist)
        self.feedback_message = "to waypoint %d/%d (%.1f, %.1f), %.1f m away" % (
            index + 1, len(self.waypoints), goal[0], goal[1], distance(pose, goal))
        return py_trees.common.Status.RUNNING


def create_patrol(config: Config) -> py_trees.behaviour.Behaviour:
    return Patrol(PATROL, config)
