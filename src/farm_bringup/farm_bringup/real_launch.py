"""The real-robot launch description shared by launch/real_*.launch.py.

Per task YAML (config/real_<task>.yaml): franka_ros2's ``franka_bringup`` (FR3), the
crisp_controllers Cartesian impedance controller that takes the streamed ``target_pose``
(config/crisp/fr3_cartesian_impedance.yaml; the arbiter is its only publisher),
realsense2_camera's ``rs_launch.py`` (depth aligned to colour, 640x480x30 both) and FARM's nodes
(the file's ``farm_graph.nodes``). ``use_twin:=true`` replaces the three drivers with the twin,
which publishes the same topics, so the same node set runs anywhere (CI runs it as processes:
``farm-graph run --config config/real_<task>.yaml --use-twin``).
"""

from __future__ import annotations

import os
from pathlib import Path

from farm_bringup.graph import (
    NODES,
    changed_params,
    graph_nodes,
    load_config,
    section_overrides,
    twin_overrides,
)

CRISP_CONTROLLER = "cartesian_impedance_controller"
CRISP_TYPE = "crisp_controllers/CartesianImpedanceController"


def farm_launch_nodes(config: str, sections, overrides, names, secure: bool) -> list:
    """launch_ros ``Node`` actions for FARM's ``names``: the YAML plus what it does not say
    (``changed_params``), each in its SROS2 enclave ``/farm/<node>`` when ``secure``. One
    builder for sim.launch.py and the real launch files."""
    from launch_ros.actions import Node

    base = Path(config).parent
    return [
        Node(
            package=NODES[n].package,
            executable=n,
            name=n,
            namespace="",  # fully specified: the dict lands in the node's section and wins
            parameters=[config, changed_params(sections, n, overrides, base)],
            ros_arguments=["--enclave", f"/farm/{n}"] if secure else [],
            output="screen",
        )
        for n in names
    ]


def _farm_nodes(context, config: str):
    from launch.substitutions import LaunchConfiguration

    arg = lambda name: LaunchConfiguration(name).perform(context).lower() == "true"  # noqa: E731
    sections = load_config(config)
    overrides = twin_overrides(sections) if arg("use_twin") else []
    if arg("demos"):
        overrides += section_overrides(sections, "demos")
    names = [n for n in graph_nodes(sections, overrides, arg("use_twin"))
             if n != "trainer_node" or arg("trainer")]  # fmt: skip
    return farm_launch_nodes(config, sections, overrides, names, arg("secure"))


def describe(config_name: str):
    """The LaunchDescription for ``config/<config_name>`` (installed share copy)."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
    from launch.conditions import UnlessCondition
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    share = get_package_share_directory("farm_bringup")
    config = os.path.join(share, "config", config_name)
    crisp_yaml = os.path.join(share, "config", "crisp", "fr3_cartesian_impedance.yaml")
    drivers = UnlessCondition(LaunchConfiguration("use_twin"))
    arg = LaunchConfiguration
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_ip", default_value="172.16.0.2"),
            DeclareLaunchArgument("load_gripper", default_value="true", choices=["true", "false"]),
            DeclareLaunchArgument(
                "use_twin",
                default_value="false",
                choices=["true", "false"],
                description="the MuJoCo twin instead of the arm and camera (same topics)",
            ),
            DeclareLaunchArgument("secure", default_value="false", choices=["true", "false"]),
            DeclareLaunchArgument(
                "trainer",
                default_value="true",
                choices=["true", "false"],
                description="false: the trainer runs on another machine (docker/compose.real.yaml)",
            ),
            DeclareLaunchArgument(
                "demos",
                default_value="false",
                choices=["true", "false"],
                description="record teleoperated demonstrations (farm-operator drives)",
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(
                    PathJoinSubstitution(
                        [FindPackageShare("franka_bringup"), "launch", "franka.launch.py"]
                    )  # fmt: skip
                ),
                launch_arguments={
                    "robot_type": "fr3",
                    "robot_ip": arg("robot_ip"),
                    "load_gripper": arg("load_gripper"),
                }.items(),
                condition=drivers,
            ),
            # the streaming Cartesian impedance controller (crisp_controllers), loaded into
            # franka_bringup's controller manager and activated
            Node(
                package="controller_manager",
                executable="spawner",
                arguments=[
                    CRISP_CONTROLLER,
                    "--controller-type",
                    CRISP_TYPE,
                    "--param-file",
                    crisp_yaml,
                ],  # fmt: skip
                output="screen",
                condition=drivers,
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(
                    PathJoinSubstitution(
                        [FindPackageShare("realsense2_camera"), "launch", "rs_launch.py"]
                    )  # fmt: skip
                ),
                launch_arguments={
                    "align_depth.enable": "true",
                    "rgb_camera.color_profile": "640x480x30",
                    "depth_module.depth_profile": "640x480x30",
                }.items(),
                condition=drivers,
            ),
            OpaqueFunction(function=_farm_nodes, args=[config]),
        ]
    )
