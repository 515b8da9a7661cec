"""Style and compatibility as tests: flake8 over the code, and vermin proving that the
project still imports on Python 3.8 (ROS Noetic on Ubuntu 20.04, what robots run)."""
from __future__ import annotations

import os
import subprocess
import sys

from rosgraph_harness import REPO

CODE = ["perception", "behaviors", "sim", "common", "tests", "bench", "worlds",
        os.path.join("catkin_ws", "src", "mask_patrol", "src"),
        os.path.join("catkin_ws", "src", "mask_patrol", "setup.py")]
NODES = os.path.join("catkin_ws", "src", "mask_patrol", "nodes")


def node_files():
    return [os.path.join(NODES, name) for name in sorted(os.listdir(os.path.join(REPO, NODES)))]


def test_flake8_is_clean():
    result = subprocess.run([sys.executable, "-m", "flake8"] + CODE + node_files(), cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_runs_on_python_3_8():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    result = subprocess.run([vermin, "--no-tips", "--violations", "-t=3.8-", "--backport",
                             "dataclasses", "--eval-annotations"] + CODE + node_files(),
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
