"""Short environment evaluation of offline policies (used for the offline report only)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from farm_policies.actor import TanhGaussianActor


def make_eval_env(task: str, seed: int = 0) -> tuple[gym.Env, str] | None:
    """A FailureBench env for ``task`` (short or full id), else a MetaWorld MT1 env, else None."""
    try:
        import failurebench_sim

        env_id = task if "/" in task else f"FailureBench/{task}"
        if env_id in getattr(failurebench_sim, "TASK_IDS", ()):
            return gym.make(env_id), env_id
    except ImportError:
        pass
    try:
        import metaworld  # noqa: F401  (registers Meta-World/*)

        return gym.make("Meta-World/MT1", env_name=task, seed=seed), f"Meta-World/MT1:{task}"
    except Exception:  # unknown task name or MetaWorld missing
        return None


def normalized_return(env_id: str, raw: float) -> float | None:
    """FailureBench's expert/random-normalised return, or None where no reference exists."""
    try:
        from failurebench_sim.normalize import normalized_return as norm

        return float(norm(env_id, raw))
    except (ImportError, KeyError):
        return None


@torch.no_grad()
def evaluate_actor(
    actor: TanhGaussianActor,
    env: gym.Env,
    episodes: int = 5,
    seed: int = 0,
    reset_options: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> dict[str, float]:
    """Deterministic roll-outs: mean return, success rate, failure rate (cost > 0), mean length."""
    returns, successes, failures, lengths = [], [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep, options=reset_options)
        ret, success, failure, t = 0.0, False, False, 0
        while True:
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
            action = actor.act(x, deterministic=True)[0].numpy()
            obs, reward, terminated, truncated, info = env.step(action)
            ret, t = ret + float(reward), t + 1
            success |= bool(info.get("success", False))
            failure |= bool(info.get("failure", False)) or float(info.get("cost", 0.0)) > 0
            if terminated or truncated or (max_steps is not None and t >= max_steps):
                break
        returns.append(ret)
        successes.append(success)
        failures.append(failure)
        lengths.append(t)
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "success_rate": float(np.mean(successes)),
        "failure_rate": float(np.mean(failures)),
        "episode_length": float(np.mean(lengths)),
        "episodes": episodes,
    }
