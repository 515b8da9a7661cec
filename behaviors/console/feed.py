"""What the console knows of each alert store: every alert and event, kept up to date by
polling SQLite.

The robot writes the store from another process, so there is nothing to subscribe to;
polling ``id > last seen`` on a read-only connection every 0.2 s is cheap (an indexed
lookup), finds a committed row well within the 1 s the console promises, and never takes a
write lock from the robot. Acknowledge and resolve go through ``AlertStore.add_event`` on a
separate writable connection, opened on first use.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Tuple

from behaviors.alerts import (AlertRecord, AlertStore, EventRecord, StoreReader, alert_status,
                              read_alerts)
from common.errors import InputError


def parse_db(spec: str) -> Tuple[str, str]:
    """'ROBOT=PATH' or 'PATH' -> (robot name, absolute path); the name defaults to the
    store's folder (out/robot1/alerts.sqlite -> robot1)."""
    robot, sep, path = spec.partition("=")
    if not sep or os.path.sep in robot:
        robot, path = "", spec
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise InputError("no alert store at %s (file not found); pass --db with the "
                         "alerts.sqlite that a patrol node writes" % (path,))
    read_alerts(path)  # a foreign or broken file is one clear line now, not a 500 later
    return robot or os.path.basename(os.path.dirname(path)) or "robot", path


class StoreFeed:
    """One store: its alerts and events in memory, and what changed since the last poll."""

    def __init__(self, index: int, robot: str, path: str) -> None:
        self.index = index
        self.robot = robot
        self.path = path
        self.alerts: Dict[int, AlertRecord] = {}
        self.events: Dict[int, List[EventRecord]] = {}
        self._last_alert = 0
        self._last_event = 0
        self._reader: Optional[StoreReader] = None
        self._writer: Optional[AlertStore] = None
        self._lock = threading.Lock()

    def describe(self) -> Dict[str, Any]:
        return {"store": self.index, "robot": self.robot, "path": self.path}

    def poll(self) -> Tuple[List[AlertRecord], List[EventRecord]]:
        """New and changed alerts (a purge blanks paths) and new events since the last poll.

        Blocking (SQLite): call it from a worker thread.
        """
        with self._lock:
            if self._reader is None:
                self._reader = StoreReader(self.path)
            new_alerts = self._reader.alerts_after(self._last_alert)
            new_events = self._reader.events_after(self._last_event)
            purged = sorted(set(e.alert_id for e in new_events if e.kind == "purge")
                            - set(a.id for a in new_alerts))
            changed = self._reader.alerts_with_ids(purged)
            for alert in new_alerts + changed:
                self.alerts[alert.id] = alert
                self._last_alert = max(self._last_alert, alert.id)
            for event in new_events:
                self.events.setdefault(event.alert_id, []).append(event)
                self._last_event = max(self._last_event, event.id)
            return new_alerts + changed, new_events

    def status(self, alert_id: int) -> str:
        return alert_status(self.events.get(alert_id, []))

    def add_event(self, alert_id: int, kind: str, actor: str, note: str) -> EventRecord:
        """Record an acknowledge or resolve (blocking); KeyError / ValueError as
        ``AlertStore.add_event``."""
        with self._lock:
            if self._writer is None:
                self._writer = AlertStore(self.path)
            return self._writer.add_event(alert_id, kind, actor, note)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
            if self._writer is not None:
                self._writer.close()
