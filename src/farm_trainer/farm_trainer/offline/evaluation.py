"""Short environment evaluation of offline policies (used for the offline report only)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

import failurebench_sim
from failurebench_sim.episodes import run_episode, summarize
from failurebench_sim.make import make_env, resolve_env_id
from failurebench_sim.normalize import normalized_return_or_none
from farm_policies.actor import TanhGaussianActor


def make_eval_env(task: str, seed: int = 0) -> tuple[gym.Env, str] | None:
    """A FailureBench env for ``task`` (short or full id), else a MetaWorld MT1 env, else None."""
    env_id = resolve_env_id(task)
    if env_id in failurebench_sim.TASK_IDS:
        return make_env(env_id), env_id
    try:
        import metaworld  # noqa: F401  (registers Meta-World/*)

        return gym.make("Meta-World/MT1", env_name=task, seed=seed), f"Meta-World/MT1:{task}"
    except Exception:  # unknown task name or MetaWorld missing
        return None


def normalized_return(env_id: str, raw: float) -> float | None:
    """FailureBench's expert/random-normalised return, or None where no reference exists."""
    norm = normalized_return_or_none(env_id, raw)
    return None if norm is None else float(norm)


@torch.no_grad()
def evaluate_actor(
    actor: TanhGaussianActor,
    env: gym.Env,
    episodes: int = 5,
    seed: int = 0,
    reset_options: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> dict[str, float]:
    """Deterministic roll-outs: mean return, success rate (``failurebench_sim.episodes``'s
    rule), failure rate (cost > 0), mean length."""

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        return actor.act(x, deterministic=True)[0].numpy()

    results = [
        run_episode(env, act, seed + ep, options=reset_options, max_steps=max_steps)
        for ep in range(episodes)
    ]
    s = summarize(results)
    return {
        "return_mean": s["return_mean"],
        "return_std": s["return_std"],
        "success_rate": s["success_rate"],
        "failure_rate": s["failure_rate"],
        "episode_length": s["length_mean"],
        "episodes": episodes,
    }
