"""farm-pid on the graph: the trainer node steers the arbiter's ``eps_safe`` to a target
IR-failure rate with the benchmark's controller (``farm_safety_critic.eps_control``).

After every finished episode the controller's new eps_safe is set on each of ``nodes`` through
its standard parameter service (what ``ros2 param set /arbiter_node eps_safe 0.2`` does; the
arbiter decides with it, the safety node counts firings with it). A node whose service is not up
yet is retried every second until it has the latest value. The controller's state and the number
of episodes it has seen are saved atomically to ``eps_control.json`` in the trainer's output
folder: a restarted trainer reads it back and skips the episodes its resume tallies again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from failurebench_sim.atomic import write_json
from farm_safety_critic.eps_control import EpsController

STATE_FILE = "eps_control.json"
RETRY_S = 1.0


class EpsSteering:
    """``EpsController`` whose every new eps_safe goes to the ``eps_safe`` parameter of ``nodes``."""

    def __init__(self, node: Node, controller: EpsController, nodes: Sequence[str],
                 state_dir: str | Path) -> None:  # fmt: skip
        self.node, self.controller = node, controller
        self.clients = [AsyncParameterClient(node, name) for name in nodes]
        self.state_path = Path(state_dir) / STATE_FILE
        self.seen = 0  # episodes the controller's state holds
        self._restore()
        self.eps_safe = controller.current()
        self.pending = list(self.clients)  # clients without the latest value
        self.sent = 0
        node.create_timer(RETRY_S, self.send)

    def observe_episode(self, n: int, summary: dict[str, float]) -> None:
        """Episode number ``n`` finished (``StreamLearner.on_episode``): steer, save, send."""
        if n <= self.seen:  # already in the restored state (a resume tallies it again)
            return
        self.eps_safe = self.controller.observe_episodes([summary["ir_failure"]])
        self.seen = n
        self._save()
        self.pending = list(self.clients)
        self.send()

    def send(self) -> None:
        """Set ``eps_safe`` on every pending node whose parameter service is up."""
        if not self.pending:
            return
        param = [Parameter("eps_safe", value=float(self.eps_safe))]
        waiting = []
        for client in self.pending:
            if client.services_are_ready():
                client.set_parameters(param)
                self.sent += 1
            else:
                waiting.append(client)
        self.pending = waiting
        if waiting:
            names = [c.remote_node_name for c in waiting]
            self.node.get_logger().warning(f"eps_safe {self.eps_safe:.4g} not sent yet: no "
                                           f"parameter service on {names}",
                                           throttle_duration_sec=10)  # fmt: skip

    def _save(self) -> None:
        c = self.controller
        recent = [None if math.isnan(x) else x for x in c.recent.tolist()]
        write_json(self.state_path, {"episodes": self.seen, "eps0": c.eps0,
                                     "integral": float(c.integral), "recent": recent})  # fmt: skip

    def _restore(self) -> None:
        if not self.state_path.exists():
            return
        c = self.controller
        try:
            state = json.loads(self.state_path.read_text())
            recent = [math.nan if x is None else float(x) for x in state["recent"]]
            if float(state["eps0"]) != c.eps0 or len(recent) != len(c.recent):
                raise ValueError("saved for another eps0 or window")
            c.integral.fill_(float(state["integral"]))
            c.recent.copy_(torch.tensor(recent, dtype=c.recent.dtype))
            self.seen = int(state["episodes"])
        except (ValueError, KeyError, TypeError) as e:
            self.node.get_logger().warning(
                f"{self.state_path} not restored ({e}): starting at eps0"
            )
