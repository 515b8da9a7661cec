"""A private ROS master per test and helpers to start roslaunch/nodes against it.

Every ROS test gets its own ``rosmaster --core`` on a free port with ROS_HOSTNAME=127.0.0.1
(docs/SETUP.md), so tests never meet each other's topics and never need a running roscore. All
processes are started in their own process group and killed on exit, even when a test fails.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("ROS master on port %d did not come up within %.0f s" % (port, timeout))


class RosGraph:
    """Owns a private master and every process a test starts against it."""

    def __init__(self, log_dir: str) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.env: Dict[str, str] = dict(os.environ)
        self.env.update({
            "ROS_MASTER_URI": "http://127.0.0.1:%d" % self.port,
            "ROS_HOSTNAME": "127.0.0.1",
            "ROS_LOG_DIR": os.path.join(log_dir, "roslog"),
            "PYTHONUNBUFFERED": "1",
        })
        self._procs: List[subprocess.Popen] = []
        self._logs: List[str] = []

    def start(self) -> "RosGraph":
        self.spawn(["rosmaster", "--core", "-p", str(self.port)], "master")
        wait_for_port(self.port)
        return self

    def spawn(self, argv: List[str], name: str, env: Optional[Dict[str, str]] = None
              ) -> subprocess.Popen:
        """Start a process in its own process group, logging to LOG_DIR/NAME.log."""
        log_path = os.path.join(self.log_dir, name + ".log")
        log = open(log_path, "ab")
        merged = dict(self.env)
        merged.update(env or {})
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=merged,
                                cwd=REPO, start_new_session=True)
        log.close()
        self._procs.append(proc)
        self._logs.append(log_path)
        return proc

    def roslaunch(self, launch_file: str, args: Dict[str, str], name: str = "roslaunch"
                  ) -> subprocess.Popen:
        # No --wait: with a master already up (start() waits for its port) roslaunch 1.16
        # --wait spins forever after "master has started".
        argv = ["roslaunch", os.path.join(REPO, "launch", launch_file)]
        argv += ["%s:=%s" % (k, v) for k, v in args.items()]
        return self.spawn(argv, name)

    def log_text(self, name: str) -> str:
        path = os.path.join(self.log_dir, name + ".log")
        with open(path, "r", errors="replace") as handle:
            return handle.read()

    def use_in_this_process(self) -> None:
        """Point this process's rospy at the private master (for in-test nodes)."""
        for key in ("ROS_MASTER_URI", "ROS_HOSTNAME", "ROS_LOG_DIR"):
            os.environ[key] = self.env[key]

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10.0
        for proc in reversed(self._procs):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)

    def __enter__(self) -> "RosGraph":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def python_node(script: str) -> List[str]:
    """argv to run a Python script with this interpreter (the venv's)."""
    return [sys.executable, script]
