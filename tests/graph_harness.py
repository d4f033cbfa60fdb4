"""Compose FARM's node graph in one process for tests (an executor spun in a thread)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "config" / "checkpoints"


def wait_for(cond, timeout: float = 60.0) -> bool:
    """Poll ``cond()`` every 50 ms until it is true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def checkpoint_params(task: str = "BoundedPush-v0") -> dict[str, dict]:
    """Parameters of the policy, safety and arbiter nodes for a shipped task checkpoint."""
    d = CHECKPOINTS / task
    actor = str(d / "actor.safetensors")
    return {
        "policy_node": {"checkpoint": actor, "deterministic": True, "task": f"FailureBench/{task}"},
        "safety_node": {"checkpoint": actor, "world_model": str(d / "world_model.safetensors")},
        "arbiter_node": {"recovery_checkpoint": str(d / "recovery.safetensors")},
    }


_graphs = itertools.count(1)


def fresh_domain() -> int:
    """A ROS domain of its own for each graph of a test run: a graph that outlives its test on
    a loaded machine (an executor still finishing a callback) cannot talk to the next one."""
    base = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    return (base + 3 * next(_graphs)) % 101 or 1


class Graph:
    """Start node classes with parameter overrides; ``close()`` stops and destroys them."""

    def __init__(self, nodes: Iterable[tuple[type, dict]], first=None) -> None:
        """``first(context) -> Node``: a probe created before the graph's nodes (it sees their
        first messages). The graph runs on ``self.domain_id`` (``fresh_domain``)."""
        self.context = rclpy.Context()
        self.domain_id = fresh_domain()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes = []
        self.error: Exception | None = None
        self.probe = None if first is None else first(self.context)
        if self.probe is not None:
            self.executor.add_node(self.probe)
        for cls, params in nodes:
            overrides = [Parameter(k, value=v) for k, v in params.items()]
            node = cls(context=self.context, parameter_overrides=overrides)
            self.nodes.append(node)
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as e:  # a callback raised, or shutdown raced the spin
            self.error = e
            import traceback

            traceback.print_exc()

    def add(self, node) -> None:
        self.executor.add_node(node)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        for node in [*self.nodes, *([self.probe] if self.probe is not None else [])]:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5)
