"""``alerts serve``: the staff console's web server (aiohttp).

One page (``static/``), a WebSocket that sends every alert and event as it is committed, a
POST per acknowledge or resolve, the snapshots by alert id, exports and the world's walls.

Security, in the order a request meets it: every request but ``/login`` needs the token
(cookie or bearer header, ``auth.Guard``); a POST must carry the CSRF token and, when the
browser sends one, an Origin of this server; bodies over ``MAX_BODY`` get 413 before they
are read; routes are fixed patterns of digits and names, so no part of a request ever
becomes a file path (snapshots are looked up by alert id in the store, then opened without
following symlinks and served only when they are JPEGs). Malformed input is a 4xx with one
line of text; anything unexpected is logged and answered 500 without a traceback.
"""
from __future__ import annotations

import asyncio
import errno
import io
import json
import logging
import os
import re
import stat
import sys
from typing import Any, Dict, List, Optional, Sequence, Set

from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractAccessLogger

from behaviors.alert_cli import export
from behaviors.alerts import STAFF_ACTIONS, AlertRecord, EventRecord
from behaviors.console.auth import COOKIE, CSRF_HEADER, Guard, resolve_token
from behaviors.console.feed import StoreFeed, parse_db
from common.errors import InputError
from perception.types import LABELS

_log = logging.getLogger("mask_patrol.console")
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: The only files the page needs; a request names one of these keys, never a path.
STATIC_FILES = {"console.js": "application/javascript", "console.css": "text/css"}
#: Largest request body accepted (an acknowledge is a name and a note).
MAX_BODY = 16 * 1024
#: Largest snapshot served (a 640x480 JPEG is ~50 kB).
MAX_SNAPSHOT = 16 * 1024 * 1024
POLL_S = 0.2
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; connect-src 'self'; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z?$")


class PathOnlyAccessLog(AbstractAccessLogger):
    """Access log lines without query strings: the first load's ``?token=`` never lands in a
    log."""

    def log(self, request, response, time):  # noqa: A002 (aiohttp's signature)
        self.logger.info("%s %s %s %s %.3fs", request.remote, request.method, request.path,
                         response.status, time)


