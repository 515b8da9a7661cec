"""The blackboard key names the tree and its ROS node share, in one place.

Behaviours read and write only these keys; the node reads COMMAND (and PERCEPTION for its
debug topics) after every tick. Keeping them here means a rename is one edit and a reader
can see the whole data flow of the tree at a glance.
"""
from __future__ import annotations

from typing import Any

import py_trees

#: behaviors.control.Twist2D: the velocity the tree commands this tick (publish as cmd_vel).
COMMAND = "/cmd_vel"

#: behaviors.gather.Stamped holding the newest camera frame (HxWx3 uint8 BGR).
CAMERA = "/inputs/camera"
#: behaviors.gather.Stamped holding a behaviors.control.Pose2D from odometry.
ODOMETRY = "/inputs/odometry"
#: behaviors.gather.Stamped holding a bool (True = emergency stop engaged).
ESTOP = "/inputs/estop"
#: behaviors.gather.Stamped holding the camera's horizontal field of view (radians) from
#: its camera_info; absent until the first one arrives (Config.camera_hfov stands in).
CAMERA_HFOV = "/inputs/camera_hfov"
#: behaviors.gather.Stamped holding the newest laser scan (common.range_scan.RangeScan);
#: absent until the first valid scan arrives.
SCAN = "/inputs/scan"

#: behaviors.perception.PerceptionOutput: the newest finished perception result.
PERCEPTION = "/perception"

#: str: why the safety guard holds the robot ("" when it does not).
SAFETY_REASON = "/safety/reason"
#: behaviors.clearance.ScanLimits: the laser's limits (the guard writes them for the viewer).
SAFETY_LIMITS = "/safety/limits"
#: behaviors.clearance.Clearance or None: free space around the body in the newest fresh
#: scan, written by the guard each tick; every velocity command is cut to it (None: no
#: fresh scan, nothing to cut to; the guard stops the robot when a scan is required).
SAFETY_CLEARANCE = "/safety/clearance"

#: behaviors.follow.FollowTarget or None: the track being followed.
FOLLOW_TARGET = "/follow/target"
#: float: clock time before which no new follow starts (0 = none).
FOLLOW_COOLDOWN_UNTIL = "/follow/cooldown_until"
#: behaviors.people.PersonRegistry: who each track is, who was alerted and followed; the
#: one place that decides it (Raise Alerts creates it, the follow asks it).
PEOPLE = "/people"

#: int or None: index of the waypoint the patrol is driving to.
PATROL_WAYPOINT = "/patrol/waypoint"
#: bool: set when a follow takes the robot off its route; the patrol then resumes from
#: the nearest waypoint instead of its old goal.
PATROL_RESUME_NEAREST = "/patrol/resume_nearest"

ALL = (COMMAND, CAMERA, ODOMETRY, ESTOP, CAMERA_HFOV, SCAN, PERCEPTION, SAFETY_REASON,
       SAFETY_LIMITS, SAFETY_CLEARANCE, FOLLOW_TARGET, FOLLOW_COOLDOWN_UNTIL, PEOPLE,
       PATROL_WAYPOINT, PATROL_RESUME_NEAREST)


def read(client: "py_trees.blackboard.Client", key: str, default: Any = None) -> Any:
    """A blackboard value, or ``default`` while nobody has written it yet."""
    try:
        return client.get(key)
    except KeyError:
        return default
