"""The blackboard key names the tree and its ROS node share, in one place.

Behaviours read and write only these keys; the node reads COMMAND (and PERCEPTION for its
debug topics) after every tick. Keeping them here means a rename is one edit and a reader
can see the whole data flow of the tree at a glance.
"""
from __future__ import annotations

#: behaviors.control.Twist2D: the velocity the tree commands this tick (publish as cmd_vel).
COMMAND = "/cmd_vel"

#: behaviors.gather.Stamped holding the newest camera frame (HxWx3 uint8 BGR).
CAMERA = "/inputs/camera"
#: behaviors.gather.Stamped holding a behaviors.control.Pose2D from odometry.
ODOMETRY = "/inputs/odometry"
#: behaviors.gather.Stamped holding a bool (True = emergency stop engaged).
ESTOP = "/inputs/estop"

#: behaviors.perception.PerceptionOutput: the newest finished perception result.
PERCEPTION = "/perception"

#: str: why the safety guard holds the robot ("" when it does not).
SAFETY_REASON = "/safety/reason"

#: behaviors.follow.FollowTarget or None: the track being followed.
FOLLOW_TARGET = "/follow/target"
#: float: clock time before which no new follow starts (0 = none).
FOLLOW_COOLDOWN_UNTIL = "/follow/cooldown_until"
#: tuple of track ids the follow has finished with (each track is followed once).
FOLLOWED_TRACKS = "/follow/followed_tracks"

#: tuple of track ids for which an alert has been raised (each is raised once).
ALERTED_TRACKS = "/alerts/alerted_tracks"
#: tuple of track ids recognised as a person alerted earlier (no new alert, no follow).
KNOWN_TRACKS = "/alerts/known_tracks"
#: dict track id -> the track id that person was first alerted as, for every alerted or
#: recognised track (a follow goes on with the new track of the person it follows).
PERSON_OF_TRACK = "/alerts/person_of_track"
#: behaviors.people.PersonMemory: where and in what clothes the alerted people were seen.
PEOPLE = "/alerts/people"

#: int or None: index of the waypoint the patrol is driving to.
PATROL_WAYPOINT = "/patrol/waypoint"
#: bool: set when a follow takes the robot off its route; the patrol then resumes from
#: the nearest waypoint instead of its old goal.
PATROL_RESUME_NEAREST = "/patrol/resume_nearest"

ALL = (COMMAND, CAMERA, ODOMETRY, ESTOP, PERCEPTION, SAFETY_REASON, FOLLOW_TARGET,
       FOLLOW_COOLDOWN_UNTIL, FOLLOWED_TRACKS, ALERTED_TRACKS, KNOWN_TRACKS, PERSON_OF_TRACK,
       PEOPLE, PATROL_WAYPOINT, PATROL_RESUME_NEAREST)
