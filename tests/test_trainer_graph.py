"""Online learning through the graph on the twin (lockstep, ground truth): the trainer node
journals every executed step, its PPO updates equal the benchmark learner's on the same
transitions, its weights reach the policy and safety nodes, the recorder's MCAP bags read back
with an independent reader, and a trainer killed mid-run resumes without losing a transition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from graph_harness import CHECKPOINTS, Graph, checkpoint_params, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TASK = "BoundedPush-v0"
BATCH = 128

if not (CHECKPOINTS / TASK / "actor.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def _wait(cond, timeout: float = 120.0) -> bool:
    return wait_for(cond, timeout)


def _graph_nodes(episodes: int, seed: int = 0):
    from failurebench_sim.nodes.sim_node import SimNode
    from farm_policies.nodes.policy_node import PolicyNode
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode
    from farm_safety_critic.nodes.safety_node import SafetyNode

    p = checkpoint_params(TASK)
    sim = {"task": f"FailureBench/{TASK}", "clock_mode": "lockstep", "seed": seed,
           "observation_source": "ground_truth", "lockstep_resend_s": 0.5,
           "max_episodes": episodes, "start": "near_failure"}  # fmt: skip
    return [(SimNode, sim), (PolicyNode, {**p["policy_node"], "deterministic": False}),
            (SafetyNode, {**p["safety_node"], "marker_every": 0}),
            (ArbiterNode, p["arbiter_node"])]  # fmt: skip


def _trainer_params(out: Path) -> dict:
    return {"task": f"FailureBench/{TASK}", "init": str(CHECKPOINTS / TASK / "actor.safetensors"),
            "output_dir": str(out), "batch_steps": BATCH, "ppo.minibatch_size": 64,
            "ppo.epochs": 2}  # fmt: skip


def _step_counter(context):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, unpack_vector

    node = Node("step_counter", context=context)
    node.steps, node.versions = [], []
    node.create_subscription(JointState, rc.TWIN_STEP, node.steps.append, QOS[rc.RELIABLE])
    node.create_subscription(JointState, rc.DECISION, lambda m: node.versions.append(
        int(unpack_vector(m, ("policy_version",))[0])), QOS[rc.RELIABLE])  # fmt: skip
    return node


def test_trainer_learns_through_the_graph_and_the_recording_reads_back(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from failurebench_sim import ros_contract as rc
    from farm_bringup.nodes.recorder_node import RecorderNode
    from farm_policies.checkpoint import load_actor_value
    from farm_trainer.nodes.trainer_node import TrainerNode
    from farm_trainer.online.learner import PPOLearner
    from farm_trainer.online.ppo import PPOConfig

    nodes = [*_graph_nodes(episodes=3), (TrainerNode, _trainer_params(tmp_path / "trainer")),
             (RecorderNode, {"output_dir": str(tmp_path / "rec")})]  # fmt: skip
    graph = Graph(nodes, first=_step_counter)
    sim, policy, safety, _, trainer, recorder = graph.nodes
    try:
        assert _wait(lambda: sim.finished.done(), 300), "the twin did not finish 3 episodes"
        n_steps = sim.steps
        assert _wait(lambda: trainer.learner.counters["transitions"] == n_steps, 10)
        version = trainer.learner.version
        assert version == n_steps // BATCH >= 2
        # both nodes validated and swapped in every push; decisions name the proposing version
        assert _wait(lambda: policy.policy.version == version == safety.task_policy.version, 10)
        seen = graph.probe.versions
        assert seen == sorted(seen) and seen[0] == 0 and seen[-1] >= version - 1
        assert trainer.assembler.invalid == 0 and trainer.assembler.dropped == 0
        assert _wait(lambda: len(recorder.recorder.rows) == 3, 10)
    finally:
        graph.close()
    # every executed step journaled; the first update equals the benchmark learner's
    records = trainer.learner.journal.read()
    assert len(records) == n_steps
    actor, critic, _ = load_actor_value(CHECKPOINTS / TASK / "actor.safetensors")
    torch.manual_seed(0)
    ref = PPOLearner(actor.train(), critic.train(),
                     PPOConfig(minibatch_size=64, epochs=2, batch_size=BATCH))  # fmt: skip
    ro = ref.annotate(trainer.learner.rollout(records[:BATCH]))
    stats = ref.update(ro)
    import csv

    with open(tmp_path / "trainer" / "progress.csv") as f:
        first = next(csv.DictReader(f))
    for k in ("pi_loss", "v_loss", "kl", "entropy"):
        assert float(first[k]) == pytest.approx(stats[k], rel=1e-5, abs=1e-9), k
    # the recording, read with the mcap library (not the rosbags writer)
    from farm_bringup.recording import read_index

    index = read_index(tmp_path / "rec" / "index.csv")
    # three complete episodes (a "stopped" bag may hold what arrived after the last one ended)
    assert [r.outcome for r in index if r.outcome != "stopped"] in (
        [o1, o2, o3] for o1 in ("ir_failure", "timeout") for o2 in ("ir_failure", "timeout")
        for o3 in ("ir_failure", "timeout")
    )  # fmt: skip
    counts: dict[str, int] = {}
    decisions, stamps = 0, []
    for row in index:
        (bag,) = (tmp_path / "rec" / row.file).glob("*.mcap")
        with open(bag, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for _, channel, _, msg in reader.iter_decoded_messages():
                counts[channel.topic] = counts.get(channel.topic, 0) + 1
                if channel.topic == rc.DECISION:
                    assert list(msg.name) == list(rc.DECISION_LABELS)
                    decisions += 1
                    stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        assert (tmp_path / "rec" / row.file / "metadata.yaml").exists()  # ros2 bag's layout
    assert n_steps <= decisions <= n_steps + 1  # every step, and the last frame (not stepped)
    assert len(set(stamps)) == decisions  # one decision per frame
    for topic in (rc.OBSERVATION, rc.PROPOSED_ACTION, rc.SAFETY_ASSESSMENT, rc.TARGET_POSE,
                  rc.TWIN_STEP, rc.EPISODE_EVENTS, rc.EE_POSE):  # fmt: skip
        assert counts.get(topic, 0) > 0, topic
    assert counts[rc.TWIN_STEP] == n_steps and counts[rc.EPISODE_EVENTS] >= 3


def _start_trainer(out: Path, domain_id: int) -> subprocess.Popen:
    args = [f"{k}:={v}" for k, v in _trainer_params(out).items()]
    cmd = [sys.executable, "-m", "farm_trainer.nodes.trainer_node", "--ros-args",
           *[x for a in args for x in ("-p", a)]]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "ROS_DOMAIN_ID": str(domain_id)})  # fmt: skip


def test_killed_trainer_resumes_the_run_and_keeps_every_transition(tmp_path):
    from farm_trainer.online.journal import open_journal

    out = tmp_path / "trainer"
    journal = out / "transitions.journal"
    rows = lambda: len(open_journal(journal)[0]) if journal.exists() else 0  # noqa: E731
    graph = Graph(_graph_nodes(episodes=0, seed=3), first=_step_counter)  # until stopped
    sim, policy = graph.nodes[0], graph.nodes[1]
    proc = _start_trainer(out, graph.domain_id)
    try:
        assert _wait(lambda: rows() >= 2 * BATCH + 40, 240), proc.stderr.read1().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)  # a crash: no clean-up, no last checkpoint
        proc.wait(10)
        before = open_journal(journal)[0].copy()
        killed_at = policy.policy.version
        assert killed_at >= 2
        time.sleep(1.0)  # the graph acts on without the trainer (old weights)
        proc = _start_trainer(out, graph.domain_id)
        assert _wait(lambda: policy.policy.version > killed_at, 240), "no update after restart"
        final = policy.policy.version
        assert not sim.finished.done()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        graph.close()
    after, _ = open_journal(journal)
    np.testing.assert_array_equal(after[: len(before)], before)  # nothing recorded was lost
    assert len(after) > len(before)
    import csv

    with open(out / "progress.csv") as f:
        updates = [int(r["update"]) for r in csv.DictReader(f)]
    assert updates == list(range(1, len(updates) + 1)) and updates[-1] >= final


def test_operator_marks_override_the_next_transitions_label(tmp_path):
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, ns_to_stamp, pack_vector
    from farm_trainer.nodes.trainer_node import OPERATOR_MARK, TrainerNode

    graph = Graph([(TrainerNode, _trainer_params(tmp_path / "trainer"))])
    (trainer,) = graph.nodes
    peer = Node("operator", context=graph.context)
    graph.add(peer)
    rel = QOS[rc.RELIABLE]
    pubs = {t: peer.create_publisher(JointState, t, rel)
            for t in (rc.OBSERVATION, rc.DECISION, rc.TWIN_STEP)}  # fmt: skip
    mark_pub = peer.create_publisher(String, OPERATOR_MARK, rel)
    client = peer.create_client(Trigger, "/farm/operator/mark_ir_failure")
    period = 33_333_333

    def frame(k: int) -> None:
        t, t_next = k * period, (k + 1) * period
        obs = np.zeros(len(rc.OBS_LABELS))
        a = [0.1, 0.0, 0.0, -1.0]
        decision = [*a, *a, 0.0, 0.05, 0.3, 0.0, 0.0, 0.0]
        sec, nsec = divmod(t, 1_000_000_000)
        step = [0.4, 0.0, 0.0, 0.0, 0.0, 0.0, float(k), sec, nsec, sec, nsec]
        pubs[rc.OBSERVATION].publish(pack_vector(rc.OBS_LABELS, obs, ns_to_stamp(t)))
        pubs[rc.DECISION].publish(pack_vector(rc.DECISION_LABELS, decision, ns_to_stamp(t)))
        pubs[rc.OBSERVATION].publish(pack_vector(rc.OBS_LABELS, obs, ns_to_stamp(t_next)))
        pubs[rc.TWIN_STEP].publish(pack_vector(rc.STEP_LABELS, step, ns_to_stamp(t_next)))

    journal = lambda: trainer.learner.journal.read()  # noqa: E731
    try:
        assert _wait(lambda: all(p.get_subscription_count() for p in pubs.values()), 20)
        frame(0)
        assert _wait(lambda: len(journal()) == 1, 20)
        assert client.wait_for_service(timeout_sec=20)
        future = client.call_async(Trigger.Request())
        assert _wait(future.done, 20) and future.result().success
        frame(1)
        assert _wait(lambda: len(journal()) == 2, 20)
        mark_pub.publish(String(data="success"))
        assert _wait(lambda: trainer.marks == ["success"], 20)
        frame(2)
        assert _wait(lambda: len(journal()) == 3, 20)
        mark_pub.publish(String(data="teleport"))  # unknown: refused, nothing changes
        time.sleep(0.3)
        assert trainer.marks == []
    finally:
        peer.destroy_node()
        graph.close()
    r = journal()
    assert r["cost"].tolist() == [0.0, 1.0, 0.0] and r["terminated"].tolist() == [0, 1, 0]
    assert r["reward"].tolist() == pytest.approx([0.4, 0.0, 0.4]) and r["success"].tolist() == [
        0,
        0,
        1,
    ]


def test_a_restarted_recorder_keeps_every_completed_episode(tmp_path):
    """Offline (no ROS graph): write two episodes, kill mid-third, restart, write one more."""
    import subprocess as sp

    from mcap.reader import make_reader

    from farm_bringup.recording import read_index

    script = f"""
import os
from farm_bringup.recording import EpisodeRecorder
from rclpy.serialization import serialize_message
from std_msgs.msg import Float32
r = EpisodeRecorder({str(tmp_path)!r})
for ep in range({{n}}):
    for i in range(50):
        r.write("/x", "std_msgs/msg/Float32", i, serialize_message(Float32(data=float(i))))
    if ep < {{n}} - 1 or {{close}}:
        r.end_episode("timeout", 1.0, 50)
os._exit(0)  # killed: no clean-up
"""
    sp.run([sys.executable, "-c", script.format(n=3, close=False)], check=True)
    assert [r.episode for r in read_index(tmp_path / "index.csv")] == [0, 1]
    sp.run([sys.executable, "-c", script.format(n=1, close=True)], check=True)
    index = read_index(tmp_path / "index.csv")
    assert [r.episode for r in index] == [0, 1, 2]
    for row in index:
        (bag,) = (tmp_path / row.file).glob("*.mcap")
        with open(bag, "rb") as f:
            assert sum(1 for _ in make_reader(f).iter_messages()) == row.messages == 50
