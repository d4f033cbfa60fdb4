"""FailureBench twin: MuJoCo sim node + the same policy / safety / arbiter / trainer graph as the robot.

    ros2 launch farm_bringup sim.launch.py task:=FailureBench/BoundedPush-v0

All tuning lives in config/sim.yaml; the launch arguments below only pick files and the task.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    config = os.path.join(get_package_share_directory("farm_bringup"), "config", "sim.yaml")
    params = [config, {"task": LaunchConfiguration("task")}]
    return LaunchDescription(
        [
            DeclareLaunchArgument("task", default_value="FailureBench/BoundedPush-v0"),
            DeclareLaunchArgument("train", default_value="true", description="run the trainer"),
            # MuJoCo twin: publishes the robot/object state and camera topics the robot would.
            Node(package="failurebench_sim", executable="sim_node", parameters=params),
            # Task policy inference: state -> proposed action.
            Node(package="farm_policies", executable="policy_node", parameters=params),
            # World-model safety critic: C_H of the proposed action (Eq. 10), scores + markers.
            Node(package="farm_safety_critic", executable="safety_node", parameters=params),
            # Recovery arbiter (Eq. 11): forwards the task or the recovery action to the controller.
            Node(package="farm_safety_critic", executable="arbiter_node", parameters=params),
            # Collects gated transitions, runs PPO, pushes weight updates to the policy node.
            Node(
                package="farm_trainer",
                executable="trainer_node",
                parameters=params,
                condition=IfCondition(LaunchConfiguration("train")),
            ),
        ]
    )
