"""World-model training objective of FARL (Eq. 4-9), one short function per term.

Every term is a per-step loss (T, B) reduced by ``weighted``: sum_i sum_b w_ib * l_ib / (T * B)
with w_ib = rho^i * mask_ib (Eq. 4's lambda^i; padded steps after a terminal have mask 0).

Choices (documented defaults of ``LossConfig``):

* Coefficients c1 (reward) = 0.1, c2 (value) = 0.1, c3 (consistency) = 20 as TD-MPC2;
  c4 (constraint) = 1 like TD-MPC2's termination head (also a Bernoulli target trained with
  BCE); c5 (decoder) = 1 since S(z) feeds the task policy in Eq. 10 and must be accurate, and
  a normalised-observation MSE is O(1) at init like the BCE term.
* Constraint loss: binary cross-entropy on the logit by default. Eq. 8 writes a squared error;
  with a sigmoid output the squared error's gradient carries a sigma'(x) factor that vanishes
  exactly when the head is confidently wrong about a rare failure, while BCE keeps a gradient
  of (p - c) and is the likelihood of the Bernoulli cost, so p stays a probability as Eq. 1
  needs. ``constraint_loss="mse"`` gives Eq. 8 verbatim.
* Class imbalance is handled in the sampler (a fixed fraction of failure slices per batch,
  see ``sequence_sampler``); ``pos_weight`` (BCE only) is an extra knob, 1 by default. Both
  raise the predicted probabilities above the true base rate; eps_safe is calibrated on
  held-out rollouts (``calibration``), not read as an absolute probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from farm_safety_critic import math as wm_math
from farm_safety_critic.sequence_sampler import SliceBatch
from farm_safety_critic.world_model import WorldModel


class LossConfigError(ValueError):
    """Invalid loss configuration."""


@dataclass
class LossConfig:
    """Coefficients and discounts of the Eq. 4 objective."""

    reward_coef: float = 0.1  # c1
    value_coef: float = 0.1  # c2
    consistency_coef: float = 20.0  # c3
    constraint_coef: float = 1.0  # c4
    decoder_coef: float = 1.0  # c5
    rho: float = 0.5  # lambda in Eq. 4 (TD-MPC2 rho)
    gamma: float = 0.99  # TD discount of Eq. 6
    constraint_loss: str = "bce"  # "bce" or "mse" (Eq. 8 verbatim)
    pos_weight: float = 1.0  # BCE weight of cost = 1 steps
    entropy_coef: float = 1e-4  # policy prior

    def __post_init__(self) -> None:
        if self.constraint_loss not in ("bce", "mse"):
            raise LossConfigError(
                f"constraint_loss must be 'bce' or 'mse', got {self.constraint_loss!r}"
            )
        if not 0 < self.rho <= 1 or not 0 <= self.gamma <= 1:
            raise LossConfigError(
                f"need 0 < rho <= 1 and 0 <= gamma <= 1, got {self.rho}, {self.gamma}"
            )
        if self.pos_weight <= 0:
            raise LossConfigError(f"pos_weight must be > 0, got {self.pos_weight}")


def horizon_weights(mask: Tensor, rho: float) -> Tensor:
    """w_ib = rho^i * mask_ib, shape (T, B) (Eq. 4)."""
    T = mask.shape[0]
    return rho ** torch.arange(T, dtype=mask.dtype, device=mask.device)[:, None] * mask


def weighted(per_step: Tensor, w: Tensor) -> Tensor:
    """sum_ib w_ib * l_ib / (T * B)."""
    return (per_step * w).sum() / w.numel()


def reward_loss(r_logits: Tensor, r: Tensor, w: Tensor) -> Tensor:
    """Eq. 5: CE(R(z_i, a_i), r_i) with two-hot targets."""
    return weighted(wm_math.soft_ce(r_logits, r), w)


def td_target(r: Tensor, terminated: Tensor, q_next: Tensor, gamma: float) -> Tensor:
    """r_i + gamma * (1 - terminated_i) * Q'(z_{i+1}, pi(z_{i+1})); no bootstrap past termination."""
    return r + gamma * (1.0 - terminated) * q_next


def value_loss(q_logits: Tensor, target: Tensor, w: Tensor) -> Tensor:
    """Eq. 6: mean over the Q-ensemble (num_q, T, B, bins) of CE(Q(z_i, a_i), TD target)."""
    return weighted(wm_math.soft_ce(q_logits, target.expand(q_logits.shape[:-1])).mean(0), w)


def consistency_loss(z_pred: Tensor, z_target: Tensor, w: Tensor) -> Tensor:
    """Eq. 7: ||d(z_i, a_i) - sg(h(s_{i+1}))||^2, mean over latent dims."""
    return weighted((z_pred - z_target.detach()).pow(2).mean(-1), w)


