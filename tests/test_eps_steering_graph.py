"""farm-pid on the graph: IR failures seen by the trainer node lower the arbiter's eps_safe
through its parameter service, update by update as the benchmark loop steers it (the benchmark's
``AdaptiveEpsSafe`` gives the same thresholds for the same episodes); a node that comes back at
another value is corrected, a refused set is reported, and a restarted trainer resumes the
controller from its checkpoint. farm-qrisk-cal-hold-steer on the graph: replaced actions raise
it the same way."""

from __future__ import annotations

import numpy as np
import pytest
from graph_harness import CHECKPOINTS, Graph, checkpoint_params, wait_for

pytestmark = pytest.mark.ros
TASK = "BoundedPush-v0"
EPS0 = 0.4
# two one-step episodes per PPO update: (IR failure?, IR failure?)
UPDATES = [(1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]

if not (CHECKPOINTS / TASK / "actor.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def _episode(cost: float, replaced: bool = False):
    """A one-step episode (an IR failure when ``cost`` > 0)."""
    from failurebench_sim import ros_contract as rc
    from farm_trainer.online.learner import Transition

    obs = np.zeros(len(rc.OBS_LABELS), np.float32)
    act = np.zeros(len(rc.ACTION_LABELS), np.float32)
    return Transition(obs, act, act, 0.0, cost, True, False, obs, replaced)


def _trainer_params(out, nodes=("arbiter_node", "safety_node")) -> dict:
    return {"task": f"FailureBench/{TASK}", "init": str(CHECKPOINTS / TASK / "actor.safetensors"),
            "output_dir": str(out), "batch_steps": 2, "ppo.minibatch_size": 2, "ppo.epochs": 1,
            "eps_target_rate": 0.05, "eps_safe": EPS0, "eps_nodes": list(nodes)}  # fmt: skip


def test_trainer_steers_the_arbiters_eps_safe_like_farm_pid(tmp_path):
    from types import SimpleNamespace

    from rclpy.parameter import Parameter

    from farm_safety_critic.eps_control import AdaptiveEpsSafe
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_trainer.nodes.trainer_node import TrainerNode

    p = checkpoint_params(TASK)
    bench = AdaptiveEpsSafe(SimpleNamespace(decider=SimpleNamespace(eps_safe=EPS0),
                                            eps_safe=EPS0))  # fmt: skip
    want = [bench.observe_episodes(list(batch)) for batch in UPDATES]

    graph = Graph([(ArbiterNode, {**p["arbiter_node"], "eps_safe": EPS0}),
                   (SafetyNode, {**p["safety_node"], "eps_safe": EPS0, "marker_every": 0}),
                   (TrainerNode, _trainer_params(tmp_path / "trainer"))])  # fmt: skip
    arbiter, safety, trainer = graph.nodes
    try:
        assert wait_for(lambda: all(c.services_are_ready() for c in trainer.eps_push.clients), 30)
        episode = 0
        for k, batch in enumerate(UPDATES):
            for failed in batch:
                trainer._take([SimpleNamespace(transition=_episode(failed), episode=episode,
                                               step=0, stamp_ns=0, success=False)])  # fmt: skip
                episode += 1
            assert trainer.last_row["eps_safe"] == pytest.approx(want[k], rel=1e-6)
            assert wait_for(lambda k=k: arbiter.decider.eps_safe == pytest.approx(want[k])
                            and safety.cfg.eps_safe == pytest.approx(want[k]), 30)  # fmt: skip
        assert arbiter.get_parameter("eps_safe").value == pytest.approx(want[-1])
        assert want[-1] < EPS0 and trainer.eps_push.refused == 0

        # an arbiter back at its YAML value (a restart) is corrected at the next check
        arbiter.set_parameters([Parameter("eps_safe", value=EPS0)])
        assert wait_for(lambda: arbiter.decider.eps_safe == pytest.approx(want[-1]), 30)
    finally:
        graph.close()

    restarted = Graph([(TrainerNode, _trainer_params(tmp_path / "trainer"))])
    try:  # the controller's state came back with the trainer's checkpoint
        assert restarted.nodes[0].eps_push.eps_safe == pytest.approx(want[-1], rel=1e-6)
    finally:
        restarted.close()


def test_a_node_that_refuses_the_threshold_is_reported(tmp_path):
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.node import Node

    from farm_trainer.nodes.trainer_node import TrainerNode

    def peers(context):
        fixed = Node("fixed_node", context=context)  # eps_safe read-only: every set refused
        fixed.declare_parameter("eps_safe", 0.1, ParameterDescriptor(read_only=True))
        return fixed

    graph = Graph([(TrainerNode, _trainer_params(tmp_path, ["fixed_node"]))], first=peers)
    try:
        trainer = graph.nodes[0]
        assert wait_for(lambda: trainer.eps_push.refused >= 1, 30)
        assert "fixed_node" not in trainer.eps_push.applied
        assert graph.probe.get_parameter("eps_safe").value == 0.1
    finally:
        graph.close()


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
        assert graph.nodes[0].eps_push is None
    finally:
        graph.close()


def test_trainer_raises_eps_safe_while_the_arbiter_replaces_too_much(tmp_path):
    """farm-qrisk-cal-hold-steer: each update's replaced fraction (failures ignored) moves
    eps_safe as the benchmark's ``AdaptiveEpsSafe(signal="replaced")`` moves it."""
    from types import SimpleNamespace

    from farm_safety_critic.eps_control import AdaptiveEpsSafe
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_trainer.methods import MethodParams
    from farm_trainer.nodes.trainer_node import TrainerNode

    m = MethodParams()
    bench = AdaptiveEpsSafe(SimpleNamespace(decider=SimpleNamespace(eps_safe=EPS0),
                                            eps_safe=EPS0), m.replaced_target_rate,
                            m.replaced_kp, m.replaced_ki, m.replaced_window, min_factor=1.0,
                            max_factor=m.replaced_max_factor, signal="replaced")  # fmt: skip
    want = []
    for batch in UPDATES:  # here the pairs say which of the two steps were replaced
        bench.observe_episodes([1.0, 1.0])  # failures do not move this signal
        bench.observe_rollout(SimpleNamespace(replaced=np.array(batch, bool)[:, None]))
        want.append(bench.eps_safe)
    params = {**_trainer_params(tmp_path / "trainer", ["arbiter_node"]), "eps_target_rate": 0.0,
              "replaced_target_rate": m.replaced_target_rate}  # fmt: skip
    p = checkpoint_params(TASK)
    graph = Graph([(ArbiterNode, {**p["arbiter_node"], "eps_safe": EPS0}),
                   (TrainerNode, params)])  # fmt: skip
    arbiter, trainer = graph.nodes
    try:
        assert wait_for(lambda: all(c.services_are_ready() for c in trainer.eps_push.clients), 30)
        episode = 0
        for k, batch in enumerate(UPDATES):
            for replaced in batch:
                trainer._take([SimpleNamespace(transition=_episode(1.0, bool(replaced)),
                                               episode=episode, step=0, stamp_ns=0,
                                               success=False)])  # fmt: skip
                episode += 1
            assert trainer.last_row["eps_safe"] == pytest.approx(want[k], rel=1e-6)
        assert wait_for(lambda: arbiter.decider.eps_safe == pytest.approx(want[-1]), 30)
        assert want[-1] > EPS0
    finally:
        graph.close()


def test_steering_both_signals_at_once_is_refused(tmp_path):
    from farm_trainer.nodes.trainer_node import TrainerNodeConfig, steering_of

    cfg = TrainerNodeConfig(eps_target_rate=0.05, replaced_target_rate=0.2)
    with pytest.raises(ValueError, match="one signal"):
        steering_of(cfg)
