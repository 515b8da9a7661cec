"""The one type of the tree's injected clock.

Every staleness check, timeout and alert stamp in the tree reads time through a callable
like this (ROS time in the node, so simulated time works; a settable clock in tests),
never through ``time.time()``.
"""
from __future__ import annotations

from typing import Callable

#: Returns the current time in seconds.
Clock = Callable[[], float]
