#!/usr/bin/env python3
"""Listen for two sensor_msgs/LaserScan messages on ``scan`` and write what they say as JSON
(--out), for the ROS graph test of sim_node's laser; exits non-zero after --timeout wall
seconds without them."""
from __future__ import annotations

import argparse
import json
import math
import sys

import rospy
from sensor_msgs.msg import LaserScan


def describe(msg: LaserScan) -> dict:
    return {
        "stamp": msg.header.stamp.to_sec(), "frame_id": msg.header.frame_id,
        "angle_min": msg.angle_min, "angle_max": msg.angle_max,
        "angle_increment": msg.angle_increment, "range_min": msg.range_min,
        "range_max": msg.range_max, "scan_time": msg.scan_time,
        # JSON has no inf: write it as a string
        "ranges": [r if math.isfinite(r) else str(r) for r in msg.ranges],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(rospy.myargv()[1:])
    rospy.init_node("scan_listener")
    scans = []
    for _ in range(2):
        try:
            scans.append(describe(rospy.wait_for_message("scan", LaserScan, timeout=args.timeout)))
        except rospy.ROSException as exc:
            print("no scan: %s" % exc, file=sys.stderr)
            return 1
    with open(args.out, "w") as handle:
        json.dump(scans, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
