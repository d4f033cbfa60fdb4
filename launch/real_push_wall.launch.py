"""Real Franka Fragile Push Wall: RealSense perception + the FARM graph commanding the arm.

    ros2 launch farm_bringup real_push_wall.launch.py robot_ip:=172.16.0.2

Start franka_ros2 (a Cartesian-impedance controller that accepts streamed PoseStamped targets)
and realsense2_camera first, or set start_drivers:=true to include them here. Tuning lives in
config/real_push_wall.yaml.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    config = os.path.join(
        get_package_share_directory("farm_bringup"), "config", "real_push_wall.yaml"
    )
    params = [config]
    drivers = IfCondition(LaunchConfiguration("start_drivers"))
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_ip", default_value="172.16.0.2"),
            DeclareLaunchArgument("start_drivers", default_value="false"),
            # RealSense D4xx with depth aligned to colour (metric depth in the colour frame).
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(
                    PathJoinSubstitution(
                        [FindPackageShare("realsense2_camera"), "launch", "rs_launch.py"]
                    )
                ),
                launch_arguments={
                    "align_depth.enable": "true",
                    "rgb_camera.color_profile": "640x480x30",
                    "depth_module.depth_profile": "640x480x30",
                }.items(),
                condition=drivers,
            ),
            # franka_ros2 bring-up (FR3); the impedance controller takes our target poses.
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(
                    PathJoinSubstitution(
                        [FindPackageShare("franka_bringup"), "launch", "franka.launch.py"]
                    )
                ),
                launch_arguments={
                    "robot_type": "fr3",
                    "robot_ip": LaunchConfiguration("robot_ip"),
                }.items(),
                condition=drivers,
            ),
            # YOLOv8 + colour filter -> object pose in the robot base frame.
            Node(package="farm_perception", executable="perception_node", parameters=params),
            Node(package="farm_policies", executable="policy_node", parameters=params),
            Node(package="farm_safety_critic", executable="safety_node", parameters=params),
            Node(package="farm_safety_critic", executable="arbiter_node", parameters=params),
            Node(package="farm_trainer", executable="trainer_node", parameters=params),
        ]
    )
