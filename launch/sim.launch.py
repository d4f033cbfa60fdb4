"""FARM on the FailureBench MuJoCo twin: sim -> (perception) -> policy -> safety -> arbiter.

    ros2 launch farm_bringup sim.launch.py task:=FailureBench/BoundedPush-v0 \\
        clock_mode:=lockstep observation_source:=ground_truth rviz:=true

All tuning lives in config/sim.yaml (the same file `farm-graph run` reads); the arguments pick
the task and the modes, applied through farm_bringup.graph exactly as farm-graph applies them
(lockstep also makes the arbiter publish on decisions only). Defaults are the YAML's values.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from farm_bringup.graph import default_nodes, load_config, mode_overrides, node_params
from farm_bringup.real_launch import farm_launch_nodes

SHARE = get_package_share_directory("farm_bringup")
CONFIG = os.path.join(SHARE, "config", "sim.yaml")
RVIZ = os.path.join(SHARE, "config", "rviz", "farm_sim.rviz")


def _graph(context: LaunchContext) -> list[Node]:
    """The graph's nodes for the resolved arguments (perception only in camera mode)."""
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    sections = load_config(CONFIG)
    overrides = mode_overrides(arg("task"), arg("clock_mode"), arg("observation_source"))
    names = default_nodes(sections, overrides)
    if arg("train").lower() == "true":
        names.append("trainer_node")
    if arg("record").lower() == "true":
        names.append("recorder_node")
    secure = arg("secure").lower() == "true"  # SROS2: each node in its enclave /farm/<node>
    return farm_launch_nodes(CONFIG, sections, overrides, names, secure)


def generate_launch_description() -> LaunchDescription:
    sim = node_params(load_config(CONFIG), "sim_node")
    return LaunchDescription(
        [
            DeclareLaunchArgument("task", default_value=str(sim["task"])),
            DeclareLaunchArgument(
                "clock_mode",
                default_value=str(sim["clock_mode"]),
                choices=["realtime", "lockstep"],
                description="realtime: steps by the wall clock; lockstep: on each command",
            ),
            DeclareLaunchArgument(
                "observation_source",
                default_value=str(sim["observation_source"]),
                choices=["camera", "ground_truth"],
                description="camera: render RGB-D, perception in the loop",
            ),
            DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"]),
            DeclareLaunchArgument(
                "train",
                default_value="false",
                choices=["true", "false"],
                description="also run trainer_node (farm_trainer)",
            ),
            DeclareLaunchArgument(
                "record",
                default_value="false",
                choices=["true", "false"],
                description="also run recorder_node (one MCAP bag per episode)",
            ),
            DeclareLaunchArgument(
                "secure",
                default_value="false",
                choices=["true", "false"],
                description="SROS2: run each node in its enclave /farm/<node> "
                "(scripts/sros2_keystore.sh; ROS_SECURITY_* set)",
            ),
            OpaqueFunction(function=_graph),
            Node(
                package="rviz2",
                executable="rviz2",
                arguments=["-d", RVIZ],
                parameters=[{"use_sim_time": True}],
                condition=IfCondition(LaunchConfiguration("rviz")),
                output="screen",
            ),
        ]
    )
