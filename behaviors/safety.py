"""The safety guard: the highest priority of the tree (the velocity rules are in velocity.py).

Three facts stop the robot: the emergency stop is engaged, the camera frame is stale, or the
odometry is stale (missing counts as stale, so there is no motion before the first fresh
input). The guard is the py_trees "sequence without memory" form of an eternal guard: an
``Unsafe?`` condition re-checked every tick in front of a ``Stop`` that holds zero velocity,
as the first child of the priority selector, so it preempts any follow or patrol within the
same tick it becomes true and lets go the tick it clears.
"""
from __future__ import annotations

from typing import List

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.clock import Clock
from behaviors.blackboard_keys import read
from behaviors.control import ZERO
from behaviors.modes import SAFETY_GUARD
from behaviors.velocity import VelocityBehaviour

_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE


class Unsafe(py_trees.behaviour.Behaviour):
    """Condition: SUCCESS (guard engages) when the e-stop is on or an input is stale.

    Writes the reason to ``/safety/reason`` for the Stop behaviour, the viewer and the node.
    A stamp from the future by more than the limit also counts as stale: it means the
    inputs and the tree disagree about the clock (e.g. a simulator restarted), and then no
    staleness check can be trusted.
    """

    def __init__(self, name: str, clock: Clock, camera_stale_s: float,
                 odometry_stale_s: float) -> None:
        super().__init__(name)
        for field_name, value in (("camera_stale_s", camera_stale_s),
                                  ("odometry_stale_s", odometry_stale_s)):
            if not value > 0:
                raise ValueError("%s must be > 0, got %r" % (field_name, value))
        self.clock = clock
        self.camera_stale_s = float(camera_stale_s)
        self.odometry_stale_s = float(odometry_stale_s)
        self.blackboard = self.attach_blackboard_client(name=name)
        for key in (keys.ESTOP, keys.CAMERA, keys.ODOMETRY):
            self.blackboard.register_key(key=key, access=_READ)
        self.blackboard.register_key(key=keys.SAFETY_REASON, access=_WRITE)

    def reasons(self) -> List[str]:
        now = self.clock()
        found = []
        estop = read(self.blackboard, keys.ESTOP)
        if estop is not None and estop.value:
            found.append("e-stop engaged")
        for what, key, limit in (("camera", keys.CAMERA, self.camera_stale_s),
                                 ("odometry", keys.ODOMETRY, self.odometry_stale_s)):
            item = read(self.blackboard, key)
            if item is None:
                found.append("no %s yet" % what)
                continue
            age = item.age(now)
            if age > limit:
                found.append("%s stale (%.2f s old)" % (what, age))
            elif age < -limit:
                found.append("%s stamped %.2f s in the future (clock mismatch)" % (what, -age))
        return found

    def update(self) -> py_trees.common.Status:
        found = self.reasons()
        reason = "; ".join(found)
        self.blackboard.set(keys.SAFETY_REASON, reason, overwrite=True)
        if found:
            self.feedback_message = reason
            return py_trees.common.Status.SUCCESS
        self.feedback_message = "e-stop off, camera and odometry fresh"
        return py_trees.common.Status.FAILURE


class Stop(VelocityBehaviour):
    """Hold zero velocity for as long as the guard in front of it stays true (RUNNING)."""

    def __init__(self, name: str = "Stop") -> None:
        super().__init__(name)
        self.blackboard.register_key(key=keys.SAFETY_REASON, access=_READ)

    def update(self) -> py_trees.common.Status:
        self.command(ZERO)
        self.feedback_message = "holding zero velocity: %s" % (
            read(self.blackboard, keys.SAFETY_REASON, "") or "guard engaged")
        return py_trees.common.Status.RUNNING


def create_safety_guard(clock: Clock, camera_stale_s: float,
                        odometry_stale_s: float) -> py_trees.behaviour.Behaviour:
    """The guard subtree: Sequence(memory=False)[Unsafe?, Stop]."""
    return py_trees.composites.Sequence(
        name=SAFETY_GUARD, memory=False,
        children=[Unsafe("Unsafe?", clock, camera_stale_s, odometry_stale_s), Stop("Stop")])
