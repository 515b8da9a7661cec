"""The alert store: an append-only SQLite table of alerts, each with two JPEG snapshots.

An alert is the one output of the robot that a person acts on later, so it must not be lost
to a crash: ``record()`` writes and fsyncs both snapshots first, then inserts the row and
commits, and only then returns the row id; a caller publishes the alert after that, so
anything a listener heard of is already on disk. The database runs in WAL mode with
``synchronous=FULL``: NORMAL would already survive a killed process, but FULL also survives
a power cut (the WAL is synced at every commit), and alerts are rare enough (a few per hour)
that the extra fsync costs nothing that matters.

Rows are never deleted and never changed, with one audited exception: triggers in the
database refuse everything else, and opening an existing store appends to it. What staff do
about an alert (acknowledge, resolve) and every purge of old snapshots are new rows in an
``events`` table that is append-only too, so an alert's history shows who did what, when
and why. ``AlertWriter`` runs ``record()`` on its own thread so the behaviour tree, which
raises alerts, never waits on a disk.

Faces are personal data: the database (and its WAL), the snapshot JPEGs and the folders this
module creates are readable by their owner only (0600 / 0700), faces of bystanders are
blurred in the frame snapshot (``perception.privacy``), and ``AlertStore.purge`` deletes
old snapshots for a retention period.
"""
from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from behaviors.control import Pose2D
from common.errors import InputError
from perception.types import LABELS, Track

_log = logging.getLogger(__name__)

#: Where the patrol node writes alerts by default, and where ``alerts`` looks for them
#: (the launch files' output_dir/alerts.sqlite); MASK_PATROL_ALERTS_DB overrides it.
DEFAULT_DB = os.environ.get("MASK_PATROL_ALERTS_DB") or os.path.join(
    os.path.expanduser("~"), ".ros", "mask_patrol", "alerts.sqlite")
SCHEMA_VERSION = 2
#: Seconds a connection waits for another process's write (the robot, the console, a purge).
BUSY_TIMEOUT_S = 10.0
#: What staff can record about an alert; 'purge' is written by ``AlertStore.purge`` only.
STAFF_ACTIONS = ("acknowledge", "resolve")
EVENT_KINDS = STAFF_ACTIONS + ("purge",)
#: Longest name and note accepted for an event (a form field, not a document).
MAX_ACTOR = 100
MAX_NOTE = 2000

_ALERTS_TABLE = """
CREATE TABLE IF NOT EXISTS alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    stamp       REAL    NOT NULL,  -- robot clock (ROS or simulated time), seconds
    wall_time   TEXT    NOT NULL,  -- UTC ISO 8601 when the row was written, for people
    track_id    INTEGER NOT NULL,
    label       TEXT    NOT NULL,  -- unmasked | incorrect (| masked, never alerted by the tree)
    score       REAL    NOT NULL,
    x_min REAL NOT NULL, y_min REAL NOT NULL, x_max REAL NOT NULL, y_max REAL NOT NULL,
    robot_x REAL, robot_y REAL, robot_yaw REAL,  -- odometry frame; NULL when unknown
    face_path   TEXT    NOT NULL,  -- JPEG of the face crop (relative to the database folder)
    frame_path  TEXT    NOT NULL,  -- JPEG of the whole frame with the box drawn
    world       TEXT    NOT NULL,  -- scenario / site name
    session     TEXT    NOT NULL   -- one run of the robot
)"""
_COLUMNS = ("id", "stamp", "wall_time", "track_id", "label", "score", "x_min", "y_min",
            "x_max", "y_max", "robot_x", "robot_y", "robot_yaw", "face_path", "frame_path",
            "world", "session")
_EVENT_COLUMNS = ("id", "alert_id", "kind", "actor", "note", "wall_time", "detail")
_UNCHANGED = " AND ".join("NEW.%s IS OLD.%s" % (c, c) for c in _COLUMNS
                          if c not in ("face_path", "frame_path"))
