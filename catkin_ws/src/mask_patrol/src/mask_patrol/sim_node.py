"""The headless MuJoCo simulator as a ROS node (stands in for Gazebo + TurtleBot3 plugins).

Params (private): world (name in worlds/ or a .world path), duration (simulated s, 0 =
forever), real_time_factor (1.0; 0 = as fast as possible), camera_rate (15 Hz),
cmd_vel_timeout (0.5 s), record / trace (bool) and output_dir (videos, trace.jsonl), wait_for_cmd_vel (wall s to
hold the clock at 0 until a driver publishes cmd_vel; 0 = start at once, as Gazebo does).
"""
from __future__ import annotations

import sys

import rospy

from common.errors import InputError
from sim.ros_bridge import SimBridge
from sim.simulator import Simulator


def main() -> int:
    rospy.init_node("sim")
    world = rospy.get_param("~world", "lobby")
    try:
        simulator = Simulator(world)
    except (InputError, ValueError, FileNotFoundError) as exc:
        rospy.logfatal("sim: cannot load world %r: %s", world, exc)
        return 2
    bridge = SimBridge(
        simulator,
        camera_rate=float(rospy.get_param("~camera_rate", 15.0)),
        cmd_vel_timeout=float(rospy.get_param("~cmd_vel_timeout", 0.5)),
        real_time_factor=float(rospy.get_param("~real_time_factor", 1.0)),
        duration=float(rospy.get_param("~duration", 0.0)),
        output_dir=rospy.get_param("~output_dir", "") or None,
        record=bool(rospy.get_param("~record", False)),
        trace=bool(rospy.get_param("~trace", False)),
        wait_for_cmd_vel=float(rospy.get_param("~wait_for_cmd_vel", 0.0)),
    )
    rospy.loginfo("sim: world %s loaded, publishing camera/image_raw, %sodom, /clock", world,
                  "%s, " % simulator.robot.laser.topic if simulator.robot.laser is not None else "")
    bridge.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
