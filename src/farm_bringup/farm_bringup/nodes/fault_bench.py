"""``farm-graph-bench faults``: kill each node of the realtime graph in turn and time the holds.

The graph (twin, policy, safety, arbiter; realtime, ground truth, 30 Hz) runs as OS processes
from config/sim.yaml, started like ``farm-graph run``. For each victim: SIGKILL it, time until
the commanded target is a hold (the measured end-effector pose; for the arbiter itself: until
the twin's own command timeout stops the arm), check that no non-hold target follows during the
outage, restart only the victim and time until decisions flow again; the other nodes must still
be the same processes. Prints a table and writes ``faults.json``.
"""

from __future__ import annotations

import subprocess
import time
from collections import deque
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from failurebench_sim import ros_contract as rc
from failurebench_sim.atomic import write_json
from failurebench_sim.nodes.ros_io import QOS, stamp_ns, unpack_vector
from farm_bringup.graph import (
    NODES,
    Override,
    changed_params,
    load_config,
    mode_overrides,
    process_command,
    repo_config,
)

GRAPH = ("sim_node", "policy_node", "safety_node", "arbiter_node")
HOLD_ATOL = 1e-4  # a hold target is a measured pose (to float64 -> ROS double round-off)
RECENT_POSES = 15  # 0.5 s of poses at 30 Hz


class Monitor(Node):
    """Targets (arrival time, xyz, is a hold, age of its stamp behind the newest frame), the
    latest measured pose, decisions (arrival, hold)."""

    def __init__(self, context=None) -> None:
        super().__init__("farm_fault_monitor", context=context)
        self.targets: deque = deque(maxlen=20_000)
        self.poses: deque = deque(maxlen=20_000)
        self.decisions: deque = deque(maxlen=20_000)
        self.pose: np.ndarray | None = None
        self.frame_ns = 0  # stamp of the newest end-effector pose (the twin's frame clock)
        # twin steps run with no live command: (arrival, sim stamp of the frame it ran from)
        self.uncommanded: deque = deque(maxlen=20_000)
        self.create_subscription(PoseStamped, rc.TARGET_POSE, self._target, QOS[rc.RELIABLE])
        self.create_subscription(PoseStamped, rc.EE_POSE, self._pose, QOS[rc.SENSOR])
        self.create_subscription(JointState, rc.DECISION, self._decision, QOS[rc.RELIABLE])
        self.create_subscription(JointState, rc.TWIN_STEP, self._step, QOS[rc.RELIABLE])

    def _step(self, m: JointState) -> None:
        command_sec, sec, nsec = unpack_vector(m, ("command_sec", "from_sec", "from_nanosec"))
        if command_sec < 0:  # the step ran from frame (sec, nsec) with no live command
            self.uncommanded.append((time.monotonic(), int(sec) * 10**9 + int(nsec)))

    def _target(self, m: PoseStamped) -> None:
        p = m.pose.position
        xyz = np.array([p.x, p.y, p.z])
        # a hold is a pose the arbiter measured: one of the last few the monitor saw too
        recent = [p for _, p in list(self.poses)[-RECENT_POSES:]]
        held = any(np.allclose(xyz, p, atol=HOLD_ATOL) for p in recent)
        age_s = (self.frame_ns - stamp_ns(m.header.stamp)) * 1e-9
        self.targets.append((time.monotonic(), xyz, held, age_s))

    def _pose(self, m: PoseStamped) -> None:
        p = m.pose.position
        self.pose = np.array([p.x, p.y, p.z])
        self.frame_ns = max(self.frame_ns, stamp_ns(m.header.stamp))
        self.poses.append((time.monotonic(), self.pose))

    def _decision(self, m: JointState) -> None:
        (hold,) = unpack_vector(m, ("hold",))
        self.decisions.append((time.monotonic(), bool(hold > 0.5)))


def _held(node: Monitor, since: float) -> float | None:
    """When the first hold target arrived after ``since``."""
    return next((t for t, _, h, _ in node.targets if t > since and h), None)


def _arm_stopped(node: Monitor, since: float) -> float | None:
    """No commands at all (the arbiter died): when the twin's own command timeout first ran a
    step with no live command (the hold at the hand: zero motion of the mocap target)."""
    return next((t for t, _ in node.uncommanded if t > since), None)