class OneLineBadRequests(logging.Filter):
    """aiohttp logs a traceback for every malformed request it answers 400; one line says
    it all (the client already got its 4xx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            error = record.exc_info[1]
            record.msg = "malformed request refused: %s"
            record.args = (" ".join(str(getattr(error, "message", error)).split())[:200],)
            record.exc_info = None
            record.exc_text = None
        return True


class Hub:
    """The stores, the connected pages, and the poll loop that feeds one to the other."""

    def __init__(self, feeds: Sequence[StoreFeed]) -> None:
        self.feeds = list(feeds)
        self.clients: Set["asyncio.Queue[str]"] = set()

    def feed(self, index: str) -> StoreFeed:
        number = int(index)
        if number >= len(self.feeds):
            raise web.HTTPNotFound(text="no store %d: the console serves %d store(s)"
                                   % (number, len(self.feeds)))
        return self.feeds[number]

    def alert_json(self, feed: StoreFeed, alert: AlertRecord) -> Dict[str, Any]:
        base = "/snapshot/%d/%d/" % (feed.index, alert.id)
        pose = None
        if alert.robot_x is not None:
            pose = {"x": alert.robot_x, "y": alert.robot_y, "yaw": alert.robot_yaw}
        return {"uid": "%d:%d" % (feed.index, alert.id), "store": feed.index,
                "robot": feed.robot, "id": alert.id, "stamp": alert.stamp,
                "wall_time": alert.wall_time, "track_id": alert.track_id, "label": alert.label,
                "score": alert.score, "box": list(alert.box), "pose": pose,
                "world": alert.world, "session": alert.session,
                "face_url": base + "face" if alert.face_path else None,
                "frame_url": base + "frame" if alert.frame_path else None}

    @staticmethod
    def event_json(feed: StoreFeed, event: EventRecord) -> Dict[str, Any]:
        out = event.as_dict()
        out.update(uid="%d:%d" % (feed.index, event.alert_id), store=feed.index)
        return out

    def hello(self) -> str:
        alerts, events = [], []
        for feed in self.feeds:
            alerts += [self.alert_json(feed, a) for a in feed.alerts.values()]
            for rows in feed.events.values():
                events += [self.event_json(feed, e) for e in rows]
        return json.dumps({"type": "hello", "stores": [f.describe() for f in self.feeds],
                           "alerts": alerts, "events": events})

    def broadcast(self, message: Dict[str, Any]) -> None:
        text = json.dumps(message)
        for queue in list(self.clients):
            queue.put_nowait(text)

    async def refresh(self) -> None:
        """Poll every store once and send what is new to every page."""
        loop = asyncio.get_event_loop()
        for feed in self.feeds:
            alerts, events = await loop.run_in_executor(None, feed.poll)
            for alert in alerts:
                self.broadcast({"type": "alert", "alert": self.alert_json(feed, alert)})
            for event in events:
                self.broadcast({"type": "event", "event": self.event_json(feed, event)})

    async def poll_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # a locked or briefly unreadable store: try again
                _log.warning("polling the alert stores failed, retrying: %s: %s",
                             type(exc).__name__, exc)
            await asyncio.sleep(POLL_S)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text.rstrip("\n") + "\n")


def make_app(feeds: Sequence[StoreFeed], token: str) -> web.Application:
    """The aiohttp application (no sockets yet); tests and ``serve`` both use it."""
    guard = Guard(token)
    hub = Hub(feeds)

    @web.middleware
    async def security(request: web.Request, handler):
        try:
            response = await _guarded(request, handler)
        except web.HTTPException as exc:  # aiohttp's own 4xx (e.g. 413 while reading)
            response = _plain(exc.status, exc.text or exc.reason)
        except (ValueError, UnicodeError) as exc:
            response = _plain(400, "bad request: %s" % exc)
        except Exception:
            _log.exception("%s %s failed", request.method, request.path)
            response = _plain(500, "internal error (logged on the server)")
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    async def _guarded(request: web.Request, handler):
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _plain(413, "request body of %d bytes is over the limit of %d"
                          % (request.content_length, MAX_BODY))
        if request.path == "/login" and request.method == "GET":
            return await handler(request)
        if not (guard.cookie_ok(request.cookies.get(COOKIE))
                or guard.bearer_ok(request.headers.get("Authorization"))):
            return _plain(401, "not logged in: open the /login?token=... link that alerts serve "
                               "printed, or send Authorization: Bearer TOKEN")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if origin is not None and origin != "%s://%s" % (request.scheme, request.host):
                return _plain(403, "cross-origin request refused (Origin %s)" % origin)
            if not guard.csrf_ok(request.headers.get(CSRF_HEADER)):
                return _plain(403, "missing or wrong %s header: reload the page" % CSRF_HEADER)
        if request.path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and origin != "%s://%s" % (request.scheme, request.host):
                return _plain(403, "cross-origin WebSocket refused (Origin %s)" % origin)
        return await handler(request)

    async def login(request: web.Request) -> web.StreamResponse:
        if not guard.token_ok(request.query.get("token")):
            return _plain(401, "wrong or missing token: use the link alerts serve printed")
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(COOKIE, guard.cookie_value, httponly=True, samesite="Strict",
                            path="/")
        return response

    async def index(request: web.Request) -> web.StreamResponse:
        return _static_file("index.html", "text/html")

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        return _static_file(name, STATIC_FILES[name])

    async def session(request: web.Request) -> web.StreamResponse:
        return web.json_response({"csrf": guard.csrf, "csrf_header": CSRF_HEADER,
                                  "stores": [f.describe() for f in hub.feeds],
                                  "labels": list(LABELS), "actions": list(STAFF_ACTIONS)})

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        await ws.prepare(request)
        queue: "asyncio.Queue[str]" = asyncio.Queue()
        # No await between these two lines: every row is either in the hello or queued.
        hub.clients.add(queue)
        hello = hub.hello()
        sender = asyncio.ensure_future(_pump(ws, hello, queue))
        try:
            async for message in ws:  # the page sends nothing that matters; drain until close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            hub.clients.discard(queue)
            sender.cancel()
        return ws

    async def act(request: web.Request) -> web.StreamResponse:
        feed = hub.feed(request.match_info["store"])
        alert_id = int(request.match_info["id"])
        kind = request.match_info["action"]
        if request.content_type != "application/json":
            return _plain(415, "send the body as application/json: {\"by\": NAME, \"note\": TEXT}")
        try:
            body = json.loads(await request.text())
        except ValueError as exc:
            return _plain(400, "the body is not JSON (%s)" % exc)
        if not isinstance(body, dict) or set(body) - {"by", "note"}:
            return _plain(400, "the body must be {\"by\": NAME, \"note\": TEXT} and nothing else")
        loop = asyncio.get_event_loop()
        try:
            event = await loop.run_in_executor(None, feed.add_event, alert_id, kind,
                                               body.get("by", ""), body.get("note", ""))
        except KeyError:
            return _plain(404, "no alert %d in store %d" % (alert_id, feed.index))
        except ValueError as exc:
            return _plain(400, str(exc))
        await hub.refresh()  # every page hears of it now, not at the next poll
        return web.json_response(hub.event_json(feed, event), status=201)

    async def snapshot(request: web.Request) -> web.StreamResponse:
        feed = hub.feed(request.match_info["store"])
        alert = feed.alerts.get(int(request.match_info["id"]))
        if alert is None:
            return _plain(404, "no such alert")
        path = alert.face_path if request.match_info["kind"] == "face" else alert.frame_path
        if not path:
            return _plain(410, "this snapshot was purged (see the alert's history)")
        loop = asyncio.get_event_loop()
        data = await loop.run_in_executor(None, _read_jpeg, path)
        if data is None:
            return _plain(404, "snapshot file missing or not a plain JPEG file")
        return web.Response(body=data, content_type="image/jpeg")

    async def export_alerts(request: web.Request) -> web.StreamResponse:
        fmt = request.query.get("format", "csv")
        if fmt not in ("csv", "json"):
            return _plain(400, "format must be csv or json, got %r" % fmt)
        records, extra = [], []
        for feed in hub.feeds:
            for alert in sorted(feed.alerts.values(), key=lambda a: a.id):
                status = feed.status(alert.id)
                if matches(alert, status, request.query):
                    records.append(alert)
                    extra.append({"robot": feed.robot, "status": status})
        out = io.StringIO()
        export(records, fmt, out, extra)
        return web.Response(text=out.getvalue(),
                            content_type="text/csv" if fmt == "csv" else "application/json",
                            headers={"Content-Disposition":
                                     "attachment; filename=alerts.%s" % fmt})

    async def world_map(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_event_loop()
        data = await loop.run_in_executor(None, _world_map, request.match_info["world"])
        if data is None:
            return _plain(404, "no such world")
        return web.json_response(data)

    async def start_polling(app: web.Application) -> None:
        await hub.refresh()
        app["poller"] = asyncio.ensure_future(hub.poll_forever())

    async def stop_polling(app: web.Application) -> None:
        app["poller"].cancel()
        for queue in list(hub.clients):
            queue.put_nowait("")  # wakes each pump, which closes its socket
        for feed in hub.feeds:
            feed.close()

    app = web.Application(middlewares=[security], client_max_size=MAX_BODY)
    app["hub"] = hub
    app.router.add_get("/", index)
    app.router.add_get("/login", login)
    app.router.add_get("/static/{name:console\\.js|console\\.css}", static)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/export", export_alerts)
    app.router.add_get("/api/map/{world:[A-Za-z0-9_]{1,64}}", world_map)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/api/alerts/{store:[0-9]{1,4}}/{id:[0-9]{1,12}}/"
                        "{action:acknowledge|resolve}", act)
    app.router.add_get("/snapshot/{store:[0-9]{1,4}}/{id:[0-9]{1,12}}/{kind:face|frame}",
                       snapshot)
    app.on_startup.append(start_polling)
    app.on_shutdown.append(stop_polling)
    return app


async def _pump(ws: web.WebSocketResponse, hello: str, queue: "asyncio.Queue[str]") -> None:
    try:
        await ws.send_str(hello)
        while True:
            text = await queue.get()
            if not text:
                await ws.close()
                return
            await ws.send_str(text)
    except (ConnectionError, RuntimeError):  # the page went away mid-send
        return


def matches(alert: AlertRecord, status: str, query) -> bool:
    """The page's filters, applied on the server for exports: status, label, robot time."""
    wanted = query.get("status", "")
    if wanted and wanted not in ("open", "acknowledged", "resolved"):
        raise web.HTTPBadRequest(text="status must be open, acknowledged or resolved")
    label = query.get("label", "")
    if label and label not in LABELS:
        raise web.HTTPBadRequest(text="label must be one of %s" % ", ".join(LABELS))
    for key in ("since", "until"):
        if query.get(key) and not _TIME.match(query[key]):
            raise web.HTTPBadRequest(text="%s must be UTC like 2026-01-31T14:05:00Z" % key)
    since, until = query.get("since", "").rstrip("Z"), query.get("until", "").rstrip("Z")
    when = alert.wall_time.rstrip("Z")
    return ((not wanted or status == wanted) and (not label or alert.label == label)
            and (not since or when >= since) and (not until or when <= until))


