"""The inference + safety graph on the MuJoCo twin, composed in one process over DDS.

One implementation: in lockstep + ground_truth mode the actions the graph executes equal, step
by step, those of the in-process gate loop the benchmark uses (``SafetyGate`` + the episode
evaluator), and the arbiter switches to recovery exactly when C_H > eps_safe.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from graph_harness import CHECKPOINTS, Graph, checkpoint_params

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TASK = "BoundedPush-v0"
STEPS = 200
EPS = 0.01  # low enough that the gate fires on some of these steps (C_H p90 here)

if not (CHECKPOINTS / TASK / "actor.safetensors").exists():
    pytest.skip(
        "shipped checkpoints missing (see config/checkpoints/README.md)", allow_module_level=True
    )


def _graph_decisions(n: int, eps: float, task: str = TASK, safety: dict | None = None,
                     arbiter: dict | None = None) -> dict[int, np.ndarray]:  # fmt: skip
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, stamp_ns, unpack_vector
    from failurebench_sim.nodes.sim_node import SimNode
    from farm_policies.nodes.policy_node import PolicyNode
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode

    p = checkpoint_params(task)
    sim = {"task": f"FailureBench/{task}", "seed": 0, "clock_mode": "lockstep",
           "observation_source": "ground_truth", "lockstep_resend_s": 0.5}  # fmt: skip
    graph = Graph([
        (SimNode, sim), (PolicyNode, p["policy_node"]),
        (SafetyNode, {**p["safety_node"], "eps_safe": eps, "marker_every": 10, **(safety or {})}),
        (ArbiterNode, {**p["arbiter_node"], "eps_safe": eps, **(arbiter or {})}),
    ])  # fmt: skip
    got: dict[int, np.ndarray] = {}  # frame index -> decision
    done = threading.Event()
    period_ns = round(1e9 / 30.0)  # the twin's default control rate

    def on_decision(msg: JointState) -> None:
        k = round(stamp_ns(msg.header.stamp) / period_ns)
        got.setdefault(k, unpack_vector(msg, rc.DECISION_LABELS))
        if k >= n - 1:
            done.set()

    probe = Node("decision_probe", context=graph.context)
    probe.create_subscription(JointState, rc.DECISION, on_decision, QOS[rc.RELIABLE])
    graph.add(probe)
    try:
        assert done.wait(timeout=240), f"only {len(got)} decisions arrived"
    finally:
        graph.close()
        probe.destroy_node()
    return got


def _in_process_actions(n: int, eps: float, task: str = TASK,
                        make_gate=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The benchmark's path: SafetyGate (build_gate), or ``make_gate(actor)``, around the
    deterministic task policy."""
    from failurebench_sim.episodes import run_episode
    from failurebench_sim.make import make_env
    from farm_policies import load_policy
    from farm_safety_critic.gate import build_gate

    d = CHECKPOINTS / task
    policy = load_policy(d / "actor.safetensors")
    gate = (make_gate(policy.actor) if make_gate else
            build_gate(d / "world_model.safetensors", policy.actor, d / "recovery.safetensors",
                       eps_safe=eps))  # fmt: skip
    env = make_env(task)
    executed, scores, replaced = [], [], []

    def act(obs: np.ndarray) -> np.ndarray:
        o = np.asarray(obs, dtype=np.float32)[None]
        dec = gate(o, policy.act(o, deterministic=True))
        (
            executed.append(dec.actions[0]),
            scores.append(dec.score[0]),
            replaced.append(dec.replaced[0]),
        )
        return dec.actions[0]

    episode = 0
    while len(executed) < n:
        run_episode(env, act, seed=episode)
        episode += 1
    env.close()
    return np.array(executed[:n]), np.array(scores[:n]), np.array(replaced[:n])


