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


def test_the_arbiters_decide_counts_only_frames_that_can_move_and_a_pause_starts_over():
    from std_msgs.msg import Bool

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import ns_to_stamp, pack_vector, unpack_vector

    node = _arbiter(recovery="hold_then_policy", hold_patience=2, escape_steps=1)
    sent = []
    node.outputs.publish = lambda *out: sent.extend(m for pub, m in out if pub is node.pub_decision)
    col = {name: i for i, name in enumerate(rc.DECISION_LABELS)}
    obs = np.r_[[0.0, 0.6, 0.1], np.random.default_rng(2).uniform(-0.1, 0.1, 36)]

    def frame(k: int) -> tuple[bool, bool]:  # (held by the arbiter, the arm moved)
        stamp = ns_to_stamp(k * 33_333_333)
        node.decide({"obs": pack_vector(rc.OBS_LABELS, obs, stamp),
                     "proposed": pack_vector(rc.PROPOSED_LABELS, [0.5, 0, 0, 0.5, 3], stamp),
                     "assessment": pack_vector(rc.ASSESSMENT_LABELS,
                                               [node.decider.eps_safe + 1, 0, 3, 0.1], stamp)})  # fmt: skip
        d = unpack_vector(sent[-1], rc.DECISION_LABELS)
        executed = d[[col[f"executed_{a}"] for a in rc.ACTION_LABELS[:3]]]
        return bool(d[col["hold"]]), bool(np.abs(executed).max() > 1e-9)

    try:
        assert [frame(k)[1] for k in (1, 2, 3)] == [False, False, True]  # hold, hold, pi_rec
        assert frame(4) == (False, False)  # holding again
        node._on_episode_hold(Bool(data=True))  # paused: frames hold and do not count
        assert [frame(k)[0] for k in (5, 6, 7)] == [True, True, True]
        node._on_episode_hold(Bool(data=False))  # a new episode: the counts start over
        assert [frame(k)[1] for k in (8, 9, 10)] == [False, False, True]
    finally:
        ctx = node.context
        node.destroy_node()
        ctx.try_shutdown()


@pytest.mark.parametrize(("params", "error"), [({"recovery": "stop"}, "one of"),
                                               ({"recovery_checkpoint": ""}, "needs recovery_checkpoint")])  # fmt: skip
def test_an_unknown_recovery_or_a_policy_without_a_checkpoint_is_refused(params, error):
    with pytest.raises(ValueError, match=error):
        _arbiter(**params)