def _static_file(name: str, content_type: str) -> web.Response:
    with open(os.path.join(STATIC_DIR, name), "rb") as handle:
        return web.Response(body=handle.read(), content_type=content_type,
                            charset="utf-8")


def _read_jpeg(path: str) -> Optional[bytes]:
    """The file's bytes when it is a regular file reached without a symlink and is a JPEG;
    None otherwise. The path comes from the store, never from the request."""
    if os.path.realpath(path) != os.path.normpath(os.path.abspath(path)):
        return None  # a symlink anywhere on the way
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SNAPSHOT:
            return None
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_SNAPSHOT + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    return data if data[:3] == b"\xff\xd8\xff" else None


_MAPS: Dict[str, Optional[Dict[str, Any]]] = {}


def _world_map(name: str) -> Optional[Dict[str, Any]]:
    """Walls (boxes and cylinders, metres, odometry frame) and route of a known world.

    Only names of worlds in worlds/ are looked up, so the request picks from a list and
    never names a file."""
    if name not in _MAPS:
        from sim.scenario import available_worlds

        if name not in available_worlds():
            return None
        from sim.world import load_world

        world = load_world(name)
        shapes = []
        for model in world.models:
            for shape in model.collisions:
                if shape.kind == "box":
                    shapes.append({"kind": "box", "x": shape.pose[0], "y": shape.pose[1],
                                   "yaw": shape.pose[5], "sx": shape.size[0],
                                   "sy": shape.size[1]})
                elif shape.kind in ("cylinder", "sphere"):
                    shapes.append({"kind": "circle", "x": shape.pose[0], "y": shape.pose[1],
                                   "r": shape.size[0]})
        x0, x1, y0, y1 = world.bounds()
        _MAPS[name] = {"world": name, "shapes": shapes, "bounds": [x0, x1, y0, y1],
                       "route": [list(p) for p in world.scenario.waypoints]}
    return _MAPS[name]


