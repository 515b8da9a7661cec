"""The simulator's ROS face: publish what Gazebo's TurtleBot3 plugins publish, obey cmd_vel.

``camera/image_raw`` + ``camera/camera_info`` (libgazebo_ros_camera), ``scan``
(libgazebo_ros_laser, at the rate and in the frame the URDF gives it), ``odom``
(libgazebo_ros_diff_drive) and ``/clock``; ``cmd_vel`` in. A node that reads these topics
cannot tell this simulator from Gazebo. Beyond Gazebo it can write a ground-truth trace
(JSON lines: robot, actors, the command it obeyed) and a top-down video for the summary and
the scenario tests, and it can be told to stall its camera (``sim/stall_camera``, seconds) or
its laser (``sim/stall_scan``) to test the robot's watchdogs in simulated time.
"""
from __future__ import annotations

import json
import os
import time
from typing import Optional

import rospy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, LaserScan
from std_msgs.msg import Float64

from common.ros_messages import bgr_to_image, quaternion_from_yaw, ranges_to_laser_scan
from perception.recording import ConstantRateVideoWriter
from sim.faces_in_view import face_plates, faces_in_view


class SimBridge:
    """Runs a Simulator in (paced) simulated time and mirrors it onto ROS topics."""

    def __init__(self, simulator, camera_rate: float = 15.0, odom_rate: float = 50.0,
                 physics_dt: float = 0.01, cmd_vel_timeout: float = 0.5,
                 real_time_factor: float = 1.0, duration: float = 0.0,
                 output_dir: Optional[str] = None, record: bool = False,
                 trace: bool = False, wait_for_cmd_vel: float = 0.0) -> None:
        if camera_rate <= 0 or odom_rate <= 0 or physics_dt <= 0:
            raise ValueError("camera_rate, odom_rate and physics_dt must be > 0")
        if real_time_factor < 0:
            raise ValueError("real_time_factor must be >= 0 (0 = as fast as possible)")
        self.sim = simulator
        self.camera_period = 1.0 / camera_rate
        self.odom_period = 1.0 / odom_rate
        self.physics_dt = physics_dt
        self.cmd_vel_timeout = cmd_vel_timeout
        self.real_time_factor = real_time_factor
        self.duration = duration
        self.output_dir = output_dir
        self.wait_for_cmd_vel = wait_for_cmd_vel
        self._cmd = (0.0, 0.0)
        self._cmd_stamp = -1e9
        #: sensor ("camera", "scan") -> simulated time until which it publishes nothing
        self._stalled_until = {"camera": -1.0, "scan": -1.0}
        self._topdown: Optional[ConstantRateVideoWriter] = None
        self._trace_file = None
        if output_dir and (record or trace):
            os.makedirs(output_dir, exist_ok=True)
        if output_dir and record:
            self._topdown = ConstantRateVideoWriter(os.path.join(output_dir, "topdown.mp4"), 10.0)
        if output_dir and trace:
            self._trace_file = open(os.path.join(output_dir, "trace.jsonl"), "w")
            fx, fy, cx, cy = simulator.camera_intrinsics()
            meta = {"world": simulator.scenario.name, "fx": fx, "fy": fy, "cx": cx, "cy": cy,
                    "width": int(round(2 * cx)), "height": int(round(2 * cy)),
                    "labels": {a.name: a.label for a in simulator.world.actors}}
            self._trace_file.write(json.dumps({"meta": meta}) + "\n")
        self._plates = face_plates(simulator.world)
        self.laser = simulator.robot.laser
        self.scan_period = 1.0 / self.laser.rate if self.laser is not None else 0.0

        self.clock_pub = rospy.Publisher("/clock", Clock, queue_size=10)
        self.image_pub = rospy.Publisher("camera/image_raw", Image, queue_size=2)
        self.info_pub = rospy.Publisher("camera/camera_info", CameraInfo, queue_size=2)
        self.odom_pub = rospy.Publisher("odom", Odometry, queue_size=10)
        self.scan_pub = (rospy.Publisher(self.laser.topic, LaserScan, queue_size=2)
                         if self.laser is not None else None)
        self._cmd_sub = rospy.Subscriber("cmd_vel", Twist, self._on_cmd_vel, queue_size=5)
        for sensor in self._stalled_until:
            rospy.Subscriber("sim/stall_" + sensor, Float64, self._on_stall,
                             callback_args=sensor, queue_size=5)

    # --- inputs ------------------------------------------------------------------------
    def _on_cmd_vel(self, msg: Twist) -> None:
        self._cmd = (float(msg.linear.x), float(msg.angular.z))
        self._cmd_stamp = self.sim.time

    def _on_stall(self, msg: Float64, sensor: str) -> None:
        self._stalled_until[sensor] = self.sim.time + float(msg.data)
        rospy.logwarn("sim: %s stalled for %.2f s of simulated time", sensor, msg.data)

    def _stalled(self, sensor: str, now: float) -> bool:
        return now < self._stalled_until[sensor]

    # --- the loop ----------------------------------------------------------------------
    def wait_for_driver(self) -> None:
        """Hold simulated time at zero until something publishes cmd_vel (at most
        ``wait_for_cmd_vel`` wall seconds), so a scenario's clock starts when the robot's
        brain is ready, not while its model is still loading."""
        if self.wait_for_cmd_vel <= 0:
            return
        deadline = time.monotonic() + self.wait_for_cmd_vel
        self.clock_pub.publish(Clock(clock=rospy.Time.from_sec(self.sim.time)))
        while not rospy.is_shutdown() and self._cmd_sub.get_num_connections() == 0:
            if time.monotonic() > deadline:
                rospy.logwarn("sim: nothing publishes cmd_vel after %.0f s; starting anyway",
                              self.wait_for_cmd_vel)
                return
            self._publish_camera(self.sim.time)
            self._publish_odom(self.sim.time)
            if self.scan_pub is not None:
                self._publish_scan(self.sim.time)
            time.sleep(0.2)
        rospy.loginfo("sim: cmd_vel has a publisher, starting the clock")

    def run(self) -> None:
        """Step, publish and pace until shutdown or ``duration`` simulated seconds."""
        self.wait_for_driver()
        next_camera = 0.0
        next_scan = 0.0
        next_odom = 0.0
        next_trace = 0.0
        wall_start = time.monotonic()
        sim_start = self.sim.time
        try:
            while not rospy.is_shutdown():
                now = self.sim.time
                if self.duration > 0 and now - sim_start >= self.duration:
                    rospy.loginfo("sim: %.1f s of simulated time done, stopping", self.duration)
                    break
                cmd = self._cmd if now - self._cmd_stamp <= self.cmd_vel_timeout else (0.0, 0.0)
                self.sim.set_cmd_vel(*cmd)
                self.sim.step(self.physics_dt)
                now = self.sim.time
                self.clock_pub.publish(Clock(clock=rospy.Time.from_sec(now)))
                if now >= next_odom:
                    self._publish_odom(now)
                    next_odom += self.odom_period
                if now >= next_camera:
                    self._publish_camera(now)
                    next_camera += self.camera_period
                if self.scan_pub is not None and now >= next_scan:
                    self._publish_scan(now)
                    next_scan += self.scan_period
                if now >= next_trace:
                    self._write_trace(now, cmd)
                    next_trace += 0.1
                if self.real_time_factor > 0:
                    ahead = (now - sim_start) / self.real_time_factor - (time.monotonic() - wall_start)
                    if ahead > 0:
                        time.sleep(ahead)
        finally:
            self.close()
        wall = time.monotonic() - wall_start
        rospy.loginfo("sim: real-time factor over the run %.2f", (self.sim.time - sim_start) / max(wall, 1e-6))

    def _publish_odom(self, now: float) -> None:
        x, y, yaw, v, w = self.sim.odometry()
        msg = Odometry()
        msg.header.stamp = rospy.Time.from_sec(now)
        msg.header.frame_id = "odom"
        msg.child_frame_id = "base_footprint"
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        q = quaternion_from_yaw(yaw)
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = q
        msg.twist.twist.linear.x = v
        msg.twist.twist.angular.z = w
        self.odom_pub.publish(msg)

    def _publish_camera(self, now: float) -> None:
        if self._topdown is not None:
            self._topdown.add(self.sim.render_topdown(), now)
        if self._stalled("camera", now):
            return
        frame = self.sim.render_camera()
        stamp = rospy.Time.from_sec(now)
        image = bgr_to_image(frame)
        image.header.stamp = stamp
        image.header.frame_id = "camera_rgb_optical_frame"
        self.image_pub.publish(image)
        self.info_pub.publish(self._camera_info(stamp, frame.shape[1], frame.shape[0]))

    def _publish_scan(self, now: float) -> None:
        if self._stalled("scan", now):
            return
        laser = self.laser
        msg = ranges_to_laser_scan(self.sim.scan(), laser.angle_min, laser.angle_increment,
                                   laser.range_min, laser.range_max, laser.frame_id,
                                   scan_time=self.scan_period)
        msg.header.stamp = rospy.Time.from_sec(now)
        self.scan_pub.publish(msg)

    def _camera_info(self, stamp, width: int, height: int) -> CameraInfo:
        fx, fy, cx, cy = self.sim.camera_intrinsics()
        info = CameraInfo()
        info.header.stamp = stamp
        info.header.frame_id = "camera_rgb_optical_frame"
        info.width, info.height = width, height
        info.distortion_model = "plumb_bob"
        info.D = [0.0] * 5
        info.K = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.R = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.P = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def _write_trace(self, now: float, cmd) -> None:
        if self._trace_file is None:
            return
        x, y, yaw, v, w = self.sim.odometry()
        clearance, what = self.sim.min_clearance()
        row = {
            "t": round(now, 3),
            "robot": [round(x, 4), round(y, 4), round(yaw, 4)],
            "cmd": [round(cmd[0], 4), round(cmd[1], 4)],
            "camera_stalled": self._stalled("camera", now),
            "scan_stalled": self._stalled("scan", now),
            "actors": {k: [round(c, 4) for c in pose] for k, pose in self.sim.actor_poses().items()},
            "clearance": round(float(clearance), 4),
            "nearest": what,
            "faces": faces_in_view(self.sim, self._plates),
        }
        self._trace_file.write(json.dumps(row) + "\n")
        self._trace_file.flush()

    def close(self) -> None:
        if self._topdown is not None:
            self._topdown.close()
        if self._trace_file is not None:
            self._trace_file.close()
            self._trace_file = None
