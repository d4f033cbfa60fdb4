"""A real-robot launch file's node set, run on the twin as processes from the same YAML.

``farm-graph run --config config/real_<task>.yaml --use-twin`` is what
``ros2 launch farm_bringup real_<task>.launch.py use_twin:=true`` starts: the twin in place
of franka_ros2 and realsense2_camera (same topics), perception with the fused YOLO detector,
the policy, the gate, the arbiter streaming to the crisp controller's topic, the trainer on
estimated labels and the recorder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from graph_harness import ROOT, fresh_domain

pytestmark = pytest.mark.ros
MODEL = ROOT / "config" / "models" / "yolov8n_twin_320.onnx"


@pytest.mark.skipif(not MODEL.exists(), reason=f"{MODEL.name} not shipped")
@pytest.mark.parametrize("config", ["real_push_wall", "real_disturbed_push", "real_bounded_soccer"])
def test_a_real_launch_node_set_runs_on_the_twin(tmp_path, config):
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS

    domain = fresh_domain()
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "MUJOCO_GL": "egl"}
    graph = subprocess.Popen(
        [sys.executable, "-m", "farm_bringup.cli", "run", "--config",
         str(ROOT / "config" / f"{config}.yaml"), "--use-twin", "--duration", "120",
         "-p", f"trainer_node.output_dir:={tmp_path / 'trainer'}",
         "-p", f"recorder_node.output_dir:={tmp_path / 'recording'}"],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    probe = Node("real_graph_probe", context=context)
    got = {"targets": 0, "decisions": 0}
    probe.create_subscription(PoseStamped, rc.TARGET_POSE,
                              lambda _: got.__setitem__("targets", got["targets"] + 1),
                              QOS[rc.RELIABLE])  # fmt: skip
    probe.create_subscription(JointState, rc.DECISION,
                              lambda _: got.__setitem__("decisions", got["decisions"] + 1),
                              QOS[rc.RELIABLE])  # fmt: skip
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    writers = 0
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and got["decisions"] < 10:
            executor.spin_once(timeout_sec=0.1)
        writers = probe.count_publishers(rc.TARGET_POSE)
    finally:
        graph.send_signal(2)
        graph.wait(60)
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown(context=context)
    assert got["decisions"] >= 10, got  # camera -> YOLO + colour -> policy -> gate -> arbiter
    assert got["targets"] > 0 and writers == 1, (got, writers)  # only the arbiter commands
    journal = tmp_path / "trainer" / "transitions.journal"
    assert journal.exists() and journal.stat().st_size > 0  # estimated labels -> transitions
    assert (tmp_path / "recording" / "index.csv").exists()
