"""``alerts serve`` over real HTTP: the real server in its own process, real SQLite stores,
stdlib http.client for requests sent byte for byte as written, aiohttp for WebSockets.

Security first (401 without or with a wrong token, 404 for every path trick, 413 for big
bodies, 403 without CSRF, 4xx for malformed input, exit 2 for an unsafe start), then what
staff rely on: 50 pages open while alerts are written all see every alert, an acknowledge is
an events row that every page hears of, exports match ``alerts export``, a purge shows.
"""
from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest

from behaviors.alerts import AlertStore, read_alerts, read_events
from behaviors.console.auth import write_token_file
from behaviors.control import Pose2D
from rosgraph_harness import REPO, free_port
from tree_harness import FACE_BOX, real_frame

#: Several pages' worth of a test run: enough to fail, bounded so it always ends.
CLIENTS = 50
WRITTEN = 12
DEADLINE_S = 120.0


def make_store(path: str, count: int = 2, world: str = "lobby") -> List[int]:
    with AlertStore(path, world=world) as store:
        return [store.record(1.0 + i, 10 + i, "unmasked" if i % 2 == 0 else "incorrect", 0.91,
                             FACE_BOX, real_frame(), Pose2D(2.0 + i, -2.5, 0.3))
                for i in range(count)]


