"""patrol_node: owns the behaviour tree and wires it to ROS. Thin by design.

Subscribes camera/image_raw (sensor_msgs/Image, or CompressedImage on
camera/image_raw/compressed with ~compressed:=true), camera/camera_info (the field of view),
odom (nav_msgs/Odometry), e_stop (std_msgs/Bool) and scan (sensor_msgs/LaserScan in frame
base_scan; with require_scan the robot does not move without a fresh one, and every command
is cut to its clearance); publishes cmd_vel
(geometry_msgs/Twist), ~detections (mask_patrol/FaceDetectionArray), ~annotated/image_raw
(sensor_msgs/Image), ~alert (mask_patrol/MaskAlert), ~mode (std_msgs/String) and
~tree/snapshots (std_msgs/String, py_trees_js JSON, latched, on change). Every topic is
remappable.

Settings: config/patrol.yaml of this package (every perception and tree setting; the
launch files load it into ~), with the launch file's own keys on top (behaviors.settings).
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading
from typing import Any, Dict, Optional

import py_trees
import rospy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan
from std_msgs.msg import Bool, String

from behaviors import ros_io
from behaviors import blackboard_keys as keys
from behaviors.alerts import DEFAULT_DB, AlertRecord, AlertStore, AlertWriter, apply_retention
from behaviors.event_log import EventLog
from behaviors.gather import Inbox
from behaviors.settings import SETTINGS_FILE, load_settings_file, read_settings
from behaviors.snapshot import ChangeDetector, tree_snapshot
from behaviors.tree import active_branch, create_root, current_command, current_perception
from common.geometry import fov_from_camera_info
from common.ros_messages import bgr_to_image
from mask_patrol.msg import FaceDetectionArray, MaskAlert
from common.errors import InputError

#: The frame the camera's pixels are in (TurtleBot3's, and our URDF's).
CAMERA_FRAME = "camera_rgb_optical_frame"
#: The frame the laser's ranges are in (TurtleBot3's LDS, and our URDF's).
LASER_FRAME = "base_scan"


def alert_message(record: AlertRecord) -> MaskAlert:
    """The ~alert message for an alert already in the store."""
    msg = MaskAlert()
    msg.header.stamp = rospy.Time.from_sec(record.stamp)
    msg.header.frame_id = CAMERA_FRAME
    msg.alert_id = record.id
    msg.track_id = record.track_id
    msg.label = record.label
    msg.score = record.score
    msg.x_min, msg.y_min, msg.x_max, msg.y_max = record.box
    if record.robot_x is not None:
        msg.robot_pose.x, msg.robot_pose.y = record.robot_x, record.robot_y
        msg.robot_pose.theta = record.robot_yaw
    msg.snapshot_path = record.face_path
    msg.frame_snapshot_path = record.frame_path
    return msg


def annotated_frame(output: Any, people: Any, blur_bystanders: bool) -> Any:
    """The camera frame of a perception result with every face boxed and labelled (a new
    array); with ``blur_bystanders``, the faces of people who raised no alert (that the
    PersonRegistry ``people`` does not know) are blurred first."""
    from perception.drawing import draw_result

    frame = output.frame_bgr.copy()
    if blur_bystanders:
        from perception.privacy import blur_bystanders as blur

        alerted = [t.track_id for t in output.result.tracks
                   if people is not None and people.is_known(t.track_id)]
        frame = blur(frame, output.result.tracks, alerted)
    return draw_result(frame, output.result)


def settings_file() -> str:
    """This package's config/patrol.yaml, found the ROS way when the package is installed
    elsewhere than beside the libraries."""
    if os.path.exists(SETTINGS_FILE):
        return SETTINGS_FILE
    import rospkg

    return os.path.join(rospkg.RosPack().get_path("mask_patrol"), "config", "patrol.yaml")


class PatrolNode:
    """Ticks the tree on a ROS-time timer and moves data between topics and the tree."""

    def __init__(self, params: Dict[str, Any], base: Optional[Dict[str, Any]] = None) -> None:
        self.config, perception, node = read_settings(params, base)
        # Built once here so a missing or broken model stops start-up with its own error. The
        # field of view lets the tracker take the robot's turns out of the faces' motion.
        self._pipeline = perception.build_pipeline(horizontal_fov=self.config.camera_hfov)
        #: for the start-up log: which models run, and on what
        self.models = "detector %s, runtime %s" % (perception.detector, perception.runtime)
        self.camera_hfov: Optional[float] = None
        db = os.path.expanduser(node.alert_db or DEFAULT_DB)
        self.store = AlertStore(db, node.snapshot_dir or None, world=node.scenario,
                                blur_bystanders=node.blur_bystanders)
        purged = apply_retention(self.store, node.retention_days, actor="patrol_node")
        rospy.loginfo("patrol_node: retention %s: %d alert(s) had their snapshots purged",
                      "%g days" % node.retention_days if node.retention_days else "forever",
                      len(purged))
        self.blur_bystanders = node.blur_bystanders
        self.events = EventLog(node.event_log or os.path.join(os.path.dirname(db),
                                                              "events.jsonl"), rospy.get_time)
        self.alert_pub = rospy.Publisher("~alert", MaskAlert, queue_size=10, latch=True)
        self.writer = AlertWriter(self.store, self._publish_alert).start()
        self.inbox = Inbox(clock=rospy.get_time)
        self.root = create_root(self.config, inbox=self.inbox, alert_sink=self.writer,
                                pipeline_factory=lambda: self._pipeline)
        self.tree = py_trees.trees.BehaviourTree(self.root)
        self.tree.setup(timeout=60)
        self.changes = ChangeDetector()
        self.visits = py_trees.visitors.SnapshotVisitor()
        self.tree.visitors.append(self.visits)
        self._last_seq = -1
        self._mode = ""
        self._lock = threading.Lock()

        self.cmd_pub = rospy.Publisher("cmd_vel", Twist, queue_size=1)
        self.det_pub = rospy.Publisher("~detections", FaceDetectionArray, queue_size=2)
        self.annotated_pub = rospy.Publisher("~annotated/image_raw", Image, queue_size=2)
        self.mode_pub = rospy.Publisher("~mode", String, queue_size=2, latch=True)
        self.tree_pub = rospy.Publisher("~tree/snapshots", String, queue_size=2, latch=True)
        if node.compressed:
            rospy.Subscriber("camera/image_raw/compressed", CompressedImage,
                             self._on_frame(ros_io.compressed_to_bgr), queue_size=1,
                             buff_size=2 ** 24)
        else:
            rospy.Subscriber("camera/image_raw", Image, self._on_frame(ros_io.image_to_bgr),
                             queue_size=1, buff_size=2 ** 24)
        rospy.Subscriber("camera/camera_info", CameraInfo, self._on_camera_info, queue_size=1)
        rospy.Subscriber("odom", Odometry, self._on_odom, queue_size=5)
        rospy.Subscriber("e_stop", Bool, lambda m: self.inbox.put_estop(m.data), queue_size=5)
        rospy.Subscriber("scan", LaserScan, self._on_scan, queue_size=1, buff_size=2 ** 16)
        rospy.loginfo("patrol_node: camera field of view %.4f rad from the settings until "
                      "camera/camera_info arrives", self.config.camera_hfov)

    # --- inputs: bad messages are logged and dropped, so the watchdog stops the robot ------
    def _on_frame(self, convert):
        def callback(msg) -> None:
            try:
                self.inbox.put_frame(convert(msg))
            except InputError as exc:
                rospy.logerr_throttle(5.0, "patrol_node: camera frame refused: %s" % exc)
        return callback

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            fov = fov_from_camera_info(msg.width, msg.K)
            self.inbox.put_camera_fov(fov)
        except (InputError, ValueError) as exc:
            rospy.logerr_throttle(5.0, "patrol_node: camera_info refused (%s); keeping the "
                                  "field of view %s" % (exc, self.camera_hfov
                                                        or self.config.camera_hfov))
            return
        if self.camera_hfov is None or not math.isclose(fov, self.camera_hfov, abs_tol=1e-6):
            self.camera_hfov = fov
            self._pipeline.horizontal_fov = fov
            rospy.loginfo("patrol_node: camera field of view %.4f rad from camera_info "
                          "(width %d, fx %.1f)", fov, msg.width, msg.K[0])

    def _on_odom(self, msg: Odometry) -> None:
        try:
            x, y, yaw, _, _ = ros_io.odometry_to_pose(msg)
            self.inbox.put_odometry(x, y, yaw)
        except InputError as exc:
            rospy.logerr_throttle(5.0, "patrol_node: odometry refused: %s" % exc)

    def _on_scan(self, msg: LaserScan) -> None:
        try:
            self.inbox.put_scan(ros_io.scan_to_ranges(msg, expected_frame=LASER_FRAME))
        except InputError as exc:
            rospy.logerr_throttle(5.0, "patrol_node: laser scan refused: %s" % exc)

    # --- the tick ----------------------------------------------------------------------
    def tick(self, _event=None) -> None:
        with self._lock:
            self.tree.tick()
            command = current_command()
            twist = Twist()
            twist.linear.x, twist.angular.z = command.linear_x, command.angular_z
            self.cmd_pub.publish(twist)
            self._publish_mode()
            change = self.changes.check(self.root)
            if change:
                snapshot = tree_snapshot(self.root, changed=change.tree,
                                         visited=self.visits.visited)
                self.tree_pub.publish(String(data=json.dumps(snapshot)))
            self._publish_perception()

    def _publish_mode(self) -> None:
        mode = active_branch(self.root)
        if mode != self._mode:
            self._mode = mode
            self.mode_pub.publish(String(data=mode))
            self.events.write({"event": "mode", "mode": mode})

    def _publish_perception(self) -> None:
        output = current_perception()
        if output is None or output.frame_seq == self._last_seq:
            return
        self._last_seq = output.frame_seq
        header = rospy.Header(stamp=rospy.Time.from_sec(output.stamp), frame_id=CAMERA_FRAME)
        self.det_pub.publish(ros_io.frame_result_to_msg(output.result, header))
        if self.annotated_pub.get_num_connections() > 0:
            # the recorded video comes from this topic
            people = py_trees.blackboard.Blackboard.storage.get(keys.PEOPLE)
            annotated = annotated_frame(output, people, self.blur_bystanders)
            self.annotated_pub.publish(bgr_to_image(annotated, header))

    def _publish_alert(self, record: AlertRecord, event) -> None:
        self.alert_pub.publish(alert_message(record))
        self.events.write({"event": "alert", "alert_id": record.id,
                           "track_id": record.track_id, "label": record.label})
        rospy.logwarn("patrol_node: ALERT %d: track %d %s (%.2f), snapshot %s", record.id,
                      record.track_id, record.label, record.score, record.face_path)

    def shutdown(self) -> None:
        with self._lock:
            self.tree.shutdown()
            self.cmd_pub.publish(Twist())
        self.writer.stop()
        self.store.close()
        self.events.close()


def main() -> int:
    rospy.init_node("patrol_node")
    try:
        path = settings_file()
        node = PatrolNode(rospy.get_param("~", {}), base=load_settings_file(path))
    except (InputError, ValueError) as exc:
        # Not a crash loop: say what is wrong once, leave the robot stopped, exit.
        rospy.logfatal("patrol_node: cannot start: %s", exc)
        stop_pub = rospy.Publisher("cmd_vel", Twist, queue_size=1, latch=True)
        stop_pub.publish(Twist())
        return 2
    rospy.on_shutdown(node.shutdown)
    rospy.Timer(rospy.Duration(1.0 / node.config.tick_hz), node.tick)
    rospy.loginfo("patrol_node: settings %s (%s), ticking at %.1f Hz, %d waypoints, "
                  "alerts -> %s", path, node.models, node.config.tick_hz,
                  len(node.config.waypoints), node.store.path)
    rospy.spin()
    return 0


if __name__ == "__main__":
    sys.exit(main())
