"""V(s) by Monte-Carlo return regression (Uni-O4 ``ValueLearner`` + ``compute_return``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from farm_policies.actor import ValueNet


def mc_returns(
    rewards: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float,
    bootstrap: np.ndarray | None = None,
) -> np.ndarray:
    """Discounted return-to-go G_t = r_t + gamma * G_{t+1}, computed backwards per episode.

    On a terminated step G_t = r_t. On an episode end that is not a termination (time-limit
    truncation, or the data simply stop) the tail is bootstrapped: G_t = r_t + gamma * b_t with
    ``bootstrap[t]`` = V(s'_t) if given, else 0 (Uni-O4 uses 0 and lets returns leak across
    episodes; we never cross an episode boundary).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    terminated = np.asarray(terminated, dtype=bool)
    episode_end = np.asarray(episode_end, dtype=bool)
    if not rewards.shape == terminated.shape == episode_end.shape or rewards.ndim != 1:
        raise ValueError("rewards, terminated and episode_end must be 1-D arrays of equal length")
    tail = np.zeros_like(rewards) if bootstrap is None else np.asarray(bootstrap, np.float64)
    returns = np.zeros_like(rewards)
    g = 0.0
    for t in reversed(range(len(rewards))):
        if terminated[t]:
            g = rewards[t]
        elif episode_end[t]:
            g = rewards[t] + gamma * tail[t]
        else:
            g = rewards[t] + gamma * g
        returns[t] = g
    return returns.astype(np.float32)


def value_mc_loss(value: ValueNet, obs: Tensor, returns: Tensor) -> Tensor:
    """MSE(V(s), G)."""
    return F.mse_loss(value(obs), returns)


def fit_value_mc(
    value: ValueNet,
    obs: Tensor,
    returns: Tensor,
    steps: int,
    lr: float = 1e-4,
    batch_size: int = 512,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Regress V onto Monte-Carlo returns with Adam; returns the loss history (every step)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(value.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="V (Monte-Carlo)", disable=not progress, leave=False):
        idx = torch.randint(0, obs.shape[0], (batch_size,), generator=gen)
        loss = value_mc_loss(value, obs[idx], returns[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
