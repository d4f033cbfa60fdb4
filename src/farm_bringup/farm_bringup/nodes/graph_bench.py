"""``farm-graph-bench``: the node graph's figures (issue numbers in the README).

    farm-graph-bench lockstep [--steps 600]   # steps/s: graph (composed, processes) vs in-process
    farm-graph-bench latency  [--seconds 30]  # camera stamp -> command, total and per node

``latency`` replays pre-rendered twin frames at 30 Hz by the wall clock (rendering here takes
~300-700 ms a frame, far from a live camera), stamped with the wall time at publication, through
perception (colour filter) -> policy -> safety -> arbiter started as separate OS processes from
config/sim.yaml (the deployment layout), and records when each stage's output for a frame
arrives. Figures go to ``--out`` as CSV + JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState

from failurebench_sim import ros_contract as rc
from failurebench_sim.atomic import write_csv, write_json
from failurebench_sim.nodes.ros_io import (
    QOS,
    camera_info_msg,
    image_msg,
    ns_to_stamp,
    pack_vector,
    pose_msg,
    stamp_ns,
)
from failurebench_sim.twin import GRIPPER_DOWN_XYZW
from farm_bringup.graph import repo_config

STAGES = (("perception", rc.OBJECT_POSES, PoseArray), ("policy", rc.PROPOSED_ACTION, JointState),
          ("safety", rc.SAFETY_ASSESSMENT, JointState), ("arbiter", rc.TARGET_POSE, PoseStamped))  # fmt: skip


def pct(x: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    return {"n": int(a.size), "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}  # fmt: skip


# ---------------------------------------------------------------- latency (realtime, camera)
def render_replay(task: str, n: int, width: int = 640, height: int = 480) -> list[dict]:
    """``n`` twin frames along a noisy scripted-expert episode: images, robot state, goal."""
    import gymnasium as gym

    import failurebench_sim  # noqa: F401
    from failurebench_sim import policies
    from failurebench_sim.twin import depth_to_mm

    env = gym.make(task, render_width=width, render_height=height).unwrapped
    expert, rng = policies.get(task, "expert"), np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    frames = []
    for step in range(n):
        rgb, depth = env.render_rgbd()
        d = np.linalg.norm(env.data.body("rightclaw").xpos - env.data.body("leftclaw").xpos)
        frames.append({"rgb": rgb, "depth": depth_to_mm(depth), "k": env.camera_intrinsics(),
                       "hand": obs[:3].copy(), "fingers": (d / 2, d / 2), "goal": obs[36:39].copy(),
                       "step": step})  # fmt: skip
        obs, *_ = env.step(np.clip(expert.act(obs) + rng.normal(0, 0.2, 4), -1, 1))
    env.close()
    return frames


class Replay(Node):
    """Publishes the recorded frames at ``rate_hz``, each stamped with the wall time."""

    def __init__(self, frames: list[dict], rate_hz: float, **kw) -> None:
        super().__init__("farm_bench_replay", **kw)
        self.frames, self.i = frames, 0
        s, r, latched = QOS[rc.SENSOR], QOS[rc.RELIABLE], QOS[rc.LATCHED]
        self.pub = {"pose": self.create_publisher(PoseStamped, rc.EE_POSE, s),
                    "grip": self.create_publisher(JointState, rc.GRIPPER_STATE, s),
                    "ep": self.create_publisher(JointState, rc.EPISODE_STATE, r),
                    "info": self.create_publisher(CameraInfo, rc.COLOR_INFO, latched),
                    "color": self.create_publisher(Image, rc.COLOR_IMAGE, s),
                    "depth": self.create_publisher(Image, rc.DEPTH_IMAGE, s)}  # fmt: skip
        self.create_timer(1.0 / rate_hz, self.tick)

    def tick(self) -> None:
        f = self.frames[self.i % len(self.frames)]
        stamp, base = ns_to_stamp(time.time_ns()), rc.BASE_FRAME
        h, w = f["depth"].shape
        pose = PoseStamped(pose=pose_msg(f["hand"], GRIPPER_DOWN_XYZW))
        pose.header.stamp, pose.header.frame_id = stamp, base
        self.pub["pose"].publish(pose)
        self.pub["grip"].publish(pack_vector(rc.FINGER_JOINTS, f["fingers"], stamp, base))
        step = 0 if self.i == 0 else self.i  # one long episode
        self.pub["ep"].publish(pack_vector(rc.EPISODE_LABELS, (0, step, *f["goal"]), stamp, base))
        self.pub["info"].publish(camera_info_msg(f["k"], w, h, stamp, rc.CAMERA_OPTICAL_FRAME))
        self.pub["color"].publish(image_msg(f["rgb"], stamp, rc.CAMERA_OPTICAL_FRAME))
        self.pub["depth"].publish(image_msg(f["depth"], stamp, rc.CAMERA_OPTICAL_FRAME))
        self.i += 1


def replay_process(frames: list[dict], rate_hz: float, seconds: float, sent) -> None:
    """The camera side in its own process (so the probe's arrival times are not delayed by
    image serialisation); ``sent`` (a shared counter) counts the frames published."""
    rclpy.init()
    node = Replay(frames, rate_hz)
    ex = EventsExecutor()
    ex.add_node(node)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.01)
        sent.value = node.i
    ex.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


class Probe(Node):
    """Records when each stage's first output for a frame arrives (wall clock)."""

    def __init__(self, **kw) -> None:
        super().__init__("farm_bench_probe", **kw)
        self.got: dict[str, dict[int, float]] = {name: {} for name, _, _ in STAGES}
        for name, topic, msg_type in STAGES:
            # best effort: a measuring probe must not add repair (head-of-line) delays itself
            self.create_subscription(msg_type, topic, self._recv(name), QOS[rc.SENSOR])

    def _recv(self, name: str):
        def cb(msg) -> None:
            self.got[name].setdefault(stamp_ns(msg.header.stamp), time.time())

        return cb


