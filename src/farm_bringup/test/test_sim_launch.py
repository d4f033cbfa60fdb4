"""launch_testing: sim.launch.py (lockstep, ground truth, no rviz) brings up a graph that
decides; every node exits cleanly at shutdown. Runs where ROS 2 is installed (e.g. ros:jazzy
with `colcon test --packages-select farm_bringup`)."""

import pytest

pytest.importorskip(
    "launch_testing",
    reason="launch_testing is not installable from PyPI; this test runs where ROS 2 is "
    "installed (e.g. ros:jazzy)",
)

import os  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

import launch_testing  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from failurebench_sim import ros_contract as rc  # noqa: E402
from failurebench_sim.nodes.ros_io import QOS  # noqa: E402

DECISIONS = 5


@pytest.mark.launch_test
def generate_test_description():
    sim = os.path.join(get_package_share_directory("farm_bringup"), "launch", "sim.launch.py")
    graph = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(sim),
        launch_arguments={
            "clock_mode": "lockstep",
            "observation_source": "ground_truth",
            "rviz": "false",
        }.items(),
    )
    return LaunchDescription([graph, launch_testing.actions.ReadyToTest()])


class TestDecisions(unittest.TestCase):
    """Active while the graph runs: the arbiter publishes decisions (reliable)."""

    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("test_sim_launch_listener")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_the_graph_publishes_decisions(self):
        seen = []
        self.node.create_subscription(JointState, rc.DECISION, seen.append, QOS[rc.RELIABLE])
        end = time.monotonic() + 60.0
        while len(seen) < DECISIONS and time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.1)
        self.assertGreaterEqual(len(seen), DECISIONS, f"{len(seen)} decisions in 60 s")
        self.assertLessEqual(set(rc.DECISION_LABELS), set(seen[-1].name))


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_every_node_exits_cleanly(self, proc_info):
        # rclpy nodes exit 0 on SIGINT; -2 (SIGINT) is what launch reports for the rest
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2])
