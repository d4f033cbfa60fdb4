"""Environment construction and per-step info extraction for gymnasium vector envs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from failurebench_sim.make import make_env, resolve_env_id

__all__ = ["make_env", "make_vector_env", "real_next_obs", "resolve_env_id", "step_info"]


def make_vector_env(
    env_fns: Sequence[Callable[[], gym.Env]], vectorization: str = "sync"
) -> gym.vector.VectorEnv:
    """Vector env in SAME_STEP autoreset mode: on episode end the returned obs is already the
    reset obs and ``info['final_obs']`` / ``info['final_info']`` hold the last real step."""
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")


def step_info(info: dict[str, Any], key: str, n_envs: int, default: float = 0.0) -> np.ndarray:
    """``info[key]`` of the step just taken, per env (float64).

    In SAME_STEP mode the info of an env that just ended is the reset info; its step info is
    in ``info['final_info']``, which takes precedence for those envs.
    """
    out = np.full(n_envs, default, dtype=np.float64)
    if key in info:
        mask = np.asarray(info.get("_" + key, np.ones(n_envs, bool)), dtype=bool)
        out[mask] = np.asarray(info[key], dtype=np.float64)[mask]
    final = info.get("final_info")
    if isinstance(final, dict) and key in final:
        mask = np.asarray(final.get("_" + key, np.ones(n_envs, bool)), dtype=bool)
        mask &= np.asarray(info.get("_final_info", np.ones(n_envs, bool)), dtype=bool)
        out[mask] = np.asarray(final[key], dtype=np.float64)[mask]
    return out


def real_next_obs(next_obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """s_{t+1} of the step just taken: ``final_obs`` where the episode ended, else ``next_obs``."""
    out = np.array(next_obs, dtype=np.float32, copy=True)
    if "final_obs" in info:
        for i in np.flatnonzero(info["_final_obs"]):
            out[i] = info["final_obs"][i]
    return out