def start_nodes(
    nodes: list[str], overrides: list[str], mode: str = "processes"
) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "farm_bringup.cli", "run", "--config", str(repo_config()),
           "--mode", mode, "--nodes", *nodes]  # fmt: skip
    for o in overrides:
        cmd += ["-p", o]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_lockstep_graph(task: str) -> subprocess.Popen:
    """sim -> policy -> safety -> arbiter as OS processes, lockstep, ground truth, no markers."""
    return start_nodes(
        ["sim_node", "policy_node", "safety_node", "arbiter_node"],
        [f"task:={task}", "sim_node.clock_mode:=lockstep", "sim_node.observation_source:=ground_truth",
         "arbiter_node.command_rate_hz:=0.0", "safety_node.marker_every:=0"],
    )  # fmt: skip


def latency(a: argparse.Namespace) -> dict:
    import multiprocessing as mp

    frames = render_replay(a.task, a.frames, a.width, a.height)
    graph = start_nodes(
        ["perception_node", "policy_node", "safety_node", "arbiter_node"],
        [f"task:={a.task}", "use_sim_time:=false", "arbiter_node.command_rate_hz:=0.0",
         "safety_node.marker_every:=10", f"perception_node.detector:={a.detector}",
         f"perception_node.yolo_every:={a.yolo_every}",
         *([f"perception_node.yolo_model:={Path(a.yolo_model).resolve()}"] if a.yolo_model else [])],
        a.mode,
    )  # fmt: skip
    sent = mp.get_context("fork").Value("i", 0)
    total_s = a.warmup + a.seconds
    camera = mp.get_context("fork").Process(
        target=replay_process, args=(frames, a.rate, total_s, sent), daemon=True
    )
    camera.start()
    rclpy.init()
    probe = Probe()
    ex = EventsExecutor()
    ex.add_node(probe)
    try:
        t_start = time.time()
        end = time.monotonic() + total_s + 1.0
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.01)
    finally:
        camera.join(timeout=30)
        graph.send_signal(2)
        graph.wait(timeout=30)
        ex.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
    t_measure = t_start + a.warmup  # frames stamped before this are warm-up
    rows, per_stage, total = [], {name: [] for name, _, _ in STAGES}, []
    measured_sent = round(sent.value * a.seconds / total_s)
    for ns in sorted(probe.got["perception"] | probe.got["arbiter"]):
        t0 = ns / 1e9
        if t0 < t_measure:
            continue
        row, prev = {"stamp_ns": ns}, t0
        for name, _, _ in STAGES:
            t = probe.got[name].get(ns)
            row[f"{name}_ms"] = float("nan") if t is None else 1e3 * (t - t0)
            if t is not None and prev is not None:
                per_stage[name].append(1e3 * (t - prev))
            prev = t
        if not np.isnan(row["arbiter_ms"]):
            total.append(row["arbiter_ms"])
        rows.append(row)
    out = {"task": a.task, "mode": a.mode, "size": [a.width, a.height], "rate_hz": a.rate,
           "detector": a.detector, "yolo_model": a.yolo_model, "yolo_every": a.yolo_every,
           "frames_sent": measured_sent,
           "frames_commanded": len(total), "decision_rate": len(total) / max(measured_sent, 1),
           "total": pct(total), "per_node": {k: pct(v) for k, v in per_stage.items()}}  # fmt: skip
    tag = f"{a.mode}_{a.width}x{a.height}" + ("" if a.detector == "color" else f"_{a.detector}")
    tag += f"_every{a.yolo_every}" if a.yolo_every > 1 else ""
    write_csv(a.out / f"latency_frames_{tag}.csv", rows)
    write_json(a.out / f"latency_{tag}.json", out)
    return out


