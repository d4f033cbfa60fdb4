"""Q(s,a) and V(s) by IQL expectile regression with double Q and a Polyak target (Uni-O4 ``IQL_Q_V``).

L_V = E[ |omega - 1(u < 0)| u^2 ],  u = min_k Q'_k(s, a) - V(s)        (expectile, omega 0.7)
L_Q = E[ sum_k (Q_k(s, a) - (r + gamma (1 - d) V(s')))^2 ]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from farm_policies.actor import ObsNormalizer, ValueNet
from farm_policies.networks import VALUE_HEAD_GAIN, mlp

from .data import Transitions


class DoubleQ(nn.Module):
    """Two Q heads on [normalised s, a]; ``forward -> (q1, q2)``, each shape (...,)."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: int = 256,
        depth: int = 3,
        obs_mean: Any = None,
        obs_std: Any = None,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.hidden, self.depth = obs_dim, act_dim, hidden, depth
        self.normalizer = ObsNormalizer(obs_dim, obs_mean, obs_std)
        self.q1 = mlp(obs_dim + act_dim, 1, hidden, depth, out_gain=VALUE_HEAD_GAIN)
        self.q2 = mlp(obs_dim + act_dim, 1, hidden, depth, out_gain=VALUE_HEAD_GAIN)

    def config(self) -> dict[str, Any]:
        """Architecture needed to rebuild this module."""
        return {
            "class": "DoubleQ",
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden": self.hidden,
            "depth": self.depth,
        }

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([self.normalizer(obs), action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def min_q(self, obs: Tensor, action: Tensor) -> Tensor:
        """min(Q1, Q2): the pessimistic estimate used for advantages and OPE."""
        return torch.minimum(*self(obs, action))


def expectile_loss(u: Tensor, omega: float) -> Tensor:
    """Mean of |omega - 1(u < 0)| * u^2 (u = target - prediction)."""
    weight = torch.where(u > 0, omega, 1.0 - omega)
    return (weight * u.pow(2)).mean()


@dataclass
class IQLCritic:
    """Double Q, its Polyak target, and the expectile V that Q bootstraps from."""

    q: DoubleQ
    q_target: DoubleQ
    v: ValueNet

    @classmethod
    def build(cls, data: Transitions, hidden: int = 256, depth: int = 3) -> IQLCritic:
        stats = {"obs_mean": data.obs_mean, "obs_std": data.obs_std}
        q = DoubleQ(data.obs_dim, data.act_dim, hidden, depth, **stats)
        v = ValueNet(data.obs_dim, hidden, depth, **stats)
        return cls(q=q, q_target=copy.deepcopy(q).requires_grad_(False), v=v)

    def advantage(self, obs: Tensor, action: Tensor) -> Tensor:
        """A(s, a) = min_k Q_k(s, a) - V(s)."""
        return self.q.min_q(obs, action) - self.v(obs)


def v_loss(critic: IQLCritic, batch: dict[str, Tensor], omega: float) -> Tensor:
    """L_V: expectile regression of V(s) onto the target min-Q."""
    with torch.no_grad():
        target_q = critic.q_target.min_q(batch["obs"], batch["actions"])
    return expectile_loss(target_q - critic.v(batch["obs"]), omega)


def q_loss(critic: IQLCritic, batch: dict[str, Tensor], gamma: float) -> Tensor:
    """L_Q: both heads regress onto y = r + gamma (1 - d) V(s')."""
    with torch.no_grad():
        y = batch["rewards"] + gamma * (1.0 - batch["terminated"]) * critic.v(batch["next_obs"])
    q1, q2 = critic.q(batch["obs"], batch["actions"])
    return ((q1 - y).pow(2) + (q2 - y).pow(2)).mean()


@torch.no_grad()
def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta' <- tau * theta + (1 - tau) * theta'."""
    for tp, sp in zip(target.parameters(), source.parameters(), strict=True):
        tp.lerp_(sp, tau)


def fit_iql(
    critic: IQLCritic,
    data: Transitions,
    steps: int,
    gamma: float = 0.99,
    omega: float = 0.7,
    lr: float = 1e-4,
    batch_size: int = 512,
    tau: float = 0.005,
    target_update_freq: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train V then Q on each minibatch (Uni-O4 order); returns per-step loss histories."""
    gen = torch.Generator().manual_seed(seed)
    q_opt = torch.optim.Adam(critic.q.parameters(), lr=lr)
    v_opt = torch.optim.Adam(critic.v.parameters(), lr=lr)
    hist: dict[str, list[float]] = {"q_loss": [], "v_loss": []}
    for step in tqdm(range(steps), desc="Q/V (IQL)", disable=not progress, leave=False):
        idx = data.sample_idx(batch_size, gen)
        batch = data.batch(idx)
        lv = v_loss(critic, batch, omega)
        v_opt.zero_grad()
        lv.backward()
        v_opt.step()
        lq = q_loss(critic, batch, gamma)
        q_opt.zero_grad()
        lq.backward()
        q_opt.step()
        if (step + 1) % target_update_freq == 0:
            polyak(critic.q_target, critic.q, tau)
        hist["q_loss"].append(lq.item())
        hist["v_loss"].append(lv.item())
    return hist