def constraint_loss(
    c_logit: Tensor, c: Tensor, w: Tensor, kind: str = "bce", pos_weight: float = 1.0
) -> Tensor:
    """Eq. 8: C(z_i, a_i) vs the binary cost c_i (BCE on the logit, or Eq. 8's squared error)."""
    if kind == "bce":
        pw = torch.as_tensor(pos_weight, dtype=c_logit.dtype, device=c_logit.device)
        per = F.binary_cross_entropy_with_logits(c_logit, c, pos_weight=pw, reduction="none")
    elif kind == "mse":
        per = (torch.sigmoid(c_logit) - c).pow(2)
    else:
        raise LossConfigError(f"unknown constraint loss {kind!r}")
    return weighted(per, w)


def decoder_loss(obs_pred: Tensor, obs_target: Tensor, w: Tensor) -> Tensor:
    """Eq. 9: ||S(z_i) - s_i||^2 in normalised observation units, mean over obs dims."""
    return weighted((obs_pred - obs_target).pow(2).mean(-1), w)


def policy_loss(q: Tensor, log_pi: Tensor, w: Tensor, scale: Tensor, entropy_coef: float) -> Tensor:
    """TD-MPC2 policy prior: -(Q / scale - entropy_coef * log pi), on detached latents."""
    return weighted(-(q / scale - entropy_coef * log_pi), w)


class RunningScale:
    """Running 5-95 percentile range of Q (TD-MPC2), to make the policy loss scale-free."""

    def __init__(self, tau: float = 0.01) -> None:
        self.tau = tau
        self.value: Tensor | None = None

    def update(self, q: Tensor) -> Tensor:
        q = q.detach().float().flatten()
        rng = torch.quantile(q, 0.95) - torch.quantile(q, 0.05)
        self.value = rng if self.value is None else torch.lerp(self.value, rng, self.tau)
        return self.value.clamp(min=1.0)


def rollout_latents(model: WorldModel, obs0: Tensor, actions: Tensor) -> Tensor:
    """z_0 = h(s_0), z_{i+1} = d(z_i, a_i); returns (T + 1, B, latent)."""
    zs = [model.encode(obs0)]
    for a in actions:
        zs.append(model.next(zs[-1], a))
    return torch.stack(zs)


def world_model_loss(
    model: WorldModel, batch: SliceBatch, cfg: LossConfig
) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Eq. 4: sum_i lambda^i (c1 Eq5 + c2 Eq6 + c3 Eq7 + c4 Eq8 + c5 Eq9).

    Returns (total loss, detached latents z_0..z_{T-1} for the policy update, metrics).
    """
    w = horizon_weights(batch.mask, cfg.rho)
    with torch.no_grad():
        next_z = model.encode(batch.next_obs)
        q_next = model.Q(next_z, model.pi(next_z)[1], reduce="min", target=True)
        target = td_target(batch.rewards, batch.terminated, q_next, cfg.gamma)
    zs = rollout_latents(model, batch.obs[0], batch.actions)
    z, a = zs[:-1], batch.actions
    terms = {
        "reward": reward_loss(model.reward(z, a), batch.rewards, w),
        "value": value_loss(model.Q_logits(z, a), target, w),
        "consistency": consistency_loss(zs[1:], next_z, w),
        "constraint": constraint_loss(
            model.constraint_logit(z, a), batch.costs, w, cfg.constraint_loss, cfg.pos_weight
        ),
        "decoder": decoder_loss(model.decode(z), model.normalize(batch.obs), w),
    }
    coefs = {
        "reward": cfg.reward_coef,
        "value": cfg.value_coef,
        "consistency": cfg.consistency_coef,
        "constraint": cfg.constraint_coef,
        "decoder": cfg.decoder_coef,
    }
    total = sum(coefs[k] * terms[k] for k in terms)
    metrics = {f"loss/{k}": float(v.detach()) for k, v in terms.items()}
    metrics["loss/total"] = float(total.detach())
    return total, z.detach(), metrics


def pi_loss(
    model: WorldModel, z: Tensor, mask: Tensor, cfg: LossConfig, scale: RunningScale
) -> tuple[Tensor, dict[str, float]]:
    """Policy-prior loss on detached latents; gradients reach only pi's parameters."""
    _, a, log_pi = model.pi(z)
    q_params = list(model.Q_parameters())
    for p in q_params:
        p.requires_grad_(False)
    try:
        q = model.Q(z, a, reduce="avg")
    finally:
        for p in q_params:
            p.requires_grad_(True)
    s = scale.update(q)
    loss = policy_loss(q, log_pi, horizon_weights(mask, cfg.rho), s, cfg.entropy_coef)
    return loss, {"loss/pi": float(loss.detach()), "pi/scale": float(s)}