def _sim_ms_to_stop(node: Monitor, since: float, frame_ns_at_kill: int) -> float | None:
    """``_arm_stopped`` in sim time: from the newest frame at the kill to that step's frame
    (the twin's command timeout counts sim time; a loaded machine runs it slower than the wall)."""
    stamp = next((ns for t, ns in node.uncommanded if t > since), None)
    return None if stamp is None else 1e-6 * (stamp - frame_ns_at_kill)


def _resumed(node: Monitor, since: float) -> float | None:
    """When the first decision that is not a hold arrived after ``since``."""
    return next((t for t, h in node.decisions if t > since and not h), None)


def _spin(ex, node: Monitor, seconds: float, until=None) -> float | None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.01)
        if until is not None:
            t = until()
            if t is not None:
                return t
    return None


def graph_commands(
    task: str, names=GRAPH, extra: list[Override] | tuple = ()
) -> tuple[dict[str, list[str]], float]:
    """The realtime, ground-truth graph's process command lines (as ``farm-graph run``) and
    its control rate."""
    config = repo_config()
    sections = load_config(config)
    overrides = [*mode_overrides(task, "realtime", "ground_truth"), *extra]
    commands = {
        n: process_command(NODES[n], config, changed_params(sections, n, overrides, config.parent))
        for n in names
    }
    return commands, float(sections["arbiter_node"].get("command_rate_hz", 30.0))


def start(commands: dict[str, list[str]]) -> dict[str, subprocess.Popen]:
    return {n: subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n, c in commands.items()}  # fmt: skip


