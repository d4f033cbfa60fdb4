"""``farm-graph-bench soak``: the realtime graph with recording, for a long time.

Twin, policy, safety, arbiter and recorder as OS processes (realtime, ground truth, 30 Hz, from
config/sim.yaml). Measures missed control ticks (gaps between consecutive end-effector poses
longer than 1.5 periods, and decisions per frame), each node's resident memory and open files
(``/proc``) after a warm-up and at the end. Prints and writes ``soak.json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from failurebench_sim import ros_contract as rc
from failurebench_sim.atomic import write_json
from failurebench_sim.nodes.ros_io import QOS
from farm_bringup.graph import Override
from farm_bringup.nodes.fault_bench import GRAPH, graph_commands, start, stop


def proc_stats(pid: int) -> dict[str, float]:
    """Resident memory (MB) and open file descriptors of a process (Linux /proc)."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = float(line.split()[1]) / 1024
    return {"rss_mb": rss, "open_files": len(os.listdir(f"/proc/{pid}/fd"))}


class Ticks(Node):
    def __init__(self) -> None:
        super().__init__("farm_soak_monitor")
        self.poses: list[float] = []
        self.decisions = 0
        self.create_subscription(PoseStamped, rc.EE_POSE, lambda _: self.poses.append(
            time.monotonic()), QOS[rc.SENSOR])  # fmt: skip
        self.create_subscription(JointState, rc.DECISION, self._decision, QOS[rc.RELIABLE])

    def _decision(self, _msg) -> None:
        self.decisions += 1


def run(task: str, minutes: float, warmup_s: float, out: Path, record: bool = True) -> dict:
    names = (*GRAPH, "recorder_node") if record else GRAPH
    extra = [Override("recorder_node", "output_dir", str(out / "recording"))] if record else []
    commands, rate = graph_commands(task, names, extra)
    procs = start(commands)
    rclpy.init()
    node = Ticks()
    ex = rclpy.executors.SingleThreadedExecutor()
    ex.add_node(node)
    try:
        end = time.monotonic() + warmup_s
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
        before = {n: proc_stats(p.pid) for n, p in procs.items()}
        node.poses.clear()
        d0, t0 = node.decisions, time.monotonic()
        end = t0 + 60 * minutes
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
            if any(p.poll() is not None for p in procs.values()):
                raise RuntimeError("a node exited during the soak")
        after = {n: proc_stats(p.pid) for n, p in procs.items()}
        gaps = np.diff(node.poses)
        elapsed = time.monotonic() - t0
    finally:
        stop(procs)
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    expected = elapsed * rate
    res = {
        "task": task, "minutes": minutes, "rate_hz": rate, "record": record,
        "frames": len(node.poses), "expected_frames": expected,
        "missed_ticks_frac": max(0.0, 1.0 - len(node.poses) / expected),
        "late_gaps_frac": float((gaps > 1.5 / rate).mean()) if len(gaps) else None,
        "decisions_per_frame": (node.decisions - d0) / max(1, len(node.poses)),
        "nodes": {n: {"before": before[n], "after": after[n],
                      "rss_growth": after[n]["rss_mb"] / before[n]["rss_mb"] - 1.0,
                      "open_files_growth": after[n]["open_files"] - before[n]["open_files"]}
                  for n in procs},
    }  # fmt: skip
    write_json(out / "soak.json", res)
    return res