# ---------------------------------------------------------------- lockstep throughput
def lockstep(a: argparse.Namespace) -> dict:
    from farm_bringup.nodes.twin_demo import graph_params, run_graph

    res: dict = {"task": a.task}
    params = graph_params(repo_config(), a.task, a.episodes, 0, None)
    params["safety_node"]["marker_every"] = 0
    t0 = time.perf_counter()
    rec = run_graph(params, 900)
    wall = time.perf_counter() - t0
    res["graph_composed"] = {"steps": len(rec.decisions), "wall_s": wall,
                             "steps_per_s": len(rec.decisions) / wall,
                             "steady_steps_per_s": rec.steady_rate()}  # fmt: skip
    res["graph_processes"] = processes_rate(a.task, a.seconds)
    res["in_process"] = in_process_rate(a.task, len(rec.decisions))
    write_json(a.out / "lockstep.json", res)
    return res


def processes_rate(task: str, seconds: float) -> dict:
    """Decisions/s of the graph as five OS processes (farm-graph processes, lockstep)."""
    graph = start_lockstep_graph(task)
    rclpy.init()
    node = rclpy.create_node("farm_bench_lockstep_probe")
    times: list[float] = []
    node.create_subscription(JointState, rc.DECISION, lambda m: times.append(time.monotonic()),
                             QOS[rc.RELIABLE])  # fmt: skip
    ex = EventsExecutor()
    ex.add_node(node)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and len(times) < 50:  # start-up: model loads, discovery
            ex.spin_once(timeout_sec=0.05)
        t0, n0 = time.monotonic(), len(times)
        while time.monotonic() < t0 + seconds:
            ex.spin_once(timeout_sec=0.05)
    finally:
        graph.send_signal(2)
        graph.wait(timeout=30)
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    n = len(times) - n0
    return {"steps": n, "wall_s": seconds, "steps_per_s": n / seconds}


def in_process_rate(task: str, steps: int) -> dict:
    """The benchmark's loop on one env: policy + SafetyGate + env.step (no ROS)."""
    from failurebench_sim.episodes import run_episode
    from failurebench_sim.make import make_env
    from farm_policies import load_policy
    from farm_safety_critic.gate import build_gate

    d = repo_config().parent / "checkpoints" / task.split("/")[-1]
    policy = load_policy(d / "actor.safetensors")
    gate = build_gate(d / "world_model.safetensors", policy.actor, d / "recovery.safetensors")
    env, n = make_env(task), [0]

    def act(obs):
        n[0] += 1
        o = np.asarray(obs, dtype=np.float32)[None]
        return gate(o, policy.act(o, deterministic=False)).actions[0]

    t0, ep = time.perf_counter(), 0
    while n[0] < steps:
        run_episode(env, act, seed=ep)
        ep += 1
    wall = time.perf_counter() - t0
    env.close()
    return {"steps": n[0], "wall_s": wall, "steps_per_s": n[0] / wall}


