"""The graph's side of the farm-runout methods: with a ``runout`` model the safety node scores the
object's run-out as the benchmark's registry does (``RunoutGate``), with ``hand_motion`` it adds
farm-runout-seq's holding member over the live task policy, and the arbiter's ``recovery:
policy_or_hold`` executes the registry's ``FirstFired`` decision from the two published scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from graph_harness import CHECKPOINTS, checkpoint_params, fresh_domain

pytestmark = pytest.mark.ros
TASK = "BoundedSoccer-v0"
D = CHECKPOINTS / TASK
RUNOUT = {"runout": str(D / "runout.json"), "object_motion": str(D / "object_motion.safetensors"),
          "hand_motion": str(D / "hand_motion.json"), "runout_horizon": 40,
          "runout_lookahead": 5, "runout_hold_eps": 0.5, "eps_safe": 1.0, "eps_safe_file": "",
          "marker_every": 0}  # fmt: skip

if not (D / "hand_motion.json").exists():
    pytest.skip("shipped run-out models missing (scripts/ship_checkpoints.sh)",
                allow_module_level=True)  # fmt: skip


def _node(cls, section: str, **params):
    import rclpy
    from rclpy.parameter import Parameter

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    p = {**checkpoint_params(TASK)[section], **params}
    try:
        return cls(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in p.items()]
        )
    except Exception:
        rclpy.try_shutdown(context=context)
        raise


def _close(*nodes) -> None:
    for node in nodes:
        ctx = node.context
        node.destroy_node()
        ctx.try_shutdown()


def _rolling_balls(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Reset observations of the task with the ball given a last displacement (some toward an
    exit, some not) and random proposed actions."""
    from failurebench_sim.make import make_env
    from failurebench_sim.observation import OBJ, PREV_OBJ

    env = make_env(f"FailureBench/{TASK}")
    obs = np.stack([env.reset(seed=s)[0] for s in range(n)]).astype(np.float32)
    env.close()
    rng = np.random.default_rng(0)
    obs[:, PREV_OBJ.start : PREV_OBJ.start + 2] = obs[:, OBJ.start : OBJ.start + 2] - rng.uniform(
        -0.01, 0.01, (n, 2)
    ).astype(np.float32)
    return obs, rng.uniform(-1, 1, (n, 4)).astype(np.float32)


def _registry_gate(actor):
    from farm_trainer.methods import Artifacts, MethodParams, filter_factory

    art = Artifacts(runout=D / "runout.json", object_motion=D / "object_motion.safetensors",
                    hand_motion=D / "hand_motion.json", recovery=D / "recovery.safetensors")  # fmt: skip
    p = MethodParams(runout_eps=1.0, runout_horizon=40, runout_lookahead=5, runout_hold_eps=0.5)
    return filter_factory("farm-runout-seq", art, p)(actor)


def test_the_safety_node_scores_farm_runout_seq_as_the_registry_and_follows_pushed_weights():
    from farm_policies.checkpoint import load_actor_value
    from farm_policies.weights import decode_weights, encode_weights
    from farm_safety_critic.nodes.safety_node import SafetyNode

    node = _node(SafetyNode, "safety_node", **RUNOUT)
    try:
        actor = load_actor_value(D / "actor.safetensors")[0]
        obs, act = _rolling_balls(16)
        bench = _registry_gate(actor)
        state, hold = bench.members
        np.testing.assert_allclose(node.gate.scores(obs, act), state.scores(obs, act), rtol=1e-6)
        want = hold.scores(obs, act)
        np.testing.assert_allclose(node.hold_gate.scores(obs, act), want, rtol=1e-5, atol=1e-6)
        assert (want > 0.5).any() and (want <= 0.5).any(), "both sides of hold_eps, please"

        # the holding member rolls out the live task policy: a push reaches it
        torch.manual_seed(0)
        new = {k: v + 0.3 * torch.randn_like(v) if v.is_floating_point() and v.ndim == 2 else v
               for k, v in actor.state_dict().items()}  # fmt: skip
        node.task_policy.update(*decode_weights(encode_weights(new, version=1)))
        actor.load_state_dict(new)
        pushed = _registry_gate(actor).members[1].scores(obs, act)
        assert not np.allclose(pushed, want)
        np.testing.assert_allclose(node.hold_gate.scores(obs, act), pushed, rtol=1e-5, atol=1e-6)
    finally:
        _close(node)


