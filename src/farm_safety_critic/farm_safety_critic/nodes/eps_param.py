"""The ``eps_safe`` of the safety, arbiter and trainer nodes: the calibrated file's value wins."""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter

from farm_safety_critic.calibration import read_eps_safe


def eps_safe_of(cfg: Any) -> float:
    """``cfg.eps_safe_file``'s threshold when one is given, else ``cfg.eps_safe``."""
    return read_eps_safe(cfg.eps_safe_file) if cfg.eps_safe_file else float(cfg.eps_safe)


def use_eps_safe_file(node: Node, cfg: Any) -> None:
    """``cfg.eps_safe = eps_safe_of(cfg)``, also set as the node's ``eps_safe`` parameter (so
    ``ros2 param get`` shows the threshold in use); ``ValueError`` if the node refuses it."""
    if not cfg.eps_safe_file:
        return
    cfg.eps_safe = eps_safe_of(cfg)
    (result,) = node.set_parameters([Parameter("eps_safe", value=float(cfg.eps_safe))])
    if not result.successful:
        raise ValueError(f"eps_safe {cfg.eps_safe} from {cfg.eps_safe_file}: {result.reason}")
