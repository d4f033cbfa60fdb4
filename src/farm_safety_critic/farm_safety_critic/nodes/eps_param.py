"""The ``eps_safe`` parameter of the safety and arbiter nodes: the calibrated file's value wins."""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter

from farm_safety_critic.calibration import read_eps_safe


def use_eps_safe_file(node: Node, cfg: Any) -> None:
    """``cfg.eps_safe`` from ``cfg.eps_safe_file`` when one is given, also set as the node's
    ``eps_safe`` parameter, so ``ros2 param get`` shows the threshold in use."""
    if cfg.eps_safe_file:
        cfg.eps_safe = read_eps_safe(cfg.eps_safe_file)
        node.set_parameters([Parameter("eps_safe", value=float(cfg.eps_safe))])