def test_policy_or_hold_executes_the_registrys_first_fired_decision_from_the_assessment():
    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import ns_to_stamp, pack_vector, unpack_vector
    from farm_policies.checkpoint import load_actor_value
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode

    safety = _node(SafetyNode, "safety_node", **RUNOUT)
    arbiter = _node(ArbiterNode, "arbiter_node", recovery="policy_or_hold", eps_safe=1.0,
                    eps_safe_file="", shield_file="")  # fmt: skip
    assessed, decided = [], []
    safety.outputs.publish = lambda *out: assessed.extend(
        m for pub, m in out if pub is safety.pub_assess
    )
    arbiter.outputs.publish = lambda *out: decided.extend(
        m for pub, m in out if pub is arbiter.pub_decision
    )
    col = {name: i for i, name in enumerate(rc.DECISION_LABELS)}
    try:
        obs, act = _rolling_balls(24)
        obs[:, 0:3] = np.array([0.0, 0.6, 0.1], np.float32)  # the hand inside the shield's box
        act[:, :3] *= 0.1  # steps the shield passes unclipped
        want = _registry_gate(load_actor_value(D / "actor.safetensors")[0])(obs, act)
        for k in range(len(obs)):
            stamp = ns_to_stamp((k + 1) * 33_333_333)
            frame = {"obs": pack_vector(rc.OBS_LABELS, obs[k], stamp),
                     "proposed": pack_vector(rc.PROPOSED_LABELS, [*act[k], 0], stamp)}  # fmt: skip
            safety.score(frame)
            assert set(rc.HOLD_ASSESSMENT_LABELS) <= set(assessed[-1].name)
            arbiter.decide({**frame, "assessment": assessed[-1]})
        got = np.array([unpack_vector(m, rc.DECISION_LABELS) for m in decided])
        replaced = got[:, col["replaced"]] > 0.5
        np.testing.assert_array_equal(replaced, want.replaced)
        held = want.replaced & (np.abs(want.actions).max(1) == 0)
        assert held.any() and (want.replaced & ~held).any(), "both members decide, please"
        executed = got[:, [col[f"executed_{a}"] for a in rc.ACTION_LABELS]]
        np.testing.assert_allclose(executed, want.actions, atol=1e-5)
        assert not got[:, col["hold"]].any()

        # an assessment without the holding member's score is not vetted: the arm holds
        holds, n = arbiter.holds, len(decided)
        arbiter.decide({**frame, "assessment": pack_vector(rc.ASSESSMENT_LABELS, [0, 1, 0, 0],
                                                           stamp)})  # fmt: skip
        assert arbiter.holds == holds + 1 and len(decided) == n  # no decision: a hold
    finally:
        _close(safety, arbiter)


@pytest.mark.parametrize(("params", "error"), [
    ({"object_motion": ""}, "needs object_motion"),
    ({"runout": ""}, "need runout"),
    ({"eps_safe_file": str(D / "eps_safe.json")}, "holds C_H's threshold"),
])  # fmt: skip
def test_run_out_settings_the_node_would_misread_are_refused_with_a_clear_error(params, error):
    from farm_safety_critic.nodes.safety_node import SafetyNode

    with pytest.raises(ValueError, match=error):
        _node(SafetyNode, "safety_node", **{**RUNOUT, **params})


@pytest.mark.parametrize(("recovery", "hold"), [("policy_or_hold", [float("nan"), 0.5]),
                                                ("policy_or_hold", [0.0, float("inf")]),
                                                ("policy", [0.0, 0.5])])  # fmt: skip
def test_an_unvetted_or_unread_hold_score_holds_the_arm(recovery, hold):
    """A non-finite hold_score or hold_eps is not vetted; an arbiter that would ignore the
    assessment's hold_score (recovery not policy_or_hold) is misconfigured: both hold."""
    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import ns_to_stamp, pack_vector, unpack_vector
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    arbiter = _node(ArbiterNode, "arbiter_node", recovery=recovery, eps_safe=1.0,
                    eps_safe_file="", shield_file="")  # fmt: skip
    decided = []
    arbiter.outputs.publish = lambda *out: decided.extend(
        m for pub, m in out if pub is arbiter.pub_decision
    )
    try:
        obs, act = _rolling_balls(1)
        obs[:, 0:3] = np.array([0.0, 0.6, 0.1], np.float32)
        stamp = ns_to_stamp(33_333_333)
        labels = (*rc.ASSESSMENT_LABELS, *rc.HOLD_ASSESSMENT_LABELS)
        arbiter.decide({"obs": pack_vector(rc.OBS_LABELS, obs[0], stamp),
                        "proposed": pack_vector(rc.PROPOSED_LABELS, [*act[0], 0], stamp),
                        "assessment": pack_vector(labels, [0.0, 1.0, 0, 0, *hold], stamp)})  # fmt: skip
        row = unpack_vector(decided[-1], rc.DECISION_LABELS)
        assert row[rc.DECISION_LABELS.index("hold")] == 1.0
    finally:
        _close(arbiter)
