"""Tree snapshots from ROS 1: subscribe to patrol_node's ``~tree/snapshots`` topic.

patrol_node publishes each snapshot (behaviors.snapshot.tree_snapshot) as JSON text in a
latched std_msgs/String, so a viewer started late still gets the current tree at once.
This is the viewer's only module that touches rospy, and it imports it lazily: the viewer
also runs with no ROS at all (``--file``), and behaviors/ stays importable without ROS.
"""
from __future__ import annotations

import socket
from typing import Callable, Optional

from common.errors import InputError

#: Where patrol_node publishes (its private ``~tree/snapshots``).
DEFAULT_TOPIC = "/patrol_node/tree/snapshots"

_NO_ROS_HINT = ("source scripts/env.sh (ROS 1 and the venv), or view a saved snapshot "
                "with --file SNAPSHOT.json")


def master_uri() -> str:
    """The ROS master this process would talk to (ROS_MASTER_URI, or ROS's default)."""
    try:
        import rosgraph
    except ImportError as error:
        raise InputError("ROS 1 (rosgraph) is not importable here (%s): %s"
                         % (error, _NO_ROS_HINT))
    return rosgraph.get_master_uri()


def check_master(timeout: float = 3.0) -> str:
    """Return the master's URI, or raise InputError saying how to get one running.

    Checked before rospy.init_node, which would otherwise wait for a master forever.
    """
    import rosgraph

    uri = master_uri()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # rosgraph's XML-RPC call has no timeout of its own
    try:
        online = rosgraph.Master("/py_trees_tree_viewer", master_uri=uri).is_online()
    except Exception:
        online = False
    finally:
        socket.setdefaulttimeout(previous)
    if not online:
        raise InputError(
            "no ROS master is reachable at %s (ROS_MASTER_URI): start one with `roscore` "
            "and run patrol_node (e.g. roslaunch mask_patrol patrol_sim.launch), point "
            "ROS_MASTER_URI at the robot's master, or view a saved snapshot with "
            "--file SNAPSHOT.json" % uri)
    return uri


class RosSnapshotSource:
    """Subscribes to a snapshot topic and hands each message's JSON text to ``on_json``.

    ``on_json`` may raise InputError for a malformed snapshot; the message is then logged
    (throttled) and skipped, so one bad publisher cannot stop the viewer.
    """

    def __init__(self, topic: str, on_json: Callable[[str], None],
                 node_name: str = "py_trees_tree_viewer") -> None:
        if not topic or not isinstance(topic, str):
            raise ValueError("topic must be a non-empty topic name, got %r" % (topic,))
        self.topic = topic
        self.node_name = node_name
        self._on_json = on_json
        self._subscriber = None
        self._rospy = None
        self.uri: Optional[str] = None

    def start(self, master_timeout: float = 3.0) -> None:
        """Check the master, start an anonymous node and subscribe (raises InputError)."""
        self.uri = check_master(master_timeout)
        try:
            import rospy
            from std_msgs.msg import String
        except ImportError as error:
            raise InputError("rospy or std_msgs is not importable here (%s): %s"
                             % (error, _NO_ROS_HINT))
        self._rospy = rospy
        # disable_signals: the viewer owns Ctrl-C and shuts rospy down itself.
        rospy.init_node(self.node_name, anonymous=True, disable_signals=True)
        self.topic = rospy.resolve_name(self.topic)
        self._subscriber = rospy.Subscriber(self.topic, String, self._callback, queue_size=10)

    def describe(self) -> str:
        return "topic %s (master %s)" % (self.topic, self.uri or "not connected")

    def _callback(self, message) -> None:
        try:
            self._on_json(message.data)
        except InputError as error:
            self._rospy.logwarn_throttle(5.0, "py-trees-tree-viewer: skipped a snapshot: %s"
                                         % error)

    def stop(self) -> None:
        if self._subscriber is not None:
            self._subscriber.unregister()
            self._subscriber = None
        if self._rospy is not None:
            self._rospy.signal_shutdown("py-trees-tree-viewer closing")
            self._rospy = None
