"""The hard shield under the learned gate: limits every commanded target, whoever proposed it.

The critic (C_H, Eq. 10) is learned and can be wrong; the shield is not learned. Like
SERL/HIL-SERL's workspace boxes and CRISP's error clipping, it bounds each end-effector target
before it reaches the controller, for the task action and the recovery action alike:

1. a non-finite target holds (the current hand position, else the last target sent; with
   neither, ``apply`` returns no target: nothing is sent blindly);
2. the step from the current hand position is at most ``max_step_m``;
3. the speed from the previous target (over the stamps' difference) is at most
   ``max_speed_mps`` — while the arm tracks that target (within ``max_step_m`` of it); after a
   jump of the arm (the twin's episode reset) the step limit alone bounds the target;
4. the target is clipped into the workspace box ``[low, high]`` (per robot and task, YAML);
5. the gripper command is clipped into ``gripper_range`` (non-finite: the last one sent).

Every limit that acted is counted (``Shield.counts``) and reported per command
(``ShieldReport``), so the arbiter's diagnostics show how often the learned layer was overruled.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml

LIMITS = ("nonfinite", "step", "speed", "box", "gripper")
CLOCK_RESET_NS = 5_000_000_000  # a stamp this far back: the clock restarted (ExactPairer's rule)


class ShieldConfigError(ValueError):
    """A shield YAML without the robot or with a malformed box."""


@dataclass(frozen=True)
class ShieldLimits:
    low: tuple[float, float, float]
    high: tuple[float, float, float]
    max_step_m: float = 0.02  # FailureBench's largest action moves 1 cm per axis (1.7 cm)
    # between consecutive targets: a FailureBench action may reverse (hand +-1.7 cm, target
    # +-1.7 cm about it: 5 cm per 33 ms tick = 1.6 m/s), so the default never binds the policy
    # itself; it catches glitches (a robot's YAML sets a lower, binding value)
    max_speed_mps: float = 1.6
    gripper_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.low, float), np.asarray(self.high, float)
        finite = np.isfinite(lo).all() and np.isfinite(hi).all()
        if lo.shape != (3,) or hi.shape != (3,) or not finite:
            raise ShieldConfigError(
                f"box needs 3 finite numbers per corner: {self.low} {self.high}"
            )
        if (lo >= hi).any():
            raise ShieldConfigError(f"box low {self.low} must be below high {self.high}")
        if not (self.max_step_m > 0 and self.max_speed_mps > 0):
            raise ShieldConfigError("max_step_m and max_speed_mps must be positive")
        g0, g1 = self.gripper_range
        if not (math.isfinite(g0) and math.isfinite(g1) and g0 < g1):
            raise ShieldConfigError(f"gripper_range {self.gripper_range} is not an interval")


def load_limits(path: str | Path, robot: str, task: str) -> ShieldLimits:
    """``robot``'s ``default`` entry of a shield YAML, updated by its ``task`` entry."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if robot not in raw:
        raise ShieldConfigError(f"{path}: no robot {robot!r} (has {sorted(raw)})")
    entries = raw[robot] or {}
    merged = {**(entries.get("default") or {}), **(entries.get(task) or {})}
    try:
        merged = {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
        return ShieldLimits(**merged)
    except TypeError as e:
        raise ShieldConfigError(f"{path}: {robot}/{task}: {e}") from e


@dataclass(frozen=True)
class ShieldReport:
    """Which limits acted on one command (empty: it passed unchanged)."""

    acted: tuple[str, ...] = ()

    @property
    def clipped(self) -> bool:
        return bool(self.acted)


class Shield:
    """``apply(target, gripper, hand, stamp_ns)`` -> the limited (target, gripper, report)."""

    def __init__(self, limits: ShieldLimits) -> None:
        self.limits = limits
        self.low, self.high = np.asarray(limits.low, float), np.asarray(limits.high, float)
        self.last: tuple[int, np.ndarray] | None = None
        self.last_gripper = 0.0
        self.counts: Counter[str] = Counter({k: 0 for k in LIMITS})
        self.commands = 0

    def apply(
        self,
        target: npt.ArrayLike,
        gripper: float,
        hand: npt.ArrayLike | None,
        stamp_ns: int,
        hold: bool = False,
    ) -> tuple[np.ndarray | None, float, ShieldReport]:
        """The limited command. ``hold``: a hold at the measured pose (where the arm is), which
        the speed limit never delays (box and gripper limits still apply)."""
        lim, acted = self.limits, []
        t = np.asarray(target, dtype=np.float64).reshape(-1)
        h = None if hand is None else np.asarray(hand, dtype=np.float64).reshape(-1)
        hand_ok = h is not None and h.shape == (3,) and bool(np.isfinite(h).all())
        if t.shape != (3,) or not np.isfinite(t).all():
            acted.append("nonfinite")
            t = h.copy() if hand_ok else (self.last[1].copy() if self.last else None)
            if t is None:
                self.counts.update(acted)
                return None, self.last_gripper, ShieldReport(tuple(acted))
        if hand_ok:
            d = t - h
            n = float(np.linalg.norm(d))
            if n > lim.max_step_m:
                t = h + d * (lim.max_step_m / n)
                acted.append("step")
        if self.last is not None and stamp_ns < self.last[0] - CLOCK_RESET_NS:
            self.last = None  # the stamps' clock restarted (a restarted twin): no reference
        if self.last is not None and hand_ok and np.linalg.norm(self.last[1] - h) > lim.max_step_m:
            self.last = None  # the arm is not where the last target was (a reset, a hold): the
            # speed limit's reference is gone, the step limit from the hand still applies
        if self.last is not None and not hold:
            # a late or repeated stamp (dt 0) may not move the target at all
            dt = max(0, stamp_ns - self.last[0]) * 1e-9
            d = t - self.last[1]
            n, cap = float(np.linalg.norm(d)), lim.max_speed_mps * dt
            if n > cap:
                t = self.last[1] + d * (cap / n)
                acted.append("speed")
        boxed = np.clip(t, self.low, self.high)
        if not np.array_equal(boxed, t):
            acted.append("box")
        g = float(gripper) if math.isfinite(float(gripper)) else math.nan
        g0, g1 = lim.gripper_range
        if not math.isfinite(g) or not g0 <= g <= g1:
            acted.append("gripper")
            g = self.last_gripper if not math.isfinite(g) else min(max(g, g0), g1)
        self.last, self.last_gripper = (int(stamp_ns), boxed.copy()), g
        self.commands += 1
        self.counts.update(acted)
        return boxed, g, ShieldReport(tuple(acted))