# ---------------------------------------------------------------- weight pushes
def weights(a: argparse.Namespace) -> dict:
    """Publish -> both nodes swapped, as seen on their outputs: the first proposed action (policy
    node) and the first assessment (safety node) naming the new version, with the graph in
    lockstep as OS processes. Upper bound: a swap shows on the next frame (~13 ms apart)."""
    from std_msgs.msg import UInt8MultiArray

    from farm_policies.checkpoint import load_actor_value
    from farm_policies.nodes.weights_io import weights_message

    ckpt = repo_config().parent / "checkpoints" / a.task.split("/")[-1] / "actor.safetensors"
    state = load_actor_value(ckpt)[0].state_dict()
    graph = start_lockstep_graph(a.task)
    rclpy.init()
    node = rclpy.create_node("farm_bench_weights")
    pub = node.create_publisher(UInt8MultiArray, rc.POLICY_WEIGHTS, QOS[rc.LATCHED])
    seen: dict[str, dict[int, float]] = {"policy": {}, "safety": {}}

    def watch(name: str, index: int):
        def cb(msg: JointState) -> None:
            seen[name].setdefault(int(msg.position[index]), time.perf_counter())

        return cb

    node.create_subscription(JointState, rc.PROPOSED_ACTION,
                             watch("policy", rc.PROPOSED_LABELS.index("policy_version")),
                             QOS[rc.SENSOR])  # fmt: skip
    node.create_subscription(JointState, rc.SAFETY_ASSESSMENT,
                             watch("safety", rc.ASSESSMENT_LABELS.index("policy_version")),
                             QOS[rc.SENSOR])  # fmt: skip
    ex = EventsExecutor()
    ex.add_node(node)
    latencies, size = [], 0
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not seen["safety"]:
            ex.spin_once(timeout_sec=0.05)
        for version in range(1, a.pushes + 1):
            msg = weights_message(state, version)
            size = len(msg.data)
            t0 = time.perf_counter()
            pub.publish(msg)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not all(version in s for s in seen.values()):
                ex.spin_once(timeout_sec=0.002)
            if all(version in s for s in seen.values()):
                latencies.append(1e3 * (max(s[version] for s in seen.values()) - t0))
            spin_end = time.monotonic() + 0.2
            while time.monotonic() < spin_end:
                ex.spin_once(timeout_sec=0.01)
    finally:
        graph.send_signal(2)
        graph.wait(timeout=30)
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    out = {"task": a.task, "message_bytes": size, "pushes": a.pushes, "swapped": len(latencies),
           "publish_to_both_swapped": pct(latencies)}  # fmt: skip
    write_json(a.out / "weights.json", out)
    return out


def finetune(a: argparse.Namespace) -> dict:
    """Online FARM through the composed graph (lockstep, ground truth, shipped checkpoints) for
    ``--steps`` per seed: IR-failure episodes, return of the last episodes, wall time. Each
    seed's trainer keeps its journal and checkpoints under ``--runs``; a stopped run resumes
    from them."""
    from farm_bringup.nodes.twin_demo import finetune as run_finetune

    rows = []
    for seed in a.seeds:
        done = a.out / f"finetune_seed{seed}.json"
        if done.exists():
            rows.append(json.loads(done.read_text()))
            continue
        res = run_finetune(repo_config(), a.task, a.steps, seed, a.runs / f"seed{seed}",
                           record=a.record, timeout_s=48 * 3600.0,
                           batch_steps=a.batch_steps)  # fmt: skip
        c = res["counters"]
        row = {"task": a.task, "seed": seed, "steps": c["transitions"], "updates": c["update"],
               "episodes": c["episodes"], "ir_failure_episodes": c["ir_failure_episodes"],
               "successes": c["successes"], "replaced": c["replaced"],
               "stale_recomputed": c["stale_recomputed"], "stale_dropped": c["stale_dropped"],
               "return_last_update": res["last_row"].get("ep_return"),
               "wall_s": res["wall_s"], "steps_per_s": res["steps_per_s"]}  # fmt: skip
        write_json(done, row)
        rows.append(row)
    write_csv(a.out / "finetune.csv", rows)
    return {"runs": rows}


