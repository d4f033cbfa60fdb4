"""Offline transitions as tensors, validated from a FailureBench ``Dataset`` (or look-alike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

REQUIRED_FIELDS = (
    "observations",
    "actions",
    "rewards",
    "terminated",
    "truncated",
    "episode_ids",
    "next_observations",
)
ACTION_TOL = 1e-4


class OfflineDataError(ValueError):
    """The offline dataset is malformed (missing field, bad shape, NaN, out-of-range action)."""


@dataclass
class Transitions:
    """(s, a, r, s', terminated, episode_end) as float32 tensors, plus observation statistics.

    ``rewards`` are already multiplied by ``reward_scale``. ``episode_end`` marks the last
    transition of each episode (terminated, truncated, or the episode id changes next).
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    next_obs: Tensor
    terminated: Tensor
    episode_end: Tensor
    obs_mean: np.ndarray
    obs_std: np.ndarray
    reward_scale: float
    metadata: dict[str, Any]

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    def sample_idx(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """Uniform minibatch indices (with replacement, like Uni-O4's buffer)."""
        return torch.randint(0, len(self), (batch_size,), generator=generator)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """Minibatch dict with keys obs, actions, rewards, next_obs, terminated."""
        return {
            "obs": self.obs[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_obs": self.next_obs[idx],
            "terminated": self.terminated[idx],
        }

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of every episode, in raw (unscaled) reward units."""
        ends = self.episode_end.numpy()
        r = self.rewards.numpy() / self.reward_scale
        starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
        return np.add.reduceat(r, starts) if len(r) else np.zeros(0)


def obs_statistics(obs: np.ndarray, std_floor: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std, std floored so constant dims are only centred."""
    mean = obs.mean(0).astype(np.float32)
    std = np.maximum(obs.std(0), std_floor).astype(np.float32)
    return mean, std


def _field(dataset: Any, name: str) -> np.ndarray:
    if not hasattr(dataset, name):
        raise OfflineDataError(
            f"dataset has no field {name!r} (needs {', '.join(REQUIRED_FIELDS)})"
        )
    arr = np.asarray(getattr(dataset, name))
    if arr.dtype == object:
        raise OfflineDataError(f"dataset field {name!r} has dtype object")
    return arr


def episode_ends(
    terminated: np.ndarray, truncated: np.ndarray, episode_ids: np.ndarray
) -> np.ndarray:
    """True on the last transition of every episode (the final transition always ends one)."""
    ends = terminated | truncated
    ends[:-1] |= episode_ids[1:] != episode_ids[:-1]
    ends[-1] = True
    return ends


def to_transitions(dataset: Any, reward_scale: float = 1.0, std_floor: float = 1e-2) -> Transitions:
    """Validate a ``failurebench_sim.datasets.Dataset``-like object and convert it to tensors."""
    f = {name: _field(dataset, name) for name in REQUIRED_FIELDS}
    obs, act = f["observations"], f["actions"]
    if obs.ndim != 2 or act.ndim != 2:
        raise OfflineDataError(
            f"observations and actions must be 2-D, got {obs.shape} and {act.shape}"
        )
    n = obs.shape[0]
    if n < 2:
        raise OfflineDataError(f"dataset needs at least 2 transitions, got {n}")
    for name, arr in f.items():
        if arr.shape[0] != n:
            raise OfflineDataError(f"field {name!r} has {arr.shape[0]} rows, observations have {n}")
    if f["next_observations"].shape != obs.shape:
        raise OfflineDataError(
            f"next_observations shape {f['next_observations'].shape} != observations {obs.shape}"
        )
    for name in ("rewards", "terminated", "truncated", "episode_ids"):
        if f[name].ndim != 1:
            raise OfflineDataError(f"field {name!r} must be 1-D, got shape {f[name].shape}")
    for name in ("observations", "actions", "rewards", "next_observations"):
        if not np.all(np.isfinite(f[name])):
            raise OfflineDataError(f"field {name!r} contains NaN or inf")
    if np.abs(act).max() > 1.0 + ACTION_TOL:
        raise OfflineDataError(f"actions must lie in [-1, 1], max |a| = {np.abs(act).max():.4g}")
    if not reward_scale > 0:
        raise OfflineDataError(f"reward_scale must be positive, got {reward_scale}")
    terminated = f["terminated"].astype(bool)
    ends = episode_ends(terminated, f["truncated"].astype(bool), f["episode_ids"])
    mean, std = obs_statistics(obs.astype(np.float64), std_floor)

    def t(x: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))

    return Transitions(
        obs=t(obs),
        actions=t(np.clip(act, -1.0, 1.0)),
        rewards=t(f["rewards"] * reward_scale),
        next_obs=t(f["next_observations"]),
        terminated=t(terminated),
        episode_end=torch.as_tensor(ends),
        obs_mean=mean,
        obs_std=std,
        reward_scale=float(reward_scale),
        metadata=dict(getattr(dataset, "metadata", {}) or {}),
    )