#: The schema, one statement per item. The update trigger is the guarantee that an alert row
#: can only lose its snapshot paths, and only after a purge of that alert was recorded: an
#: UPDATE passes only when every other column keeps its value, both paths become '' and
#: the events table already holds a 'purge' row for the alert (``AlertStore.purge`` writes
#: both in one transaction). Anything else, a purge without its record included, aborts.
#: A blanked path can never be set again. Deleting rows stays refused, as in version 1.
#: The rule lives in the database so that every writer meets it, not only this module;
#: whoever can write the file can still insert a 'purge' event first, but then the change
#: is on record, which is the point. (Paths in a table of their own would keep alert rows
#: frozen, but the row would no longer say where its snapshots are, and a purge would
#: still be an unrecorded change to that other table unless it had this same trigger.)
_SCHEMA = (
    _ALERTS_TABLE,
    """CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id  INTEGER NOT NULL,  -- the alert it is about (checked by a trigger)
    kind      TEXT    NOT NULL CHECK (kind IN ('acknowledge', 'resolve', 'purge')),
    actor     TEXT    NOT NULL,  -- who: a staff member's name, or the program that purged
    note      TEXT    NOT NULL,  -- why, in words
    wall_time TEXT    NOT NULL,  -- when: UTC ISO 8601
    detail    TEXT    NOT NULL DEFAULT '{}'  -- JSON; a purge lists the files and the rule
)""",
    "CREATE INDEX IF NOT EXISTS events_by_alert ON events (alert_id)",
    """CREATE TRIGGER IF NOT EXISTS events_need_an_alert BEFORE INSERT ON events
WHEN NOT EXISTS (SELECT 1 FROM alerts WHERE id = NEW.alert_id)
BEGIN SELECT RAISE(ABORT, 'events must name an existing alert'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: rows cannot be changed'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: rows cannot be deleted'); END""",
    """CREATE TRIGGER IF NOT EXISTS alerts_append_only_update BEFORE UPDATE ON alerts
WHEN NOT (%s AND NEW.face_path = '' AND NEW.frame_path = ''
          AND EXISTS (SELECT 1 FROM events WHERE alert_id = OLD.id AND kind = 'purge'))
BEGIN SELECT RAISE(ABORT, 'alerts are append-only: rows cannot be changed (but by a recorded purge)');
END""" % _UNCHANGED,
    """CREATE TRIGGER IF NOT EXISTS alerts_append_only_delete BEFORE DELETE ON alerts
BEGIN SELECT RAISE(ABORT, 'alerts are append-only: rows cannot be deleted'); END""",
)


@dataclass(frozen=True)
class AlertEvent:
    """What the tree hands to its alert sink: everything needed to record one alert."""

    #: Clock time at which the tree raised the alert.
    stamp: float
    track: Track
    #: The frame (HxWx3 uint8 BGR) in which ``track.box`` was found.
    frame_bgr: Any
    #: Clock time at which that frame arrived.
    frame_stamp: float
    #: Robot pose from odometry, None when unknown.
    robot_pose: Optional[Pose2D] = None
    #: Boxes of the other faces in the frame that raised no alert (bystanders): blurred in
    #: the frame snapshot unless the store was made with ``blur_bystanders=False``.
    other_boxes: Tuple[Tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True)
class AlertRecord:
    """One row of the store; snapshot paths are absolute, or "" once purged."""

    id: int
    stamp: float
    wall_time: str
    track_id: int
    label: str
    score: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    robot_x: Optional[float]
    robot_y: Optional[float]
    robot_yaw: Optional[float]
    face_path: str
    frame_path: str
    world: str
    session: str

    @property
    def box(self) -> Tuple[float, float, float, float]:
        return (self.x_min, self.y_min, self.x_max, self.y_max)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EventRecord:
    """One row of the events table: what happened to an alert after it was raised."""

    id: int
    alert_id: int
    kind: str
    actor: str
    note: str
    wall_time: str
    #: JSON object; a purge lists the files it removed and the rule that chose them.
    detail: str = "{}"

    def as_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["detail"] = json.loads(self.detail or "{}")
        return out


def alert_status(events: Sequence[EventRecord]) -> str:
    """'resolved' once any resolve was recorded, else 'acknowledged' once any acknowledge
    was, else 'open'. A later acknowledge does not reopen a resolved alert."""
    kinds = set(e.kind for e in events)
    if "resolve" in kinds:
        return "resolved"
    return "acknowledged" if "acknowledge" in kinds else "open"


