#!/usr/bin/env python3
"""Latency benchmark: from an alert's commit to its arrival on the console's open pages.

    python3 bench/console_latency.py [--clients 10] [--alerts 20] [--auth cookie|header]

Issue 18 promises that "new alerts arrive live over a WebSocket within 1 s of the row being
committed". This measures that promise end to end, with nothing mocked: it starts the real
console (``alerts serve`` in its own process, on a free loopback port, on a temporary store
with a 0600 token file), connects N WebSocket clients the way the page does (``/login?token=``
for the cookie, ``/api/session``, then ``/ws`` with this server's Origin; or a bearer header
with ``--auth header``), waits until every client has its hello, and then writes M alerts
with a real ``AlertStore.record(...)`` (snapshots, fsync, commit) from a writer thread, at
random intervals, as a patrol node would. For every client and alert it takes the delay
from the moment ``record()`` returned (the row is committed) to the moment that client
received the alert, and prints the median, p95 and max over all of them. The console polls
the store every 0.2 s, so most of the delay is the wait for the next poll.

The last line is ``max_delay_ms=<value>`` (``inf`` when some client never got some alert).
Loopback only, bounded in clients, alerts and time (``--timeout``); it stops by itself and
removes its temporary folder. Timings on a shared 2-core machine are noisy: compare runs,
never assert on them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and not __package__:
    # Run as a script, sys.path[0] is bench/; the project's packages live one folder up.
    sys.path[0] = ROOT

import numpy as np  # noqa: E402

from behaviors.console.auth import write_token_file  # noqa: E402

HOST = "127.0.0.1"
#: A face box inside the frame that ``frame()`` makes (the astronaut's face).
FACE_BOX = (245.0, 62.0, 333.0, 172.0)
MAX_CLIENTS = 200
MAX_ALERTS = 500
#: No alert is written later than this before the end, so the last one has time to arrive.
GRACE_S = 2.0


def frame() -> np.ndarray:
    """A 640x480 BGR camera frame with one real face, as the robot's camera gives."""
    import skimage.data

    rgb = skimage.data.astronaut()
    canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
    canvas[:, 64:576] = rgb[:480, :, ::-1]
    return canvas


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Console:
    """``alerts serve`` in a subprocess on a free loopback port."""

    def __init__(self, db: str, folder: str, timeout: float) -> None:
        self.token_file, self.token = write_token_file(folder)
        self.port = free_port()
        self.base = "http://%s:%d" % (HOST, self.port)
        self.stderr_path = os.path.join(folder, "console.stderr")
        self._stderr = open(self.stderr_path, "wb")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        argv = [sys.executable, "-m", "behaviors.alert_cli", "serve", "--db", db,
                "--host", HOST, "--port", str(self.port), "--token-file", self.token_file]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("alerts console:"):
            self.stop()
            raise RuntimeError("alerts serve did not start within %.0f s; its stderr:\n%s"
                               % (timeout, self.log()[-2000:]))

    def log(self) -> str:
        with open(self.stderr_path, "r", errors="replace") as handle:
            return handle.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()


async def page(console: Console, auth: str, index: int, ready: "asyncio.Queue[int]",
               want: int, received: Dict[Tuple[int, int], float], deadline: float) -> None:
    """One client: log in as the page does, open /ws, note when each alert arrives."""
    import aiohttp

    if auth == "header":
        session = aiohttp.ClientSession(headers={"Authorization": "Bearer " + console.token})
    else:
        # The cookie comes from an IP address, which aiohttp's default jar refuses.
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session:
        if auth == "cookie":
            async with session.get(console.base + "/login", params={"token": console.token},
                                   allow_redirects=False) as reply:
                if reply.status != 303:
                    raise RuntimeError("client %d: /login answered %d" % (index, reply.status))
        async with session.get(console.base + "/api/session") as reply:
            if reply.status != 200:
                raise RuntimeError("client %d: /api/session answered %d" % (index, reply.status))
            await reply.json()
        async with session.ws_connect(console.base + "/ws", origin=console.base,
                                      heartbeat=None) as ws:
            got = 0
            while got < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    message = await ws.receive(timeout=left)
                except asyncio.TimeoutError:
                    return
                now = time.monotonic()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError("client %d: the WebSocket closed (%s)"
                                       % (index, message.type))
                data = json.loads(message.data)
                if data["type"] == "hello":
                    ready.put_nowait(index)
                elif data["type"] == "alert":
                    key = (index, int(data["alert"]["id"]))
                    if key not in received:
                        received[key] = now
                        got += 1


def write_alerts(store, count: int, low: float, high: float, seed: int,
                 committed: Dict[int, float], record_s: List[float],
                 stop: threading.Event, deadline: float) -> None:
    """The robot's side: ``count`` alerts, one every uniform(low, high) seconds, none after
    ``deadline`` (time.monotonic)."""
    from behaviors.control import Pose2D

    rng = random.Random(seed)
    image = frame()
    for i in range(count):
        pause = rng.uniform(low, high)
        if time.monotonic() + pause >= deadline or stop.wait(pause):
            return
        start = time.monotonic()
        alert_id = store.record(float(i), 100 + i, "unmasked", 0.9, FACE_BOX, image,
                                Pose2D(1.0 + 0.1 * i, -2.0, 0.3))
        done = time.monotonic()
        committed[alert_id] = done
        record_s.append(done - start)


