"""Plug-in point between the proposed task action and the executed action.

FARM's world-model safety gate, the ablations and the recovery arbiter implement
``ActionFilter``; the online loop (``farm_trainer``) and the arbiter node record what was
executed, whether it was replaced, and the safety score. It lives here, below the trainer in
the package DAG, so the gate needs nothing from ``farm_trainer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class FilterError(ValueError):
    """An ActionFilter returned a decision with the wrong shapes or non-finite actions."""


@dataclass
class FilterDecision:
    """What a filter decided for one vectorised step."""

    actions: np.ndarray  # (n_envs, act_dim) actions actually executed
    replaced: np.ndarray  # (n_envs,) bool, True where the proposed task action was replaced
    score: np.ndarray  # (n_envs,) float, safety score (e.g. C_H); nan when not applicable
    threshold: float  # e.g. eps_safe; nan when none

    def validate(self, n_envs: int, act_dim: int) -> FilterDecision:
        """Return a copy with canonical dtypes, raising ``FilterError`` on bad shapes/values."""
        actions = np.asarray(self.actions, dtype=np.float32)
        replaced = np.asarray(self.replaced, dtype=bool)
        score = np.asarray(self.score, dtype=np.float64)
        if actions.shape != (n_envs, act_dim):
            raise FilterError(f"filter actions shape {actions.shape} != {(n_envs, act_dim)}")
        if replaced.shape != (n_envs,) or score.shape != (n_envs,):
            raise FilterError(
                f"filter replaced/score must be ({n_envs},), got {replaced.shape}/{score.shape}"
            )
        if not np.all(np.isfinite(actions)):
            raise FilterError("filter returned non-finite actions")
        return FilterDecision(actions, replaced, score, float(self.threshold))


@runtime_checkable
class ActionFilter(Protocol):
    """Maps (obs, proposed task actions) -> the actions to execute."""

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision: ...


class PassThrough:
    """Uni-O4 online stage: execute the proposed task action unchanged."""

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision:
        n = proposed.shape[0]
        return FilterDecision(
            actions=np.asarray(proposed, dtype=np.float32),
            replaced=np.zeros(n, dtype=bool),
            score=np.full(n, np.nan),
            threshold=float("nan"),
        )


class FirstFired:
    """Filters in order of precedence: each row executes the replacement of the first member
    that replaced it (else the proposed action). The score is the members' largest and the
    threshold the first member's: for members that score on one scale (the run-out gates)."""

    def __init__(self, members: list[ActionFilter]) -> None:
        if not members:
            raise FilterError("FirstFired needs at least one member filter")
        self.members = list(members)
        self.counts = np.zeros(len(self.members) + 1, dtype=np.int64)  # rows, then per member
        self.last_stats: dict[str, float] = {}
        """share of the rows since the filter was built that each member decided
        (``member<i>_fraction``, logged every update as ``filter/member<i>_fraction``)"""

    @property
    def eps_safe(self) -> float:
        return float(getattr(self.members[0], "eps_safe", float("nan")))

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision:
        decided = first_fired([m(obs, proposed) for m in self.members], proposed, self.counts)
        self.last_stats = {f"member{i}_fraction": float(c / max(self.counts[0], 1))
                           for i, c in enumerate(self.counts[1:])}  # fmt: skip
        return decided


def first_fired(
    decisions: list[FilterDecision], proposed: np.ndarray, counts: np.ndarray | None = None
) -> FilterDecision:
    """``FirstFired``'s rule over decisions already made on the same rows (the graph's arbiter
    takes them from two published scores): each row executes the replacement of the first
    decision that replaced it, else ``proposed``; the score is the largest, the threshold the
    first's. ``counts`` (rows, then rows each decision decided) is added to in place."""
    actions = np.array(proposed, dtype=np.float32, copy=True)
    replaced = np.zeros(actions.shape[0], dtype=bool)
    if counts is not None:
        counts[0] += actions.shape[0]
    for i, d in enumerate(decisions):
        mine = d.replaced & ~replaced  # rows no earlier decision decided
        actions[mine] = np.asarray(d.actions, dtype=np.float32)[mine]
        if counts is not None:
            counts[i + 1] += int(mine.sum())
        replaced |= d.replaced
    score = np.max([np.asarray(d.score, dtype=np.float64) for d in decisions], axis=0)
    return FilterDecision(actions, replaced, score, decisions[0].threshold)
