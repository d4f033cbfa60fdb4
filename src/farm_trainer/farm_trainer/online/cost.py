"""Cost-signal hooks: how constrained baselines (PPO-Lagrangian, P3O, CPO) plug into the loop.

A ``CostHook`` sees every rollout, including per-step costs, and returns the advantages the
PPO loss should use. ``LagrangianCostHook`` is a working PPO-Lagrangian.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from farm_policies import ValueNet
from farm_trainer.online.gae import compute_gae
from farm_trainer.online.rollout import Rollout


@runtime_checkable
class CostHook(Protocol):
    """``hook(rollout, reward_advantages (T, n)) -> advantages (T, n)`` used by PPO."""

    def __call__(self, rollout: Rollout, advantages: Tensor) -> Tensor: ...


def episode_costs(rollout: Rollout) -> np.ndarray:
    """Summed cost of every episode that ended inside the rollout (may be empty)."""
    T, n = rollout.shape
    done = rollout.terminated | rollout.truncated
    out, acc = [], np.zeros(n)
    for t in range(T):
        acc += rollout.costs[t]
        out.extend(acc[done[t]].tolist())
        acc[done[t]] = 0.0
    return np.asarray(out)


class LagrangianCostHook(nn.Module):
    """PPO-Lagrangian: A = (A_r - lambda * A_c) / (1 + lambda), lambda <- [lambda + lr (J_c - d)]+.

    ``A_c`` is GAE on costs with a learned cost critic V_c; J_c is the mean episode cost of the
    episodes finished in the rollout and ``cost_limit`` the budget d.
    """

    def __init__(
        self,
        cost_critic: ValueNet,
        cost_limit: float = 0.0,
        lr_lambda: float = 0.05,
        lr_critic: float = 2e-4,
        gamma: float = 0.99,
        lam: float = 0.95,
        critic_epochs: int = 5,
    ) -> None:
        super().__init__()
        self.cost_critic = cost_critic
        self.register_buffer("lagrange", torch.zeros(()))
        self.cost_limit, self.lr_lambda = cost_limit, lr_lambda
        self.gamma, self.lam, self.critic_epochs = gamma, lam, critic_epochs
        self.opt = torch.optim.Adam(cost_critic.parameters(), lr_critic, eps=1e-5)
        self.last_stats: dict[str, float] = {}

    def __call__(self, rollout: Rollout, advantages: Tensor) -> Tensor:
        T, n = rollout.shape
        obs, next_obs = rollout.flat("obs"), rollout.flat("next_obs")
        with torch.no_grad():
            vc = self.cost_critic(obs).reshape(T, n)
            next_vc = self.cost_critic(next_obs).reshape(T, n)
        adv_c, ret_c = compute_gae(
            rollout.costs, vc, next_vc, rollout.terminated, rollout.truncated, self.gamma, self.lam
        )
        ep_costs = episode_costs(rollout)
        if ep_costs.size:
            new = self.lagrange + self.lr_lambda * (float(ep_costs.mean()) - self.cost_limit)
            self.lagrange.copy_(new.clamp(min=0.0))
        loss = torch.zeros(())
        for _ in range(self.critic_epochs):
            loss = 0.5 * (self.cost_critic(obs) - ret_c.reshape(-1)).pow(2).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.cost_critic.parameters(), 0.5)
            self.opt.step()
        lam_ = float(self.lagrange)
        self.last_stats = {
            "lagrange": lam_,
            "cost_v_loss": loss.item(),
            "ep_cost": float(ep_costs.mean()) if ep_costs.size else float("nan"),
        }
        return (advantages - lam_ * adv_c) / (1.0 + lam_)
