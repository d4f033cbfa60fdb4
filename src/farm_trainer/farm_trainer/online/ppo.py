"""PPO-clip update (seed paper Eq. 3) with Uni-O4's online fine-tuning defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from farm_policies import TanhGaussianActor, ValueNet
from farm_trainer.online.rollout import learned_field


@dataclass
class PPOConfig:
    """Uni-O4 ``ppo_finetune`` defaults (Lei-Kun/Uni-O4, anchors-method.md section 2).

    ``entropy_coef`` multiplies the entropy of the *pre-tanh* Gaussian (closed form, as in
    Uni-O4's Gaussian policy); set it to 0 to disable the bonus. ``reward_scale`` 0.1 is
    Uni-O4's ``scale_strategy='number'``: the critic therefore predicts values of 0.1 * r.
    """

    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.05
    value_clip: float | None = 0.05
    batch_size: int = 2048
    minibatch_size: int = 128
    epochs: int = 10
    lr_actor: float = 2e-5
    lr_critic: float = 2e-4
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    lr_decay: bool = True
    reward_scale: float = 0.1
    normalize_advantages: bool = True
    learn_actions: str = "executed"
    """the actions PPO's ratio is taken on where the gate replaced one: ``executed`` (the
    paper: what ran), ``proposed`` (the task policy's proposal; Recovery RL's relabelling) or
    ``own`` (none: replaced steps leave the policy loss, ``rollout.policy_mask``)"""
    replaced_penalty: float = 0.0
    """reward taken off (before ``reward_scale``) on every step where the gate replaced the task
    policy's action; with ``learn_actions: proposed`` it teaches the policy to stop proposing
    what the gate declines"""
    dual_clip: float = 0.0
    """dual-clip PPO (Ye et al. 2020, c > 1; 0: off, the paper's PPO): where the advantage is
    negative the objective is at least ``dual_clip`` * A. A gate's replacement (a hold, pi_rec's
    action) is executed but was not sampled from pi_task; its ratio can reach e^20, and with a
    negative advantage PPO-clip's min keeps the unclipped ratio * A, so those rows dominate the
    minibatch's (norm-clipped) gradient. Dropped, as ``learn_actions``, for a method without a
    gate: on-policy ratios stay within a few % of 1, where it never binds"""

    def __post_init__(self) -> None:
        learned_field(self.learn_actions)  # raises ValueError on an unknown value
        if not 0.0 <= self.replaced_penalty < float("inf"):
            raise ValueError(
                f"replaced_penalty must be finite and >= 0, got {self.replaced_penalty}"
            )
        if self.dual_clip != 0.0 and not 1.0 < self.dual_clip < float("inf"):
            raise ValueError(f"dual_clip must be 0 (off) or finite and > 1, got {self.dual_clip}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LOG_RATIO_BOUND = 20.0


def ppo_clip_loss(
    new_logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    clip: float,
    mask: Tensor | None = None,
    dual_clip: float = 0.0,
) -> Tensor:
    """Negative PPO-clip objective (Eq. 3): -E[min(rho * A, clip(rho, 1-eps, 1+eps) * A)],
    the mean over the steps ``mask`` keeps (all without one; 0 where it keeps none); with
    ``dual_clip`` c > 1, max(that, c * A) where A < 0 (dual-clip PPO; 0: off)."""
    # the clamp keeps exp() finite for off-policy (recovery) actions whose log-probabilities
    # under pi_task are very low; with A < 0 the min keeps such a ratio unclipped (dual_clip)
    ratio = (new_logp - old_logp).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv)
    if dual_clip:
        surrogate = torch.where(adv < 0, torch.max(surrogate, dual_clip * adv), surrogate)
    if mask is None:
        return -surrogate.mean()
    return -(surrogate * mask).sum() / mask.sum().clamp(min=1.0)


def value_loss(new_v: Tensor, old_v: Tensor, returns: Tensor, clip: float | None) -> Tensor:
    """0.5 * E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)] (unclipped if None)."""
    unclipped = (new_v - returns).pow(2)
    if clip is None:
        return 0.5 * unclipped.mean()
    clipped = (old_v + (new_v - old_v).clamp(-clip, clip) - returns).pow(2)
    return 0.5 * torch.max(unclipped, clipped).mean()


def gaussian_entropy(log_std: Tensor) -> Tensor:
    """Entropy of the pre-tanh diagonal Gaussian, summed over action dims."""
    return (log_std + 0.5 * (1.0 + math.log(2.0 * math.pi))).sum(-1)


def normalized_advantages(adv: Tensor, mask: Tensor | None = None) -> Tensor:
    """Advantages with zero mean and unit std over the steps ``mask`` keeps (all without one);
    fewer than two kept: centred only (unchanged without a mask, as PPO always did)."""
    kept = adv if mask is None else adv[mask > 0]
    if len(kept) >= 2:
        return (adv - kept.mean()) / (kept.std() + 1e-8)
    if mask is None:
        return adv
    return adv - kept.mean() if len(kept) else torch.zeros_like(adv)


@dataclass
class PPOBatch:
    """Flattened on-policy batch; ``actions`` are the EXECUTED actions."""

    obs: Tensor
    actions: Tensor
    logp: Tensor
    advantages: Tensor
    returns: Tensor
    values: Tensor
    cost_advantages: Tensor | None = None
    """A_c for cost hooks that shape the actor loss (P3O) or replace its update (CPO)"""
    policy_mask: Tensor | None = None
    """1 where a step enters the policy loss, 0 where not (``rollout.policy_mask``); None: all"""

    def __len__(self) -> int:
        return self.obs.shape[0]


class PPOUpdater:
    """Separate Adam optimisers for actor and critic, K epochs of minibatch PPO per batch."""

    def __init__(
        self,
        actor: TanhGaussianActor,
        critic: ValueNet,
        config: PPOConfig | None = None,
        total_updates: int | None = None,
    ) -> None:
        self.actor, self.critic = actor, critic
        self.cfg = config or PPOConfig()
        self.total_updates = total_updates
        self.n_updates = 0
        self.skipped_steps = 0
        self.opt_actor = torch.optim.Adam(
            actor.parameters(), self.cfg.lr_actor, eps=self.cfg.adam_eps
        )
        self.opt_critic = torch.optim.Adam(
            critic.parameters(), self.cfg.lr_critic, eps=self.cfg.adam_eps
        )

    def _set_lr(self) -> float:
        frac = 1.0
        if self.cfg.lr_decay and self.total_updates:
            frac = max(0.0, 1.0 - self.n_updates / self.total_updates)
        for opt, lr in ((self.opt_actor, self.cfg.lr_actor), (self.opt_critic, self.cfg.lr_critic)):
            for group in opt.param_groups:
                group["lr"] = lr * frac
        return frac

    def _step(
        self, opt: torch.optim.Optimizer, module: nn.Module, loss: Tensor, max_norm: float
    ) -> None:
        """One clipped gradient step; skipped (and counted) when the loss or gradient is not
        finite, so one bad minibatch cannot turn the weights into NaN."""
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            self.skipped_steps += 1
            return
        loss.backward()
        norm = nn.utils.clip_grad_norm_(module.parameters(), max_norm)
        if not torch.isfinite(norm):
            opt.zero_grad(set_to_none=True)
            self.skipped_steps += 1
            return
        opt.step()

    def update(
        self, batch: PPOBatch, generator: torch.Generator | None = None, hook: Any = None
    ) -> dict[str, float]:
        """Run ``epochs`` passes of shuffled minibatches; return mean diagnostics.

        A cost ``hook`` with ``actor_penalty`` adds it to every minibatch's actor loss; one
        with ``actor_update`` makes the actor's step itself, and the epochs fit the critic only.
        """
        cfg = self.cfg
        lr_frac = self._set_lr()
        penalty = getattr(hook, "actor_penalty", None)
        actor_update = getattr(hook, "actor_update", None)
        if (penalty or actor_update) and batch.cost_advantages is None:
            raise ValueError("this cost hook needs the batch's cost advantages")
        extra = actor_update(self.actor, batch) if actor_update is not None else {}
        stats: dict[str, list[float]] = {
            k: [] for k in ("pi_loss", "v_loss", "entropy", "kl", "clipfrac")
        }
        n = len(batch)
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=generator)
            for start in range(0, n, cfg.minibatch_size):
                idx = perm[start : start + cfg.minibatch_size]
                obs, act, old_logp = batch.obs[idx], batch.actions[idx], batch.logp[idx]
                adv = batch.advantages[idx]
                mask = None if batch.policy_mask is None else batch.policy_mask[idx]
                if cfg.normalize_advantages:
                    adv = normalized_advantages(adv, mask)
                new_logp, log_std = self.actor.evaluate_actions(obs, act)
                entropy = gaussian_entropy(log_std).mean()
                pi_loss = ppo_clip_loss(new_logp, old_logp, adv, cfg.clip, mask, cfg.dual_clip)
                if penalty is not None:
                    pi_loss = pi_loss + penalty(new_logp - old_logp, batch.cost_advantages[idx])
                if actor_update is None and (mask is None or mask.any()):  # none kept: no step
                    self._step(
                        self.opt_actor,
                        self.actor,
                        pi_loss - cfg.entropy_coef * entropy,
                        cfg.max_grad_norm,
                    )
                v_loss = value_loss(
                    self.critic(obs), batch.values[idx], batch.returns[idx], cfg.value_clip
                )
                self._step(self.opt_critic, self.critic, v_loss, cfg.max_grad_norm)
                with torch.no_grad():
                    log_ratio = new_logp - old_logp
                    stats["kl"].append(((log_ratio.exp() - 1) - log_ratio).mean().item())
                    stats["clipfrac"].append(
                        ((log_ratio.exp() - 1).abs() > cfg.clip).float().mean().item()
                    )
                stats["pi_loss"].append(pi_loss.item())
                stats["v_loss"].append(v_loss.item())
                stats["entropy"].append(entropy.item())
        self.n_updates += 1
        out = {k: float(sum(v) / max(len(v), 1)) for k, v in stats.items()}
        out["lr_actor"] = cfg.lr_actor * lr_frac
        out["skipped_steps"] = float(self.skipped_steps)
        return {**out, **extra}

    def optimizer_states(self) -> dict[str, dict[str, Any]]:
        return {"actor": self.opt_actor.state_dict(), "critic": self.opt_critic.state_dict()}

    def load_optimizer_states(self, states: dict[str, dict[str, Any]]) -> None:
        self.opt_actor.load_state_dict(states["actor"])
        self.opt_critic.load_state_dict(states["critic"])