def stop(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(2)
    for p in procs.values():
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


class Session:
    """The graph as processes plus a monitor node spun here (``with Session(...) as g``)."""

    def __init__(self, task: str, extra: list[Override] | tuple = (), names=GRAPH) -> None:
        self.commands, self.rate = graph_commands(task, names, extra)
        self.max_frame_age_s = float(
            load_config(repo_config())["arbiter_node"].get("max_frame_age_s", 0.0)
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.extra = list(extra)

    def __enter__(self) -> Session:
        self.procs = start(self.commands)
        rclpy.init()
        self.node = Monitor()
        self.ex = rclpy.executors.SingleThreadedExecutor()
        self.ex.add_node(self.node)
        return self

    def __exit__(self, *exc) -> None:
        stop(self.procs)
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()

    def spin(self, seconds: float, until=None) -> float | None:
        return _spin(self.ex, self.node, seconds, until)

    def warm_up(self, seconds: float) -> None:
        """Spin until decisions flow (at most ``seconds``), then 2 s more."""
        if self.spin(seconds, lambda: self.node.decisions[-1][0] if self.node.decisions else None):
            self.spin(2.0)
        if not self.node.decisions:
            raise RuntimeError(f"no decisions after {seconds} s: the graph did not start")

    def kill_and_restart(self, victim: str, outage_s: float, watchdog_periods: float) -> dict:
        """SIGKILL ``victim``, time the hold, restart it, time the resumption."""
        node, procs = self.node, self.procs
        self.spin(3.0)  # steady again
        others = {n: p.pid for n, p in procs.items() if n != victim}
        t_kill, frame_ns_at_kill = time.monotonic(), node.frame_ns
        procs[victim].kill()
        procs[victim].wait(10)
        stopped = _arm_stopped if victim == "arbiter_node" else _held
        t_hold = self.spin(outage_s, lambda: stopped(node, t_kill))
        self.spin(max(0.0, outage_s - (time.monotonic() - t_kill)))
        t_restart = time.monotonic()
        outage = [(x, h, age) for t, x, h, age in node.targets
                  if t_hold is not None and t_hold <= t < t_restart]  # fmt: skip
        old_after = self.max_frame_age_s + 1.0 / self.rate
        procs[victim] = subprocess.Popen(
            self.commands[victim], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        t_resume = self.spin(120.0, lambda: _resumed(node, t_restart))
        alive = all(procs[n].pid == pid and procs[n].poll() is None for n, pid in others.items())
        return {
            "victim": victim,
            "kill_to_hold_ms": None if t_hold is None else 1e3 * (t_hold - t_kill),
            # the arbiter's case in the twin's sim time, the clock its command timeout counts
            "kill_to_hold_sim_ms": _sim_ms_to_stop(node, t_kill, frame_ns_at_kill)
            if victim == "arbiter_node" and t_hold is not None
            else None,
            "hold_limit_ms": 1e3 * watchdog_periods / self.rate
            if victim != "arbiter_node"
            else 500.0,
            "control_period_ms": 1e3 / self.rate,
            "targets_during_outage": len(outage),
            "non_hold_targets_during_outage": int(sum(not h for _, h, _ in outage)),
            # of those, the ones from a frame older than max_frame_age_s (+ 1 period): a stale
            # action (a non-hold from a fresh frame is a decision that was in flight at the kill)
            "old_frame_targets_during_outage": int(
                sum(not h and a > old_after for _, h, a in outage)
            ),  # fmt: skip
            # how far the commanded target moved during the outage (a stale action: cm)
            "outage_target_travel_mm": 1e3 * float(np.ptp([x for x, _, _ in outage], axis=0).max())
            if outage
            else 0.0,
            "restart_to_decisions_s": None if t_resume is None else t_resume - t_restart,
            "others_kept_running": alive,
        }

    def observe(self, seconds: float, max_frame_age_s: float) -> dict:
        """Decisions, holds and targets over ``seconds``: how many targets that are not holds
        came from a frame older than ``max_frame_age_s`` (plus one period of slack)."""
        node = self.node
        t0 = time.monotonic()
        self.spin(seconds)
        poses = [t for t, _ in node.poses if t >= t0]
        decisions = [h for t, h in node.decisions if t >= t0]
        targets = [(h, age) for t, _, h, age in node.targets if t >= t0]
        slack = max_frame_age_s + 1.0 / self.rate
        moving = [age for h, age in targets if not h]
        return {
            "frames": len(poses),
            "decisions_per_frame": len(decisions) / max(1, len(poses)),
            "hold_decisions_frac": float(np.mean(decisions)) if decisions else None,
            "targets": len(targets),
            "hold_targets_frac": float(np.mean([h for h, _ in targets])) if targets else None,
            "old_frame_targets": int(sum(age > slack for age in moving)),
            "max_target_age_ms": 1e3 * max(moving) if moving else None,
        }


def sensor_fault_row(
    task: str, drop: float, delay_s: float, seconds: float, warmup_s: float
) -> dict:
    """The graph with the twin dropping ``drop`` of its observation frames and delaying the
    rest ``delay_s``: decisions degrade to holds, no target comes from an old frame."""
    extra = [Override("sim_node", "observation_drop", drop),
             Override("sim_node", "observation_delay_s", delay_s)]  # fmt: skip
    sections = load_config(repo_config())
    age = float(sections["arbiter_node"].get("max_frame_age_s", 0.0))
    with Session(task, extra) as g:
        g.spin(warmup_s)
        row = {"drop": drop, "delay_s": delay_s, "max_frame_age_s": age,
               **g.observe(seconds, age)}  # fmt: skip
    print(row, flush=True)
    return row


def run(task: str, watchdog_periods: float, outage_s: float, warmup_s: float, out: Path,
        kills: bool = True) -> dict:  # fmt: skip
    """Kill each node in turn, then the sensor faults; writes ``faults.json`` (``kills`` False:
    the sensor faults only, the kill rows of an earlier ``faults.json`` kept)."""
    extra = [Override("arbiter_node", "watchdog_periods", watchdog_periods)]
    rows, rate = [], None
    if kills:
        with Session(task, extra) as g:
            g.warm_up(warmup_s)
            for victim in ("policy_node", "safety_node", "sim_node", "arbiter_node"):
                rows.append(g.kill_and_restart(victim, outage_s, watchdog_periods))
                print(rows[-1], flush=True)
            rate = g.rate
    elif (out / "faults.json").exists():
        import json

        earlier = json.loads((out / "faults.json").read_text())
        rows, rate = earlier.get("faults", []), earlier.get("rate_hz")
    sensor = [sensor_fault_row(task, d, s, 20.0, warmup_s)
              for d, s in ((0.0, 0.0), (0.3, 0.0), (0.0, 0.05), (0.0, 0.3))]  # fmt: skip
    res = {"task": task, "watchdog_periods": watchdog_periods, "rate_hz": rate,
           "faults": rows, "sensor_faults": sensor}  # fmt: skip
    write_json(out / "faults.json", res)
    return res
