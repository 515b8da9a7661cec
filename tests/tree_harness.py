"""Drive the real behaviour tree (behaviors.tree.create_root) from tests, in simulated time.

The harness owns a settable clock, the inbox the tree reads, and a list that collects
alerts; it feeds real camera frames (scikit-image's astronaut photo, shipped in the wheel)
and lets a test place FrameResults straight into the perception slot, so the decision
branches are tested without a detector. A tiny unicycle integrator closes the loop for
patrol tests.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import py_trees

from behaviors import blackboard_keys as keys
from behaviors.config import Config
from behaviors.control import Pose2D, Twist2D, integrate
from behaviors.gather import Inbox
from behaviors.perception import PerceptionOutput
from behaviors.tree import create_root, current_command
from common.range_scan import RangeScan
from perception.types import FrameResult, Track

_FRAME: Optional[np.ndarray] = None
#: Where the astronaut's face is in real_frame() (x_min, y_min, x_max, y_max).
FACE_BOX = (245.0, 62.0, 333.0, 172.0)


def real_frame() -> np.ndarray:
    """A real photo with one face, as a 640x480 BGR camera frame (face box FACE_BOX)."""
    global _FRAME
    if _FRAME is None:
        import skimage.data

        rgb = skimage.data.astronaut()  # 512x512, face around x 180-270, y 60-170
        canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
        canvas[:, 64:576] = rgb[:480, :, ::-1]
        _FRAME = canvas
    return _FRAME


class SimClock:
    """Seconds that only move when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += dt


def laser_scan(ranges=None) -> RangeScan:
    """A scan as the URDF's LDS gives one in base_scan: 360 beams from angle 0 (ahead),
    counter-clockwise, 1 degree apart; ``ranges`` defaults to no return on any beam."""
    values = np.full(360, np.inf) if ranges is None else np.asarray(ranges, dtype=np.float64)
    return RangeScan(angle_min=0.0, angle_increment=2 * np.pi / 360, ranges=values,
                     range_min=0.12, range_max=3.5, frame="base_scan")


def make_track(track_id: int, label: str = "unmasked", hits: int = 5,
               box: Tuple[float, float, float, float] = FACE_BOX,
               lost_frames: int = 0, score: float = 0.9) -> Track:
    return Track(track_id=track_id, box=box, label=label, score=score, hits=hits,
                 lost_frames=lost_frames, face_score=0.99)


class TreeHarness:
    """One tree as the node would build it, with inputs and time under the test's control."""

    def __init__(self, config: Optional[Config] = None, alert_sink=None,
                 pipeline_factory=None, start_pose: Tuple[float, float, float] = (0, 0, 0)):
        py_trees.blackboard.Blackboard.clear()
        self.clock = SimClock()
        self.inbox = Inbox(self.clock)
        self.alerts: List = []
        self.config = config if config is not None else Config()
        self.root = create_root(self.config, inbox=self.inbox, clock=self.clock,
                                alert_sink=alert_sink if alert_sink is not None
                                else self.alerts.append,
                                pipeline_factory=pipeline_factory)
        self.tree = py_trees.trees.BehaviourTree(self.root)
        self.tree.setup(timeout=60)
        self.pose = Pose2D(*start_pose)
        self._frame_index = 0
        #: The scan feed() puts (the robot's default requires one): nothing in range.
        self.scan: Optional[RangeScan] = laser_scan()

    # --- inputs ------------------------------------------------------------------------
    def feed(self, frame: bool = True, odometry: bool = True,
             estop: Optional[bool] = None, scan: bool = True) -> None:
        """Fresh inputs stamped now (what the ROS callbacks would put); the scan is
        ``self.scan`` (None: no scan)."""
        if frame:
            self.inbox.put_frame(real_frame())
        if odometry:
            self.inbox.put_odometry(self.pose.x, self.pose.y, self.pose.yaw)
        if scan and self.scan is not None:
            self.inbox.put_scan(self.scan)
        if estop is not None:
            self.inbox.put_estop(estop)

    def see(self, tracks: Sequence[Track], age: float = 0.0) -> PerceptionOutput:
        """Publish a perception result about a frame ``age`` seconds old."""
        self._frame_index += 1
        frame = real_frame()
        result = FrameResult(frame_index=self._frame_index, tracks=list(tracks), detected=True,
                             frame_size=(frame.shape[1], frame.shape[0]))
        output = PerceptionOutput(result=result, frame_bgr=frame,
                                  stamp=self.clock() - age, frame_seq=self._frame_index,
                                  latency_s=0.05)
        py_trees.blackboard.Blackboard.set(keys.PERCEPTION, output)
        return output

    # --- ticking -----------------------------------------------------------------------
    def tick(self, dt: float = 0.1, feed: bool = True, move: bool = False) -> Twist2D:
        """Advance the clock, (optionally) feed fresh inputs, tick once; the command."""
        self.clock.advance(dt)
        if feed:
            self.feed()
        self.tree.tick()
        command = current_command()
        if move:
            self.pose = integrate(self.pose, command, dt)
        return command

    def tip(self) -> str:
        tip = self.root.tip()
        return tip.name if tip is not None else ""

    def behaviour(self, name: str) -> py_trees.behaviour.Behaviour:
        for node in self.root.iterate():
            if node.name == name:
                return node
        raise KeyError(name)

    def read(self, key: str, default=None):
        return py_trees.blackboard.Blackboard.storage.get(key, default)

    def shutdown(self) -> None:
        self.tree.shutdown()