def recording(a: argparse.Namespace) -> dict:
    """Recording cost: lockstep steps/s with the recorder on vs off (same seed and steps) and
    bytes per recorded episode."""
    import shutil

    from farm_bringup.nodes.twin_demo import finetune as run_finetune

    out = {}
    for record in (False, True):
        runs = a.runs / f"recording_{record}"
        shutil.rmtree(runs, ignore_errors=True)
        res = run_finetune(
            repo_config(), a.task, a.steps, 0, runs, record=record, batch_steps=10**6
        )  # fmt: skip  (no update: the rate of the graph)
        key = "on" if record else "off"
        out[f"steps_per_s_{key}"] = res["steps_per_s"]
        if record:
            from farm_bringup.recording import read_index

            idx = [
                r for r in read_index(runs / "recording" / "index.csv") if r.outcome != "stopped"
            ]
            out["episodes"] = len(idx)
            out["bytes_per_episode"] = float(np.mean([r.bytes for r in idx]))
            out["messages_per_episode"] = float(np.mean([r.messages for r in idx]))
    out["rate_drop"] = 1.0 - out["steps_per_s_on"] / out["steps_per_s_off"]
    write_json(a.out / "recording.json", out)
    return out


def faults(a: argparse.Namespace) -> dict:
    """Kill each node of the realtime graph in turn: hold latency, outage, restart."""
    from farm_bringup.nodes.fault_bench import run

    return run(a.task, a.watchdog_periods, a.outage, a.warmup * 3, a.out, kills=not a.sensor_only)


def soak(a: argparse.Namespace) -> dict:
    """The realtime graph with recording for ``--minutes``: missed ticks, memory, files."""
    from farm_bringup.nodes.soak_bench import run

    return run(a.task, a.minutes, a.warmup * 4, a.out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="farm-graph-bench", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "what",
        choices=("lockstep", "latency", "weights", "finetune", "recording", "faults", "soak"),
    )
    ap.add_argument("--minutes", type=float, default=30.0, help="soak: measured minutes")
    ap.add_argument("--watchdog-periods", type=float, default=5.0, help="faults: arbiter's")
    ap.add_argument("--outage", type=float, default=3.0, help="faults: seconds a node is down")
    ap.add_argument(
        "--sensor-only",
        action="store_true",
        help="faults: only the dropped / late frames (keep the earlier kill rows)",
    )
    ap.add_argument("--steps", type=int, default=200_000, help="finetune/recording: steps")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="finetune: seeds")
    ap.add_argument("--batch-steps", type=int, default=2048, help="finetune: PPO batch")
    ap.add_argument("--record", action="store_true", help="finetune: also record episodes")
    ap.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/graph_bench"),
        help="finetune/recording: trainer and recording folders",
    )
    ap.add_argument("--pushes", type=int, default=50, help="weights: pushes measured")
    ap.add_argument("--task", default="FailureBench/BoundedPush-v0")
    ap.add_argument("--episodes", type=int, default=3, help="lockstep: episodes (200 steps each)")
    ap.add_argument("--frames", type=int, default=60, help="latency: frames rendered for replay")
    ap.add_argument("--rate", type=float, default=30.0, help="latency: replay rate (Hz)")
    ap.add_argument("--seconds", type=float, default=30.0, help="latency: measured seconds")
    ap.add_argument("--warmup", type=float, default=8.0, help="latency: seconds not measured")
    ap.add_argument("--width", type=int, default=640, help="latency: rendered image width")
    ap.add_argument("--height", type=int, default=480, help="latency: rendered image height")
    ap.add_argument(
        "--mode",
        default="processes",
        choices=("processes", "composed"),
        help="latency: the graph's nodes as OS processes, or composed in one",
    )
    ap.add_argument(
        "--detector",
        default="color",
        choices=("color", "yolo", "fused"),
        help="latency: the perception node's detector",
    )
    ap.add_argument("--yolo-model", default="", help="latency: YOLO ONNX model (yolo, fused)")
    ap.add_argument(
        "--yolo-every", type=int, default=1, help="latency: fused, YOLO on 1 frame in N"
    )
    ap.add_argument("--out", type=Path, default=Path("results/graph_bench"))
    a = ap.parse_args(argv)
    res = {"lockstep": lockstep, "latency": latency, "weights": weights, "finetune": finetune,
           "recording": recording, "faults": faults, "soak": soak}[a.what](a)  # fmt: skip

    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
