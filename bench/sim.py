"""Benchmark: is the headless simulator at least real time on this machine?

Runs a world for a stretch of simulated time the way the ROS bridge does (physics in
``--physics-dt`` steps with the robot driving a slow circle, the camera rendered at
``--camera-rate`` Hz, clearance checked at 10 Hz) and prints where the wall time goes. The
``rtf=<simulated seconds per wall second>`` line is for physics + camera; >= 1 means the
simulator keeps up with real time (the issue asks for >= 1 at 10-30 Hz). ``--scan`` runs the
world a second time with the laser scan cast at its URDF rate (as the bridge does) and ends
with one line comparing the two real-time factors: ``scan: rtf_without=... rtf_with=...
ratio=...``.

    python3 bench/sim.py --world lobby --seconds 20 --camera-rate 15 [--scan]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(sim, args, scan: bool) -> dict:
    """Run the bridge's loop for ``args.seconds`` simulated seconds; print where the time went
    and return the real-time factors (``rtf``: physics + camera + scan when ``scan``)."""
    sim.render_camera()  # create the GL context outside the timing
    sim.set_cmd_vel(0.2, 0.15)
    spent = {"physics": 0.0, "camera": 0.0, "clearance": 0.0, "topdown": 0.0, "scan": 0.0}
    frames = checks = maps = scans = 0
    next_frame = next_check = next_scan = 0.0
    scan_period = 1.0 / sim.robot.laser.rate if scan else float("inf")
    start = sim.time
    while sim.time - start < args.seconds:
        t0 = time.perf_counter()
        sim.step(args.physics_dt)
        t1 = time.perf_counter()
        spent["physics"] += t1 - t0
        now = sim.time - start
        if now >= next_frame:
            sim.render_camera()
            t2 = time.perf_counter()
            spent["camera"] += t2 - t1
            frames += 1
            next_frame += 1.0 / args.camera_rate
            if frames % 3 == 0:
                sim.render_topdown()
                spent["topdown"] += time.perf_counter() - t2
                maps += 1
        if now >= next_scan:
            t4 = time.perf_counter()
            sim.scan()
            spent["scan"] += time.perf_counter() - t4
            scans += 1
            next_scan += scan_period
        if now >= next_check:
            t3 = time.perf_counter()
            sim.min_clearance()
            spent["clearance"] += time.perf_counter() - t3
            checks += 1
            next_check += 0.1
    simulated = sim.time - start
    print("world=%s simulated=%.1fs camera=%.0fHz physics_dt=%.3fs (%d actors) scan=%s"
          % (args.world, simulated, args.camera_rate, args.physics_dt, len(sim.world.actors),
             "%.0fHz" % sim.robot.laser.rate if scan else "off"))
    print("physics:   %7.1f ms per simulated second" % (1000 * spent["physics"] / simulated))
    print("camera:    %7.1f ms per frame (%d frames, 640x480)" % (1000 * spent["camera"] / max(frames, 1), frames))
    print("topdown:   %7.1f ms per map (%d maps)" % (1000 * spent["topdown"] / max(maps, 1), maps))
    print("clearance: %7.2f ms per check (%d checks)" % (1000 * spent["clearance"] / max(checks, 1), checks))
    if scan:
        print("scan:      %7.2f ms per scan (%d scans)" % (1000 * spent["scan"] / max(scans, 1), scans))
    rtf_physics = simulated / spent["physics"]
    total = spent["physics"] + spent["camera"] + spent["scan"]
    print("rtf_physics_only=%.1f" % rtf_physics)
    print("rtf_with_topdown_and_clearance=%.2f" % (simulated / (total + spent["topdown"] + spent["clearance"])))
    print("rtf=%.2f" % (simulated / total))
    return {"rtf": simulated / total, "ms_per_scan": 1000 * spent["scan"] / max(scans, 1)}


def main(argv=None) -> int:
    from common.errors import InputError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="lobby")
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated seconds to run")
    parser.add_argument("--camera-rate", type=float, default=15.0, help="camera frames per simulated second")
    parser.add_argument("--physics-dt", type=float, default=0.01, help="seconds per step() call")
    parser.add_argument("--scan", action="store_true",
                        help="run a second pass with the laser scan at its URDF rate and print "
                             "both real-time factors and their ratio")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.camera_rate <= 0 or args.physics_dt <= 0:
        print("--seconds, --camera-rate and --physics-dt must be > 0", file=sys.stderr)
        return 2
    from sim.simulator import Simulator

    try:
        sim = Simulator(args.world)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.scan and sim.robot.laser is None:
        print("--scan: %s has no laser scanner" % sim.robot.path, file=sys.stderr)
        return 2
    report = run(sim, args, scan=False)
    sim.close()
    if args.scan:
        try:
            sim = Simulator(args.world)
        except InputError as exc:
            print(exc, file=sys.stderr)
            return 2
        with_scan = run(sim, args, scan=True)
        sim.close()
        print("scan: rtf_without=%.2f rtf_with=%.2f ratio=%.3f (%.2f ms per scan, %d beams at %.0f Hz)"
              % (report["rtf"], with_scan["rtf"], with_scan["rtf"] / report["rtf"],
                 with_scan["ms_per_scan"], sim.robot.laser.samples, sim.robot.laser.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
