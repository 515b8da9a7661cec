#!/usr/bin/env python3
"""Test helper: once patrol_node has been in a mode (its ``patrol_node/mode`` starts with
--mode, e.g. ``follow`` or ``patrol``) for --after simulated seconds, tell the simulator to
stall a sensor (``sim/stall_camera`` or ``sim/stall_scan``) for --stall seconds. Once only."""
from __future__ import annotations

import argparse

import rospy
from std_msgs.msg import Float64, String


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensor", choices=("camera", "scan"), default="camera")
    parser.add_argument("--mode", default="follow")
    parser.add_argument("--after", type=float, default=1.0)
    parser.add_argument("--stall", type=float, default=3.0)
    args = parser.parse_args(rospy.myargv()[1:])
    rospy.init_node("stall_sensor")
    stall_pub = rospy.Publisher("sim/stall_" + args.sensor, Float64, queue_size=1, latch=True)
    state = {"since": None, "done": False}

    def on_mode(msg: String) -> None:
        in_mode = msg.data.lower().startswith(args.mode.lower())
        if not in_mode:
            state["since"] = None
        elif state["since"] is None:
            state["since"] = rospy.get_time()

    rospy.Subscriber("patrol_node/mode", String, on_mode, queue_size=5)
    rate = rospy.Rate(20)
    while not rospy.is_shutdown() and not state["done"]:
        since = state["since"]
        if since is not None and rospy.get_time() - since >= args.after:
            stall_pub.publish(Float64(data=args.stall))
            rospy.loginfo("stall_sensor: %s stalled for %.1f s", args.sensor, args.stall)
            state["done"] = True
        rate.sleep()
    rospy.spin()


if __name__ == "__main__":
    main()