def _connect(path: str, read_only: bool) -> sqlite3.Connection:
    if read_only:
        from urllib.parse import quote

        conn = sqlite3.connect("file:%s?mode=ro" % quote(os.path.abspath(path)), uri=True,
                               check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    conn.execute("PRAGMA busy_timeout=%d" % int(BUSY_TIMEOUT_S * 1000))
    return conn


def _check_schema(conn: sqlite3.Connection, path: str) -> int:
    """The store's schema version; InputError when the file is not a store we can read."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise InputError("alert store %s has schema version %d, newer than this mask_patrol "
                         "(%d); upgrade mask_patrol to read it" % (path, version, SCHEMA_VERSION))
    columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(alerts)"))
    if columns != _COLUMNS:
        raise InputError("%s is an SQLite file but not a mask_patrol alert store (its 'alerts' "
                         "table is %s); pass the alerts.sqlite the patrol node writes"
                         % (path, "missing" if not columns else "different"))
    events = tuple(row[1] for row in conn.execute("PRAGMA table_info(events)"))
    if events and events != _EVENT_COLUMNS:
        raise InputError("%s has an 'events' table that mask_patrol did not write; pass the "
                         "alerts.sqlite the patrol node writes" % (path,))
    return version


def _event_rows(conn: sqlite3.Connection, where: str = "",
                args: Sequence[Any] = ()) -> List[EventRecord]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
                        ).fetchone():
        return []  # a version 1 store: nothing has happened to its alerts yet
    cursor = conn.execute("SELECT %s FROM events %s ORDER BY id"
                          % (", ".join(_EVENT_COLUMNS), where), tuple(args))
    return [EventRecord(*row) for row in cursor]


def _rows(conn: sqlite3.Connection, base_dir: str, where: str = "",
          args: Sequence[Any] = ()) -> List[AlertRecord]:
    cursor = conn.execute("SELECT %s FROM alerts %s ORDER BY id" % (", ".join(_COLUMNS), where),
                          tuple(args))
    out = []
    for row in cursor:
        values = dict(zip(_COLUMNS, row))
        for key in ("face_path", "frame_path"):  # '' once purged
            if values[key]:
                values[key] = os.path.normpath(os.path.join(base_dir, values[key]))
        out.append(AlertRecord(**values))
    return out


def read_alerts(path: str) -> List[AlertRecord]:
    """All alerts of an existing store, opened read-only (never creates a file).

    Raises InputError naming ``path`` when it is missing or is not an alert store.
    """
    return _read(path, lambda conn: _rows(conn, os.path.dirname(os.path.abspath(path))))


def read_events(path: str) -> List[EventRecord]:
    """All events of an existing store (oldest first), opened read-only."""
    return _read(path, _event_rows)


def _read(path: str, query: Callable[[sqlite3.Connection], Any]) -> Any:
    if not os.path.isfile(path):
        raise InputError("no alert store at %s (file not found); pass --db with the "
                         "alerts.sqlite that the patrol node writes" % (path,))
    try:
        conn = _connect(path, read_only=True)
    except sqlite3.Error as exc:
        raise InputError("cannot open alert store %s: %s" % (path, exc))
    try:
        _check_schema(conn, path)
        return query(conn)
    except sqlite3.DatabaseError as exc:
        raise InputError("cannot read alert store %s: %s (is it an SQLite file?)" % (path, exc))
    finally:
        conn.close()


class StoreReader:
    """A read-only connection to a store for a process that watches it while the robot
    writes (the console): it asks for rows after the last id it has seen and never takes a
    write lock. Not thread-safe: one caller at a time."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.base_dir = os.path.dirname(self.path)
        _read(self.path, lambda conn: None)  # one clear line for a missing or foreign file
        self._conn = _connect(self.path, read_only=True)

    def alerts_after(self, last_id: int) -> List[AlertRecord]:
        return _rows(self._conn, self.base_dir, "WHERE id > ?", (int(last_id),))

    def alerts_with_ids(self, ids: Sequence[int]) -> List[AlertRecord]:
        ids = [int(i) for i in ids]
        if not ids:
            return []
        return _rows(self._conn, self.base_dir, "WHERE id IN (%s)" % ", ".join("?" * len(ids)),
                     ids)

    def events_after(self, last_id: int) -> List[EventRecord]:
        return _event_rows(self._conn, "WHERE id > ?", (int(last_id),))

    def close(self) -> None:
        self._conn.close()


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_age(text: str) -> float:
    """Seconds in an age such as '30d', '12h', '2w', '90m' or '45s' (for ``--older-than``)."""
    match = _AGE.match(str(text))
    if not match:
        raise InputError("age %r is not a number followed by s, m, h, d or w; write e.g. "
                         "--older-than 30d" % (text,))
    return float(match.group(1)) * _AGE_UNITS[match.group(2)]


class AlertStore:
    """Append-only alert table plus snapshot JPEGs; one instance per process and run.

    ``path`` is created (with its folders) when missing and appended to when it exists; a
    version 1 store is upgraded in place (the events table is added, nothing is rewritten).
    Snapshots go to ``snapshot_dir`` (default: ``snapshots/`` beside the database); ``world``
    and ``session`` label every row written by this instance (session defaults to a new
    unique id). ``blur_bystanders`` (default True) blurs the ``other_boxes`` of an alert in
    its frame snapshot; turn it off only to debug the detector. Safe to call from any one
    thread at a time; a lock serialises callers.
    """

    JPEG_QUALITY = 90

    def __init__(self, path: str, snapshot_dir: Optional[str] = None, world: str = "",
                 session: Optional[str] = None, blur_bystanders: bool = True) -> None:
        if not path:
            raise ValueError("path of the alert store must not be empty")
        self.path = os.path.abspath(path)
        self.base_dir = os.path.dirname(self.path)
        self.snapshot_dir = os.path.abspath(snapshot_dir or os.path.join(self.base_dir,
                                                                         "snapshots"))
        self.world = str(world)
        self.session = session or "%s-%s" % (time.strftime("%Y%m%d-%H%M%S"),
                                             uuid.uuid4().hex[:6])
        self.blur_bystanders = bool(blur_bystanders)
        self._lock = threading.Lock()
        self._count = 0
        try:
            _make_private_dirs(self.base_dir)
            _make_private_dirs(self.snapshot_dir)
            if not os.path.exists(self.path):
                _publish_new_store(self.path)
            elif not os.path.isdir(self.path):
                _make_private_file(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise InputError("cannot create alert store at %s (%s); choose a writable folder"
                             % (path, getattr(exc, "strerror", None) or exc))
        try:
            self._conn = _connect(self.path, read_only=False)
        except sqlite3.Error as exc:
            raise InputError("cannot create alert store at %s (%s); choose a writable path"
                             % (path, exc))
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InputError("alert store %s cannot use write-ahead logging (journal mode "
                                 "%s); put it on a local disk" % (path, mode))
            self._conn.execute("PRAGMA synchronous=FULL")
            _upgrade_schema(self._conn, path)
            for suffix in ("-wal", "-shm"):  # SQLite copies the mode, but older files exist
                if os.path.exists(self.path + suffix):
                    _make_private_file(self.path + suffix)
        except InputError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise InputError("cannot create alert store at %s (%s); pass a new file or an "
                             "existing alerts.sqlite" % (path, exc))

    def record(self, stamp: float, track_id: int, label: str, score: float,
               box: Sequence[float], frame_bgr: Any,
               robot_pose: Optional[Pose2D] = None,
               other_boxes: Sequence[Sequence[float]] = ()) -> int:
        """Write both snapshots (fsynced), then insert and commit the row; returns its id.

        ``other_boxes`` are the faces in the frame that raised no alert: blurred in the
        frame snapshot (and in the face crop, where they reach into it) by default.
        """
        box = _check_record(stamp, label, score, box, frame_bgr)
        if self.blur_bystanders and len(other_boxes):
            from perception.privacy import blur_boxes

            frame_bgr = blur_boxes(frame_bgr, [tuple(b) for b in other_boxes], keep=(box,))
        with self._lock:
            face_path, frame_path = self._write_snapshots(int(track_id), label, score, box,
                                                          frame_bgr)
            pose = robot_pose
            values = (float(stamp), _utc_now(), int(track_id), label, float(score)) + box + (
                pose.x if pose else None, pose.y if pose else None, pose.yaw if pose else None,
                self._relative(face_path), self._relative(frame_path), self.world,
                self.session)
            with self._conn:  # commits on success, rolls back on error
                cursor = self._conn.execute(
                    "INSERT INTO alerts (%s) VALUES (%s)"
                    % (", ".join(_COLUMNS[1:]), ", ".join("?" * (len(_COLUMNS) - 1))), values)
            return int(cursor.lastrowid)

    def record_event(self, event: AlertEvent) -> int:
        """Record an alert from the tree. The row's stamp is the frame's (when the face was
        seen), as ROS stamps data: the box and the snapshots belong to that moment, which
        is what staff and any later check against ground truth need, not when the tree got
        round to raising it."""
        track = event.track
        return self.record(event.frame_stamp, track.track_id, track.label, track.score,
                           track.box, event.frame_bgr, event.robot_pose, event.other_boxes)

    def get(self, alert_id: int) -> AlertRecord:
        with self._lock:
            rows = _rows(self._conn, self.base_dir, "WHERE id = ?", (int(alert_id),))
        if not rows:
            raise KeyError("no alert with id %r in %s" % (alert_id, self.path))
        return rows[0]

    def alerts(self) -> List[AlertRecord]:
        with self._lock:
            return _rows(self._conn, self.base_dir)

    def events(self, alert_id: Optional[int] = None) -> List[EventRecord]:
        """Every event, oldest first; only those of ``alert_id`` when given."""
        with self._lock:
            if alert_id is None:
                return _event_rows(self._conn)
            return _event_rows(self._conn, "WHERE alert_id = ?", (int(alert_id),))

    def add_event(self, alert_id: int, kind: str, actor: str, note: str = "") -> EventRecord:
        """Record that ``actor`` acknowledged or resolved an alert (a new row, never an edit).

        ValueError names the bad field: an unknown kind (purges go through ``purge``), an
        empty or over-long name, an over-long note; KeyError for an unknown alert.
        """
        if kind not in STAFF_ACTIONS:
            raise ValueError("kind must be one of %s, got %r" % (", ".join(STAFF_ACTIONS), kind))
        actor = _clean_text(actor, "name", MAX_ACTOR, required=True)
        note = _clean_text(note, "note", MAX_NOTE, required=False)
        with self._lock:
            if not self._conn.execute("SELECT 1 FROM alerts WHERE id = ?",
                                      (int(alert_id),)).fetchone():
                raise KeyError("no alert with id %r in %s" % (alert_id, self.path))
            with self._conn:
                cursor = self._conn.execute(
                    "INSERT INTO events (alert_id, kind, actor, note, wall_time) "
                    "VALUES (?, ?, ?, ?, ?)", (int(alert_id), kind, actor, note, _utc_now()))
            return _event_rows(self._conn, "WHERE id = ?", (cursor.lastrowid,))[0]

    def purge(self, older_than_s: float, reason: str, actor: str,
              now: Optional[float] = None) -> List[EventRecord]:
        """Delete the snapshots of alerts written more than ``older_than_s`` seconds before
        ``now`` (default: the wall clock) and blank their paths; returns the purge events.

        The one function that changes alert rows. For each old alert that still has
        snapshots it deletes both files, then in one transaction records a 'purge' event
        (who: ``actor``, why: ``reason``, what: the files and the cut-off in ``detail``)
        and blanks the paths; the database refuses the blanking without that event. The
        row itself stays, so counts, times, labels and places remain. Files go first: a
        crash in between leaves a row whose files are gone and whose paths are still set,
        which the next purge records (a file already missing is listed as such).
        """
        if not isinstance(older_than_s, (int, float)) or not math.isfinite(older_than_s) \
                or older_than_s < 0:
            raise ValueError("older_than_s must be a finite number >= 0, got %r"
                             % (older_than_s,))
        reason = _clean_text(reason, "reason", MAX_NOTE, required=True)
        actor = _clean_text(actor, "actor", MAX_ACTOR, required=True)
        cutoff = _utc_iso((time.time() if now is None else float(now)) - older_than_s)
        done = []
        with self._lock:
            old = _rows(self._conn, self.base_dir,
                        "WHERE wall_time < ? AND (face_path != '' OR frame_path != '')",
                        (cutoff,))
            for row in old:
                removed, missing = [], []
                for snapshot in (row.face_path, row.frame_path):
                    if not snapshot:  # one path blank, the other not: never written so
                        continue
                    try:
                        os.unlink(snapshot)
                        removed.append(self._relative(snapshot))
                    except FileNotFoundError:
                        missing.append(self._relative(snapshot))
                for folder in set(os.path.dirname(p) for p in (row.face_path, row.frame_path)
                                  if p):
                    _fsync_dir(folder)
                detail = json.dumps({"removed": removed, "already_missing": missing,
                                     "older_than_s": older_than_s, "cutoff": cutoff,
                                     "alert_wall_time": row.wall_time}, sort_keys=True)
                with self._conn:  # the record and the change together, or neither
                    cursor = self._conn.execute(
                        "INSERT INTO events (alert_id, kind, actor, note, wall_time, detail) "
                        "VALUES (?, 'purge', ?, ?, ?, ?)",
                        (row.id, actor, reason, _utc_now(), detail))
                    self._conn.execute("UPDATE alerts SET face_path = '', frame_path = '' "
                                       "WHERE id = ?", (row.id,))
                done.append(_event_rows(self._conn, "WHERE id = ?", (cursor.lastrowid,))[0])
        if done:
            _log.info("purged the snapshots of %d alert(s) older than %s (%s)", len(done),
                      cutoff, reason)
        return done

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "AlertStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _relative(self, path: str) -> str:
        rel = os.path.relpath(path, self.base_dir)
        return path if rel.startswith("..") else rel

    def _write_snapshots(self, track_id: int, label: str, score: float,
                         box: Tuple[float, float, float, float], frame_bgr: Any) -> Tuple[str, str]:
        import cv2

        from perception.classifier import crop_face

        face = crop_face(frame_bgr, box)
        annotated = frame_bgr.copy()
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = (0, 0, 255) if label == "unmasked" else (0, 165, 255)
        thickness = max(2, annotated.shape[0] // 240)
        cv2.rectangle(annotated, (x1, y1), (x2, y2), color, thickness)
        cv2.putText(annotated, "track %d %s %.2f" % (track_id, label, score),
                    (x1, max(12, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        while True:
            self._count += 1
            name = "%s_%04d_track%d" % (self.session, self._count, track_id)
            stem = os.path.join(self.snapshot_dir, name)
            try:
                face_path = _write_jpeg(stem + "_face.jpg", face, self.JPEG_QUALITY)
            except FileExistsError:  # never overwrite a snapshot another row points to
                continue
            frame_path = _write_jpeg(stem + "_frame.jpg", annotated, self.JPEG_QUALITY)
            break
        _fsync_dir(self.snapshot_dir)
        return face_path, frame_path


def _check_record(stamp: float, label: str, score: float, box: Sequence[float],
                  frame_bgr: Any) -> Tuple[float, float, float, float]:
    if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        raise ValueError("stamp must be a finite number, got %r" % (stamp,))
    if label not in LABELS:
        raise ValueError("label must be one of %s, got %r" % (", ".join(LABELS), label))
    if not isinstance(score, (int, float)) or not 0.0 <= float(score) <= 1.0:
        raise ValueError("score must be in [0, 1], got %r" % (score,))
    shape = getattr(frame_bgr, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3 \
            or str(getattr(frame_bgr, "dtype", "")) != "uint8":
        raise ValueError("frame_bgr must be an HxWx3 uint8 array, got %s"
                         % (shape if shape is not None else type(frame_bgr).__name__,))
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError("box must be (x_min, y_min, x_max, y_max), got %r" % (box,))
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1 \
            or x2 <= 0 or y2 <= 0 or x1 >= shape[1] or y1 >= shape[0]:
        raise ValueError("box %r is empty or outside the %dx%d frame" % (box, shape[1], shape[0]))
    return (x1, y1, x2, y2)


def _utc_iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _utc_now() -> str:
    return _utc_iso(time.time())


def _clean_text(value: Any, field: str, limit: int, required: bool) -> str:
    if not isinstance(value, str):
        raise ValueError("%s must be text, got %s" % (field, type(value).__name__))
    value = value.strip()
    if required and not value:
        raise ValueError("%s must not be empty" % (field,))
    if len(value) > limit:
        raise ValueError("%s is %d characters long; keep it under %d" % (field, len(value), limit))
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValueError("%s must not contain control characters" % (field,))
    return value


def _make_private_dirs(path: str) -> None:
    """Create ``path`` and any missing parents as 0700 folders (faces are personal data);
    folders that already exist are left as they are."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            continue
        os.chmod(folder, 0o700)  # whatever the umask


def _upgrade_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create the schema, or bring a version 1 store to version 2, in one transaction.

    Version 1 refused every UPDATE; its trigger is replaced by the one that lets a
    recorded purge (and nothing else) blank the snapshot paths.
    """
    conn.isolation_level = None  # explicit transactions: DDL and the version together
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name = 'alerts'").fetchone()[0]
            version = _check_schema(conn, path) if tables else 0
            if version < SCHEMA_VERSION:
                conn.execute("DROP TRIGGER IF EXISTS alerts_append_only_update")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.isolation_level = ""
    _check_schema(conn, path)


def _publish_new_store(path: str) -> None:
    """Create a new store under a temporary name and link it into place with its schema.

    Why: a reader that polls for the store (the console, a test waiting for the first
    alert) must find no file or a whole store, never an SQLite file without its tables,
    which it rightly refuses as not a store. The link never replaces a store that another
    writer made meanwhile.
    """
    temporary = "%s.%s.new" % (path, uuid.uuid4().hex[:8])
    _make_private_file(temporary)
    try:
        conn = _connect(temporary, read_only=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            _upgrade_schema(conn, temporary)
        finally:
            conn.close()  # the last connection's close folds the write-ahead log in
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        for name in (temporary, temporary + "-wal", temporary + "-shm"):
            if os.path.exists(name):
                os.unlink(name)


def _make_private_file(path: str) -> None:
    """Create ``path`` as an empty 0600 file if missing, or make an existing one 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


def _write_jpeg(path: str, image: Any, quality: int) -> str:
    """Encode and write a JPEG to a new 0600 file (never overwriting), fsynced first."""
    import cv2

    ok, data = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise OSError("could not encode snapshot %s as JPEG" % path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data.tobytes())
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _fsync_dir(path: str) -> None:
    """Make new directory entries durable too (a synced file nobody can find is lost)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def apply_retention(store: AlertStore, retention_days: float,
                    actor: str = "patrol_node") -> List[EventRecord]:
    """Purge the snapshots older than ``retention_days`` (0 keeps them forever); for a node
    to call once at start-up, so faces do not pile up on a robot nobody cleans."""
    if isinstance(retention_days, bool) or not isinstance(retention_days, (int, float)) \
            or not math.isfinite(retention_days) or retention_days < 0:
        raise ValueError("retention_days must be a number of days >= 0 (0 = keep snapshots "
                         "forever), got %r" % (retention_days,))
    if retention_days == 0:
        return []
    return store.purge(retention_days * 86400.0, actor=actor,
                       reason="retention_days is %g: face snapshots are kept %g days"
                       % (retention_days, retention_days))


class AlertWriter:
    """An alert sink for the tree that records on its own thread, then calls ``on_recorded``.

    Calling it only queues the event, so a tick never waits for JPEG encoding or fsync.
    ``on_recorded(record, event)`` runs after the row is committed: that is where the ROS
    node publishes /mask_patrol/alert. A failed write is logged and counted in ``errors``.
    """

    def __init__(self, store: AlertStore,
                 on_recorded: Optional[Callable[[AlertRecord, AlertEvent], None]] = None) -> None:
        if not hasattr(store, "record_event"):
            raise ValueError("store must be an AlertStore, got %r" % (store,))
        self.store = store
        self.on_recorded = on_recorded
        self._queue: "queue.Queue[Optional[AlertEvent]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self.recorded = 0
        self.errors = 0
        self.last_error = ""

    def start(self) -> "AlertWriter":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-writer", daemon=True)
            self._thread.start()
        return self

    def __call__(self, event: AlertEvent) -> None:
        if self._thread is None:
            raise RuntimeError("AlertWriter.start() was not called")
        self._queue.put(event)

    def flush(self) -> None:
        """Block until every queued alert has been handled."""
        self._queue.join()

    def stop(self, timeout: float = 10.0) -> bool:
        """Record what is queued, then end the thread; True when it has ended."""
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(None)
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                try:
                    alert_id = self.store.record_event(event)
                    record = self.store.get(alert_id)
                except Exception as exc:
                    self.errors += 1
                    self.last_error = "%s: %s" % (type(exc).__name__, exc)
                    _log.exception("could not record alert for track %d", event.track.track_id)
                    continue
                self.recorded += 1
                if self.on_recorded is not None:
                    try:
                        self.on_recorded(record, event)
                    except Exception:
                        _log.exception("on_recorded failed for alert %d", alert_id)
            finally:
                self._queue.task_done()