class Console:
    """A running ``alerts serve`` process and how to talk to it."""

    def __init__(self, dbs: List[str], folder: str, host: str = "127.0.0.1",
                 token: Optional[str] = None) -> None:
        self.token_file, self.token = write_token_file(folder, token)
        self.port = free_port()
        self.host = host
        argv = [sys.executable, "-m", "behaviors.alert_cli", "serve", "--port", str(self.port),
                "--host", host, "--token-file", self.token_file]
        for db in dbs:
            argv += ["--db", db]
        self.stderr_path = os.path.join(folder, "console.stderr")
        self._stderr = open(self.stderr_path, "wb")
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=env, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("alerts console:"), (line, self.log())
        self.base = "http://%s:%d" % (host, self.port)

    def log(self) -> str:
        with open(self.stderr_path, "r", errors="replace") as handle:
            return handle.read()

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None, auth: bool = True
                ) -> Tuple[int, Dict[str, str], bytes]:
        """One request with the path sent exactly as given (no client-side normalising)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        all_headers = {"Authorization": "Bearer " + self.token} if auth else {}
        all_headers.update(headers or {})
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for key, value in all_headers.items():
                conn.putheader(key, value)
            if body is not None and "Transfer-Encoding" not in all_headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                conn.send(body)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def csrf(self) -> str:
        status, _, body = self.request("GET", "/api/session")
        assert status == 200
        return json.loads(body)["csrf"]

    def post(self, path: str, payload, headers=None, auth=True):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        merged = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf()}
        merged.update(headers or {})
        return self.request("POST", path, body, merged, auth)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()
        return self.log()


@pytest.fixture
def console(tmp_path):
    db = str(tmp_path / "robot1" / "alerts.sqlite")
    make_store(db)
    server = Console([db], str(tmp_path))
    server.db = db
    yield server
    log = server.stop()
    assert "Traceback" not in log, log
    assert server.token not in log, "the token leaked into the server's log"


# --------------------------------------------------------------------------------------
# security
# --------------------------------------------------------------------------------------

PROTECTED = ["/", "/static/console.js", "/api/session", "/api/export?format=csv",
             "/snapshot/0/1/face", "/api/map/lobby"]


def test_no_token_or_a_wrong_token_is_401_everywhere(console):
    wrong = secrets.token_urlsafe(32)
    attempts = [{}, {"Authorization": "Bearer " + wrong}, {"Authorization": console.token},
                {"Cookie": "mask_patrol_console=" + wrong},
                {"Cookie": "mask_patrol_console=" + console.token}]  # the cookie is derived
    for path in PROTECTED:
        for headers in attempts:
            status, _, body = console.request("GET", path, headers=headers, auth=False)
            assert status == 401, (path, headers, status)
            assert b"face" not in body and b"unmasked" not in body
    for token in ("", wrong, console.token[:-1], console.token + "x"):
        status, headers, _ = console.request("GET", "/login?token=" + token, auth=False)
        assert status == 401 and "Set-Cookie" not in headers
    # the WebSocket too
    ws_status = websocket_handshake(console, {})
    assert ws_status == 401
    assert websocket_handshake(console, {"Authorization": "Bearer " + wrong}) == 401
    # a POST without a token is refused before anything else is looked at
    status, _, _ = console.request("POST", "/api/alerts/0/1/acknowledge", b"{}",
                                   {"Content-Type": "application/json"}, auth=False)
    assert status == 401
    assert read_events(console.db) == []


def test_login_trades_the_token_for_a_cookie_and_the_log_never_shows_it(console):
    status, headers, _ = console.request("GET", "/login?token=" + console.token, auth=False)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert console.token not in cookie
    value = cookie.split(";")[0]
    for path in PROTECTED:
        status, headers, _ = console.request("GET", path, headers={"Cookie": value}, auth=False)
        assert status == 200, path
        assert headers["Cache-Control"] == "no-store"
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert websocket_handshake(console, {"Cookie": value}) == 101
    log = console.log()
    assert "GET /login 303" in log and console.token not in log


def websocket_handshake(console: Console, headers: Dict[str, str]) -> int:
    merged = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    merged.update(headers)
    sock = socket.create_connection((console.host, console.port), timeout=10)
    try:
        sock.sendall(("GET /ws HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n" % (
            console.host, console.port,
            "".join("%s: %s\r\n" % kv for kv in merged.items()))).encode())
        head = sock.recv(4096).split(b"\r\n")[0]
    finally:
        sock.close()
    return int(head.split()[1])


TRAVERSALS = [
    "/snapshot/0/1/../../../../etc/passwd",
    "/snapshot/0/1/face/../../../../alerts.sqlite",
    "/snapshot/0/1/%2e%2e/%2e%2e/%2e%2e/alerts.sqlite",
    "/snapshot/0/1/..%2f..%2f..%2falerts.sqlite",
    "/snapshot/0/%2e%2e%2f%2e%2e%2fetc%2fpasswd/face",
    "/snapshot/0/1/%252e%252e%252falerts.sqlite",
    "/snapshot/0/1/face.jpg",
    "/snapshot/0/1//etc/passwd",
    "/snapshot/0/-1/face",
    "/snapshot/0/1e3/face",
    "/static/../server.py",
    "/static/..%2fserver.py",
    "/static/%2e%2e/%2e%2e/alerts.py",
    "/static/console.js/../../auth.py",
    "/static/index.html",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "//etc/passwd",
    "/etc/passwd",
    "/" + os.path.join(REPO, "behaviors", "alerts.py").lstrip("/"),
    "/api/map/..%2f..%2fetc%2fpasswd",
    "/api/map/%2Fetc%2Fpasswd",
    "/api/map/..",
    "/api/map/lobby.world",
    "/alerts.sqlite",
    "/robot1/alerts.sqlite",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_from_the_request_never_reach_the_file_system(console, path):
    status, _, body = console.request("GET", path)
    assert status == 404, (path, status, body[:200])
    assert b"root:" not in body and b"SQLite format" not in body and b"import" not in body


def test_snapshots_are_served_by_alert_id_only_and_never_through_a_symlink(console, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff" + b"not a face, a secret" * 10)
    row = read_alerts(console.db)[1]
    status, headers, body = console.request("GET", "/snapshot/0/%d/face" % row.id)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    with open(row.face_path, "rb") as handle:
        assert body == handle.read()
    os.unlink(row.face_path)
    os.symlink(str(secret), row.face_path)  # someone swaps the file for a link
    status, _, body = console.request("GET", "/snapshot/0/%d/face" % row.id)
    assert status == 404 and b"secret" not in body
    with open(row.frame_path, "wb") as handle:  # or for something that is not a JPEG
        handle.write(b"#!/bin/sh\necho hello\n")
    status, _, body = console.request("GET", "/snapshot/0/%d/frame" % row.id)
    assert status == 404 and b"echo" not in body
    for path in ("/snapshot/0/999/face", "/snapshot/7/1/face"):
        assert console.request("GET", path)[0] == 404


def test_oversized_bodies_get_413(console):
    csrf = console.csrf()
    big = json.dumps({"by": "Ana", "note": "x" * (1024 * 1024)}).encode()
    status, _, _ = console.request("POST", "/api/alerts/0/1/acknowledge", big,
                                   {"Content-Type": "application/json", "X-CSRF-Token": csrf})
    assert status == 413
    # the same without a Content-Length (chunked): refused while reading
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                       for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
    status, _, _ = console.request("POST", "/api/alerts/0/1/acknowledge", chunked,
                                   {"Content-Type": "application/json", "X-CSRF-Token": csrf,
                                    "Transfer-Encoding": "chunked"})
    assert status == 413
    assert read_events(console.db) == []


def test_post_needs_the_csrf_token_and_this_origin(console):
    ok = {"by": "Ana", "note": "on my way"}
    path = "/api/alerts/0/1/acknowledge"
    body = json.dumps(ok).encode()
    plain = {"Content-Type": "application/json"}
    assert console.request("POST", path, body, plain)[0] == 403
    assert console.request("POST", path, body, dict(plain, **{"X-CSRF-Token": "0" * 64}))[0] == 403
    assert console.post(path, ok, {"Origin": "http://evil.example"})[0] == 403
    assert read_events(console.db) == []
    status, _, reply = console.post(path, ok, {"Origin": console.base})
    assert status == 201
    event = json.loads(reply)
    conn = sqlite3.connect(console.db)
    rows = conn.execute("SELECT alert_id, kind, actor, note FROM events").fetchall()
    conn.close()
    assert rows == [(1, "acknowledge", "Ana", "on my way")]
    assert (event["alert_id"], event["kind"], event["uid"]) == (1, "acknowledge", "0:1")


@pytest.mark.parametrize("path,payload,headers,code", [
    ("/api/alerts/0/1/acknowledge", b"{not json", {}, 400),
    ("/api/alerts/0/1/acknowledge", b"\xff\xfe", {}, 400),
    ("/api/alerts/0/1/acknowledge", b"[1, 2]", {}, 400),
    ("/api/alerts/0/1/acknowledge", {"by": "Ana", "sql": "DROP TABLE alerts"}, {}, 400),
    ("/api/alerts/0/1/acknowledge", {"by": ""}, {}, 400),
    ("/api/alerts/0/1/acknowledge", {"by": 7}, {}, 400),
    ("/api/alerts/0/1/acknowledge", {"by": "A" * 500}, {}, 400),
    ("/api/alerts/0/1/acknowledge", {"by": "Ana"}, {"Content-Type": "text/plain"}, 415),
    ("/api/alerts/0/99/acknowledge", {"by": "Ana"}, {}, 404),
    ("/api/alerts/5/1/acknowledge", {"by": "Ana"}, {}, 404),
    ("/api/alerts/0/1/purge", {"by": "Ana"}, {}, 404),
    ("/api/alerts/0/1/delete", {"by": "Ana"}, {}, 404),
    ("/api/alerts/0/999999999999/resolve", {"by": "Ana"}, {}, 404),
])
def test_malformed_requests_get_a_4xx_never_a_traceback(console, path, payload, headers, code):
    status, _, body = console.post(path, payload, headers)
    assert status == code, body
    assert b"Traceback" not in body and len(body.splitlines()) == 1
    assert read_events(console.db) == []


def test_malformed_queries_and_raw_garbage(console):
    for path in ("/api/export?format=xml", "/api/export?status=lost",
                 "/api/export?label=hat", "/api/export?since=yesterday"):
        status, _, body = console.request("GET", path)
        assert status == 400 and b"Traceback" not in body, path
    for raw in (b"GARBAGE\r\n\r\n", b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00"):
        sock = socket.create_connection((console.host, console.port), timeout=10)
        try:
            sock.sendall(raw)
            head = sock.recv(4096)
        finally:
            sock.close()
        assert head.startswith(b"HTTP/1.") and head.split()[1].startswith(b"4"), (raw, head)


def run_console(args: List[str], env: Optional[Dict[str, str]] = None):
    merged = dict(os.environ, PYTHONPATH=REPO)
    merged.pop("MASK_PATROL_CONSOLE_TOKEN", None)
    merged.update(env or {})
    return subprocess.run([sys.executable, "-m", "behaviors.alert_cli", "serve"] + args,
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=merged)


def one_line(result) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_unsafe_or_broken_starts_exit_2_with_one_line(tmp_path):
    db = str(tmp_path / "alerts.sqlite")
    make_store(db, 1)
    port = str(free_port())
    line = one_line(run_console(["--db", db, "--host", "0.0.0.0", "--port", port]))
    assert "0.0.0.0" in line and "token" in line and "--token-file" in line
    weak = tmp_path / "weak.token"
    weak.write_text("password123")
    weak.chmod(0o600)
    line = one_line(run_console(["--db", db, "--host", "0.0.0.0", "--port", port,
                                 "--token-file", str(weak)]))
    assert "weak.token" in line and "32" in line
    line = one_line(run_console(["--db", db, "--host", "0.0.0.0", "--port", port],
                                env={"MASK_PATROL_CONSOLE_TOKEN": "a" * 64}))
    assert "MASK_PATROL_CONSOLE_TOKEN" in line
    shared, _ = write_token_file(str(tmp_path))
    os.chmod(shared, 0o644)
    line = one_line(run_console(["--db", db, "--token-file", shared, "--port", port]))
    assert "chmod 600" in line
    line = one_line(run_console(["--db", str(tmp_path / "nowhere.sqlite"), "--port", port]))
    assert "nowhere.sqlite" in line
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        line = one_line(run_console(["--db", db, "--port", str(busy.getsockname()[1])]))
    assert "in use" in line and "--port" in line


def test_loopback_without_a_token_makes_one_up_and_prints_the_login_once(tmp_path):
    db = str(tmp_path / "alerts.sqlite")
    make_store(db, 1)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("MASK_PATROL_CONSOLE_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "behaviors.alert_cli", "serve", "--db", db,
                             "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        token = line.split("login?token=")[1].split()[0]
        assert len(token) >= 43
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/session")
        assert conn.getresponse().status == 401
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/session", headers={"Authorization": "Bearer " + token})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and token not in err and "Traceback" not in err


# --------------------------------------------------------------------------------------
# what staff rely on
# --------------------------------------------------------------------------------------

async def watch(console: Console, want: int, seen: List[Dict[str, dict]], index: int,
                started: threading.Event) -> None:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + console.token}) as s:
        async with s.ws_connect(console.base + "/ws", heartbeat=30) as ws:
            started.set()
            mine: Dict[str, dict] = {}
            seen[index] = mine
            async for message in ws:
                data = json.loads(message.data)
                if data["type"] == "hello":
                    for alert in data["alerts"]:
                        mine[alert["uid"]] = alert
                elif data["type"] == "alert":
                    mine[data["alert"]["uid"]] = data["alert"]
                if len(mine) >= want:
                    return


def test_fifty_pages_see_every_alert_written_while_they_connect(console):
    before = len(read_alerts(console.db))
    want = before + WRITTEN
    seen: List[Dict[str, dict]] = [{} for _ in range(CLIENTS)]
    half = threading.Event()
    written: List[int] = []

    def writer():
        with AlertStore(console.db, world="lobby") as store:
            for i in range(WRITTEN):
                if i == WRITTEN // 2:
                    half.wait(DEADLINE_S)  # the rest while the later pages connect
                written.append(store.record(50.0 + i, 100 + i, "unmasked", 0.8, FACE_BOX,
                                            real_frame(), Pose2D(1.0, 1.0, 0.0)))
                time.sleep(0.05)

    async def everybody():
        tasks = []
        for index in range(CLIENTS):
            tasks.append(asyncio.ensure_future(watch(console, want, seen, index,
                                                     threading.Event())))
            if index == CLIENTS // 2:
                half.set()
            await asyncio.sleep(0.02)  # pages open while alerts are being written
        await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE_S)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        asyncio.run(everybody())
    finally:
        half.set()
        thread.join(DEADLINE_S)
    stored = read_alerts(console.db)
    assert len(stored) == want and len(written) == WRITTEN  # nothing lost in the store
    expected = {"0:%d" % r.id for r in stored}
    for index, mine in enumerate(seen):
        assert set(mine) == expected, "page %d missed %s" % (index, expected - set(mine))
        assert mine["0:%d" % written[-1]]["track_id"] == 100 + WRITTEN - 1


def test_an_acknowledge_reaches_every_open_page_as_an_event(console):
    import aiohttp

    async def scenario():
        async with aiohttp.ClientSession(
                headers={"Authorization": "Bearer " + console.token}) as session:
            pages = [await session.ws_connect(console.base + "/ws") for _ in range(3)]
            for page in pages:
                assert json.loads((await page.receive()).data)["type"] == "hello"
            loop = asyncio.get_event_loop()
            status, _, _ = await loop.run_in_executor(
                None, console.post, "/api/alerts/0/2/resolve", {"by": "Ben", "note": "done"})
            assert status == 201
            heard = []
            for page in pages:
                message = json.loads((await page.receive(timeout=30)).data)
                heard.append((message["type"], message["event"]["uid"], message["event"]["kind"],
                              message["event"]["actor"]))
                await page.close()
            return heard

    assert asyncio.run(scenario()) == [("event", "0:2", "resolve", "Ben")] * 3
    assert [(e.alert_id, e.kind, e.actor, e.note) for e in read_events(console.db)] == \
        [(2, "resolve", "Ben", "done")]


def test_exports_match_alerts_export_plus_robot_and_status(console, tmp_path):
    from behaviors import alert_cli

    console.post("/api/alerts/0/1/acknowledge", {"by": "Ana"})
    status, headers, body = console.request("GET", "/api/export?format=csv")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    served = list(csv.DictReader(io.StringIO(body.decode())))
    out = str(tmp_path / "cli.csv")
    assert alert_cli.main(["export", "--format", "csv", "--out", out, "--db", console.db]) == 0
    with open(out) as handle:
        cli = list(csv.DictReader(handle))
    assert [{k: v for k, v in r.items() if k not in ("robot", "status")} for r in served] == cli
    assert [(r["robot"], r["status"]) for r in served] == [("robot1", "acknowledged"),
                                                           ("robot1", "open")]
    status, _, body = console.request("GET", "/api/export?format=json&status=open&label=incorrect")
    assert [(a["id"], a["label"], a["status"]) for a in json.loads(body)] == [(2, "incorrect", "open")]
    status, _, body = console.request("GET", "/api/export?format=json&until=2000-01-01T00:00Z")
    assert json.loads(body) == []


def test_a_purge_shows_as_410_and_in_the_history(console):
    with AlertStore(console.db) as store:
        store.purge(0, reason="retention test", actor="tester", now=time.time() + 3600)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = console.request("GET", "/snapshot/0/1/face")[0]
        if status == 410:
            break
        time.sleep(0.2)
    assert status == 410
    status, _, body = console.request("GET", "/api/export?format=json")
    assert [a["face_path"] for a in json.loads(body)] == ["", ""]
