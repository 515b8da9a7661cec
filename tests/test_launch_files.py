"""Every launch file parses with roslaunch, names nodes and files that exist, and gives
patrol_node the settings of config/patrol.yaml and nothing else but its own few.

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
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from behaviors.settings import FACE_DATA_KEYS, NODE_KEYS, SETTINGS_FILE, load_settings_file
from rosgraph_harness import REPO

LAUNCH = os.path.join(REPO, "launch")

#: What each launch file may set for patrol_node on top of config/patrol.yaml, and why
#: (the same reasons stand in a comment beside each override in the launch file).
OWN_SETTINGS = {
    "patrol_sim.launch": {"scenario": "the route: the world's scenario YAML",
                          "alert_db": "the output folder", "snapshot_dir": "the output folder"},
    "patrol_gazebo.launch": {"scenario": "the route: the world's scenario YAML",
                             "alert_db": "the output folder",
                             "snapshot_dir": "the output folder"},
    "robot.launch": {"waypoints": "the route: the site's waypoints file",
                     "compressed": "the robot's camera topic",
                     "alert_db": "the output folder", "snapshot_dir": "the output folder"},
}


def roslaunch_nodes(launch_file: str, *args: str, extra_path: str = "",
                    what: str = "--nodes") -> str:
    env = dict(os.environ)
    if extra_path:
        env["ROS_PACKAGE_PATH"] = extra_path + os.pathsep + env.get("ROS_PACKAGE_PATH", "")
    result = subprocess.run(["roslaunch", what, os.path.join(LAUNCH, launch_file)]
                            + list(args), capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def gazebo_ros_stand_in(tmp_path) -> str:
    """A stand-in gazebo_ros package: one launch file that declares the args of the
    upstream empty_world.launch (Gazebo cannot be installed on Debian 12)."""
    stand_in = tmp_path / "gazebo_ros"
    (stand_in / "launch").mkdir(parents=True)
    (stand_in / "package.xml").write_text(
        '<package format="2"><name>gazebo_ros</name><version>0.0.0</version>'
        '<description>test stand-in</description><maintainer email="x@y.z">x</maintainer>'
        '<license>BSD</license></package>')
    (stand_in / "launch" / "empty_world.launch").write_text(
        "<launch>" + "".join('<arg name="%s" default=""/>' % a for a in (
            "world_name", "gui", "use_sim_time", "paused")) + "</launch>")
    return str(tmp_path)


def patrol_node_params(launch_file: str, tmp_path) -> dict:
    """patrol_node's private parameters as roslaunch resolves ``launch_file``."""
    args, extra = [], ""
    if launch_file == "robot.launch":
        route = tmp_path / "site.yaml"
        route.write_text("waypoints: [{x: 0, y: 0}, {x: 2, y: 0}]\n")
        args = ["waypoints:=%s" % route]
    elif launch_file == "patrol_gazebo.launch":
        extra = gazebo_ros_stand_in(tmp_path)
    dumped = yaml.safe_load(roslaunch_nodes(launch_file, *args, extra_path=extra,
                                            what="--dump-params"))
    prefix = "/patrol_node/"
    return {k[len(prefix):]: v for k, v in dumped.items() if k.startswith(prefix)}


def test_patrol_node_gets_the_same_settings_in_the_simulator_in_gazebo_and_on_the_robot(
        tmp_path):
    settings = load_settings_file(SETTINGS_FILE)
    resolved = {f: patrol_node_params(f, tmp_path) for f in sorted(OWN_SETTINGS)}
    # The comparison, printed for the record (pytest -s shows it).
    names = sorted(set().union(*resolved.values()))
    print("\n%-30s %-12s %s" % ("parameter", "patrol.yaml", "  ".join(sorted(resolved))))
    for name in names:
        print("%-30s %-12s %s" % (name, settings.get(name, "-"), "  ".join(
            str(resolved[f].get(name, "-")) for f in sorted(resolved))))
    for launch_file, params in resolved.items():
        own = set(params) - set(settings)
        assert own == set(OWN_SETTINGS[launch_file]), (
            "%s sets %s for patrol_node beyond config/patrol.yaml; only its own settings "
            "%s may be" % (launch_file, sorted(own), sorted(OWN_SETTINGS[launch_file])))
        assert own <= set(NODE_KEYS) - set(FACE_DATA_KEYS)
        # Nothing from the settings file is overridden, and all of it is there.
        assert {k: params.get(k) for k in settings} == settings, launch_file


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


def test_robot_launch_remaps_the_laser_scan_for_patrol_node(monkeypatch):
    import roslaunch.config

    def remaps(*args):
        # roslaunch reads name:=value arguments from sys.argv
        monkeypatch.setattr(sys, "argv", ["roslaunch", "waypoints:=/tmp/site.yaml"] + list(args))
        config = roslaunch.config.load_config_default([os.path.join(LAUNCH, "robot.launch")],
                                                      None, verbose=False)
        (node,) = config.nodes
        return dict(node.remap_args)

    assert remaps()["scan"] == "scan"  # a TurtleBot3's LDS driver's topic
    assert remaps("scan:=/lidar/scan")["scan"] == "/lidar/scan"


def test_patrol_gazebo_launch_resolves_our_world_robot_and_nodes(tmp_path):
    nodes = roslaunch_nodes("patrol_gazebo.launch",
                            extra_path=gazebo_ros_stand_in(tmp_path)).split()
    assert nodes == ["/spawn_robot", "/patrol_node"]
    # the files it hands to Gazebo exist in this repository
    text = open(os.path.join(LAUNCH, "patrol_gazebo.launch")).read()
    paths = re.findall(r"\$\(find mask_patrol\)/([^\"\s:]+)", text.replace("$(arg world)", "lobby"))
    assert "worlds/lobby.world" in paths and "worlds/robot/mask_patrol_robot.urdf" in paths
    package = os.path.join(REPO, "catkin_ws", "src", "mask_patrol")
    for rel in paths:
        assert os.path.exists(os.path.join(package, rel)), rel


@pytest.mark.parametrize("launch_file", ["patrol_gazebo.launch", "patrol_sim.launch",
                                         "robot.launch"])
def test_every_arg_is_documented(launch_file):
    root = ET.parse(os.path.join(LAUNCH, launch_file)).getroot()
    undocumented = [a.get("name") for a in root.findall("arg") if not a.get("doc")]
    assert undocumented == [], "give these args a doc=: %s" % undocumented
