"""A second off-policy evaluation that shares nothing with the IQL critic: model returns.

    G_e(pi, s_0) = sum_{t<H} gamma^t r_e(s_t, mu(s_t)) + gamma^H V_MC(s_H),
    s_{t+1} = f_e(s_t, mu(s_t))                              (one roll-out per ensemble member e)

``f_e`` is member e of the OPE dynamics ensemble, ``r_e`` member e of a reward ensemble fitted
here on the (scaled) dataset rewards, and ``V_MC`` the Monte-Carlo value (regressed on dataset
returns, not on the IQL Q that drives offline PPO and Uni-O4's OPE). Keeping the members apart
gives one estimate per model, so a decision can ask for an improvement under every model
(MOPO/MOBILE-style pessimism) rather than under their average. ``replay_error`` measures how
far the same estimator is from the truth where the truth is known: replaying the dataset's own
action sequences, against the dataset's discounted rewards (a lower bound on its error on a new
policy's roll-outs, which leave the data).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from farm_policies.actor import TanhGaussianActor, ValueNet

from .data import Transitions
from .ope import DynamicsEnsemble, StateActionEnsemble, fit_ensemble


class RewardEnsemble(StateActionEnsemble):
    """E MLPs on (normalised s, a) -> scaled reward; ``forward -> (E, B)``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        n_members: int = 5,
        hidden: int = 200,
        depth: int = 2,
        obs_mean: Any = None,
        obs_std: Any = None,
    ) -> None:
        super().__init__(obs_dim, act_dim, 1, n_members, hidden, depth, obs_mean, obs_std)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """Reward predictions, (E, B); obs/action are (B, .) or (E, B, .)."""
        return super().forward(obs, action).squeeze(-1)

    def member_forward(self, obs: Tensor, action: Tensor, member: int) -> Tensor:
        """Reward prediction of one member for a (B, .) batch, shape (B,)."""
        return super().member_forward(obs, action, member).squeeze(-1)

    @classmethod
    def for_data(
        cls, data: Transitions, n_members: int = 5, hidden: int = 200, depth: int = 2
    ) -> RewardEnsemble:
        """Build with the dataset's observation statistics."""
        return cls(data.obs_dim, data.act_dim, n_members, hidden, depth,
                   obs_mean=data.obs_mean, obs_std=data.obs_std)  # fmt: skip


def fit_reward(
    model: RewardEnsemble,
    data: Transitions,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """The ensemble's reward MSE (``ope.fit_ensemble``); returns the loss history."""

    def loss(i: Tensor) -> Tensor:
        return (model(data.obs[i], data.actions[i]) - data.rewards[i]).pow(2).mean()

    return fit_ensemble(model, loss, len(data), steps, lr, batch_size, seed, progress,
                        "reward model")  # fmt: skip


@torch.no_grad()
def model_returns(
    actor: TanhGaussianActor,
    dynamics: DynamicsEnsemble,
    reward: RewardEnsemble,
    value: ValueNet,
    init_obs: Tensor,
    horizon: int,
    gamma: float,
) -> Tensor:
    """G_e(pi, s_0) for every member e and start state: shape (E, N), deterministic actions."""
    if horizon < 1:
        raise ValueError(f"model-return horizon must be >= 1, got {horizon}")
    if reward.n_members != dynamics.n_members:
        raise ValueError(
            f"reward ensemble has {reward.n_members} members, dynamics {dynamics.n_members}"
        )
    n = init_obs.shape[0]
    out = torch.empty(dynamics.n_members, n)
    for e in range(dynamics.n_members):
        member = torch.full((n,), e, dtype=torch.long)
        obs, total = init_obs, torch.zeros(n)
        for t in range(horizon):
            action = actor.act(obs, deterministic=True)
            total += math.pow(gamma, t) * reward.member_forward(obs, action, e)
            obs = dynamics.step(obs, action, member)
        out[e] = total + math.pow(gamma, horizon) * value(obs)
    return out


@torch.no_grad()
def replay_errors(
    dynamics: DynamicsEnsemble,
    reward: RewardEnsemble,
    value: ValueNet,
    data: Transitions,
    n_starts: int,
    horizon: int,
    gamma: float,
    seed: int = 0,
) -> Tensor:
    """Signed errors G_e - G, shape (E, n_starts), on ``n_starts`` dataset windows of
    ``horizon`` steps inside one episode: G_e replays the window's actions in member e's model,
    G is the window's discounted dataset rewards; both end in V_MC (at the model's and the real
    state; not after a terminated last step). Empty (E, 0) when no episode is long enough."""
    end = data.episode_end.numpy() > 0
    ends = torch.as_tensor(np.flatnonzero(end))
    # a window [t, t + H) is valid when no episode ends before its last step
    if len(ends) == 0:
        return torch.zeros(dynamics.n_members, 0)
    pos = torch.searchsorted(ends, torch.arange(len(data))).clamp_max(len(ends) - 1)
    next_end = ends[pos]
    valid = torch.nonzero(next_end >= torch.arange(len(data)) + horizon - 1).squeeze(1)
    if len(valid) == 0:
        return torch.zeros(dynamics.n_members, 0)
    gen = torch.Generator().manual_seed(seed)
    starts = valid[torch.randint(0, len(valid), (n_starts,), generator=gen)]
    steps = starts.unsqueeze(1) + torch.arange(horizon)  # (N, H)
    disc = gamma ** torch.arange(horizon, dtype=torch.float32)
    last = steps[:, -1]
    tail = gamma**horizon * (1.0 - data.terminated[last])  # no bootstrap past a termination
    truth = (data.rewards[steps] * disc).sum(1) + tail * value(data.next_obs[last])
    errors = []
    for e in range(dynamics.n_members):
        member = torch.full((len(starts),), e, dtype=torch.long)
        obs, total = data.obs[starts], torch.zeros(len(starts))
        for t in range(horizon):
            action = data.actions[steps[:, t]]
            total += disc[t] * reward.member_forward(obs, action, e)
            obs = dynamics.step(obs, action, member)
        errors.append(total + tail * value(obs) - truth)
    return torch.stack(errors)


def replay_error(errors: Tensor) -> float:
    """Max over members of the mean |G_e - G| of ``replay_errors``: the error of ONE model
    return. NaN when there are no windows (or a member's error is NaN)."""
    return float(errors.abs().mean(dim=1).max()) if errors.shape[1] else float("nan")


def replay_bias(errors: Tensor) -> float:
    """Max over members of |mean (G_e - G)| of ``replay_errors``: the model's systematic error
    on the data's policy. Start-state noise in the model's error averages out of a mean over
    start states (the paired lower bound's standard error covers what is left), and a bias
    common to two policies cancels in their difference. NaN as ``replay_error``."""
    return float(errors.mean(dim=1).abs().max()) if errors.shape[1] else float("nan")
