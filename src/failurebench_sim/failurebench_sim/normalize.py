"""Expert-normalised returns: scripted expert = 100, uniform random policy = 0 (paper Fig. 5, 6)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from failurebench_sim.make import resolve_env_id


class Reference(NamedTuple):
    random: float
    expert: float


# Mean undiscounted return over 50 episodes (reset seeds 0..49, no action noise) of the uniform
# random policy and of the scripted expert. Regenerate with:  failurebench bench --references
REFERENCE_RETURNS: dict[str, Reference] = {
    "FailureBench/BoundedPush-v0": Reference(random=1.279, expert=157.689),
    "FailureBench/BoundedSoccer-v0": Reference(random=1.422, expert=141.286),
    "FailureBench/FragilePushWall-v0": Reference(random=1.228, expert=121.272),
    "FailureBench/ObstructedPush-v0": Reference(random=1.2, expert=145.768),
    # 50 episodes, seeds 0..49 (expert: 98 % success, 2 % IR failures, the vase moved in 82 %)
    "FailureBench/DisturbedPush-v0": Reference(random=1.091, expert=146.650),
}


def reference(env_id: str) -> Reference:
    """The (random, expert) reference returns of a task; accepts short task names."""
    env_id = resolve_env_id(env_id)
    try:
        return REFERENCE_RETURNS[env_id]
    except KeyError:
        known = ", ".join(sorted(REFERENCE_RETURNS)) or "none"
        raise KeyError(f"no reference returns for {env_id!r} (known: {known})") from None


def normalized_return(env_id: str, raw_return: float | np.ndarray) -> float | np.ndarray:
    """100 * (R - R_random) / (R_expert - R_random)."""
    ref = reference(env_id)
    score = (
        100.0 * (np.asarray(raw_return, dtype=np.float64) - ref.random) / (ref.expert - ref.random)
    )
    return float(score) if score.ndim == 0 else score


def normalized_return_or_none(env_id: str, raw_return: float | np.ndarray):
    """``normalized_return``, or None for a task without reference returns (e.g. a toy env)."""
    try:
        return normalized_return(env_id, raw_return)
    except KeyError:
        return None
