"""Which offline policy online fine-tuning starts from: the improved one only when it is surely better.

Uni-O4 hands over the offline-PPO member with the best OPE score. That OPE uses the same IQL Q
that offline PPO ascends, so at small critic budgets both follow the same noise and the
improvement can lose return against BC (issue 17). The guarded rule asks a second evaluation
that shares nothing with that Q (``model_return``): the best BC member is the one with the
highest pessimistic score (the lowest over model members of its mean model return), and the
improved policy replaces it only if the one-sided lower confidence bound of their paired
difference, under every model member, is above the estimator's own error where the truth is
known (``model_return.replay_error``: replaying the demonstrations). Otherwise, when the
evaluation cannot tell, BC is kept.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Handover:
    """The decision and the numbers it was made on (all in scaled-reward return units)."""

    policy: str
    """'improved' or 'bc'"""
    bc_member: int
    """the best BC member (the one handed over when ``policy == 'bc'``)"""
    bc_scores: list[float]
    """pessimistic score of every BC member: min over model members of the mean return"""
    improved_score: float
    margin_lower_bound: float
    """min over model members of (mean - z * standard error) of improved - best BC"""
    margin_mean: float
    """mean over model members and start states of improved - best BC"""
    tolerance: float
    """the margin's lower bound must exceed this (the model returns' replay error)"""
    z: float

    def to_dict(self) -> dict:
        return asdict(self)


def pessimistic_score(returns: Tensor) -> float:
    """min_e mean_n G[e, n] of an (E, N) model-return table."""
    return float(returns.mean(dim=1).min())


def paired_lower_bound(diff: Tensor, z: float) -> float:
    """min over model members of mean - z * std / sqrt(N) of an (E, N) paired difference."""
    n = diff.shape[1]
    se = diff.std(dim=1, unbiased=n > 1) / math.sqrt(n)
    return float((diff.mean(dim=1) - z * se).min())


def choose_handover(
    bc_returns: list[Tensor], improved_returns: Tensor, z: float, tolerance: float = 0.0
) -> Handover:
    """Pick the policy to hand over from the (E, N) model returns of each BC member and the
    improved policy, all on the same start states and model members. A NaN ``tolerance`` (the
    error could not be measured) keeps BC."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not bc_returns:
        raise ValueError("choose_handover needs at least one BC member")
    shapes = {tuple(r.shape) for r in bc_returns} | {tuple(improved_returns.shape)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"model-return tables must share one (E, N) shape, got {sorted(shapes)}")
    if not all(torch.isfinite(r).all() for r in [*bc_returns, improved_returns]):
        raise ValueError("model returns contain NaN or inf")
    scores = [pessimistic_score(r) for r in bc_returns]
    best = max(range(len(scores)), key=scores.__getitem__)
    diff = improved_returns - bc_returns[best]
    lower = paired_lower_bound(diff, z)
    return Handover(
        policy="improved" if lower > tolerance else "bc",
        bc_member=best,
        bc_scores=scores,
        improved_score=pessimistic_score(improved_returns),
        margin_lower_bound=lower,
        margin_mean=float(diff.mean()),
        tolerance=float(tolerance),
        z=z,
    )
