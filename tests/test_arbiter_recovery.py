"""The arbiter's recovery: the checkpoint's pi_rec, holding still (``recovery: hold``, the
graph's side of farm-hold and farm-qrisk-cal-hold), or holding and then pi_rec
(``hold_then_policy``, farm-qrisk-cal-hold-rec); anything else is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from graph_harness import CHECKPOINTS, checkpoint_params, fresh_domain

pytestmark = pytest.mark.ros
TASK = "BoundedPush-v0"

if not (CHECKPOINTS / TASK / "recovery.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def _arbiter(**params):
    import rclpy
    from rclpy.parameter import Parameter

    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    p = {**checkpoint_params(TASK)["arbiter_node"], **params}
    try:
        return ArbiterNode(context=context,
                           parameter_overrides=[Parameter(k, value=v) for k, v in p.items()])  # fmt: skip
    except Exception:
        rclpy.try_shutdown(context=context)
        raise


def _replaced_actions(node) -> np.ndarray:
    obs = np.random.default_rng(0).normal(size=(3, 39)).astype(np.float32)
    proposed = np.full((3, 4), 0.5, np.float32)
    d = node.decider.decide(obs, proposed, np.full(3, node.decider.eps_safe + 1.0))
    assert d.replaced.all()
    return d.actions


def test_the_arbiter_holds_still_where_the_gate_fires_with_recovery_hold():
    held, policy = _arbiter(recovery="hold"), _arbiter()
    try:
        np.testing.assert_array_equal(_replaced_actions(held), np.zeros((3, 4), np.float32))
        assert np.abs(_replaced_actions(policy)).max() > 0  # pi_rec acts
    finally:
        for node in (held, policy):
            ctx = node.context
            node.destroy_node()
            ctx.try_shutdown()


def test_hold_then_policy_runs_pi_rec_after_hold_patience_holds_in_a_row():
    node = _arbiter(recovery="hold_then_policy", hold_patience=2, escape_steps=1)
    try:
        obs = np.random.default_rng(1).normal(size=(1, 39)).astype(np.float32)
        proposed, fired = np.full((1, 4), 0.5, np.float32), np.array([node.decider.eps_safe + 1])
        steps = []
        for _ in range(4):  # the arbiter's decide(): the decider, then the patience's escapes
            d = node.patience.adjust(obs, proposed, node.decider.decide(obs, proposed, fired))
            assert d.replaced[0]
            steps.append(np.abs(d.actions).max() > 0)
        assert steps == [False, False, True, False]  # hold, hold, pi_rec, hold
    finally:
        ctx = node.context
        node.destroy_node()
        ctx.try_shutdown()


@pytest.mark.parametrize(("params", "error"), [({"recovery": "stop"}, "one of"),
                                               ({"recovery_checkpoint": ""}, "needs recovery_checkpoint")])  # fmt: skip
def test_an_unknown_recovery_or_a_policy_without_a_checkpoint_is_refused(params, error):
    with pytest.raises(ValueError, match=error):
        _arbiter(**params)
