"""The composed graph: every node in one process, one ``SingleThreadedExecutor``.

Single-threaded on purpose: rclpy callbacks hold the GIL, so threads would not run nodes in
parallel, and one thread keeps the callback order (and lockstep runs) deterministic without
locks between nodes. A node with a ``finished`` future (sim_node after ``max_episodes``) ends
the run when it completes. Exit code 1 when a node fails to start or a callback raises.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from farm_bringup.graph import NodeSpec


def _log(text: str) -> None:
    print(f"[farm-graph] {text}", file=sys.stderr, flush=True)


def _finished(nodes: Sequence[Node]) -> bool:
    return any(getattr(n, "finished", None) is not None and n.finished.done() for n in nodes)


def run_composed(
    specs: Sequence[NodeSpec],
    params: Mapping[str, Mapping[str, Any]],
    duration: float | None = None,
) -> int:
    """Create every node with its parameters as ``parameter_overrides`` and spin them."""
    rclpy.init(args=[sys.argv[0]])
    executor = SingleThreadedExecutor()
    nodes: list[Node] = []
    code = 0
    try:
        for spec in specs:
            overrides = [Parameter(k, value=v) for k, v in params[spec.name].items()]
            node = spec.load_class()(parameter_overrides=overrides)
            if node.get_name() != spec.name:
                _log(f"{spec.cls} is named {node.get_name()!r}, not {spec.name!r}")
            nodes.append(node)
            executor.add_node(node)
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if _finished(nodes):
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as e:  # a node that fails to start or raises in a callback
        _log(f"the composed graph failed: {type(e).__name__}: {e}")
        code = 1
    finally:
        executor.shutdown()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return code