def test_graph_executes_the_benchmark_gate_loop_step_by_step():
    t0 = time.perf_counter()
    by_frame = _graph_decisions(STEPS, EPS)
    graph_s = time.perf_counter() - t0
    # the probe may match the decision topic after the first frame or two: compare every frame
    # it saw, by frame index (from the stamp)
    frames = sorted(k for k in by_frame if k < STEPS)
    assert len(frames) >= STEPS - 5, f"decisions for only {len(frames)} of {STEPS} frames"
    decisions = np.array([by_frame[k] for k in frames])
    executed, scores, replaced = (x[frames] for x in _in_process_actions(STEPS, EPS))
    names = __import__("failurebench_sim.ros_contract", fromlist=["x"]).DECISION_LABELS
    col = {n: i for i, n in enumerate(names)}
    g_exec = decisions[:, [col[f"executed_{a}"] for a in ("dx", "dy", "dz", "gripper")]]
    g_score, g_rep = decisions[:, col["score"]], decisions[:, col["replaced"]] > 0.5
    # float32 policy/world-model arithmetic on identical observations: same to rounding
    np.testing.assert_allclose(g_exec, executed, atol=1e-5)
    np.testing.assert_allclose(g_score, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g_rep, replaced)
    # the arbiter replaced exactly the steps whose C_H exceeded eps_safe
    np.testing.assert_array_equal(g_rep, g_score > EPS)
    assert 0 < g_rep.sum() < len(frames), "choose EPS so both branches run"
    assert not decisions[:, col["hold"]].any()
    print(f"graph: {STEPS} lockstep steps in {graph_s:.1f} s ({STEPS / graph_s:.0f} steps/s)")


SOCCER = CHECKPOINTS / "BoundedSoccer-v0"
RUNOUT_EPS, HOLD_EPS = 0.3, 0.3  # both members fire in these steps (48 held, 41 pi_rec)


@pytest.mark.skipif(not (SOCCER / "hand_motion.json").exists(),
                    reason="shipped run-out models missing (scripts/ship_checkpoints.sh)")  # fmt: skip
def test_graph_executes_farm_runout_seq_as_the_benchmark_step_by_step():
    """Bounded Soccer with the safety node on the run-out models (``runout``, ``object_motion``,
    ``hand_motion``) and the arbiter's ``policy_or_hold``: the executed actions equal the
    registry's farm-runout-seq gate loop (pi_rec on the ball's roll, else the arm held where
    the predicted pushes roll it out)."""
    from farm_trainer.methods import Artifacts, MethodParams, filter_factory

    task = "BoundedSoccer-v0"
    safety = {"runout": str(SOCCER / "runout.json"), "eps_safe_file": "",
              "object_motion": str(SOCCER / "object_motion.safetensors"),
              "hand_motion": str(SOCCER / "hand_motion.json"), "runout_hold_eps": HOLD_EPS}  # fmt: skip
    arbiter = {"recovery": "policy_or_hold", "eps_safe_file": ""}
    by_frame = _graph_decisions(STEPS, RUNOUT_EPS, task, safety, arbiter)
    frames = sorted(k for k in by_frame if k < STEPS)
    assert len(frames) >= STEPS - 5, f"decisions for only {len(frames)} of {STEPS} frames"
    decisions = np.array([by_frame[k] for k in frames])
    art = Artifacts(runout=SOCCER / "runout.json", recovery=SOCCER / "recovery.safetensors",
                    object_motion=SOCCER / "object_motion.safetensors",
                    hand_motion=SOCCER / "hand_motion.json")  # fmt: skip
    p = MethodParams(runout_eps=RUNOUT_EPS, runout_hold_eps=HOLD_EPS)
    executed, _, replaced = (
        x[frames]
        for x in _in_process_actions(
            STEPS, RUNOUT_EPS, task, lambda actor: filter_factory("farm-runout-seq", art, p)(actor)
        )
    )
    names = __import__("failurebench_sim.ros_contract", fromlist=["x"]).DECISION_LABELS
    col = {n: i for i, n in enumerate(names)}
    g_exec = decisions[:, [col[f"executed_{a}"] for a in ("dx", "dy", "dz", "gripper")]]
    np.testing.assert_array_equal(decisions[:, col["replaced"]] > 0.5, replaced)
    np.testing.assert_allclose(g_exec, executed, atol=1e-5)
    held = replaced & (np.abs(executed).max(1) == 0)
    assert held.any() and (replaced & ~held).any(), "choose the thresholds so both members fire"
    assert not decisions[:, col["hold"]].any()


