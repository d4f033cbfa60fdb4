"""farm-pid on the graph: the threshold the trainer's controller chose, kept on the ``eps_safe``
parameter of the arbiter and the safety node through their standard parameter services (what
``ros2 param set /arbiter_node eps_safe 0.2`` does).

On every new value and every ``CHECK_S`` (steady clock: a stalled ``/clock`` must not stop it)
each node's ``eps_safe`` is read back and set where it differs, so a node that restarted at its
YAML value is corrected within a check. A node whose service is not up, that has no
``eps_safe``, or that refuses the set is logged with the reason (and counted in ``refused``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rcl_interfaces.msg import ParameterType
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

CHECK_S = 2.0


class EpsSafePush:
    """Keeps ``eps_safe`` of ``nodes`` at ``self.eps_safe`` (``set`` changes it)."""

    def __init__(self, node: Node, nodes: Sequence[str], eps_safe: float) -> None:
        self.node, self.eps_safe = node, float(eps_safe)
        self.clients = [AsyncParameterClient(node, name) for name in nodes]
        self.applied: dict[str, float] = {}  # node -> the value it confirmed last
        self.refused = 0
        node.create_timer(CHECK_S, self.check, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def set(self, eps_safe: float) -> None:
        if not math.isfinite(eps_safe) or eps_safe < 0:
            self.node.get_logger().error(f"eps_safe {eps_safe} not pushed (not finite, >= 0)")
            return
        self.eps_safe = float(eps_safe)
        self.check()

    def check(self) -> None:
        """Read each node's eps_safe; set it where it is not the latest value."""
        for client in self.clients:
            if not client.services_are_ready():
                self._warn(f"no parameter service on {client.remote_node_name} (yet)")
                continue
            future = client.get_parameters(["eps_safe"])
            future.add_done_callback(lambda f, c=client: self._compare(c, f))

    def _compare(self, client: AsyncParameterClient, future) -> None:
        values = getattr(future.result(), "values", None) or []
        if not values or values[0].type != ParameterType.PARAMETER_DOUBLE:
            self._refused(client, "it has no double parameter eps_safe")
            return
        if values[0].double_value == self.eps_safe:
            self.applied[client.remote_node_name] = self.eps_safe
            return
        value = self.eps_safe
        future = client.set_parameters([Parameter("eps_safe", value=value)])
        future.add_done_callback(lambda f: self._confirm(client, value, f))

    def _confirm(self, client: AsyncParameterClient, value: float, future) -> None:
        results = getattr(future.result(), "results", None) or []
        if results and results[0].successful:
            self.applied[client.remote_node_name] = value
        else:
            self._refused(client, results[0].reason if results else "no answer")

    def _refused(self, client: AsyncParameterClient, why: str) -> None:
        self.refused += 1
        self.node.get_logger().error(f"eps_safe {self.eps_safe:.4g} not set on "
                                     f"{client.remote_node_name}: {why}",
                                     throttle_duration_sec=10)  # fmt: skip

    def _warn(self, why: str) -> None:
        self.node.get_logger().warning(f"eps_safe {self.eps_safe:.4g} not set: {why}",
                                       throttle_duration_sec=10)  # fmt: skip
