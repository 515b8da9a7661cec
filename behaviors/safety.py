"""The safety guard: the highest priority of the tree (the velocity rules are in velocity.py).

Four facts stop the robot: the emergency stop is engaged, the camera frame is stale, the
odometry is stale, or the laser scan is stale while a scan is required (missing counts as
stale, so there is no motion before the first fresh input; a scan the node refused, with
NaN ranges or the wrong frame, never reaches the tree, so it goes stale too). What the scan
shows does not stop the robot here: whether an obstacle is a danger depends on the command,
so the guard measures the clearance of each fresh scan and every command is cut to it in
``VelocityBehaviour.command`` (behaviors.clearance says why).

The guard is the py_trees "sequence without memory" form of an eternal guard: an
``Unsafe?`` condition re-checked every tick in front of a ``Stop`` that holds zero velocity,
as the first child of the priority selector, so it preempts any follow or patrol within the
same tick it becomes true and lets go the tick it clears.
"""
from __future__ import annotations

from typing import List, Optional

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.clock import Clock
from behaviors.blackboard_keys import read
from behaviors.clearance import Clearance, ScanLimits
from behaviors.control import ZERO
from behaviors.modes import SAFETY_GUARD
from behaviors.velocity import VelocityBehaviour

_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE


class Unsafe(py_trees.behaviour.Behaviour):
    """Condition: SUCCESS (guard engages) when the e-stop is on or an input is stale.

    Writes the reason to ``/safety/reason`` for the Stop behaviour, the viewer and the node,
    and, with ``limits``, the clearance of the newest fresh scan to ``/safety/clearance``
    (None without one) and the limits to ``/safety/limits``. Without ``limits`` the scan is
    not looked at. A stamp from the future by more than the limit also counts as stale: it
    means the inputs and the tree disagree about the clock (e.g. a simulator restarted), and
    then no staleness check can be trusted.
    """

    def __init__(self, name: str, clock: Clock, camera_stale_s: float,
                 odometry_stale_s: float, limits: Optional[ScanLimits] = None) -> None:
        super().__init__(name)
        for field_name, value in (("camera_stale_s", camera_stale_s),
                                  ("odometry_stale_s", odometry_stale_s)):
            if not value > 0:
                raise ValueError("%s must be > 0, got %r" % (field_name, value))
        self.clock = clock
        self.camera_stale_s = float(camera_stale_s)
        self.odometry_stale_s = float(odometry_stale_s)
        self.limits = limits
        self.blackboard = self.attach_blackboard_client(name=name)
        for key in (keys.ESTOP, keys.CAMERA, keys.ODOMETRY, keys.SCAN):
            self.blackboard.register_key(key=key, access=_READ)
        for key in (keys.SAFETY_REASON, keys.SAFETY_LIMITS, keys.SAFETY_CLEARANCE):
            self.blackboard.register_key(key=key, access=_WRITE)

    def reasons(self) -> List[str]:
        now = self.clock()
        found = []
        estop = read(self.blackboard, keys.ESTOP)
        if estop is not None and estop.value:
            found.append("e-stop engaged")
        inputs = [("camera", keys.CAMERA, self.camera_stale_s),
                  ("odometry", keys.ODOMETRY, self.odometry_stale_s)]
        if self.limits is not None and self.limits.require_scan:
            inputs.append(("scan", keys.SCAN, self.limits.scan_stale_s))
        for what, key, limit in inputs:
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

    def clearance(self) -> Optional[Clearance]:
        """The clearance in the newest scan if it is fresh, else None."""
        if self.limits is None:
            return None
        item = read(self.blackboard, keys.SCAN)
        if item is None or abs(item.age(self.clock())) > self.limits.scan_stale_s:
            return None
        return Clearance.measure(item.value, self.limits)

    def update(self) -> py_trees.common.Status:
        found = self.reasons()
        reason = "; ".join(found)
        self.blackboard.set(keys.SAFETY_REASON, reason, overwrite=True)
        clearance = self.clearance()
        self.blackboard.set(keys.SAFETY_CLEARANCE, clearance, overwrite=True)
        if self.limits is not None:
            self.blackboard.set(keys.SAFETY_LIMITS, self.limits, overwrite=True)
        if found:
            self.feedback_message = reason
            return py_trees.common.Status.SUCCESS
        self.feedback_message = "e-stop off, inputs fresh; %s" % (
            clearance if clearance is not None else "no scan, speed not limited")
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


def create_safety_guard(clock: Clock, camera_stale_s: float, odometry_stale_s: float,
                        limits: Optional[ScanLimits] = None) -> py_trees.behaviour.Behaviour:
    """The guard subtree: Sequence(memory=False)[Unsafe?, Stop]."""
    return py_trees.composites.Sequence(
        name=SAFETY_GUARD, memory=False,
        children=[Unsafe("Unsafe?", clock, camera_stale_s, odometry_stale_s, limits),
                  Stop("Stop")])
