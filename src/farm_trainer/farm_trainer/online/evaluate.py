"""Episode-level evaluation of a policy: return, normalised return, success and failure rates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from farm_policies import Policy
from farm_trainer.online.action_filter import ActionFilter, hold_still_if_nonfinite
from farm_trainer.online.envs import make_env


def evaluate_policy(
    policy: Policy,
    env_id: str | Callable[[], gym.Env],
    episodes: int = 10,
    seed0: int = 0,
    deterministic: bool = True,
    action_filter: ActionFilter | None = None,
    max_steps: int = 100_000,
) -> dict[str, Any]:
    """Run ``episodes`` episodes (reset seeds ``seed0 + i``) and summarise them.

    Failure = the episode contains a step with ``info['cost'] > 0`` (an IR failure) or
    ``info['failure']``; success = any step with ``info['success']``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = env_id() if callable(env_id) else make_env(env_id)
    returns, lengths, successes, failures, replaced = [], [], [], [], []
    nonfinite = 0
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed0 + ep)
            ret, n, success, failure, rep = 0.0, 0, False, False, 0
            for _ in range(max_steps):
                action = policy.act(np.asarray(obs, dtype=np.float32), deterministic=deterministic)
                if action_filter is not None:
                    d = action_filter(obs[None].astype(np.float32), action[None])
                    action, rep = np.asarray(d.actions[0], np.float32), rep + int(d.replaced[0])
                action, n_bad = hold_still_if_nonfinite(action)
                nonfinite += n_bad
                obs, reward, term, trunc, info = env.step(action)
                ret, n = ret + float(reward), n + 1
                success |= bool(info.get("success", 0) > 0)
                failure |= bool(info.get("cost", 0) > 0 or info.get("failure", False))
                if term or trunc:
                    break
            returns.append(ret)
            lengths.append(n)
            successes.append(success)
            failures.append(failure)
            replaced.append(rep / max(n, 1))
    finally:
        env.close()
    out: dict[str, Any] = {
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "success_rate": float(np.mean(successes)),
        "failure_rate": float(np.mean(failures)),
        "length_mean": float(np.mean(lengths)),
        "returns": returns,
        "nonfinite_actions": nonfinite,
    }
    if action_filter is not None:
        out["replaced_frac"] = float(np.mean(replaced))
    if isinstance(env_id, str):
        try:
            from failurebench_sim.normalize import normalized_return

            out["normalized_return_mean"] = float(
                np.mean(normalized_return(env_id, np.asarray(returns)))
            )
        except (ImportError, KeyError, ValueError):
            pass
    return out
