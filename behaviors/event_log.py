"""The robot's event log: one JSON object a line (mode changes, alerts), appended and
flushed as it happens, so a run can be judged or replayed from what it left behind
(sim.outcome reads it back).
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict


class EventLog:
    """Appends ``{"event": ..., ..., "t": clock()}`` lines to ``path``; never truncates.

    The file is created readable by its owner only: its alert lines point at face
    snapshots.
    """

    def __init__(self, path: str, clock: Callable[[], float]) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.path = path
        self._file = os.fdopen(fd, "a")
        self._clock = clock

    def write(self, row: Dict[str, Any]) -> None:
        self._file.write(json.dumps(dict(row, t=round(self._clock(), 3))) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
