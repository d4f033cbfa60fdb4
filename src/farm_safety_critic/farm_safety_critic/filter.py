"""The ActionFilter plug-in point of the online loop (``farm_trainer.online.action_filter``).

Re-exported from there when it exists; a field-for-field identical fallback otherwise, so
this package does not need the trainer to be importable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

try:
    from farm_trainer.online.action_filter import ActionFilter, FilterDecision
except ImportError:  # pragma: no cover - depends on which packages are installed

    @dataclass
    class FilterDecision:  # type: ignore[no-redef]
        """Outcome of one filter call (Eq. 11)."""

        actions: np.ndarray  # (n_envs, act_dim) actions actually executed
        replaced: np.ndarray  # (n_envs,) bool, True where the task action was replaced
        score: np.ndarray  # (n_envs,) float, the safety score C_H
        threshold: float  # eps_safe

    class ActionFilter(Protocol):  # type: ignore[no-redef]
        def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision: ...


__all__ = ["ActionFilter", "FilterDecision"]
