"""launch_testing: real_push_wall.launch.py with use_twin:=true (the twin in place of
franka_ros2 and realsense2_camera) brings up the real node set, which decides and streams
targets to the crisp controller's topic with the arbiter as its only publisher. Runs where ROS 2
is installed (e.g. ros:jazzy with `colcon test --packages-select farm_bringup`)."""

import pytest

pytest.importorskip(
    "launch_testing",
    reason="launch_testing is not installable from PyPI; this test runs where ROS 2 is "
    "installed (e.g. ros:jazzy). CI here runs the same node set as processes: "
    "tests/test_real_graph.py",
)

import os  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

import launch_testing  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from failurebench_sim import ros_contract as rc  # noqa: E402
from failurebench_sim.nodes.ros_io import QOS  # noqa: E402

DECISIONS = 10


@pytest.mark.launch_test
def generate_test_description():
    share = get_package_share_directory("farm_bringup")
    real = os.path.join(share, "launch", "real_push_wall.launch.py")
    graph = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(real), launch_arguments={"use_twin": "true"}.items()
    )
    return LaunchDescription([graph, launch_testing.actions.ReadyToTest()])


class TestRealNodeSet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("test_real_push_wall_listener")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_decisions_flow_and_only_the_arbiter_commands(self):
        decisions, targets = [], []
        self.node.create_subscription(JointState, rc.DECISION, decisions.append, QOS[rc.RELIABLE])
        self.node.create_subscription(PoseStamped, rc.TARGET_POSE, targets.append, QOS[rc.RELIABLE])
        end = time.monotonic() + 120.0
        while len(decisions) < DECISIONS and time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.1)
        self.assertGreaterEqual(len(decisions), DECISIONS)
        self.assertGreater(len(targets), 0)
        self.assertEqual(self.node.count_publishers(rc.TARGET_POSE), 1)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_every_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2])
