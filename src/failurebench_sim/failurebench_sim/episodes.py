"""The one episode evaluator: roll a policy out, count outcomes with one success rule.

An episode *succeeds* only if it reached success and had no IR failure (a success followed by
knocking the object off the table is a failure that needs a human). *IR failure*: some step
had ``info["cost"] > 0`` or ``info["failure"]``. Every evaluator in FARM (scripted policies,
checkpoints, offline members, the online loop's episode counters) uses ``episode_success``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from failurebench_sim.command import hold_still_if_nonfinite


def episode_success(reached_success: bool, ir_failure: bool) -> bool:
    """FARM's success rule (see the module docstring)."""
    return bool(reached_success) and not bool(ir_failure)


def step_failed(info: dict[str, Any]) -> bool:
    """Did this step end in an IR failure (FailureBench's cost, or a ``failure`` flag)?"""
    return float(info.get("cost", 0.0)) > 0 or bool(info.get("failure", False))


@dataclass(frozen=True)
class EpisodeResult:
    """One episode's outcome."""

    ret: float
    steps: int
    reached_success: bool
    ir_failure: bool
    nonfinite_actions: int = 0

    @property
    def success(self) -> bool:
        return episode_success(self.reached_success, self.ir_failure)


def run_episode(
    env: gym.Env,
    act: Callable[[np.ndarray], np.ndarray],
    seed: int,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> EpisodeResult:
    """Reset with ``seed`` and step ``act(obs)`` until termination, truncation or ``max_steps``.

    Non-finite actions hold still (zeros) and are counted instead of crashing the env.
    """
    obs, _ = env.reset(seed=seed, options=options)
    ret, t, reached, failed, bad = 0.0, 0, False, False, 0
    while max_steps is None or t < max_steps:
        action, n_bad = hold_still_if_nonfinite(np.asarray(act(obs), dtype=np.float32))
        bad += n_bad
        obs, reward, terminated, truncated, info = env.step(action)
        ret, t = ret + float(reward), t + 1
        reached |= bool(info.get("success", 0) > 0)
        failed |= step_failed(info)
        if terminated or truncated:
            break
    return EpisodeResult(ret, t, reached, failed, bad)


def summarize(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Rates and return statistics over episodes."""
    if not results:
        raise ValueError("no episodes to summarise")
    returns = np.array([r.ret for r in results], dtype=np.float64)
    return {
        "episodes": len(results),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "success_rate": float(np.mean([r.success for r in results])),
        "failure_rate": float(np.mean([r.ir_failure for r in results])),
        "length_mean": float(np.mean([r.steps for r in results])),
        "returns": returns.tolist(),
        "nonfinite_actions": int(sum(r.nonfinite_actions for r in results)),
    }
