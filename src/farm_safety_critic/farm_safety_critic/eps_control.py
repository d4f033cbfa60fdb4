"""eps_safe adapted online to a target rate (levers of the science issue).

The paper fixes eps_safe before fine-tuning. ``EpsController`` moves a threshold after every
batch of observations by a PI rule in log space on the mean of the last ``window`` of them
against ``target_rate``:

    e = rate - target,   I <- clip(I + e, -I_max, I_max),
    eps = clip(eps_0 * exp(-s (kp e + ki I)), eps_0 * min_factor, eps_0 * max_factor)

Two signals are steered. The IR-failure rate per episode (s = +1, methods farm-pid,
farm-ens-pid, farm-qrisk-pid): more failures than the target lower eps (the recovery takes over
earlier), fewer raise it back. The fraction of actions the gate replaced per PPO update (s = -1,
signal "replaced"; method farm-qrisk-cal-hold-steer): more replacements than the target raise
eps, so the task policy keeps more of the steps it learns from. The state (I and the window) is
in buffers, so a run's checkpoint keeps it across a resume. ``AdaptiveEpsSafe`` applies it to a
gate in the benchmark loop; on the ROS graph the trainer node runs the same controller and sets
the arbiter's ``eps_safe`` parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

STEERED_SIGNALS = ("failures", "replaced")
"""what ``AdaptiveEpsSafe`` steers: the IR-failure rate per episode, or the fraction of actions
replaced per PPO update"""


class EpsController(nn.Module):
    """The PI rule's state: ``observe(rates)`` returns the new eps_safe."""

    def __init__(
        self,
        eps0: float,
        target_rate: float = 0.05,
        kp: float = 2.0,
        ki: float = 0.2,
        window: int = 20,
        min_factor: float = 0.1,
        max_factor: float = 3.0,
        integral_limit: float = 10.0,
        signal: str = "failures",
    ) -> None:
        """``signal`` (``STEERED_SIGNALS``): "failures" lowers eps while the rate is over the
        target, "replaced" raises it."""
        super().__init__()
        if signal not in STEERED_SIGNALS:
            raise ValueError(f"signal must be one of {STEERED_SIGNALS}, got {signal!r}")
        if not 0 <= target_rate <= 1 or window < 1 or not 0 < min_factor <= 1 <= max_factor:
            raise ValueError(
                f"need 0 <= target_rate <= 1, window >= 1, 0 < min_factor <= 1 <= max_factor;"
                f" got {target_rate}, {window}, {min_factor}, {max_factor}"
            )
        if not math.isfinite(eps0) or eps0 <= 0:
            raise ValueError(f"need a finite eps0 > 0, got {eps0}")
        self.eps0 = float(eps0)
        self.target_rate, self.kp, self.ki = target_rate, kp, ki
        self.bounds = (self.eps0 * min_factor, self.eps0 * max_factor)
        self.integral_limit = integral_limit
        self.signal = signal
        self.sign = -1.0 if signal == "replaced" else 1.0
        self.register_buffer("integral", torch.zeros(()))
        self.register_buffer("recent", torch.full((window,), float("nan")))
        self.last_stats: dict[str, float] = {"eps_safe": self.eps0}

    def current(self) -> float:
        """eps_safe for the present state (eps0 before any failure is seen)."""
        u = self.sign * (self.kp * self._error() + self.ki * float(self.integral))
        return min(max(self.eps0 * math.exp(-u), self.bounds[0]), self.bounds[1])

    def _error(self) -> float:
        seen = self.recent[~self.recent.isnan()]
        return float(seen.mean()) - self.target_rate if len(seen) else 0.0

    def observe(self, rates: Sequence[float]) -> float:
        """Observations since the last call (each a rate in [0, 1]) -> eps_safe."""
        if len(rates):
            new = torch.as_tensor(np.asarray(rates, dtype=np.float32))
            self.recent.copy_(torch.cat([self.recent, new])[-len(self.recent) :])
            i = float(self.integral) + self._error()
            self.integral.fill_(min(max(i, -self.integral_limit), self.integral_limit))
        eps = self.current()
        window = "replaced_rate_window" if self.signal == "replaced" else "failure_rate_window"
        self.last_stats = {"eps_safe": eps, window: self._error() + self.target_rate}
        return eps

    def observe_episodes(self, ir_failures: Sequence[float]) -> float:
        """Episodes finished since the last call (1: ended in an IR failure) -> eps_safe."""
        return self.observe(ir_failures)

    def observe_update(self, ir_failures: Sequence[float], replaced: Any) -> float:
        """One PPO update's outcome -> eps_safe: the IR failures of the episodes it finished
        and the replaced flags of its actions; the controller reads its ``signal``'s."""
        if self.signal == "failures":
            return self.observe(ir_failures)
        return self.observe([float(np.mean(replaced))] if np.size(replaced) else [])


class AdaptiveEpsSafe(EpsController):
    """An ``ActionFilter``: ``gate``'s decisions under an eps_safe that follows ``signal``, the
    failure rate of finished episodes (``observe_episodes``) or the fraction of each roll-out's
    actions the gate replaced (``observe_rollout``; a rate over the target raises eps)."""

    def __init__(self, gate: Any, *args: Any, signal: str = "failures", **kwargs: Any) -> None:
        """``gate`` (with a recovery policy), then ``EpsController``'s arguments after eps0."""
        if gate.decider is None:
            raise ValueError("AdaptiveEpsSafe needs a gate with a recovery policy")
        super().__init__(float(gate.eps_safe), *args, signal=signal, **kwargs)
        self.gate = gate

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> Any:
        return self.gate(obs, proposed)

    @property
    def eps_safe(self) -> float:
        return float(self.gate.decider.eps_safe)

    def observe(self, rates: Sequence[float]) -> float:
        eps = super().observe(rates)
        self.gate.decider.eps_safe = eps
        return eps

    def observe_episodes(self, ir_failures: Sequence[float]) -> float:
        """The benchmark loop's finished episodes (``observe_update`` reads them under the
        "failures" signal; under "replaced" nothing changes)."""
        return self.observe_update(ir_failures, ())

    def observe_rollout(self, ro: Any) -> None:
        """The benchmark loop's roll-out: its replaced flags, read under "replaced"."""
        self.observe_update((), ro.replaced)

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        out = super().load_state_dict(state, strict, assign)
        self.gate.decider.eps_safe = self.current()
        return out
