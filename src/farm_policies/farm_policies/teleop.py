"""Teleoperation as a FailureBench action: a hand velocity (and a gripper command) per frame.

A keyboard (``farm-operator``) or a SpaceMouse (the ``spacenav`` driver's ``/spacenav/twist``)
gives a Cartesian velocity; each frame it becomes the action that moves the hand that far in
one control period (MetaWorld's 1 cm per unit action), capped at ``max_speed``. A command older
than ``timeout_s`` counts as released (a dead-man rule: the arm stops when the input stops).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from failurebench_sim.command import ACTION_SCALE

HUMAN_VERSION = -1.0  # the "policy version" of a human's action in decisions and datasets


@dataclass
class TeleopCommand:
    """The operator's latest input: base-frame velocity (m/s), gripper (-1 open .. 1 closed)."""

    max_speed: float = 0.1
    timeout_s: float = 0.5
    velocity: npt.NDArray[np.float64] | None = None
    gripper: float = -1.0
    stamp_s: float = -math.inf

    def set_velocity(self, v: npt.ArrayLike, now_s: float) -> bool:
        """A new velocity; False (ignored) when not 3 finite numbers."""
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.shape != (3,) or not np.isfinite(v).all():
            return False
        self.velocity, self.stamp_s = v, float(now_s)
        return True

    def set_gripper(self, g: float) -> bool:
        if not math.isfinite(g):
            return False
        self.gripper = float(np.clip(g, -1.0, 1.0))
        return True

    def action(self, now_s: float, period_s: float) -> npt.NDArray[np.float32]:
        """The action for one frame of ``period_s``: zero motion once the input is stale."""
        v = np.zeros(3) if self.velocity is None or now_s - self.stamp_s > self.timeout_s \
            else self.velocity  # fmt: skip
        speed = float(np.linalg.norm(v))
        if speed > self.max_speed:
            v = v * (self.max_speed / speed)
        return np.clip(np.r_[v * period_s / ACTION_SCALE, self.gripper], -1, 1).astype(np.float32)
