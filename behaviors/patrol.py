"""Patrol: drive the waypoint loop with a go-to-goal controller on odometry.

The lowest priority of the tree, so it runs whenever nothing more important does, and it
never finishes (RUNNING). The goal index lives on the blackboard (``/patrol/waypoint``) so
it survives preemption: after a safety stop the patrol carries on to the same waypoint,
while after a follow (which sets ``/patrol/resume_nearest``) it resumes from the waypoint
nearest to where the chase left the robot instead of driving back across the site.

Every command is cut to the laser's clearance (behaviors.clearance): the patrol slows down
near an obstacle on its route and stops at the stop distance. It never drives around one;
when an obstacle has held it for ``patrol_blocked_wait_s`` (a person usually steps aside
by then) it gives that waypoint up and drives to the next, so a box left on the route costs
one waypoint, not the patrol.
"""
from __future__ import annotations

import logging
from typing import Optional

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.blackboard_keys import read
from behaviors.clock import Clock
from behaviors.config import Config
from behaviors.control import ZERO, GoToGoal, Twist2D, distance, nearest
from behaviors.modes import PATROL
from behaviors.velocity import VelocityBehaviour

_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE
_log = logging.getLogger(__name__)


class Patrol(VelocityBehaviour):
    """Go to each waypoint in turn (looping); a waypoint within tolerance counts as reached,
    one that an obstacle keeps the robot from for ``patrol_blocked_wait_s`` is skipped."""

    def __init__(self, name: str, config: Config, clock: Clock) -> None:
        super().__init__(name)
        self.clock = clock
        self.blocked_wait_s = config.patrol_blocked_wait_s
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
        #: Waypoints given up because an obstacle held the robot (the same kind of counter).
        self.skipped = 0
        self._blocked_since: Optional[float] = None

    def initialise(self) -> None:
        self._blocked_since = None
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
        wanted = self.controller.command(pose, goal)
        sent = self.command(wanted)
        where = "to waypoint %d/%d (%.1f, %.1f), %.1f m away" % (
            index + 1, len(self.waypoints), goal[0], goal[1], distance(pose, goal))
        if not self._held(wanted, sent):
            self._blocked_since = None
            self.feedback_message = where + (" (%s)" % self.limited if self.limited else "")
            return py_trees.common.Status.RUNNING
        now = self.clock()
        if self._blocked_since is None:
            self._blocked_since = now
        waited = now - self._blocked_since
        if waited < self.blocked_wait_s:
            self.feedback_message = "%s, held (%s) for %.1f of %.1f s" % (
                where, self.limited, waited, self.blocked_wait_s)
            return py_trees.common.Status.RUNNING
        _log.info("patrol: waypoint %d skipped, held %.1f s (%s)", index + 1, waited,
                  self.limited)
        self.skipped += 1
        self._blocked_since = None
        self.blackboard.set(keys.PATROL_WAYPOINT, (index + 1) % len(self.waypoints),
                            overwrite=True)
        self.feedback_message = "%s: skipped, an obstacle held the robot %.1f s (%s)" % (
            where, waited, self.limited)
        return py_trees.common.Status.RUNNING

    @staticmethod
    def _held(wanted: Twist2D, sent: Twist2D) -> bool:
        """The clearance keeps the robot from its waypoint: it stopped the forward motion
        the controller asked for, or all of the motion. A turn it cuts while the robot
        still drives is not counted: the robot makes progress."""
        return ((wanted.linear_x != 0.0 and sent.linear_x == 0.0)
                or (sent.is_zero and not wanted.is_zero))


def create_patrol(config: Config, clock: Clock) -> py_trees.behaviour.Behaviour:
    return Patrol(PATROL, config, clock)
