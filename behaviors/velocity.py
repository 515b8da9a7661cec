"""Behaviours that command the base's velocity, and the rule that a command lives one tick.

Every velocity the tree writes goes through ``VelocityBehaviour.command`` (or is the zero
``ResetCommand`` writes at the top of each tick), so a behaviour that is preempted, fails or
shuts down always leaves zero behind: the tree's half of the twist_mux watchdog. For the
same reason ``command`` is where each command is cut to the laser's clearance
(behaviors.clearance explains why there and not in the guard alone): no behaviour, present
or future, can drive into something the scan shows.
"""
from __future__ import annotations

from typing import Optional

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.blackboard_keys import read
from behaviors.control import ZERO, Twist2D

_READ = py_trees.common.Access.READ
_WRITE = py_trees.common.Access.WRITE


class VelocityBehaviour(py_trees.behaviour.Behaviour):
    """Base for behaviours that command the base: they release it (zero) when they end.

    ``terminate()`` writes zero velocity when the behaviour is preempted, fails, finishes or
    the tree shuts down, but only while the command on the blackboard is still the one this
    behaviour wrote. When a higher priority preempts it, py_trees terminates the old branch
    *after* the new one has ticked; zeroing then would overwrite the new command with a
    one-tick stop.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key=keys.COMMAND, access=_WRITE)
        self.blackboard.register_key(key=keys.SAFETY_CLEARANCE, access=_READ)
        self._last_command: Optional[Twist2D] = None
        #: Why the clearance cut the last command ("" = it went out as asked).
        self.limited = ""

    def command(self, twist: Twist2D) -> Twist2D:
        """Command ``twist``, cut to the clearance of this tick's scan; returns what was
        commanded, so the behaviour can tell when an obstacle holds it."""
        clearance = read(self.blackboard, keys.SAFETY_CLEARANCE)
        allowed, self.limited = (clearance.limit(twist) if clearance is not None
                                 else (twist, ""))
        # A fresh object per write, so terminate() can tell its own command by identity.
        self._last_command = Twist2D(allowed.linear_x, allowed.angular_z)
        self.blackboard.set(keys.COMMAND, self._last_command, overwrite=True)
        return self._last_command

    def terminate(self, new_status: py_trees.common.Status) -> None:
        current = read(self.blackboard, keys.COMMAND)
        if current is None or current is self._last_command:
            self.blackboard.set(keys.COMMAND, ZERO, overwrite=True)
        self._last_command = None

    def shutdown(self) -> None:
        """The tree is going away (BehaviourTree.shutdown() does not terminate): stop."""
        self.blackboard.set(keys.COMMAND, ZERO, overwrite=True)
        self._last_command = None


class ResetCommand(py_trees.behaviour.Behaviour):
    """Write zero velocity at the top of every tick: a command lives for one tick only.

    The decision branch overwrites it in the same tick, so the node never publishes a
    command that no behaviour chose this tick (a watchdog, like twist_mux's timeout).
    """

    def __init__(self, name: str = "Reset Command") -> None:
        super().__init__(name)
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key=keys.COMMAND, access=_WRITE)

    def update(self) -> py_trees.common.Status:
        self.blackboard.set(keys.COMMAND, ZERO, overwrite=True)
        self.feedback_message = "command zeroed until a branch chooses one"
        return py_trees.common.Status.SUCCESS
