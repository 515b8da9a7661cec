"""Data gathering: copy the newest sensor inputs from a thread-safe inbox into the blackboard.

ROS callbacks (or a simulator, or a test) run on their own threads and call ``Inbox.put_*``;
at the top of every tick the ``ToBlackboard`` behaviours copy what is newest into the
blackboard, each with the stamp it arrived at. Decision branches then read one consistent
snapshot per tick and compute staleness against the same injected clock, so simulated time
works and no behaviour ever waits on a callback (the py_trees_ros "topics to blackboard"
idiom, without ROS).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import py_trees

from behaviors.clock import Clock
from behaviors.control import Pose2D
from common.errors import InputError
from common.range_scan import RangeScan


CAMERA = "camera"
ODOMETRY = "odometry"
ESTOP = "estop"
#: The camera's horizontal field of view (radians), from its camera_info.
CAMERA_INFO = "camera_info"
#: The newest laser scan (common.range_scan.RangeScan).
SCAN = "scan"
CHANNELS = (CAMERA, ODOMETRY, ESTOP, CAMERA_INFO, SCAN)


@dataclass(frozen=True)
class Stamped:
    """An input value with the clock time it arrived and its arrival number on its channel."""

    value: Any
    stamp: float
    seq: int

    def age(self, now: float) -> float:
        return now - self.stamp

    def __str__(self) -> str:
        # Short for the tree viewer: an image is summarised, never printed.
        shape = getattr(self.value, "shape", None)
        value = "x".join(str(n) for n in shape) + " image" if shape is not None else self.value
        return "%s #%d @%.2f" % (value, self.seq, self.stamp)


class Inbox:
    """The newest value of each input channel, written from any thread, read by the tree.

    Only the newest value is kept: the tree always acts on the present, and a queue would
    let a slow tick fall further and further behind. ``clock`` stamps values put without an
    explicit stamp; give the same clock to the tree (create_root uses ``inbox.clock``).
    """

    def __init__(self, clock: Optional[Clock] = None) -> None:
        self.clock: Clock = clock if clock is not None else time.monotonic
        if not callable(self.clock):
            raise ValueError("clock must be a callable returning seconds, got %r" % (clock,))
        self._lock = threading.Lock()
        self._latest: Dict[str, Stamped] = {}
        self._counts: Dict[str, int] = {name: 0 for name in CHANNELS}

    def put(self, channel: str, value: Any, stamp: Optional[float] = None) -> Stamped:
        if channel not in CHANNELS:
            raise ValueError("unknown inbox channel %r; channels are %s"
                             % (channel, ", ".join(CHANNELS)))
        when = float(self.clock() if stamp is None else stamp)
        with self._lock:
            self._counts[channel] += 1
            item = Stamped(value, when, self._counts[channel])
            self._latest[channel] = item
        return item

    def put_frame(self, frame_bgr: Any, stamp: Optional[float] = None) -> Stamped:
        """A camera frame: HxWx3 uint8 BGR array (the array is kept, not copied)."""
        shape = getattr(frame_bgr, "shape", None)
        if shape is None or len(shape) != 3 or shape[2] != 3 or shape[0] < 1 or shape[1] < 1 \
                or str(getattr(frame_bgr, "dtype", "")) != "uint8":
            raise InputError("camera frame must be an HxWx3 uint8 BGR array, got %s %s"
                             % (getattr(frame_bgr, "dtype", type(frame_bgr).__name__), shape))
        return self.put(CAMERA, frame_bgr, stamp)

    def put_odometry(self, x: float, y: float, yaw: float,
                     stamp: Optional[float] = None) -> Stamped:
        try:
            pose = Pose2D(float(x), float(y), float(yaw))
        except (TypeError, ValueError):
            pose = None
        if pose is None or not all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw)):
            raise InputError("odometry pose must be finite numbers, got x=%r y=%r yaw=%r"
                             % (x, y, yaw))
        return self.put(ODOMETRY, pose, stamp)

    def put_estop(self, engaged: bool, stamp: Optional[float] = None) -> Stamped:
        """Emergency stop state; True holds the robot until a False arrives."""
        return self.put(ESTOP, bool(engaged), stamp)

    def put_camera_fov(self, horizontal_fov: float, stamp: Optional[float] = None) -> Stamped:
        """The camera's horizontal field of view (radians), e.g. from its camera_info."""
        try:
            fov = float(horizontal_fov)
        except (TypeError, ValueError):
            fov = math.nan
        if not 0.0 < fov < math.pi:
            raise InputError("camera field of view must be in (0, pi) radians, got %r; check "
                             "the camera_info K matrix and width" % (horizontal_fov,))
        return self.put(CAMERA_INFO, fov, stamp)

    def put_scan(self, scan: RangeScan, stamp: Optional[float] = None) -> Stamped:
        """A laser scan, already checked (behaviors.ros_io.scan_to_ranges builds it)."""
        if not isinstance(scan, RangeScan):
            raise InputError("laser scan must be a common.range_scan.RangeScan, got %s; convert "
                             "the LaserScan with behaviors.ros_io.scan_to_ranges"
                             % type(scan).__name__)
        return self.put(SCAN, scan, stamp)

    def latest(self, channel: str) -> Optional[Stamped]:
        with self._lock:
            return self._latest.get(channel)


class ToBlackboard(py_trees.behaviour.Behaviour):
    """Copy the newest value of one inbox channel to a blackboard key, every tick.

    Always SUCCESS, even before the first value arrives: missing input is a fact for the
    safety guard to act on, not a failure of the gathering branch (which would stop the
    whole parallel root).
    """

    def __init__(self, name: str, inbox: Inbox, channel: str, key: str, clock: Clock) -> None:
        super().__init__(name)
        if channel not in CHANNELS:
            raise ValueError("unknown inbox channel %r; channels are %s"
                             % (channel, ", ".join(CHANNELS)))
        self.inbox = inbox
        self.channel = channel
        self.key = key
        self.clock = clock
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key=key, access=py_trees.common.Access.WRITE)

    def update(self) -> py_trees.common.Status:
        item = self.inbox.latest(self.channel)
        if item is None:
            self.feedback_message = "no %s yet" % self.channel
            return py_trees.common.Status.SUCCESS
        self.blackboard.set(self.key, item, overwrite=True)
        self.feedback_message = "%s #%d, %.2f s old" % (
            self.channel, item.seq, item.age(self.clock()))
        return py_trees.common.Status.SUCCESS
