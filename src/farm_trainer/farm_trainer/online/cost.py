"""Cost-signal hooks: how the constrained baselines (PPO-Lagrangian, P3O, CPO) plug into PPO.

Each hook owns a ``CostCritic`` (V_c(s) trained online on FailureBench's binary IR-failure cost,
GAE on costs, the recent episode cost J_c). ``PPOLearner`` calls ``hook(rollout, A_r)`` for the
advantages of the reward surrogate; a hook may also give

- ``cost_advantages`` (set by the call): A_c for the batch, centred but not rescaled (OmniSafe's
  ``standardized_adv_c``: rescaling would change the cost budget);
- ``actor_penalty(log_ratio, A_c) -> loss`` added to every PPO minibatch's actor loss (P3O);
- ``actor_update(actor, batch) -> stats`` replacing the PPO actor epochs by one step (CPO,
  ``farm_trainer.online.cpo``); the critic is still fitted by PPO's value loss.

The formulations follow OmniSafe (PKU-Alignment/omnisafe, ``naive_lagrange/ppo_lag.py``,
``penalty_function/p3o.py``, ``second_order/cpo.py``); the code is ours.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farm_policies import ValueNet
from farm_trainer.online.gae import compute_gae
from farm_trainer.online.ppo import LOG_RATIO_BOUND
from farm_trainer.online.rollout import Rollout


@runtime_checkable
class CostHook(Protocol):
    """``hook(rollout, reward_advantages (T, n)) -> advantages (T, n)`` used by PPO."""

    def __call__(self, rollout: Rollout, advantages: Tensor) -> Tensor: ...


def finished_episodes(rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
    """Summed cost and length of every episode that ended inside the rollout (may be empty).

    An episode that began before the rollout counts only its steps inside it."""
    T, n = rollout.shape
    done = rollout.terminated | rollout.truncated
    costs, lengths = [], []
    acc, steps = np.zeros(n), np.zeros(n)
    for t in range(T):
        acc += rollout.costs[t]
        steps += 1
        costs.extend(acc[done[t]].tolist())
        lengths.extend(steps[done[t]].tolist())
        acc[done[t]], steps[done[t]] = 0.0, 0.0
    return np.asarray(costs), np.asarray(lengths)


class CostCritic(nn.Module):
    """V_c(s) fitted online to discounted cost returns, GAE on costs, J_c and the budget d.

    J_c is the mean cost of the last ``window`` finished episodes (a rollout of 2048 steps
    ends only a few 500-step episodes; OmniSafe's epoch statistic spans more).
    """

    def __init__(
        self,
        cost_critic: ValueNet,
        cost_limit: float = 0.0,
        lr_critic: float = 2e-4,
        gamma: float = 0.99,
        lam: float = 0.95,
        critic_epochs: int = 5,
        window: int = 20,
    ) -> None:
        super().__init__()
        self.cost_critic, self.cost_limit = cost_critic, cost_limit
        self.gamma, self.lam, self.epochs = gamma, lam, critic_epochs
        self.opt = torch.optim.Adam(cost_critic.parameters(), lr_critic, eps=1e-5)
        # (cost, length) of the last `window` episodes, NaN rows unused: a buffer, so the
        # checkpoint (safetensors: tensors only) keeps J_c across a resume
        self.register_buffer("recent_episodes", torch.full((window, 2), float("nan")))
        self.last_stats: dict[str, float] = {}
        self.cost_advantages: Tensor | None = None

    def _recent(self) -> Tensor:
        return self.recent_episodes[~self.recent_episodes[:, 0].isnan()]

    @property
    def seen_episodes(self) -> bool:
        return len(self._recent()) > 0

    @property
    def episode_cost(self) -> float:
        """J_c over the recent episodes (0 before any episode finished)."""
        rows = self._recent()
        return float(rows[:, 0].mean()) if len(rows) else 0.0

    @property
    def episode_length(self) -> float:
        rows = self._recent()
        return float(rows[:, 1].mean()) if len(rows) else 1.0

    def fit(self, rollout: Rollout) -> Tensor:
        """A_c (T, n) under the current V_c; then V_c takes ``epochs`` steps on the returns."""
        T, n = rollout.shape
        obs, next_obs = rollout.flat("obs"), rollout.flat("next_obs")
        with torch.no_grad():
            vc = self.cost_critic(obs).reshape(T, n)
            next_vc = self.cost_critic(next_obs).reshape(T, n)
        adv_c, ret_c = compute_gae(
            rollout.costs, vc, next_vc, rollout.terminated, rollout.truncated, self.gamma, self.lam
        )
        costs, lengths = finished_episodes(rollout)
        if costs.size:
            new = torch.as_tensor(np.stack([costs, lengths], 1), dtype=torch.float32)
            window = len(self.recent_episodes)
            self.recent_episodes.copy_(torch.cat([self.recent_episodes, new])[-window:])
        loss = torch.zeros(())
        for _ in range(self.epochs):
            loss = 0.5 * (self.cost_critic(obs) - ret_c.reshape(-1)).pow(2).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.cost_critic.parameters(), 0.5)
            self.opt.step()
        self.cost_advantages = adv_c - adv_c.mean()
        self.last_stats = {
            "cost_v_loss": loss.item(),
            "ep_cost": self.episode_cost,
            "ep_cost_rollout": float(costs.mean()) if costs.size else float("nan"),
        }
        return adv_c


class LagrangianCostHook(CostCritic):
    """PPO-Lagrangian: A = (A_r - lambda * A_c) / (1 + lambda), lambda <- [lambda + lr (J_c - d)]+.

    ``cost_limit`` is the budget d on the episode cost (here: the IR-failure rate per episode).
    """

    def __init__(
        self, cost_critic: ValueNet, cost_limit: float = 0.0, lr_lambda: float = 0.05, **kw: Any
    ) -> None:
        super().__init__(cost_critic, cost_limit, **kw)
        self.register_buffer("lagrange", torch.zeros(()))
        self.lr_lambda = lr_lambda

    def __call__(self, rollout: Rollout, advantages: Tensor) -> Tensor:
        adv_c = self.fit(rollout)
        if self.seen_episodes:
            new = self.lagrange + self.lr_lambda * (self.episode_cost - self.cost_limit)
            self.lagrange.copy_(new.clamp(min=0.0))
        lam_ = float(self.lagrange)
        self.last_stats["lagrange"] = lam_
        return (advantages - lam_ * adv_c) / (1.0 + lam_)


class P3OCostHook(CostCritic):
    """P3O: actor loss = PPO-clip(A_r) + kappa * relu(E[rho * A_c] + J_c - d) (exact penalty)."""

    def __init__(
        self, cost_critic: ValueNet, cost_limit: float = 0.0, kappa: float = 20.0, **kw: Any
    ) -> None:
        super().__init__(cost_critic, cost_limit, **kw)
        self.kappa = kappa

    def __call__(self, rollout: Rollout, advantages: Tensor) -> Tensor:
        self.fit(rollout)
        self.last_stats["violation"] = self.episode_cost - self.cost_limit
        return advantages

    def actor_penalty(self, log_ratio: Tensor, cost_adv: Tensor) -> Tensor:
        ratio = log_ratio.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND).exp()
        surrogate = (ratio * cost_adv).mean()
        return self.kappa * F.relu(surrogate + (self.episode_cost - self.cost_limit))


class CPOCostHook(CostCritic):
    """CPO: one trust-region step per batch on the reward surrogate under the cost constraint
    (conjugate gradient on the Fisher, the four feasibility cases, backtracking line search);
    see ``farm_trainer.online.cpo``."""

    def __init__(
        self,
        cost_critic: ValueNet,
        cost_limit: float = 0.0,
        target_kl: float = 0.01,
        cg_iters: int = 15,
        cg_damping: float = 0.1,
        line_search_steps: int = 15,
        **kw: Any,
    ) -> None:
        super().__init__(cost_critic, cost_limit, **kw)
        self.target_kl = target_kl
        self.cg_iters, self.cg_damping = cg_iters, cg_damping
        self.line_search_steps = line_search_steps

    def __call__(self, rollout: Rollout, advantages: Tensor) -> Tensor:
        self.fit(rollout)
        return advantages

    def actor_update(self, actor: nn.Module, batch: object) -> dict[str, float]:
        from farm_trainer.online.cpo import cpo_step

        # OmniSafe: the constraint's offset is the per-step violation (J_c - d) / episode length
        violation = (self.episode_cost - self.cost_limit) / max(self.episode_length, 1.0)
        stats = cpo_step(actor, batch, violation, self.target_kl, self.cg_iters,
                         self.cg_damping, self.line_search_steps)  # fmt: skip
        self.last_stats.update(stats)
        return stats
