"""The mask-patrol behaviour tree, built by one pure function: ``create_root()``.

It needs no ROS master and loads no model (the perception pipeline is built in
``setup()``), so ``py-trees-render behaviors.tree.create_root`` can draw it, tests tick the
very tree the node runs, and the ROS node only wires topics to it::

    Mask Patrol (Parallel, SuccessOnAll: never finishes on its own)
    ├── Topics2BB (Sequence): Reset Command, Camera2BB, Odometry2BB, EStop2BB, CameraInfo2BB,
    │                         Scan2BB
    ├── Perceive              newest frame -> worker thread; newest result -> blackboard
    ├── Raise Alerts          each confirmed unmasked face -> one alert per person
    └── Priorities (Selector, memory=False)
        ├── Safety Guard      e-stop / stale camera / stale odometry / stale scan (when
        │                     required) -> zero velocity; measures the scan's clearance
        ├── Follow Unmasked   confirmed unmasked track -> servo to follow_standoff_m by
        │                     the laser along the face's bearing, until approached
        └── Patrol            waypoint loop on odometry; an obstacle on the route for
                              patrol_blocked_wait_s skips the waypoint

    Every command a branch writes is cut to the clearance (VelocityBehaviour.command):
    slower within slow_distance_m of the body, no motion towards anything within
    stop_distance_m; turning and moving away stay allowed (behaviors.clearance).

How a node uses it::

    inbox = Inbox(clock=rospy.get_time)                  # callbacks: inbox.put_frame(...)
    root = create_root(config, inbox=inbox, alert_sink=AlertWriter(store, publish).start(),
                       pipeline_factory=lambda: FramePipeline(...))
    tree = py_trees.trees.BehaviourTree(root); tree.setup(timeout=60)
    every 1/config.tick_hz: tree.tick(); publish(current_command())
    on exit: tree.root.stop(py_trees.common.Status.INVALID); tree.shutdown()
             (terminate() and shutdown() zero the command; shutdown stops the worker)
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import py_trees

from behaviors import blackboard_keys as keys
from behaviors.clearance import ScanLimits
from behaviors.clock import Clock
from behaviors.config import Config
from behaviors.control import ZERO, Twist2D
from behaviors.follow import create_follow_branch
from behaviors.gather import CAMERA, CAMERA_INFO, ESTOP, ODOMETRY, SCAN, Inbox, ToBlackboard
from behaviors.modes import FOLLOW_UNMASKED, IDLE, MODES, PATROL, SAFETY_GUARD
from behaviors.patrol import create_patrol
from behaviors.perception import Perceive, PerceptionOutput, default_pipeline_factory
from behaviors.raise_alerts import AlertSink, RaiseAlerts
from behaviors.safety import create_safety_guard
from behaviors.velocity import ResetCommand

__all__ = ["create_root", "active_branch", "current_command", "current_perception",
           "SAFETY_GUARD", "FOLLOW_UNMASKED", "PATROL", "IDLE", "MODES", "PRIORITIES"]

#: The selector whose children are the modes.
PRIORITIES = "Priorities"


def create_root(config: Optional[Config] = None, inbox: Optional[Inbox] = None,
                clock: Optional[Clock] = None, alert_sink: Optional[AlertSink] = None,
                pipeline_factory: Optional[Callable[[], Any]] = default_pipeline_factory,
                ) -> py_trees.behaviour.Behaviour:
    """Build the whole tree; every argument has a default so it can be drawn with none.

    Args:
        config: settings (``Config()`` defaults; no waypoints = patrol stands still).
        inbox: where sensor callbacks put inputs (a new one if omitted).
        clock: seconds, the time base of every staleness and timeout check; defaults to
            ``inbox.clock`` so inputs and decisions share one clock (use ROS time in the
            node so simulated time works).
        alert_sink: called once per alerted track with an ``AlertEvent``; must not block
            (``behaviors.alerts.AlertWriter`` records and then publishes off the tick).
        pipeline_factory: builds the object with ``process(frame_bgr, camera_yaw) -> FrameResult``,
            called in ``setup()``; ``None`` = no worker (results arrive on the blackboard's
            ``/perception`` key from elsewhere, as in tests).
    """
    config = config if config is not None else Config()
    if not isinstance(config, Config):
        raise ValueError("config must be a behaviors.config.Config, got %r" % (config,))
    inbox = inbox if inbox is not None else Inbox(clock)
    clock = clock if clock is not None else inbox.clock

    gather = py_trees.composites.Sequence(name="Topics2BB", memory=False, children=[
        ResetCommand("Reset Command"),
        ToBlackboard("Camera2BB", inbox, CAMERA, keys.CAMERA, clock),
        ToBlackboard("Odometry2BB", inbox, ODOMETRY, keys.ODOMETRY, clock),
        ToBlackboard("EStop2BB", inbox, ESTOP, keys.ESTOP, clock),
        ToBlackboard("CameraInfo2BB", inbox, CAMERA_INFO, keys.CAMERA_HFOV, clock),
        ToBlackboard("Scan2BB", inbox, SCAN, keys.SCAN, clock),
    ])
    priorities = py_trees.composites.Selector(name=PRIORITIES, memory=False, children=[
        create_safety_guard(clock, config.camera_stale_s, config.odometry_stale_s,
                            ScanLimits.from_config(config)),
        create_follow_branch(config, clock),
        create_patrol(config, clock),
    ])
    return py_trees.composites.Parallel(
        name="Mask Patrol",
        policy=py_trees.common.ParallelPolicy.SuccessOnAll(synchronise=False),
        children=[gather, Perceive("Perceive", pipeline_factory, clock),
                  RaiseAlerts("Raise Alerts", config, clock, alert_sink), priorities])


def active_branch(root: py_trees.behaviour.Behaviour) -> str:
    """The robot's mode: the priority branch that holds the tip (one of ``MODES``), or
    ``IDLE`` before the first tick."""
    node = root.tip()
    while node is not None and node.parent is not None and node.parent.name != PRIORITIES:
        node = node.parent
    if node is None or node.parent is None:
        return IDLE
    return node.name


def current_command() -> Twist2D:
    """The velocity the last tick chose (zero before the first tick)."""
    value = py_trees.blackboard.Blackboard.storage.get(keys.COMMAND)
    return value if isinstance(value, Twist2D) else ZERO


def current_perception() -> Optional[PerceptionOutput]:
    """The newest perception result on the blackboard (for the node's debug topics)."""
    return py_trees.blackboard.Blackboard.storage.get(keys.PERCEPTION)
