"""What perception/, behaviors/ and sim/ all need and none of them owns.

Plain Python (no torch, no py_trees, no rospy): the input-error type, angle and pinhole
helpers, and the conversions between numpy and ROS message classes that both the robot's
node and the simulator's bridge use (ROS message classes are imported lazily, so the rest
works without ROS).
"""
