#!/usr/bin/env python3
"""A stand-in robot for ROS graph tests: a camera showing a real photo, odometry, a laser,
a cmd log.

The camera publishes one real face photo composed into a 640x480 frame at --rate Hz until
--stall-after seconds (then goes silent, to test the watchdog); odometry reports a robot
standing at the origin; the laser (scan, base_scan, the URDF's 360 beams) sees nothing in
range, since patrol_node does not move without a fresh scan, until --scan-stall-after
seconds (then goes silent, to test the scan watchdog); every cmd_vel received is appended
to --cmd-log as JSON lines with the wall time, so the test can see when the commands went
to zero. The moment of the last frame and of the last scan before a stall are logged there
too ("last_frame", "last_scan"). No /clock is published, so ROS time is wall time.
"""
from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
import rospy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CompressedImage, Image, LaserScan

from common.ros_messages import bgr_to_image, ranges_to_laser_scan


def compose_frame(photo_path: str, face_px: int = 160, centre_x: int = 200) -> np.ndarray:
    """The photo scaled so its longer side is face_px, on a grey 640x480 frame.

    Left of centre on purpose: a robot following this face must turn, so its commands are
    not zero and a test can see them stop when the camera stalls.
    """
    photo = cv2.imread(photo_path)
    if photo is None:
        raise SystemExit("fake_robot: cannot read %s" % photo_path)
    scale = face_px / float(max(photo.shape[:2]))
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 120, np.uint8)
    h, w = photo.shape[:2]
    top, left = (480 - h) // 2, max(0, centre_x - w // 2)
    frame[top:top + h, left:left + w] = photo
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--rate", type=float, default=15.0)
    parser.add_argument("--stall-after", type=float, default=0.0, help="0 = never")
    parser.add_argument("--scan-stall-after", type=float, default=0.0,
                        help="stop publishing scan after this many seconds; 0 = never")
    parser.add_argument("--cmd-log", required=True)
    parser.add_argument("--compressed", action="store_true",
                        help="publish JPEG CompressedImage on camera/image_raw/compressed")
    parser.add_argument("--encoding", default="bgr8",
                        help="claim this encoding (a wrong one tests the node's input check)")
    args = parser.parse_args()

    rospy.init_node("fake_robot")
    frame = compose_frame(args.image)
    if args.compressed:
        image_pub = rospy.Publisher("camera/image_raw/compressed", CompressedImage, queue_size=1)
        jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    else:
        image_pub = rospy.Publisher("camera/image_raw", Image, queue_size=1)
    odom_pub = rospy.Publisher("odom", Odometry, queue_size=5)
    scan_pub = rospy.Publisher("scan", LaserScan, queue_size=2)
    nothing_in_range = np.full(360, np.inf, dtype=np.float32)
    log = open(args.cmd_log, "a")

    def on_cmd(msg: Twist) -> None:
        log.write(json.dumps({"wall": time.time(), "v": msg.linear.x, "w": msg.angular.z}) + "\n")
        log.flush()

    rospy.Subscriber("cmd_vel", Twist, on_cmd, queue_size=20)
    start = time.time()
    stalled_logged = False
    scan_stalled_logged = False
    last_frame = start
    last_scan = start
    rate = rospy.Rate(args.rate)
    while not rospy.is_shutdown():
        now = rospy.Time.now()
        odom = Odometry()
        odom.header.stamp = now
        odom.pose.pose.orientation.w = 1.0
        odom_pub.publish(odom)
        if args.scan_stall_after <= 0 or time.time() - start < args.scan_stall_after:
            scan = ranges_to_laser_scan(nothing_in_range, 0.0, 2 * np.pi / 359, 0.12, 3.5,
                                        "base_scan")
            scan.header.stamp = now
            scan_pub.publish(scan)
            last_scan = time.time()
        elif not scan_stalled_logged:
            log.write(json.dumps({"wall": last_scan, "event": "last_scan"}) + "\n")
            log.flush()
            scan_stalled_logged = True
        if args.stall_after <= 0 or time.time() - start < args.stall_after:
            if args.compressed:
                msg = CompressedImage(format="jpeg", data=jpeg)
            else:
                msg = bgr_to_image(frame)
                msg.encoding = args.encoding
            msg.header.stamp = now
            image_pub.publish(msg)
            last_frame = time.time()
        elif not stalled_logged:
            log.write(json.dumps({"wall": last_frame, "event": "last_frame"}) + "\n")
            log.flush()
            stalled_logged = True
        rate.sleep()


if __name__ == "__main__":
    main()