def serve(db_specs: List[str], host: str, port: int, token_file: Optional[str]) -> int:
    """Run the console until SIGINT/SIGTERM; InputError for bad stores, token or port."""
    if not 0 < port < 65536:
        raise InputError("--port must be 1-65535, got %d" % port)
    token, made_up = resolve_token(host, token_file)
    feeds = []
    for index, spec in enumerate(db_specs):
        robot, path = parse_db(spec)
        feeds.append(StoreFeed(index, robot, path))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(OneLineBadRequests())
    return asyncio.run(_run(make_app(feeds, token), host, port, token, made_up, feeds))


async def _run(app: web.Application, host: str, port: int, token: str, made_up: bool,
               feeds: Sequence[StoreFeed]) -> int:
    import signal

    runner = web.AppRunner(app, access_log_class=PathOnlyAccessLog,
                           access_log=logging.getLogger("mask_patrol.console.access"))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise InputError("port %d on %s is in use; pass another --port" % (port, host))
        raise InputError("cannot listen on %s:%d (%s); check --host and --port"
                         % (host, port, exc.strerror or exc))
    url = "http://%s:%d/" % ("[%s]" % host if ":" in host else host, port)
    names = ", ".join("%s (%s)" % (f.robot, f.path) for f in feeds)
    if made_up:
        print("alerts console: %s for %s; open %slogin?token=%s once (a token made up for "
              "this run)" % (url, names, url, token), flush=True)
    else:
        print("alerts console: %s for %s; open %slogin?token=<your token> once"
              % (url, names, url), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0