def test_camera_mode_perception_agrees_with_the_twin_ground_truth():
    """sim (camera) -> perception (colour filter) -> policy -> safety -> arbiter, lockstep: the
    object positions the graph acts on are within the colour filter's bound of the twin's truth
    (median <= 18 mm, max <= 25 mm: the gripper hides one side of a caged object), and every
    perceived frame is decided."""
    from geometry_msgs.msg import PoseArray
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, stamp_ns
    from failurebench_sim.nodes.sim_node import SimNode
    from farm_perception.nodes.perception_node import PerceptionNode
    from farm_policies.nodes.policy_node import PolicyNode
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode

    frames = 6
    p = checkpoint_params(TASK)
    sim = {"task": f"FailureBench/{TASK}", "clock_mode": "lockstep", "observation_source": "camera",
           "lockstep_resend_s": 5.0}  # fmt: skip
    graph = Graph([
        (SimNode, sim), (PerceptionNode, {"task": f"FailureBench/{TASK}"}),
        (PolicyNode, p["policy_node"]), (SafetyNode, p["safety_node"]),
        (ArbiterNode, p["arbiter_node"]),
    ])  # fmt: skip
    truth, seen, decided = {}, {}, set()
    done = threading.Event()
    probe = Node("camera_probe", context=graph.context)
    rel = QOS[rc.RELIABLE]

    def keep(store):
        def cb(msg: PoseArray) -> None:
            store[stamp_ns(msg.header.stamp)] = [(q.position.x, q.position.y, q.position.z)
                                                 for q in msg.poses]  # fmt: skip

        return cb

    def on_decision(msg: JointState) -> None:
        decided.add(stamp_ns(msg.header.stamp))
        if len(set(seen) & set(truth) & decided) >= frames:  # all three seen by this probe
            done.set()

    probe.create_subscription(PoseArray, rc.TWIN_OBJECT_POSES, keep(truth), rel)
    probe.create_subscription(PoseArray, rc.OBJECT_POSES, keep(seen), rel)
    probe.create_subscription(JointState, rc.DECISION, on_decision, rel)
    graph.add(probe)
    try:
        assert done.wait(timeout=180), f"{len(decided)} decisions"
    finally:
        graph.close()
        probe.destroy_node()
    stamps = sorted(set(seen) & set(truth) & decided)
    assert len(stamps) >= frames
    err = np.array([np.linalg.norm(np.subtract(seen[s], truth[s]), axis=1) for s in stamps])
    assert np.median(err) <= 0.018 and err.max() <= 0.025, err


def test_the_twin_publishes_each_episodes_final_observation():
    """A learner bootstraps a timeout from V(final observation); the frame after an episode end
    already belongs to the next episode, so the twin publishes the final one on its own topic,
    stamped like the step outcome that ended the episode."""
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, stamp_ns, unpack_vector
    from failurebench_sim.nodes.sim_node import SimNode
    from farm_policies.nodes.policy_node import PolicyNode
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode

    p = checkpoint_params(TASK)
    sim = {"task": f"FailureBench/{TASK}", "clock_mode": "lockstep",
           "observation_source": "ground_truth", "time_limit": 5, "max_episodes": 3,
           "lockstep_resend_s": 0.5}  # fmt: skip
    outcomes, finals, obs = {}, {}, {}
    rel = QOS[rc.RELIABLE]

    def make_probe(context) -> Node:
        probe = Node("final_probe", context=context)
        for topic, labels, store in ((rc.TWIN_STEP, rc.STEP_LABELS, outcomes),
                                     (rc.TWIN_FINAL_OBSERVATION, rc.OBS_LABELS, finals),
                                     (rc.OBSERVATION, rc.OBS_LABELS, obs)):  # fmt: skip
            probe.create_subscription(JointState, topic, lambda m, lab=labels, st=store: st.setdefault(
                stamp_ns(m.header.stamp), unpack_vector(m, lab)), rel)  # fmt: skip
        time.sleep(1.0)  # let its readers be discovered before the twin's first frame
        return probe

    graph = Graph([(SimNode, sim), (PolicyNode, p["policy_node"]), (SafetyNode, p["safety_node"]),
                   (ArbiterNode, p["arbiter_node"])], first=make_probe)  # fmt: skip
    sim_node = graph.nodes[0]
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not (sim_node.finished.done() and len(finals) >= 3):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        graph.close()
    col = {n: i for i, n in enumerate(rc.STEP_LABELS)}
    ended = sorted(s for s, o in outcomes.items() if o[col["terminated"]] or o[col["truncated"]])
    assert sorted(finals) == ended and len(ended) == 3
    for s in ended[:-1]:  # the next frame (same stamp) is the next episode's first observation
        assert s in obs and not np.allclose(finals[s], obs[s])
