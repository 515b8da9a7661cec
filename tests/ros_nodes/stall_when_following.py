#!/usr/bin/env python3
"""Test helper: once patrol_node has been following for --after simulated seconds, tell the
simulator to stall its camera for --stall seconds (sim/stall_camera). Once only."""
from __future__ import annotations

import argparse

import rospy
from std_msgs.msg import Float64, String


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--after", type=float, default=1.0)
    parser.add_argument("--stall", type=float, default=3.0)
    args = parser.parse_args(rospy.myargv()[1:])
    rospy.init_node("stall_when_following")
    stall_pub = rospy.Publisher("sim/stall_camera", Float64, queue_size=1, latch=True)
    state = {"since": None, "done": False}

    def on_mode(msg: String) -> None:
        following = msg.data.lower().startswith("follow")
        state["since"] = rospy.get_time() if following else None

    rospy.Subscriber("patrol_node/mode", String, on_mode, queue_size=5)
    rate = rospy.Rate(20)
    while not rospy.is_shutdown() and not state["done"]:
        since = state["since"]
        if since is not None and rospy.get_time() - since >= args.after:
            stall_pub.publish(Float64(data=args.stall))
            rospy.loginfo("stall_when_following: camera stalled for %.1f s", args.stall)
            state["done"] = True
        rate.sleep()
    rospy.spin()


if __name__ == "__main__":
    main()
