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
from failurebench_sim.nodes.ros_io import QOS, unpack_vector
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
HOLD_ATOL = 1e-3  # a hold is the measured pose; the monitor's pose may be a frame newer


class Monitor(Node):
    """Targets (arrival time, xyz), the latest measured pose, decisions (arrival, hold)."""

    def __init__(self) -> None:
        super().__init__("farm_fault_monitor")
        self.targets: deque = deque(maxlen=20_000)
        self.poses: deque = deque(maxlen=20_000)
        self.decisions: deque = deque(maxlen=20_000)
        self.pose: np.ndarray | None = None
        self.create_subscription(PoseStamped, rc.TARGET_POSE, self._target, QOS[rc.RELIABLE])
        self.create_subscription(PoseStamped, rc.EE_POSE, self._pose, QOS[rc.SENSOR])
        self.create_subscription(JointState, rc.DECISION, self._decision, QOS[rc.RELIABLE])

    def _target(self, m: PoseStamped) -> None:
        p = m.pose.position
        xyz = np.array([p.x, p.y, p.z])
        held = self.pose is not None and np.allclose(xyz, self.pose, atol=HOLD_ATOL)
        self.targets.append((time.monotonic(), xyz, held))

    def _pose(self, m: PoseStamped) -> None:
        p = m.pose.position
        self.pose = np.array([p.x, p.y, p.z])
        self.poses.append((time.monotonic(), self.pose))

    def _decision(self, m: JointState) -> None:
        (hold,) = unpack_vector(m, ("hold",))
        self.decisions.append((time.monotonic(), bool(hold > 0.5)))


def _held(node: Monitor, since: float) -> float | None:
    """When the first hold target arrived after ``since``."""
    return next((t for t, _, h in node.targets if t > since and h), None)


def _arm_stopped(node: Monitor, since: float) -> float | None:
    """No commands at all (the arbiter died): when the twin's own command timeout stopped the
    arm (two consecutive poses 0.1 mm apart)."""
    recent = [(t, p) for t, p in node.poses if t > since + 0.05]
    for (t0, p0), (_, p1) in zip(recent, recent[1:], strict=False):
        if np.linalg.norm(p1 - p0) < 1e-4:
            return t0
    return None


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


def run(task: str, watchdog_periods: float, outage_s: float, warmup_s: float, out: Path) -> dict:
    extra = [Override("arbiter_node", "watchdog_periods", watchdog_periods)]
    commands, rate = graph_commands(task, extra=extra)
    procs = start(commands)
    rclpy.init()
    node = Monitor()
    ex = rclpy.executors.SingleThreadedExecutor()
    ex.add_node(node)
    rows = []
    try:
        _spin(ex, node, warmup_s)
        if not node.decisions:
            raise RuntimeError("no decisions after the warm-up: the graph did not start")
        for victim in ("policy_node", "safety_node", "sim_node", "arbiter_node"):
            _spin(ex, node, 3.0)  # steady again
            others = {n: p.pid for n, p in procs.items() if n != victim}
            t_kill = time.monotonic()
            procs[victim].kill()
            procs[victim].wait(10)
            stopped = _arm_stopped if victim == "arbiter_node" else _held
            t_hold = _spin(ex, node, outage_s, lambda: stopped(node, t_kill))  # noqa: B023
            _spin(ex, node, max(0.0, outage_s - (time.monotonic() - t_kill)))
            t_restart = time.monotonic()
            outage = [(x, h) for t, x, h in node.targets
                      if t_hold is not None and t_hold <= t < t_restart]  # fmt: skip
            procs[victim] = subprocess.Popen(commands[victim], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)  # fmt: skip

            t_resume = _spin(ex, node, 120.0, lambda: _resumed(node, t_restart))  # noqa: B023
            alive = all(
                procs[n].pid == pid and procs[n].poll() is None for n, pid in others.items()
            )
            row = {
                "victim": victim,
                "kill_to_hold_ms": None if t_hold is None else 1e3 * (t_hold - t_kill),
                "hold_limit_ms": 1e3 * watchdog_periods / rate
                if victim != "arbiter_node"
                else 500.0,
                "control_period_ms": 1e3 / rate,
                "targets_during_outage": len(outage),
                "non_hold_targets_during_outage": int(sum(not h for _, h in outage)),
                # how far the commanded target moved during the outage (a stale action: cm)
                "outage_target_travel_mm": 1e3 * float(np.ptp([x for x, _ in outage], axis=0).max())
                if outage
                else 0.0,
                "restart_to_decisions_s": None if t_resume is None else t_resume - t_restart,
                "others_kept_running": alive,
            }
            print(row, flush=True)
            rows.append(row)
    finally:
        stop(procs)
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    res = {"task": task, "watchdog_periods": watchdog_periods, "rate_hz": rate, "faults": rows}
    write_json(out / "faults.json", res)
    return res
