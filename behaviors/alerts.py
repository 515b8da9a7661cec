"""The alert store: an append-only SQLite table of alerts, each with two JPEG snapshots.

An alert is the one output of the robot that a person acts on later, so it must not be lost
to a crash: ``record()`` writes and fsyncs both snapshots first, then inserts the row and
commits, and only then returns the row id; a caller publishes the alert after that, so
anything a listener heard of is already on disk. The database runs in WAL mode with
``synchronous=FULL``: NORMAL would already survive a killed process, but FULL also survives
a power cut (the WAL is synced at every commit), and alerts are rare enough (a few per hour)
that the extra fsync costs nothing that matters.

Rows are never updated or deleted: triggers in the database refuse it, and opening an
existing store appends to it. ``AlertWriter`` runs ``record()`` on its own thread so the
behaviour tree, which raises alerts, never waits on a disk.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from behaviors.control import Pose2D
from perception.errors import InputError
from perception.types import LABELS, Track

_log = logging.getLogger(__name__)

#: Where the patrol node writes alerts by default, and where ``alerts`` looks for them
#: (the launch files' output_dir/alerts.sqlite); MASK_PATROL_ALERTS_DB overrides it.
DEFAULT_DB = os.environ.get("MASK_PATROL_ALERTS_DB") or os.path.join(
    os.path.expanduser("~"), ".ros", "mask_patrol", "alerts.sqlite")
SCHEMA_VERSION = 1

_SCHEMA = """
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
);
CREATE TRIGGER IF NOT EXISTS alerts_append_only_update BEFORE UPDATE ON alerts
BEGIN SELECT RAISE(ABORT, 'alerts are append-only: rows cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS alerts_append_only_delete BEFORE DELETE ON alerts
BEGIN SELECT RAISE(ABORT, 'alerts are append-only: rows cannot be deleted'); END;
"""
_COLUMNS = ("id", "stamp", "wall_time", "track_id", "label", "score", "x_min", "y_min",
            "x_max", "y_max", "robot_x", "robot_y", "robot_yaw", "face_path", "frame_path",
            "world", "session")


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


@dataclass(frozen=True)
class AlertRecord:
    """One row of the store; snapshot paths are absolute."""

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


def _connect(path: str, read_only: bool) -> sqlite3.Connection:
    if read_only:
        from urllib.parse import quote

        return sqlite3.connect("file:%s?mode=ro" % quote(os.path.abspath(path)), uri=True,
                               check_same_thread=False)
    return sqlite3.connect(path, check_same_thread=False)


def _check_schema(conn: sqlite3.Connection, path: str) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise InputError("alert store %s has schema version %d, newer than this mask_patrol "
                         "(%d); upgrade mask_patrol to read it" % (path, version, SCHEMA_VERSION))
    columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(alerts)"))
    if columns != _COLUMNS:
        raise InputError("%s is an SQLite file but not a mask_patrol alert store (its 'alerts' "
                         "table is %s); pass the alerts.sqlite the patrol node writes"
                         % (path, "missing" if not columns else "different"))


def _rows(conn: sqlite3.Connection, base_dir: str, where: str = "",
          args: Sequence[Any] = ()) -> List[AlertRecord]:
    cursor = conn.execute("SELECT %s FROM alerts %s ORDER BY id" % (", ".join(_COLUMNS), where),
                          tuple(args))
    out = []
    for row in cursor:
        values = dict(zip(_COLUMNS, row))
        for key in ("face_path", "frame_path"):
            values[key] = os.path.normpath(os.path.join(base_dir, values[key]))
        out.append(AlertRecord(**values))
    return out


def read_alerts(path: str) -> List[AlertRecord]:
    """All alerts of an existing store, opened read-only (never creates a file).

    Raises InputError naming ``path`` when it is missing or is not an alert store.
    """
    if not os.path.isfile(path):
        raise InputError("no alert store at %s (file not found); pass --db with the "
                         "alerts.sqlite that the patrol node writes" % (path,))
    try:
        conn = _connect(path, read_only=True)
    except sqlite3.Error as exc:
        raise InputError("cannot open alert store %s: %s" % (path, exc))
    try:
        _check_schema(conn, path)
        return _rows(conn, os.path.dirname(os.path.abspath(path)))
    except sqlite3.DatabaseError as exc:
        raise InputError("cannot read alert store %s: %s (is it an SQLite file?)" % (path, exc))
    finally:
        conn.close()


class AlertStore:
    """Append-only alert table plus snapshot JPEGs; one instance per process and run.

    ``path`` is created (with its folders) when missing and appended to when it exists.
    Snapshots go to ``snapshot_dir`` (default: ``snapshots/`` beside the database); ``world``
    and ``session`` label every row written by this instance (session defaults to a new
    unique id). Safe to call from any one thread at a time; a lock serialises callers.
    """

    JPEG_QUALITY = 90

    def __init__(self, path: str, snapshot_dir: Optional[str] = None, world: str = "",
                 session: Optional[str] = None) -> None:
        if not path:
            raise ValueError("path of the alert store must not be empty")
        self.path = os.path.abspath(path)
        self.base_dir = os.path.dirname(self.path)
        self.snapshot_dir = os.path.abspath(snapshot_dir or os.path.join(self.base_dir,
                                                                         "snapshots"))
        self.world = str(world)
        self.session = session or "%s-%s" % (time.strftime("%Y%m%d-%H%M%S"),
                                             uuid.uuid4().hex[:6])
        self._lock = threading.Lock()
        self._count = 0
        try:
            os.makedirs(self.base_dir, exist_ok=True)
            os.makedirs(self.snapshot_dir, exist_ok=True)
        except OSError as exc:
            raise InputError("cannot create alert store at %s (%s); choose a writable folder"
                             % (path, exc.strerror or exc))
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
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._conn.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
            _check_schema(self._conn, path)
        except InputError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise InputError("cannot create alert store at %s (%s); pass a new file or an "
                             "existing alerts.sqlite" % (path, exc))

    def record(self, stamp: float, track_id: int, label: str, score: float,
               box: Sequence[float], frame_bgr: Any,
               robot_pose: Optional[Pose2D] = None) -> int:
        """Write both snapshots (fsynced), then insert and commit the row; returns its id."""
        box = _check_record(stamp, label, score, box, frame_bgr)
        with self._lock:
            face_path, frame_path = self._write_snapshots(int(track_id), label, score, box,
                                                          frame_bgr)
            pose = robot_pose
            values = (float(stamp), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      int(track_id), label, float(score)) + box + (
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
                           track.box, event.frame_bgr, event.robot_pose)

    def get(self, alert_id: int) -> AlertRecord:
        with self._lock:
            rows = _rows(self._conn, self.base_dir, "WHERE id = ?", (int(alert_id),))
        if not rows:
            raise KeyError("no alert with id %r in %s" % (alert_id, self.path))
        return rows[0]

    def alerts(self) -> List[AlertRecord]:
        with self._lock:
            return _rows(self._conn, self.base_dir)

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


def _write_jpeg(path: str, image: Any, quality: int) -> str:
    """Encode and write a JPEG to a new file (never overwriting), fsynced before returning."""
    import cv2

    ok, data = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise OSError("could not encode snapshot %s as JPEG" % path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
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
