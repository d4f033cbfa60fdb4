"""farm-pid on the graph: IR failures seen by the trainer node lower the arbiter's eps_safe
through its parameter service, by farm-pid's own controller (the benchmark's ``AdaptiveEpsSafe``
gives the same thresholds for the same episodes), and a restarted trainer resumes the steering."""

from __future__ import annotations

import numpy as np
import pytest
from graph_harness import CHECKPOINTS, Graph, checkpoint_params, wait_for

pytestmark = pytest.mark.ros
TASK = "BoundedPush-v0"
EPS0 = 0.4

if not (CHECKPOINTS / TASK / "actor.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def _episode_end(cost: float):
    """The last transition of an episode (an IR failure when ``cost`` > 0)."""
    from failurebench_sim import ros_contract as rc
    from farm_trainer.online.learner import Transition

    obs = np.zeros(len(rc.OBS_LABELS), np.float32)
    act = np.zeros(len(rc.ACTION_LABELS), np.float32)
    return Transition(obs, act, act, 0.0, cost, True, False, obs)


def _trainer_params(out) -> dict:
    return {"task": f"FailureBench/{TASK}", "init": str(CHECKPOINTS / TASK / "actor.safetensors"),
            "output_dir": str(out), "batch_steps": 100_000, "eps_target_rate": 0.05,
            "eps_safe": EPS0}  # fmt: skip


def test_trainer_steers_the_arbiters_eps_safe_like_farm_pid(tmp_path):
    from types import SimpleNamespace

    from farm_safety_critic.eps_control import AdaptiveEpsSafe
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_trainer.nodes.trainer_node import TrainerNode

    p = checkpoint_params(TASK)
    outcomes = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    bench = AdaptiveEpsSafe(SimpleNamespace(decider=SimpleNamespace(eps_safe=EPS0),
                                            eps_safe=EPS0))  # fmt: skip
    want = [bench.observe_episodes([f]) for f in outcomes]

    graph = Graph([(ArbiterNode, {**p["arbiter_node"], "eps_safe": EPS0}),
                   (SafetyNode, {**p["safety_node"], "eps_safe": EPS0, "marker_every": 0}),
                   (TrainerNode, _trainer_params(tmp_path / "trainer"))])  # fmt: skip
    arbiter, safety, trainer = graph.nodes
    try:
        clients = trainer.eps_steering.clients
        assert wait_for(lambda: all(c.services_are_ready() for c in clients), 30)
        for k, f in enumerate(outcomes):
            trainer.learner.add(_episode_end(f), episode=k, step=0)
            assert trainer.eps_steering.eps_safe == pytest.approx(want[k], rel=1e-6)
            assert wait_for(lambda k=k: arbiter.decider.eps_safe == pytest.approx(want[k])
                            and safety.cfg.eps_safe == pytest.approx(want[k]), 30)  # fmt: skip
        assert arbiter.get_parameter("eps_safe").value == pytest.approx(want[-1])
        assert want[-1] < EPS0  # four failures in six episodes: well above the 5 % target
    finally:
        graph.close()

    restarted = Graph([(TrainerNode, _trainer_params(tmp_path / "trainer"))])
    try:
        assert restarted.nodes[0].eps_steering.eps_safe == pytest.approx(want[-1], rel=1e-6)
    finally:
        restarted.close()


def test_the_calibrated_file_is_the_eps_safe_parameter_shown():
    """eps_safe_file wins over eps_safe, and ``ros2 param get`` shows the value in use."""
    from farm_safety_critic.calibration import read_eps_safe
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode

    p = checkpoint_params(TASK)
    eps_file = str(CHECKPOINTS / TASK / "eps_safe.json")
    want = read_eps_safe(eps_file)
    graph = Graph([(ArbiterNode, {**p["arbiter_node"], "eps_safe_file": eps_file}),
                   (SafetyNode, {**p["safety_node"], "eps_safe_file": eps_file})])  # fmt: skip
    try:
        for node in graph.nodes:
            assert node.get_parameter("eps_safe").value == pytest.approx(want)
            assert node.cfg.eps_safe == pytest.approx(want)
        assert graph.nodes[0].decider.eps_safe == pytest.approx(want)
    finally:
        graph.close()


def test_without_a_target_rate_the_trainer_leaves_eps_safe_alone(tmp_path):
    from farm_trainer.nodes.trainer_node import TrainerNode

    graph = Graph([(TrainerNode, {**_trainer_params(tmp_path), "eps_target_rate": 0.0})])
    try:
        assert graph.nodes[0].eps_steering is None
    finally:
        graph.close()
