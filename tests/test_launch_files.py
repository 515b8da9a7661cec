"""Every launch file parses with roslaunch and names nodes and files that exist.

``roslaunch --nodes`` resolves args, ``$(find ...)`` and includes the way a real launch
does, without starting anything. Gazebo and gazebo_ros cannot be installed on Debian 12, so
for patrol_gazebo.launch the test puts a stand-in ``gazebo_ros`` package (one launch file
that declares the upstream empty_world.launch's args) on ROS_PACKAGE_PATH; everything of
ours in that file is resolved for real.
"""
from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from rosgraph_harness import REPO

LAUNCH = os.path.join(REPO, "launch")


def roslaunch_nodes(launch_file: str, *args: str, extra_path: str = "") -> str:
    env = dict(os.environ)
    if extra_path:
        env["ROS_PACKAGE_PATH"] = extra_path + os.pathsep + env.get("ROS_PACKAGE_PATH", "")
    result = subprocess.run(["roslaunch", "--nodes", os.path.join(LAUNCH, launch_file)]
                            + list(args), capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_launch_file_is_covered_here():
    assert sorted(f for f in os.listdir(LAUNCH) if f.endswith(".launch")) == [
        "patrol_gazebo.launch", "patrol_sim.launch", "robot.launch"]


def test_patrol_sim_launch_starts_the_simulator_and_the_patrol_node():
    nodes = roslaunch_nodes("patrol_sim.launch").split()
    assert nodes == ["/sim", "/patrol_node"]
    recording = roslaunch_nodes("patrol_sim.launch", "record:=true").split()
    assert "/camera_recorder" in recording


def test_robot_launch_needs_a_waypoints_file_and_remaps_the_drivers_topics(tmp_path):
    route = tmp_path / "site.yaml"
    route.write_text("waypoints: [{x: 0, y: 0}, {x: 2, y: 0}]\n")
    assert roslaunch_nodes("robot.launch", "waypoints:=%s" % route).split() == ["/patrol_node"]
    missing = subprocess.run(["roslaunch", "--nodes", os.path.join(LAUNCH, "robot.launch")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "waypoints" in missing.stdout + missing.stderr


def test_patrol_gazebo_launch_resolves_our_world_robot_and_nodes(tmp_path):
    stand_in = tmp_path / "gazebo_ros"
    (stand_in / "launch").mkdir(parents=True)
    (stand_in / "package.xml").write_text(
        '<package format="2"><name>gazebo_ros</name><version>0.0.0</version>'
        '<description>test stand-in</description><maintainer email="x@y.z">x</maintainer>'
        '<license>BSD</license></package>')
    (stand_in / "launch" / "empty_world.launch").write_text(
        "<launch>" + "".join('<arg name="%s" default=""/>' % a for a in (
            "world_name", "gui", "use_sim_time", "paused")) + "</launch>")
    nodes = roslaunch_nodes("patrol_gazebo.launch", extra_path=str(tmp_path)).split()
    assert nodes == ["/spawn_robot", "/patrol_node"]
    # the files it hands to Gazebo exist in this repository
    text = open(os.path.join(LAUNCH, "patrol_gazebo.launch")).read()
    paths = re.findall(r"\$\(find mask_patrol\)/([^\"\s:]+)", text.replace("$(arg world)", "lobby"))
    assert "worlds/lobby.world" in paths and "worlds/robot/mask_patrol_robot.urdf" in paths
    for rel in paths:
        assert os.path.exists(os.path.join(REPO, rel)), rel


@pytest.mark.parametrize("launch_file", ["patrol_gazebo.launch", "patrol_sim.launch",
                                         "robot.launch"])
def test_every_arg_is_documented(launch_file):
    root = ET.parse(os.path.join(LAUNCH, launch_file)).getroot()
    undocumented = [a.get("name") for a in root.findall("arg") if not a.get("doc")]
    assert undocumented == [], "give these args a doc=: %s" % undocumented
