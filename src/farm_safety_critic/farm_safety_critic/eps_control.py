"""eps_safe adapted online to a target IR-failure rate (a lever of the science issue).

The paper fixes eps_safe before fine-tuning. ``EpsController`` moves a threshold after every
batch of finished episodes by a PI rule in log space on the failure rate of the last ``window``
episodes against ``target_rate``:

    e = rate - target,   I <- clip(I + e, -I_max, I_max),
    eps = clip(eps_0 * exp(-(kp e + ki I)), eps_0 * min_factor, eps_0 * max_factor)

More failures than the target lower eps (the recovery policy takes over earlier); fewer raise it
back (the task policy keeps more of the steps). The state (I and the window) is in buffers, so a
run's checkpoint keeps it across a resume. ``AdaptiveEpsSafe`` applies it to a gate in the
benchmark loop (methods farm-pid, farm-ens-pid); on the ROS graph the trainer node runs the same
controller and sets the arbiter's ``eps_safe`` parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


class EpsController(nn.Module):
    """The PI rule's state: ``observe_episodes(ir_failures)`` returns the new eps_safe."""

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
    ) -> None:
        super().__init__()
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
        self.register_buffer("integral", torch.zeros(()))
        self.register_buffer("recent", torch.full((window,), float("nan")))
        self.last_stats: dict[str, float] = {"eps_safe": self.eps0}

    def current(self) -> float:
        """eps_safe for the present state (eps0 before any failure is seen)."""
        u = self.kp * self._error() + self.ki * float(self.integral)
        return min(max(self.eps0 * math.exp(-u), self.bounds[0]), self.bounds[1])

    def _error(self) -> float:
        seen = self.recent[~self.recent.isnan()]
        return float(seen.mean()) - self.target_rate if len(seen) else 0.0

    def observe_episodes(self, ir_failures: Sequence[float]) -> float:
        """Episodes finished since the last call (1: ended in an IR failure) -> eps_safe."""
        if len(ir_failures):
            new = torch.as_tensor(np.asarray(ir_failures, dtype=np.float32))
            self.recent.copy_(torch.cat([self.recent, new])[-len(self.recent) :])
            i = float(self.integral) + self._error()
            self.integral.fill_(min(max(i, -self.integral_limit), self.integral_limit))
        eps = self.current()
        self.last_stats = {"eps_safe": eps, "failure_rate_window": self._error() + self.target_rate}
        return eps


class AdaptiveEpsSafe(EpsController):
    """An ``ActionFilter``: ``gate``'s decisions under an eps_safe that follows the failure rate."""

    def __init__(self, gate: Any, *args: Any, **kwargs: Any) -> None:
        """``gate`` (with a recovery policy), then ``EpsController``'s arguments after eps0."""
        if gate.decider is None:
            raise ValueError("AdaptiveEpsSafe needs a gate with a recovery policy")
        super().__init__(float(gate.eps_safe), *args, **kwargs)
        self.gate = gate

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> Any:
        return self.gate(obs, proposed)

    @property
    def eps_safe(self) -> float:
        return float(self.gate.decider.eps_safe)

    def observe_episodes(self, ir_failures: Sequence[float]) -> float:
        eps = super().observe_episodes(ir_failures)
        self.gate.decider.eps_safe = eps
        return eps

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        out = super().load_state_dict(state, strict, assign)
        self.gate.decider.eps_safe = self.current()
        return out
