"""Live weight pushes over DDS: the policy node's actions and the safety node's C_H follow a valid
push (every decision names the version that produced it); corrupted, truncated, stale and
wrong-shape pushes are rejected and the old weights keep running."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from graph_harness import CHECKPOINTS, Graph, checkpoint_params, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TASK = "BoundedPush-v0"

if not (CHECKPOINTS / TASK / "actor.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def _wait(cond, timeout: float = 60.0) -> bool:
    return wait_for(cond, timeout)


def test_weight_push_is_validated_and_changes_actions_and_scores():
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import UInt8MultiArray

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, stamp_ns, unpack_vector
    from failurebench_sim.nodes.sim_node import SimNode
    from farm_policies.checkpoint import load_actor_value
    from farm_policies.nodes.policy_node import PolicyNode
    from farm_policies.nodes.weights_io import weights_message
    from farm_safety_critic.gate import SafetyGate
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode
    from farm_safety_critic.world_model import WorldModel

    p = checkpoint_params(TASK)
    sim = {"task": f"FailureBench/{TASK}", "clock_mode": "lockstep",
           "observation_source": "ground_truth", "lockstep_resend_s": 0.5}  # fmt: skip
    graph = Graph([(SimNode, sim), (PolicyNode, p["policy_node"]),
                   (SafetyNode, {**p["safety_node"], "marker_every": 0}),
                   (ArbiterNode, p["arbiter_node"])])  # fmt: skip
    _, policy_node, safety_node, _ = graph.nodes
    peer = Node("weight_pusher", context=graph.context)
    pub = peer.create_publisher(UInt8MultiArray, rc.POLICY_WEIGHTS, QOS[rc.LATCHED])
    obs_by_stamp, decisions = {}, []
    rel = QOS[rc.RELIABLE]
    peer.create_subscription(JointState, rc.OBSERVATION, lambda m: obs_by_stamp.setdefault(
        stamp_ns(m.header.stamp), np.array(m.position)), rel)  # fmt: skip
    peer.create_subscription(JointState, rc.DECISION, lambda m: decisions.append(
        (stamp_ns(m.header.stamp), unpack_vector(m, rc.DECISION_LABELS))), rel)  # fmt: skip
    graph.add(peer)
    col = {n: i for i, n in enumerate(rc.DECISION_LABELS)}
    try:
        assert _wait(lambda: len(decisions) >= 10), "the graph did not start"
        assert {d[col["policy_version"]] for _, d in decisions} == {0.0}
        actor = load_actor_value(p["policy_node"]["checkpoint"])[0]
        torch.manual_seed(0)
        new = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() and v.ndim == 2 else v
               for k, v in actor.state_dict().items()}  # fmt: skip
        pub.publish(weights_message(new, version=1))
        assert _wait(
            lambda: policy_node.policy.version == 1 and safety_node.task_policy.version == 1
        )
        n_before = len(decisions)
        assert _wait(lambda: len(decisions) >= n_before + 15)
        # bad pushes: corrupted, truncated, stale, wrong shape
        good = bytes(weights_message(new, version=2).data)
        bad = [good[:-9] + bytes([good[-9] ^ 0xFF]) + good[-8:], good[: len(good) // 3],
               bytes(weights_message(new, version=1).data),
               bytes(weights_message({k: v[:1] for k, v in new.items()}, version=3).data)]  # fmt: skip
        for i, data in enumerate(bad, 1):  # one at a time: the latched topic keeps the latest
            pub.publish(UInt8MultiArray(data=data))
            assert _wait(lambda i=i: policy_node.weight_rejects == i == safety_node.weight_rejects)
        assert policy_node.policy.version == 1 and safety_node.task_policy.version == 1
        n_bad = len(decisions)
        assert _wait(lambda: len(decisions) >= n_bad + 5), "the graph stopped after bad pushes"
    finally:
        graph.close()
        peer.destroy_node()
    # every decision after the swap names v1 and was computed with the pushed weights
    actor.load_state_dict(new)
    gate = SafetyGate(WorldModel.load(p["safety_node"]["world_model"]), actor, None)
    after = [(s, d) for s, d in decisions if d[col["policy_version"]] == 1.0 and s in obs_by_stamp]
    assert len(after) >= 15
    versions = [d[col["policy_version"]] for _, d in decisions]
    assert versions == sorted(versions), "a decision of an older version came after a newer one"
    for stamp, d in after:
        obs = obs_by_stamp[stamp].astype(np.float32)[None]
        want = actor.act(torch.as_tensor(obs), deterministic=True)[0].detach().numpy()
        proposed = d[[col[f"proposed_{a}"] for a in rc.ACTION_LABELS]]
        np.testing.assert_allclose(proposed, want, atol=1e-5)
        np.testing.assert_allclose(d[col["score"]], gate.scores(obs, proposed[None])[0],
                                   rtol=1e-4, atol=1e-6)  # fmt: skip
