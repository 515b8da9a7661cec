#!/usr/bin/env python3
"""Footprint of the two runtimes: the full install's torch path against the robot's onnx path.

    python3 bench/footprint.py [--frames 150] [--detectors centerface,mtcnn]

Each runtime runs in a subprocess of its own environment, so that one's imports cannot
leak into the other's numbers: "torch" in .venv (``runtime="torch"``) and "onnx" in
.venv-robot (``runtime="onnx"``, made by ``ROBOT=1 bash scripts/setup.sh``), both with the same
face detector; each detector in turn (MTCNN's onnx runtime runs its ONNX export, so both
detectors are measured without torch). Each child imports the pipeline, builds it with one thread, then feeds it every
frame of the bench video (bench/perception.py's scene, written once by this process) as they
are decoded. Printed per runtime: peak memory (VmHWM), import + model-load time, the
installed size of the environment (its venv's site-packages; ROS and Debian's own packages are
shared by both and not counted), frames per second of ``FramePipeline.process`` and whether
torch was loaded. The last two lines are ``rss_mb=<largest onnx peak>`` and
``torch_loaded=<True|False>`` (whether any onnx run loaded it).

Timings on a shared 2-core machine are noisy: compare runs, never assert on them.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and not __package__:
    sys.path[0] = ROOT  # run as a script: bench/ would shadow the perception package

#: runtime -> the venv it runs in.
VENVS = {"torch": os.path.join(ROOT, ".venv"), "onnx": os.path.join(ROOT, ".venv-robot")}
#: Issue 19's targets for the onnx runtime.
MAX_RSS_MB, MAX_INSTALL_MB = 300, 700


def child(runtime: str, detector: str, video: str) -> dict:
    """Runs inside the runtime's own interpreter: load, then time every frame of ``video``."""
    start = time.perf_counter()
    import cv2

    from perception.pipeline import FramePipeline

    pipeline = FramePipeline.default(detector=detector, runtime=runtime, num_threads=1)
    load_s = time.perf_counter() - start
    capture = cv2.VideoCapture(video)
    frames, busy = 0, 0.0
    ok, frame = capture.read()
    pipeline.process(frame)  # warm-up: first calls allocate and pick kernels
    pipeline.reset()
    while ok:
        t = time.perf_counter()
        pipeline.process(frame)
        busy += time.perf_counter() - t
        frames += 1
        ok, frame = capture.read()
    capture.release()
    return {"runtime": runtime, "python": sys.executable, "load_s": load_s,
            "fps": frames / busy if busy else 0.0, "frames": frames,
            "rss_mb": peak_rss_mb(), "torch_loaded": "torch" in sys.modules}


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over fork and exec, so a child of this (torch-loaded) parent would report the parent's
    peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def site_packages_mb(venv: str) -> float:
    total = 0
    for folder in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")):
        for dirpath, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    total += os.path.getsize(path)
    return total / 1e6


def run(runtime: str, detector: str, video: str) -> dict:
    python = os.path.join(VENVS[runtime], "bin", "python3")
    if not os.path.isfile(python):
        fix = "ROBOT=1 bash scripts/setup.sh" if runtime == "onnx" else "make setup"
        raise SystemExit("error: %s has no %s; make it with `%s`" % (runtime, python, fix))
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    done = subprocess.run([python, os.path.abspath(__file__), "--child", runtime,
                           "--detector", detector, "--video", video],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit("error: the %s run failed:\n%s" % (runtime, done.stderr[-3000:]))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["install_mb"] = site_packages_mb(VENVS[runtime])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150, help="bench video length")
    parser.add_argument("--video", default="/tmp/mask_patrol_footprint.mp4")
    parser.add_argument("--detectors", default="centerface,mtcnn",
                        help="face detectors, each measured in both runtimes "
                             "(default %(default)s)")
    parser.add_argument("--detector", help=argparse.SUPPRESS)  # the child's one detector
    parser.add_argument("--child", choices=sorted(VENVS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.detector, args.video)))
        return 0

    from bench.perception import build_scene

    build_scene(args.video, args.frames)
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    onnx_runs = []
    print("bench video %s: %d frames 640x480, one thread, detect every 5th frame"
          % (args.video, args.frames))
    print("%-11s %-8s %-26s %10s %12s %14s %8s %13s"
          % ("detector", "runtime", "python", "peak RSS", "import+load", "site-packages", "fps",
             "torch loaded"))
    for detector in detectors:
        results = [run(runtime, detector, args.video) for runtime in ("torch", "onnx")]
        for r in results:
            print("%-11s %-8s %-26s %7.0f MB %10.2f s %11.0f MB %8.1f %13s"
                  % (detector, r["runtime"], os.path.relpath(r["python"], ROOT), r["rss_mb"],
                     r["load_s"], r["install_mb"], r["fps"], r["torch_loaded"]))
        torch_run, onnx_run = results
        onnx_runs.append(onnx_run)
        print("%-11s onnx targets: RSS < %d MB %s, install < %d MB %s, fps >= torch's %s"
              % (detector, MAX_RSS_MB, "met" if onnx_run["rss_mb"] < MAX_RSS_MB else "MISSED",
                 MAX_INSTALL_MB,
                 "met" if onnx_run["install_mb"] < MAX_INSTALL_MB else "MISSED",
                 "met" if onnx_run["fps"] >= torch_run["fps"] else "MISSED"))
    print("rss_mb=%.0f" % max(r["rss_mb"] for r in onnx_runs))
    print("torch_loaded=%s" % any(r["torch_loaded"] for r in onnx_runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
