"""The names of the tree's three priority branches: the robot's mode, as the node publishes
it on ``~mode``, writes it to the event log and as the scenario judge reads it back.

Code compares with these constants, never with display strings typed again elsewhere;
``behaviors.tree`` exports them with the tree.
"""
from __future__ import annotations

SAFETY_GUARD = "Safety Guard"
FOLLOW_UNMASKED = "Follow Unmasked"
PATROL = "Patrol"
#: Before the first tick, or when no branch holds the tip.
IDLE = "idle"
#: In priority order.
MODES = (SAFETY_GUARD, FOLLOW_UNMASKED, PATROL)
