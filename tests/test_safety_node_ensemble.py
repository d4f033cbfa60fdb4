"""The safety node scores farm-ens's C_H: ``ensemble_members`` makes it the benchmark's
``EnsembleSafetyGate`` (the mean over the world model and the members beside it, as the
pipeline's ``ensemble`` stage writes them), and a weight push reaches every member. With a
``qrisk`` checkpoint it scores farm-qrisk's any-of gate, as the benchmark's registry builds it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from graph_harness import CHECKPOINTS, checkpoint_params, fresh_domain

pytestmark = pytest.mark.ros
TASK = "BoundedPush-v0"

if not (CHECKPOINTS / TASK / "world_model.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def _perturbed_world_model(path, seed: int = 1):
    """A second member: the shipped world model with every weight matrix jittered."""
    from farm_safety_critic.world_model import WorldModel

    wm = WorldModel.load(CHECKPOINTS / TASK / "world_model.safetensors")
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in wm.parameters():
            if p.ndim == 2:
                p.add_(0.05 * torch.randn_like(p))
    wm.save(path)
    return path


def test_the_safety_node_scores_the_mean_c_h_of_its_ensemble(tmp_path):
    import rclpy
    from rclpy.parameter import Parameter

    from failurebench_sim.make import make_env
    from farm_policies.checkpoint import load_actor_value
    from farm_policies.weights import decode_weights, encode_weights
    from farm_safety_critic.gate import EnsembleSafetyGate, SafetyGate
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_safety_critic.world_model import WorldModel

    p = checkpoint_params(TASK)["safety_node"]
    shutil.copy(p["world_model"], tmp_path / "world_model.safetensors")
    member = str(_perturbed_world_model(tmp_path / "member1.safetensors"))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    params = {**p, "world_model": str(tmp_path / "world_model.safetensors"),
              "ensemble_members": 2, "marker_every": 0}  # fmt: skip
    node = SafetyNode(context=context,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    try:
        assert isinstance(node.gate, EnsembleSafetyGate) and len(node.gate.members) == 2
        env = make_env(f"FailureBench/{TASK}")
        obs = np.stack([env.reset(seed=s)[0] for s in range(4)]).astype(np.float32)
        act = np.random.default_rng(0).uniform(-1, 1, (4, env.action_space.shape[0]))
        act = act.astype(np.float32)
        actor = load_actor_value(p["checkpoint"])[0]
        models = [WorldModel.load(p["world_model"]), WorldModel.load(member)]
        single = [SafetyGate(m, actor, None).scores(obs, act) for m in models]
        want = EnsembleSafetyGate(models, actor, None).scores(obs, act)
        np.testing.assert_allclose(want, np.mean(single, axis=0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(node.gate.scores(obs, act), want, rtol=1e-4, atol=1e-6)
        assert node.trajectory_markers(obs[0], act[0], node.get_clock().now().to_msg()).markers

        # a pushed task policy is what every member rolls out
        torch.manual_seed(0)
        new = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() and v.ndim == 2 else v
               for k, v in actor.state_dict().items()}  # fmt: skip
        node.task_policy.update(*decode_weights(encode_weights(new, version=1)))
        actor.load_state_dict(new)
        pushed = EnsembleSafetyGate(models, actor, None).scores(obs, act)
        assert not np.allclose(pushed, want)
        np.testing.assert_allclose(node.gate.scores(obs, act), pushed, rtol=1e-4, atol=1e-6)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_without_members_the_safety_node_keeps_one_world_model():
    import rclpy
    from rclpy.parameter import Parameter

    from farm_safety_critic.gate import SafetyGate
    from farm_safety_critic.nodes.safety_node import SafetyNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    p = checkpoint_params(TASK)["safety_node"]
    node = SafetyNode(context=context,
                      parameter_overrides=[Parameter(k, value=v) for k, v in p.items()])  # fmt: skip
    try:
        assert type(node.gate) is SafetyGate and node.cfg.ensemble_members == 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _starts_and_a_qrisk_critic(tmp_path, n: int):
    """``n`` reset observations of the task, random actions, and an untrained Q-risk critic."""
    from failurebench_sim.make import make_env
    from farm_safety_critic.qrisk import QRisk, QRiskConfig

    env = make_env(f"FailureBench/{TASK}")
    obs = np.stack([env.reset(seed=s)[0] for s in range(n)]).astype(np.float32)
    act = np.random.default_rng(0).uniform(-1, 1, (n, env.action_space.shape[0]))
    torch.manual_seed(0)
    qrisk = tmp_path / "qrisk.safetensors"
    QRisk(QRiskConfig(obs.shape[1], act.shape[1], hidden=16)).save(qrisk)
    return obs, act.astype(np.float32), qrisk


def test_with_a_qrisk_checkpoint_the_safety_node_scores_farm_qrisk(tmp_path):
    import rclpy
    from rclpy.parameter import Parameter

    from farm_policies.checkpoint import load_actor_value
    from farm_safety_critic.gate import AnyOfGate
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_trainer.methods import Artifacts, MethodParams, filter_factory

    p = checkpoint_params(TASK)["safety_node"]
    obs, act, qrisk = _starts_and_a_qrisk_critic(tmp_path, 8)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    params = {**p, "qrisk": str(qrisk), "qrisk_eps_safe": 0.2, "marker_every": 0}
    node = SafetyNode(context=context,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    try:
        assert isinstance(node.gate, AnyOfGate)
        eps = node.cfg.eps_safe
        actor = load_actor_value(p["checkpoint"])[0]
        rec = CHECKPOINTS / TASK / "recovery.safetensors"
        art = Artifacts(world_model=p["world_model"], qrisk=qrisk, recovery=rec)
        bench = filter_factory("farm-qrisk", art, MethodParams(eps_safe=eps, qrisk_eps_safe=0.2))
        want = bench(actor).scores(obs, act)
        np.testing.assert_allclose(node.gate.scores(obs, act), want, rtol=1e-4, atol=1e-6)
        assert node.trajectory_markers(obs[0], act[0], node.get_clock().now().to_msg()).markers
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_qrisk_with_a_zero_eps_safe_is_refused_with_a_clear_error(tmp_path):
    import rclpy
    from rclpy.parameter import Parameter

    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_safety_critic.qrisk import QRisk, QRiskConfig

    p = checkpoint_params(TASK)["safety_node"]
    qrisk = tmp_path / "qrisk.safetensors"
    QRisk(QRiskConfig(39, 4, hidden=16)).save(qrisk)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    params = {**p, "qrisk": str(qrisk), "eps_safe": 0.0}
    try:
        with pytest.raises(ValueError, match="qrisk needs eps_safe > 0"):
            SafetyNode(context=context,
                       parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    finally:
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize("c_h_left_out", [True, False])
def test_the_safety_node_gates_at_farm_qrisk_cals_calibrated_pair(tmp_path, c_h_left_out):
    """``anyof_eps_file`` (calibration/anyof_eps.json) sets each member's own threshold; a
    member calibration left out (null) is not built. The node's score stays in ``eps_safe``'s
    units, so the arbiter's threshold fires exactly where the registry's farm-qrisk-cal does."""
    import json

    import rclpy
    from rclpy.parameter import Parameter

    from farm_policies.checkpoint import load_actor_value
    from farm_safety_critic.calibration import read_eps_safe
    from farm_safety_critic.gate import AnyOfGate, SafetyGate
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_safety_critic.qrisk import QRisk, QRiskGate
    from farm_trainer.methods import Artifacts, MethodParams, filter_factory

    p = checkpoint_params(TASK)["safety_node"]
    obs, act, qrisk = _starts_and_a_qrisk_critic(tmp_path, 16)
    q_eps = float(np.median(QRiskGate(QRisk.load(qrisk), None, 1.0).scores(obs, act)))
    c_eps = None if c_h_left_out else 0.05
    anyof = tmp_path / "anyof_eps.json"
    anyof.write_text(json.dumps({"eps_safe": c_eps, "qrisk_eps_safe": q_eps}))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    eps_file = CHECKPOINTS / TASK / "eps_safe.json"  # FARM's own: the arbiter's threshold
    params = {**p, "qrisk": str(qrisk), "anyof_eps_file": str(anyof), "marker_every": 1,
              "eps_safe_file": str(eps_file)}  # fmt: skip
    node = SafetyNode(context=context,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    try:
        assert isinstance(node.gate, AnyOfGate)
        kinds = [type(m) for m in node.gate.members]
        assert kinds == ([QRiskGate] if c_h_left_out else [SafetyGate, QRiskGate])
        eps = node.cfg.eps_safe
        assert eps == read_eps_safe(str(eps_file)) != c_eps  # the score's unit: eps_safe_file's
        actor = load_actor_value(p["checkpoint"])[0]
        rec = CHECKPOINTS / TASK / "recovery.safetensors"
        art = Artifacts(world_model=p["world_model"], qrisk=qrisk, recovery=rec)
        pair = MethodParams(eps_safe=np.inf if c_h_left_out else c_eps, qrisk_eps_safe=q_eps)
        bench = filter_factory("farm-qrisk-cal", art, pair)(actor)
        want = bench.scores(obs, act)
        fires = want > bench.eps_safe
        assert 0 < fires.sum() < len(fires)
        got = node.gate.scores(obs, act)
        np.testing.assert_allclose(got, want * eps / bench.eps_safe, rtol=1e-4, atol=1e-6)
        margin = np.abs(want / bench.eps_safe - 1) > 1e-4  # rounding can't flip these
        np.testing.assert_array_equal((got > eps)[margin], fires[margin])
        # the imagined trajectory is drawn whether or not C_H is a member
        assert node.trajectory_markers(obs[0], act[0], node.get_clock().now().to_msg()).markers
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize(
    ("extra", "error"),
    [({}, "needs a qrisk checkpoint"),
     ({"qrisk": "Q", "ensemble_members": 2}, "one world model"),
     ({"qrisk": "Q", "eps_safe": 0.0}, "qrisk needs eps_safe > 0")],
)  # fmt: skip
def test_an_anyof_eps_file_the_node_cannot_honour_is_refused(tmp_path, extra, error):
    """Without a Q-risk checkpoint, on an ensemble (the pair was chosen on one world model's
    C_H), or with no unit for the score (eps_safe 0): a clear error at start-up."""
    import json

    import rclpy
    from rclpy.parameter import Parameter

    from farm_safety_critic.nodes.safety_node import SafetyNode

    _, _, qrisk = _starts_and_a_qrisk_critic(tmp_path, 1)
    anyof = tmp_path / "anyof_eps.json"
    anyof.write_text(json.dumps({"eps_safe": None, "qrisk_eps_safe": 0.2}))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    extra = {k: str(qrisk) if v == "Q" else v for k, v in extra.items()}
    params = {**checkpoint_params(TASK)["safety_node"], "anyof_eps_file": str(anyof), **extra}
    try:
        with pytest.raises(ValueError, match=error):
            SafetyNode(context=context,
                       parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    finally:
        rclpy.try_shutdown(context=context)
