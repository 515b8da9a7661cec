"""``py-trees-tree-viewer``: a live web view of patrol_node's behaviour tree.

ROS 1 has no py-trees-tree-viewer of its own (upstream's is ROS 2 and Qt), so this one is a
small stdlib web server: it takes tree snapshots from the ROS topic (or a JSON file), keeps
the latest ones, and serves a page that draws them with the py_trees_js renderer, read
straight from the installed py-trees-js package. The browser gets updates as Server-Sent
Events on ``/events``; ``/snapshot`` returns the newest snapshot for scripts and curl.

    py-trees-tree-viewer                          # topic /patrol_node/tree/snapshots
    py-trees-tree-viewer --file tree.json        # offline, no ROS
    then open http://127.0.0.1:8765/
"""
from __future__ import annotations

import argparse
import collections
import errno
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from behaviors.snapshot import check_snapshot
from behaviors.viewer import renderer_files
from behaviors.viewer.ros_source import DEFAULT_TOPIC
from common.errors import InputError

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: Snapshots kept for a page that opens late: its timeline can rewind through them.
HISTORY = 50
#: Seconds between keep-alive comments on an idle event stream (proxies drop silent ones).
KEEPALIVE_S = 15.0


class SnapshotStore:
    """The newest snapshots, numbered, shared by the source thread and the HTTP threads."""

    def __init__(self, history: int = HISTORY) -> None:
        if history < 1:
            raise ValueError("history must be at least 1, got %r" % (history,))
        self._items: Deque[Tuple[int, str]] = collections.deque(maxlen=history)
        self._seq = 0
        self._received_at: Optional[float] = None
        self._closed = False
        self._cond = threading.Condition()

    def add(self, tree: Dict[str, Any], source: str = "snapshot") -> int:
        """Check ``tree`` (InputError if malformed), keep it and wake the event streams."""
        check_snapshot(tree, source)
        text = json.dumps(tree, separators=(",", ":"))
        with self._cond:
            self._seq += 1
            self._items.append((self._seq, text))
            self._received_at = time.time()
            self._cond.notify_all()
            return self._seq

    def add_json(self, text: str, source: str = "snapshot") -> int:
        try:
            tree = json.loads(text)
        except ValueError as error:
            raise InputError("%s: not valid JSON (%s)" % (source, error))
        return self.add(tree, source)

    def newer_than(self, seq: int) -> List[Tuple[int, str]]:
        with self._cond:
            return [item for item in self._items if item[0] > seq]

    def wait_newer(self, seq: int, timeout: float) -> List[Tuple[int, str]]:
        """Block until a snapshot newer than ``seq`` arrives, the store closes, or timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._seq > seq, timeout)
            return [item for item in self._items if item[0] > seq]

    def latest(self) -> Optional[Tuple[int, str]]:
        with self._cond:
            return self._items[-1] if self._items else None

    def stats(self) -> Dict[str, Any]:
        with self._cond:
            return {"snapshots": self._seq, "last_received": self._received_at}

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class ViewerServer(ThreadingHTTPServer):
    """The HTTP server plus what its handlers serve: snapshots, the page, the renderer."""

    daemon_threads = True  # an open event stream must not keep the process alive

    def __init__(self, address: Tuple[str, int], store: SnapshotStore,
                 renderer: Dict[str, bytes], source: str) -> None:
        self.store = store
        self.renderer = renderer
        self.source = source
        self.static = {name: os.path.join(STATIC_DIR, name) for name in os.listdir(STATIC_DIR)}
        super().__init__(address, ViewerRequestHandler)

    def status(self) -> Dict[str, Any]:
        status = {"source": self.source}
        status.update(self.store.stats())
        return status


class ViewerRequestHandler(BaseHTTPRequestHandler):
    """Routes: / (page), /static/*, /js/* (py_trees_js), /snapshot, /status, /events."""

    server: ViewerServer
    server_version = "py-trees-tree-viewer"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send_file(self.server.static["index.html"], "index.html")
        elif path.startswith("/static/") and path[len("/static/"):] in self.server.static:
            name = path[len("/static/"):]
            self._send_file(self.server.static[name], name)
        elif path.startswith("/js/") and path[1:] in self.server.renderer:
            self._send(200, self.server.renderer[path[1:]],
                       renderer_files.content_type(path), cache=True)
        elif path == "/snapshot":
            latest = self.server.store.latest()
            if latest is None:
                self._send(204, b"", "application/json")
            else:
                self._send(200, latest[1].encode("utf-8"), "application/json",
                           extra={"X-Snapshot-Seq": str(latest[0])})
        elif path == "/status":
            self._send(200, json.dumps(self.server.status()).encode("utf-8"),
                       "application/json")
        elif path == "/events":
            self._stream_events()
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send_file(self, file_path: str, name: str) -> None:
        with open(file_path, "rb") as handle:
            self._send(200, handle.read(), renderer_files.content_type(name))

    def _send(self, code: int, body: bytes, content_type: str, cache: bool = False,
              extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream_events(self) -> None:
        """Server-Sent Events: every kept snapshot newer than Last-Event-ID, then live ones."""
        try:
            seq = int(self.headers.get("Last-Event-ID") or 0)
        except ValueError:
            seq = 0
        if seq > self.server.store.stats()["snapshots"]:
            seq = 0  # the viewer restarted and numbers from 1 again: send everything
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        store = self.server.store
        try:
            self._write_event("status", json.dumps(self.server.status()))
            items = store.newer_than(seq)
            while not store.closed:
                for item_seq, text in items:
                    self._write_event("snapshot", text, item_seq)
                    seq = item_seq
                if items:
                    self._write_event("status", json.dumps(self.server.status()))
                else:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                items = store.wait_newer(seq, KEEPALIVE_S)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page was closed or reloaded

    def _write_event(self, event: str, data: str, seq: Optional[int] = None) -> None:
        lines = "event: %s\n" % event
        if seq is not None:
            lines += "id: %d\n" % seq
        lines += "data: %s\n\n" % data  # compact JSON has no raw newlines
        self.wfile.write(lines.encode("utf-8"))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per request (and per renderer file) would bury real problems


def load_snapshot_file(path: str) -> List[Dict[str, Any]]:
    """Read a snapshot (or a JSON list of snapshots, oldest first) saved from the topic."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise InputError("--file %s: cannot read it (%s)" % (path, error.strerror))
    except ValueError as error:
        raise InputError("--file %s: not valid JSON (%s); save a snapshot with e.g. "
                         "rostopic echo -n1 --noarr ... or json.dump(tree_snapshot(root))"
                         % (path, error))
    trees = data if isinstance(data, list) else [data]
    if not trees:
        raise InputError("--file %s: the list of snapshots is empty" % path)
    for index, tree in enumerate(trees):
        check_snapshot(tree, "--file %s%s" % (path, "[%d]" % index if len(trees) > 1 else ""))
    return trees


def bind(host: str, port: int, store: SnapshotStore, renderer: Dict[str, bytes],
         source: str) -> ViewerServer:
    """Open the listening socket, turning the usual failures into one actionable line."""
    try:
        return ViewerServer((host, port), store, renderer, source)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise InputError("port %d on %s is already in use (another py-trees-tree-viewer?):"
                             " stop that one or choose a free port with --port N"
                             % (port, host))
        if error.errno == errno.EACCES:
            raise InputError("no permission to listen on port %d: use a port above 1023 "
                             "with --port N" % port)
        raise InputError("cannot listen on %s:%d (%s): check --host (an address of this "
                         "machine, e.g. 127.0.0.1 or 0.0.0.0)" % (host, port, error.strerror))


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="py-trees-tree-viewer",
        description="Serve a live web view of patrol_node's behaviour tree (py_trees_js).")
    parser.add_argument("--topic", default=DEFAULT_TOPIC,
                        help="std_msgs/String topic with JSON tree snapshots (default: %s)"
                        % DEFAULT_TOPIC)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="HTTP port (default: %d)" % DEFAULT_PORT)
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to listen on (default: %s; 0.0.0.0 for other machines)"
                        % DEFAULT_HOST)
    parser.add_argument("--file", metavar="SNAPSHOT.json",
                        help="show a saved snapshot (or a JSON list of them) instead of ROS")
    parser.add_argument("--no-ros", action="store_true",
                        help="do not connect to ROS (needs --file)")
    parser.add_argument("--master-timeout", type=float, default=3.0,
                        help="seconds to wait for the ROS master to answer (default: 3)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise InputError("--port %d: use a TCP port between 1 and 65535" % args.port)
    if args.no_ros and not args.file:
        raise InputError("--no-ros: nothing to show without ROS; add --file SNAPSHOT.json")
    if args.master_timeout <= 0:
        raise InputError("--master-timeout must be positive, got %r" % args.master_timeout)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``py-trees-tree-viewer``; returns the exit status."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    source = None
    server = None
    try:
        args = parse_args(argv)
        store = SnapshotStore()
        renderer = renderer_files.load_renderer_files()
        if args.file:
            trees = load_snapshot_file(args.file)
            description = "file %s" % os.path.abspath(args.file)
        else:
            description = "topic %s" % args.topic
        server = bind(args.host, args.port, store, renderer, description)
        if args.file:
            for index, tree in enumerate(trees):
                store.add(tree, "--file %s[%d]" % (args.file, index))
        else:
            from behaviors.viewer.ros_source import RosSnapshotSource

            source = RosSnapshotSource(
                args.topic, lambda text: store.add_json(text, "topic %s" % args.topic))
            source.start(args.master_timeout)
            server.source = source.describe()
    except InputError as error:
        if server is not None:
            server.server_close()
        print("py-trees-tree-viewer: %s" % error, file=sys.stderr)
        return 2
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    print("py-trees-tree-viewer: showing %s at http://%s:%d/ (Ctrl-C to stop)"
          % (server.source, host, port), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        store.close()
        if source is not None:
            source.stop()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
