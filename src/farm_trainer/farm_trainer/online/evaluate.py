"""Episode-level evaluation of a policy: return, normalised return, success and failure rates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from failurebench_sim.episodes import run_episode, summarize
from failurebench_sim.make import make_env
from failurebench_sim.normalize import normalized_return_or_none
from farm_policies import Policy
from farm_safety_critic.filter import ActionFilter


def evaluate_policy(
    policy: Policy,
    env_id: str | Callable[[], gym.Env],
    episodes: int = 10,
    seed0: int = 0,
    deterministic: bool = True,
    action_filter: ActionFilter | None = None,
    max_steps: int = 100_000,
) -> dict[str, Any]:
    """Run ``episodes`` episodes (reset seeds ``seed0 + i``) and summarise them
    (``failurebench_sim.episodes``: success only without an IR failure)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = env_id() if callable(env_id) else make_env(env_id)
    results, replaced = [], []
    try:
        for ep in range(episodes):
            count = [0]

            def act(obs: np.ndarray, count: list[int] = count) -> np.ndarray:
                action = policy.act(np.asarray(obs, dtype=np.float32), deterministic=deterministic)
                if action_filter is not None:
                    d = action_filter(obs[None].astype(np.float32), action[None])
                    action, count[0] = d.actions[0], count[0] + int(d.replaced[0])
                return action

            results.append(run_episode(env, act, seed0 + ep, max_steps=max_steps))
            replaced.append(count[0] / max(results[-1].steps, 1))
    finally:
        env.close()
    out = summarize(results)
    if action_filter is not None:
        out["replaced_frac"] = float(np.mean(replaced))
    if isinstance(env_id, str):
        norm = normalized_return_or_none(env_id, np.asarray(out["returns"]))
        if norm is not None:
            out["normalized_return_mean"] = float(np.mean(norm))
    return out
