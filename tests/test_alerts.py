"""The alert store and the ``alerts`` CLI: durable, append-only, snapshots before rows."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time

import cv2
import pytest

from behaviors import alert_cli
from behaviors.alerts import (AlertEvent, AlertStore, AlertWriter, alert_status, apply_retention,
                              read_alerts, read_events)
from behaviors.control import Pose2D
from common.errors import InputError
from tree_harness import FACE_BOX, make_track, real_frame

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record_one(store: AlertStore, track_id: int = 3, label: str = "unmasked") -> int:
    return store.record(stamp=12.5, track_id=track_id, label=label, score=0.87, box=FACE_BOX,
                        frame_bgr=real_frame(), robot_pose=Pose2D(1.0, -2.0, 0.25))


def test_record_writes_two_snapshots_and_one_row(tmp_path):
    with AlertStore(str(tmp_path / "alerts.sqlite"), world="lobby", session="s1") as store:
        alert_id = record_one(store)
        row = store.get(alert_id)
    assert (row.track_id, row.label, row.score, row.stamp) == (3, "unmasked", 0.87, 12.5)
    assert row.box == FACE_BOX
    assert (row.robot_x, row.robot_y, row.robot_yaw) == (1.0, -2.0, 0.25)
    assert (row.world, row.session) == ("lobby", "s1")
    face, frame = cv2.imread(row.face_path), cv2.imread(row.frame_path)
    assert face is not None and frame is not None
    assert frame.shape == real_frame().shape
    side = FACE_BOX[3] - FACE_BOX[1]
    assert side <= face.shape[0] <= 1.5 * side  # a crop around the face, not the frame
    # The box is drawn on the frame snapshot: it differs from the photo along the box edge.
    x1, y1 = int(FACE_BOX[0]), int(FACE_BOX[1])
    assert abs(int(frame[y1 + 20, x1, 2]) - int(real_frame()[y1 + 20, x1, 2])) > 40
    assert os.path.dirname(row.face_path) == str(tmp_path / "snapshots")


def test_reopening_appends_and_never_overwrites(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path, session="first") as store:
        first = store.get(record_one(store, track_id=1))
    with AlertStore(path, session="first") as store:  # even a repeated session name
        second = store.get(record_one(store, track_id=2))
        rows = store.alerts()
    assert [r.id for r in rows] == [first.id, second.id] and second.id > first.id
    assert rows[0] == first
    assert first.face_path != second.face_path
    assert cv2.imread(first.face_path) is not None


def test_rows_cannot_be_changed_or_deleted(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path) as store:
        record_one(store)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE alerts SET label = 'masked'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM alerts")
    conn.close()
    assert len(read_alerts(path)) == 1


def test_store_uses_wal_with_full_sync(tmp_path):
    with AlertStore(str(tmp_path / "alerts.sqlite")) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_new_store_appears_under_its_name_only_with_its_schema(tmp_path, monkeypatch):
    """A reader polling for the store (the console, a ROS graph test waiting for the first
    alert) must never find an SQLite file without its tables: it would refuse it as not
    a store. The real schema step is watched, not replaced."""
    import behaviors.alerts as alerts_module

    path = str(tmp_path / "alerts.sqlite")
    seen_while_writing = []
    real_upgrade = alerts_module._upgrade_schema

    def watching_upgrade(conn, name):
        if not os.path.exists(path):
            seen_while_writing.append("absent")
        else:
            try:
                seen_while_writing.append(len(read_alerts(path)))
            except InputError as exc:
                seen_while_writing.append(str(exc))
        return real_upgrade(conn, name)

    monkeypatch.setattr(alerts_module, "_upgrade_schema", watching_upgrade)
    with AlertStore(path) as store:
        record_one(store)
    # first the schema of the new file (not yet there), then the check on opening it
    assert seen_while_writing == ["absent", 0]
    assert len(read_alerts(path)) == 1
    assert not [n for n in os.listdir(str(tmp_path)) if ".new" in n]  # no leftovers
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_alert_survives_kill_9(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    script = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        sys.path.insert(0, %r)
        from behaviors.alerts import AlertStore
        from tree_harness import FACE_BOX, real_frame
        store = AlertStore(%r, world="kill-test")
        alert_id = store.record(1.0, 42, "incorrect", 0.7, FACE_BOX, real_frame())
        print(alert_id, flush=True)
        time.sleep(60)  # still holding the database open when it is killed
    """ % (REPO, os.path.join(REPO, "tests"), path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read()
        assert os.path.exists(path + "-wal")  # the row is in the write-ahead log
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    rows = read_alerts(path)  # read-only, as the CLI does, straight after the crash
    assert [(r.id, r.track_id, r.label, r.world) for r in rows] == \
        [(int(line), 42, "incorrect", "kill-test")]
    assert cv2.imread(rows[0].face_path) is not None
    assert cv2.imread(rows[0].frame_path) is not None
    with AlertStore(path) as store:  # and the robot can append after restarting
        record_one(store)
        assert len(store.alerts()) == 2


def test_uncreatable_store_path_names_the_path(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a folder should be")
    bad = str(blocker / "alerts.sqlite")
    with pytest.raises(InputError, match="not_a_dir"):
        AlertStore(bad)
    with pytest.raises(InputError, match=str(tmp_path)):
        AlertStore(str(tmp_path))  # a folder, not a file


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = str(tmp_path / "other.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alerts (x INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="not a mask_patrol alert store"):
        AlertStore(path)
    with pytest.raises(InputError, match="other.sqlite"):
        read_alerts(path)


@pytest.mark.parametrize("field,kwargs", [
    ("label", dict(label="hat")), ("score", dict(score=1.5)), ("box", dict(box=(5, 5, 5, 9))),
    ("frame_bgr", dict(frame_bgr="picture.jpg")), ("stamp", dict(stamp=float("nan"))),
])
def test_record_refuses_bad_values_by_name(tmp_path, field, kwargs):
    values = dict(stamp=1.0, track_id=1, label="unmasked", score=0.9, box=FACE_BOX,
                  frame_bgr=real_frame())
    values.update(kwargs)
    with AlertStore(str(tmp_path / "alerts.sqlite")) as store:
        with pytest.raises(ValueError, match=field):
            store.record(**values)
        assert store.alerts() == []


def test_alert_writer_publishes_only_after_the_row_is_committed(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    store = AlertStore(path)
    seen_by_another_reader = []

    def publish(record, event):
        # Another connection (as a listener would use) already sees the committed row.
        seen_by_another_reader.append([r.id for r in read_alerts(path)])
        assert record.track_id == event.track.track_id

    writer = AlertWriter(store, publish).start()
    for track_id in (5, 6):
        writer(AlertEvent(stamp=3.0, track=make_track(track_id), frame_bgr=real_frame(),
                          frame_stamp=2.9, robot_pose=None))
    writer.flush()
    assert writer.stop()
    assert seen_by_another_reader == [[1], [1, 2]]
    assert writer.recorded == 2 and writer.errors == 0
    assert store.get(1).robot_x is None
    assert store.get(1).stamp == 2.9  # when the face was seen, not when it was raised
    store.close()


def test_alerts_list_and_export(tmp_path, capsys):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path, world="lobby") as store:
        record_one(store, track_id=3)
        record_one(store, track_id=4, label="incorrect")
    assert alert_cli.main(["list", "--db", path]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["id", "wall"]
    assert len(table) == 4 and " incorrect " in table[3]

    out_csv = str(tmp_path / "alerts.csv")
    assert alert_cli.main(["export", "--format", "csv", "--out", out_csv, "--db", path]) == 0
    with open(out_csv) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["track_id"], r["label"]) for r in rows] == \
        [("1", "3", "unmasked"), ("2", "4", "incorrect")]
    assert os.path.isfile(rows[0]["face_path"])

    out_json = str(tmp_path / "alerts.json")
    assert alert_cli.main(["export", "--format", "json", "--out", out_json, "--db", path]) == 0
    with open(out_json) as handle:
        data = json.load(handle)
    assert [d["track_id"] for d in data] == [3, 4]
    assert data[1]["world"] == "lobby" and data[1]["robot_yaw"] == 0.25


def test_alerts_list_shows_each_alerts_status_from_the_events_table(tmp_path, capsys):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path, world="lobby") as store:
        ids = [record_one(store, track_id=10 + i) for i in range(4)]
        store.add_event(ids[1], "acknowledge", "Ana Lima", "on my way")
        store.add_event(ids[2], "acknowledge", "Ana Lima", "")
        store.add_event(ids[2], "resolve", "Ben", "gave a mask")
        store.add_event(ids[3], "resolve", "Ben", "")
        store.add_event(ids[3], "acknowledge", "Ana Lima", "late")  # does not reopen it

    def listed():
        assert alert_cli.main(["list", "--db", path]) == 0
        lines = capsys.readouterr().out.splitlines()
        header = re.split(r" {2,}", lines[0])
        assert header[4:6] == ["label", "status"]
        assert set(lines[1]) == {"-", " "}
        rows = [dict(zip(header, re.split(r" {2,}", line))) for line in lines[2:]]
        return [(int(r["id"]), r["track"], r["status"]) for r in rows]

    expected = [(ids[0], "10", "open"), (ids[1], "11", "acknowledged"),
                (ids[2], "12", "resolved"), (ids[3], "13", "resolved")]
    assert listed() == expected
    with AlertStore(path) as store:  # a purge is an event too, but no staff action
        assert len(store.purge(0, reason="test", actor="ops", now=time.time() + 3600)) == 4
    assert [e.kind for e in read_events(path)].count("purge") == 4
    assert listed() == expected


def test_alerts_cli_bad_db_is_one_line_and_exit_2(tmp_path):
    missing = str(tmp_path / "nowhere.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    for db in (missing, str(garbage)):
        for args in (["list"], ["export", "--format", "csv", "--out", str(tmp_path / "x.csv")]):
            proc = subprocess.run([sys.executable, "-m", "behaviors.alert_cli"] + args +
                                  ["--db", db], capture_output=True, text=True, cwd=REPO,
                                  timeout=60)
            assert proc.returncode == 2
            assert proc.stdout == ""
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in proc.stderr
            assert db in lines[0]
    assert not os.path.exists(missing)  # listing never creates a store


# --------------------------------------------------------------------------------------
# life cycle: events, purge, retention, privacy of the files
# --------------------------------------------------------------------------------------

def test_acknowledge_and_resolve_are_new_event_rows_never_edits(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path) as store:
        alert_id = record_one(store)
        before = store.get(alert_id)
        ack = store.add_event(alert_id, "acknowledge", "Ana Lima", "on my way")
        res = store.add_event(alert_id, "resolve", "Ana Lima", "gave a mask")
        assert store.get(alert_id) == before  # the alert row is untouched
    events = read_events(path)
    assert [(e.id, e.alert_id, e.kind, e.actor, e.note) for e in events] == [
        (ack.id, alert_id, "acknowledge", "Ana Lima", "on my way"),
        (res.id, alert_id, "resolve", "Ana Lima", "gave a mask")]
    assert all(e.wall_time.endswith("Z") for e in events)
    assert alert_status([]) == "open"
    assert alert_status(events[:1]) == "acknowledged"
    assert alert_status(events) == "resolved"
    conn = sqlite3.connect(path)
    for sql in ("UPDATE events SET actor = 'someone else'", "DELETE FROM events"):
        with pytest.raises(sqlite3.DatabaseError, match="events are append-only"):
            conn.execute(sql)
    with pytest.raises(sqlite3.DatabaseError, match="existing alert"):
        conn.execute("INSERT INTO events (alert_id, kind, actor, note, wall_time) "
                     "VALUES (99, 'resolve', 'x', '', 'now')")
    conn.close()
    assert len(read_events(path)) == 2


@pytest.mark.parametrize("kind,actor,note,words", [
    ("purge", "Ana", "", "kind"), ("delete", "Ana", "", "kind"), ("resolve", "  ", "", "name"),
    ("resolve", "A" * 101, "", "name"), ("resolve", "Ana", "n" * 2001, "note"),
    ("resolve", "Ana\x00", "", "name"),
])
def test_bad_events_are_refused_by_name(tmp_path, kind, actor, note, words):
    with AlertStore(str(tmp_path / "alerts.sqlite")) as store:
        alert_id = record_one(store)
        with pytest.raises(ValueError, match=words):
            store.add_event(alert_id, kind, actor, note)
        with pytest.raises(KeyError):
            store.add_event(alert_id + 1, "resolve", "Ana", "")
        assert store.events() == []


def test_purge_deletes_old_snapshots_keeps_rows_and_records_why(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path) as store:
        old = store.get(record_one(store, track_id=1))
        store.add_event(old.id, "resolve", "Ana", "")
        day = 86400.0
        assert store.purge(30 * day, reason="too early", actor="test") == []  # nothing old yet
        # 31 days later the first alert is old; a new one is written then and stays
        events = store.purge(30 * day, reason="retention 30 d", actor="tester",
                             now=time.time() + 31 * day)
        assert len(events) == 1
        purged = store.get(old.id)
        again = store.purge(30 * day, reason="again", actor="t", now=time.time() + 31 * day)
    assert again == []  # idempotent: nothing left to purge, nothing recorded
    assert not os.path.exists(old.face_path) and not os.path.exists(old.frame_path)
    assert (purged.face_path, purged.frame_path) == ("", "")
    assert dataclasses.replace(purged, face_path=old.face_path, frame_path=old.frame_path) == old
    event = events[0]
    assert (event.alert_id, event.kind, event.actor, event.note) == \
        (old.id, "purge", "tester", "retention 30 d")
    detail = json.loads(event.detail)
    assert sorted(detail["removed"]) == sorted(os.path.relpath(p, str(tmp_path))
                                               for p in (old.face_path, old.frame_path))
    assert detail["older_than_s"] == 30 * day and detail["already_missing"] == []
    assert [e.kind for e in read_events(path)] == ["resolve", "purge"]
    assert len(read_alerts(path)) == 1  # counts and times remain


def test_only_a_recorded_purge_may_blank_paths(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path) as store:
        record_one(store)
    conn = sqlite3.connect(path)
    refused = ["UPDATE alerts SET face_path = '', frame_path = ''",  # no purge event
               "UPDATE alerts SET label = 'masked'"]
    for sql in refused:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.execute("INSERT INTO events (alert_id, kind, actor, note, wall_time) "
                 "VALUES (1, 'purge', 'x', 'y', 'z')")
    for sql in ("UPDATE alerts SET face_path = '', frame_path = '', score = 0.1",
                "UPDATE alerts SET face_path = 'elsewhere.jpg', frame_path = ''"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.rollback()
    conn.close()
    assert read_alerts(path)[0].face_path != ""


def test_version_1_store_is_upgraded_in_place(tmp_path):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path) as store:
        first = store.get(record_one(store))
    conn = sqlite3.connect(path)  # make it what version 1 wrote
    conn.executescript("DROP TRIGGER alerts_append_only_update; DROP TABLE events;"
                       "CREATE TRIGGER alerts_append_only_update BEFORE UPDATE ON alerts BEGIN "
                       "SELECT RAISE(ABORT, 'alerts are append-only: rows cannot be changed'); "
                       "END; PRAGMA user_version=1;")
    conn.close()
    assert read_events(path) == [] and read_alerts(path) == [first]  # readers take it as is
    with AlertStore(path) as store:
        store.add_event(first.id, "acknowledge", "Ana", "")
        assert store.purge(0, reason="test", actor="test", now=time.time() + 5)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM alerts")
    conn.close()


def test_apply_retention(tmp_path):
    with AlertStore(str(tmp_path / "alerts.sqlite")) as store:
        record_one(store)
        assert apply_retention(store, 0) == []  # 0 keeps snapshots forever
        assert apply_retention(store, 30) == []  # nothing is 30 days old
        for bad in (-1, float("nan"), "30", True):
            with pytest.raises(ValueError, match="retention_days"):
                apply_retention(store, bad)


def test_faces_are_readable_by_their_owner_only(tmp_path):
    store_dir = tmp_path / "new" / "robot"
    with AlertStore(str(store_dir / "alerts.sqlite")) as store:
        row = store.get(record_one(store))
        modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in
                 (store.path, store.path + "-wal", row.face_path, row.frame_path)}
        folders = {p: stat.S_IMODE(os.stat(p).st_mode) for p in
                   (str(tmp_path / "new"), str(store_dir), store.snapshot_dir)}
    assert set(modes.values()) == {0o600}, modes
    assert set(folders.values()) == {0o700}, folders


def test_frame_snapshot_blurs_bystanders_unless_turned_off(tmp_path):
    frame = real_frame()
    bystander = (20.0, 20.0, 120.0, 140.0)
    x1, y1, x2, y2 = (int(v) for v in bystander)
    shots = {}
    for blur in (True, False):
        with AlertStore(str(tmp_path / str(blur) / "alerts.sqlite"),
                        blur_bystanders=blur) as store:
            row = store.get(store.record(1.0, 3, "unmasked", 0.9, FACE_BOX, frame,
                                         other_boxes=[bystander]))
            shots[blur] = cv2.imread(row.frame_path).astype(float)
    original = frame[y1:y2, x1:x2].astype(float)
    blurred_change = abs(shots[True][y1:y2, x1:x2] - original).mean()
    plain_change = abs(shots[False][y1:y2, x1:x2] - original).mean()
    assert plain_change < 3.0 < blurred_change  # JPEG noise vs a real blur
    fx1, fy1 = int(FACE_BOX[0]) + 6, int(FACE_BOX[1]) + 6  # inside the drawn box
    fx2, fy2 = int(FACE_BOX[2]) - 6, int(FACE_BOX[3]) - 6
    inside_face = abs(shots[True][fy1:fy2, fx1:fx2] - shots[False][fy1:fy2, fx1:fx2]).mean()
    assert inside_face < 1.0  # the alerted face itself stays as sharp as without blurring


def test_alerts_purge_cli(tmp_path, capsys):
    path = str(tmp_path / "alerts.sqlite")
    with AlertStore(path) as store:
        row = store.get(record_one(store))
    time.sleep(1.1)  # wall_time has whole seconds: let the alert be older than "now - 0s"
    assert alert_cli.main(["purge", "--older-than", "0s", "--db", path, "--by", "ops",
                           "--reason", "site policy"]) == 0
    assert "purged 2 snapshot file(s) of 1 alert(s)" in capsys.readouterr().out
    assert not os.path.exists(row.face_path)
    [event] = read_events(path)
    assert (event.kind, event.actor, event.note) == ("purge", "ops", "site policy")
    for args, words in ((["--older-than", "30 days"], "30 days"),
                        (["--older-than", "30d", "--db", str(tmp_path / "none.sqlite")],
                         "none.sqlite")):
        proc = subprocess.run([sys.executable, "-m", "behaviors.alert_cli", "purge"] + args,
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
    assert not os.path.exists(str(tmp_path / "none.sqlite"))