Measured = Tuple[Dict[int, float], Dict[Tuple[int, int], float], List[float]]


async def measure(console: Console, store, args) -> Measured:
    """(commit time per alert id, reception time per (client, alert id), record() durations)."""
    deadline = time.monotonic() + args.timeout
    ready: "asyncio.Queue[int]" = asyncio.Queue()
    received: Dict[Tuple[int, int], float] = {}
    committed: Dict[int, float] = {}
    record_s: List[float] = []
    stop = threading.Event()
    clients = [asyncio.ensure_future(page(console, args.auth, i, ready, args.alerts, received,
                                          deadline)) for i in range(args.clients)]
    try:
        for _ in range(args.clients):  # every page open and greeted before the first write
            waiter = asyncio.ensure_future(ready.get())
            done, _ = await asyncio.wait([waiter] + clients, timeout=deadline - time.monotonic(),
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                for task in done:
                    task.result()  # a client that failed to connect says why
                raise RuntimeError("only %d of %d clients connected within --timeout"
                                   % (ready.qsize(), args.clients))
        loop = asyncio.get_event_loop()
        await loop.run_in_executor(None, write_alerts, store, args.alerts, args.min_interval,
                                   args.max_interval, args.seed, committed, record_s, stop,
                                   deadline - GRACE_S)
        await asyncio.wait_for(asyncio.gather(*clients), max(0.1, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    finally:
        stop.set()
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    return committed, received, record_s


def percentile(values: List[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10,
                        help="WebSocket clients (pages) open at once (default 10, at most %d)"
                             % MAX_CLIENTS)
    parser.add_argument("--alerts", type=int, default=20,
                        help="alerts to write (default 20, at most %d)" % MAX_ALERTS)
    parser.add_argument("--min-interval", type=float, default=0.05,
                        help="shortest pause before an alert, s (default 0.05)")
    parser.add_argument("--max-interval", type=float, default=0.6,
                        help="longest pause before an alert, s (default 0.6)")
    parser.add_argument("--auth", choices=("cookie", "header"), default="cookie",
                        help="cookie: /login?token= then the cookie, as the page does "
                             "(default); header: Authorization: Bearer, as scripts do")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pauses (default 0)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="the whole measurement ends after this many s (default 120)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error("--clients must be 1-%d, got %d" % (MAX_CLIENTS, args.clients))
    if not 1 <= args.alerts <= MAX_ALERTS:
        parser.error("--alerts must be 1-%d, got %d" % (MAX_ALERTS, args.alerts))
    if not 0 <= args.min_interval <= args.max_interval <= 10:
        parser.error("need 0 <= --min-interval <= --max-interval <= 10 s")
    if not 5 <= args.timeout <= 600:
        parser.error("--timeout must be 5-600 s, got %g" % args.timeout)

    from behaviors.alerts import AlertStore
    from behaviors.console.server import POLL_S

    folder = tempfile.mkdtemp(prefix="mask_patrol_console_bench_")
    console = None
    store = None
    try:
        store = AlertStore(os.path.join(folder, "robot1", "alerts.sqlite"), world="lobby")
        console = Console(store.path, folder, timeout=min(60.0, args.timeout))
        load = os.getloadavg()[0]
        committed, received, record_s = asyncio.run(measure(console, store, args))
        if "Traceback" in console.log():
            print("the console logged a traceback:\n%s" % console.log()[-2000:])
    finally:
        if console is not None:
            console.stop()
        if store is not None:
            store.close()
        shutil.rmtree(folder, ignore_errors=True)

    delays_ms = [1000.0 * (received[(c, a)] - t)
                 for a, t in committed.items() for c in range(args.clients)
                 if (c, a) in received]
    expected = len(committed) * args.clients
    print("alerts serve on loopback, polling its store every %.1f s; %d clients (%s auth); "
          "%d of %d alerts written at random intervals of %.2f-%.2f s"
          % (POLL_S, args.clients, args.auth, len(committed), args.alerts,
             args.min_interval, args.max_interval))
    print("load average %.1f on %d CPUs at the start; record() (snapshots, fsync, commit) "
          "took median %.0f ms" % (load, os.cpu_count() or 0,
                                   1000.0 * float(np.median(record_s)) if record_s else 0.0))
    missing = expected - len(delays_ms)
    print("received %d of %d (client, alert) pairs; missing %d"
          % (len(delays_ms), expected, missing))
    if len(committed) < args.alerts:
        print("--timeout %g s ended the writing after %d of %d alerts"
              % (args.timeout, len(committed), args.alerts))
    if not delays_ms:
        print("max_delay_ms=inf")
        return 1
    within = sum(1 for d in delays_ms if d <= 1000.0)
    print("delay from commit to reception: median %.0f ms, p95 %.0f ms, max %.0f ms "
          "(min %.0f ms); within 1 s: %d of %d"
          % (float(np.median(delays_ms)), percentile(delays_ms, 95), max(delays_ms),
             min(delays_ms), within, len(delays_ms)))
    print("max_delay_ms=%s" % ("inf" if missing else "%.0f" % max(delays_ms)))
    return 1 if missing or len(committed) < args.alerts else 0


if __name__ == "__main__":
    sys.exit(main())
