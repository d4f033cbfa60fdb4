"""Teleoperated demonstrations: keyboard -> velocity -> the human's action through the graph
(gate off, shield on) -> the trainer's journal (no PPO) -> an offline dataset of the kind asked."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from graph_harness import CHECKPOINTS, Graph, checkpoint_params, wait_for

from failurebench_sim.command import ACTION_SCALE
from farm_bringup.nodes.operator_keyboard import KEY_HOLD_S, SPEED, KeyState
from farm_policies.teleop import HUMAN_VERSION, TeleopCommand

TASK = "BoundedPush-v0"
PERIOD = 1.0 / 30


def test_held_keys_give_a_velocity_and_marks_and_gripper_toggle():
    k = KeyState()
    assert k.press("i", 0.0) is None and k.press("u", 0.1) is None
    np.testing.assert_allclose(k.velocity(0.2), [SPEED, 0, SPEED])
    np.testing.assert_allclose(k.velocity(0.1 + KEY_HOLD_S + 0.01), 0)  # released
    assert k.press(" ", 0.0) is None and k.gripper == 1.0
    assert k.press("F", 0.0) == "ir_failure" and k.press("I", 0.0) == "intervention"
    assert k.press("q", 0.0) == "quit"


def test_a_velocity_becomes_one_periods_action_capped_and_stops_when_stale():
    t = TeleopCommand(max_speed=0.1, timeout_s=0.5)
    np.testing.assert_array_equal(t.action(0.0, PERIOD), [0, 0, 0, -1])  # nothing received
    assert t.set_velocity([0.03, 0, 0], 1.0) and t.set_gripper(0.5)
    np.testing.assert_allclose(t.action(1.2, PERIOD), [0.03 * PERIOD / ACTION_SCALE, 0, 0, 0.5],
                               rtol=1e-6)  # fmt: skip
    t.set_velocity([1.0, 0, 0], 2.0)  # 1 m/s asked, 0.1 allowed
    assert t.action(2.0, PERIOD)[0] == pytest.approx(0.1 * PERIOD / ACTION_SCALE, rel=1e-6)
    np.testing.assert_array_equal(t.action(2.6, PERIOD)[:3], 0)  # stale: the arm stops
    assert not t.set_velocity([np.nan, 0, 0], 3.0) and not t.set_gripper(float("inf"))


@pytest.mark.ros
@pytest.mark.skipif(
    not (CHECKPOINTS / TASK / "actor.safetensors").exists(), reason="no checkpoints"
)
def test_teleop_demonstrations_are_recorded_and_export_as_a_dataset(tmp_path):
    from geometry_msgs.msg import Twist
    from rclpy.node import Node

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.datasets import load_dataset
    from failurebench_sim.nodes.ros_io import QOS
    from failurebench_sim.nodes.sim_node import SimNode
    from farm_policies.nodes.policy_node import PolicyNode
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_trainer.demos import main as farm_demos
    from farm_trainer.nodes.trainer_node import TrainerNode

    p = checkpoint_params(TASK)
    out = tmp_path / "trainer"
    nodes = [
        (SimNode, {"task": f"FailureBench/{TASK}", "clock_mode": "lockstep", "seed": 5,
                   "observation_source": "ground_truth", "lockstep_resend_s": 0.5}),
        (PolicyNode, {**p["policy_node"], "action_source": "teleop", "teleop_max_speed": 0.1}),
        (SafetyNode, {**p["safety_node"], "marker_every": 0}),
        (ArbiterNode, {**p["arbiter_node"], "eps_safe": 1e6}),  # the gate never replaces
        (TrainerNode, {"task": f"FailureBench/{TASK}", "init": p["policy_node"]["checkpoint"],
                       "output_dir": str(out), "learn": False, "batch_steps": 8}),
    ]  # fmt: skip
    graph = Graph(nodes)
    peer = Node("teleop_peer", context=graph.context)
    pub = peer.create_publisher(Twist, "/farm/teleop/twist", QOS[rc.RELIABLE])
    stop = threading.Event()

    def drive():  # the operator holds "+x"
        msg = Twist()
        msg.linear.x = 0.03
        while not stop.is_set():
            pub.publish(msg)
            time.sleep(0.005)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    trainer = graph.nodes[-1]
    try:
        assert wait_for(lambda: trainer.learner.journal.rows >= 60, 120)
        assert trainer.learner.version == 0  # journal only: no PPO update, no push
    finally:
        stop.set()
        driver.join(2)
        graph.close()
        peer.destroy_node()
    demos = tmp_path / "demos.npz"
    assert farm_demos(["export", str(out / "transitions.journal"), "--kind", "task",
                       "--out", str(demos)]) == 0  # fmt: skip
    ds = load_dataset(demos)
    assert ds.metadata["kind"] == "task" and ds.metadata["policy_versions"] == [HUMAN_VERSION] * 2
    moving = ds.actions[:, 0] > 0
    assert moving.mean() > 0.8  # the human's +x (the first frames may precede the first twist)
    np.testing.assert_allclose(ds.actions[moving, 0], 0.03 * PERIOD / ACTION_SCALE, rtol=1e-4)
