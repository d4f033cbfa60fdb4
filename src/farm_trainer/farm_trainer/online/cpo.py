"""One CPO policy step (Achiam et al. 2017) for the tanh-Gaussian actor.

Maximise the reward surrogate E[rho A_r] subject to KL(pi_old || pi) <= delta and the linearised
cost constraint c + E[rho A_c] <= 0 (c: the current violation), with H the Fisher (the KL's
Hessian) applied by Fisher-vector products and inverted by conjugate gradient:

    x = H^-1 g, p = H^-1 b, q = g.x, r = g.p, s = b.p

and OmniSafe's four cases (``second_order/cpo.py``): the whole trust region feasible (a TRPO
step), partly feasible (the dual solution (lambda*, nu*)), infeasible but recoverable, or
infeasible (a step that only lowers the cost). A backtracking line search then accepts the
largest fraction that keeps the KL within 1.5 delta, does not raise the cost surrogate beyond
the allowed violation and, where the step is meant to, improves the reward surrogate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from farm_trainer.online.ppo import LOG_RATIO_BOUND


def flat_grad(
    y: Tensor, params: list[nn.Parameter], retain: bool = False, create: bool = False
) -> Tensor:
    grads = torch.autograd.grad(y, params, retain_graph=retain or create, create_graph=create,
                                allow_unused=True)  # fmt: skip
    return torch.cat([
        (torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)
    ])  # fmt: skip


def set_flat(params: list[nn.Parameter], flat: Tensor) -> None:
    i = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[i : i + n].view_as(p))
            i += n


def gaussian_kl(mean0: Tensor, log_std0: Tensor, mean1: Tensor, log_std1: Tensor) -> Tensor:
    """KL(N0 || N1) of diagonal Gaussians, summed over action dims (tanh keeps KL unchanged)."""
    var0, var1 = (2 * log_std0).exp(), (2 * log_std1).exp()
    return (log_std1 - log_std0 + (var0 + (mean0 - mean1).pow(2)) / (2 * var1) - 0.5).sum(-1)


def conjugate_gradient(
    avp: Callable[[Tensor], Tensor], b: Tensor, iters: int = 15, tol: float = 1e-10
) -> Tensor:
    """Approximately solve A x = b for the symmetric positive-definite A behind ``avp``."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r.dot(r)
    for _ in range(iters):
        if rr < tol:
            break
        ap = avp(p)
        alpha = rr / (p.dot(ap) + 1e-12)
        x += alpha * p
        r -= alpha * ap
        rr_new = r.dot(r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _direction(
    x: Tensor, p: Tensor, q: float, r: float, s: float, c: float, delta: float, b_norm2: float
) -> tuple[Tensor, int, float, float]:
    """CPO's step direction, its case (4/3: TRPO step; 2/1: dual solution; 0: cost only),
    lambda* and nu*."""
    if b_norm2 <= 1e-6 and c < 0:
        case = 4
    else:
        A, B = q - r**2 / s, 2 * delta - c**2 / s
        if c < 0 and B < 0:
            case = 3
        elif c < 0 <= B:
            case = 2
        elif c >= 0 and B >= 0:
            case = 1
        else:
            case = 0
    if case in (3, 4):
        lam = math.sqrt(q / (2 * delta))
        return x / lam, case, lam, 0.0
    if case in (1, 2):

        def proj(v: float, lo: float, hi: float) -> float:
            return max(lo, min(v, hi))

        lam_a, lam_b = math.sqrt(max(A / B, 0.0)), math.sqrt(q / (2 * delta))
        rc = r / c if c != 0 else math.copysign(math.inf, r)  # c = 0: on the boundary
        if c < 0:
            lam_a, lam_b = proj(lam_a, 0.0, rc), proj(lam_b, rc, math.inf)
        else:
            lam_a, lam_b = proj(lam_a, rc, math.inf), proj(lam_b, 0.0, rc)
        f_a = -0.5 * (A / (lam_a + 1e-8) + B * lam_a) - r * c / (s + 1e-8)
        f_b = -0.5 * (q / (lam_b + 1e-8) + 2 * delta * lam_b)
        lam = lam_a if f_a >= f_b else lam_b
        nu = max(lam * c - r, 0.0) / (s + 1e-8)
        return (x - nu * p) / (lam + 1e-8), case, lam, nu
    nu = math.sqrt(2 * delta / (s + 1e-8))
    return -nu * p, case, 0.0, nu


def cpo_step(
    actor: nn.Module,
    batch: Any,
    violation: float,
    target_kl: float = 0.01,
    cg_iters: int = 15,
    cg_damping: float = 0.1,
    line_search_steps: int = 15,
    decay: float = 0.8,
) -> dict[str, float]:
    """Update ``actor`` in place by one CPO step on ``batch`` (a ``PPOBatch`` with
    ``cost_advantages``); ``violation`` is c = (J_c - d) per step. Returns diagnostics."""
    params = [p for p in actor.parameters() if p.requires_grad]
    obs, act, old_logp = batch.obs, batch.actions, batch.logp
    adv_r = batch.advantages
    adv_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8)
    adv_c = batch.cost_advantages
    with torch.no_grad():
        mean0, log_std0 = actor(obs)
    fvp_idx = slice(None, None, 4)

    def surrogates() -> tuple[Tensor, Tensor]:
        new_logp, _ = actor.evaluate_actions(obs, act)
        ratio = (new_logp - old_logp).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND).exp()
        return -(ratio * adv_r).mean(), (ratio * adv_c).mean()

    def fvp(v: Tensor) -> Tensor:
        mean1, log_std1 = actor(obs[fvp_idx])
        kl = gaussian_kl(mean0[fvp_idx], log_std0[fvp_idx], mean1, log_std1).mean()
        g_kl = flat_grad(kl, params, create=True)
        return flat_grad((g_kl * v).sum(), params) + cg_damping * v

    loss_r, loss_c = surrogates()
    g = -flat_grad(loss_r, params, retain=True)
    b = flat_grad(loss_c, params)
    loss_r0, loss_c0 = loss_r.item(), loss_c.item()
    x = conjugate_gradient(fvp, g, cg_iters)
    q = float(x.dot(fvp(x)))
    p = conjugate_gradient(fvp, b, cg_iters)
    r, s = float(g.dot(p)), float(b.dot(p))
    stats = {"cpo_case": -1.0, "cpo_accept_step": 0.0, "cpo_kl": 0.0, "cpo_lambda": 0.0,
             "cpo_nu": 0.0, "cpo_violation": violation}  # fmt: skip
    if not all(map(math.isfinite, (q, r, s))) or q <= 0 or s <= 1e-12 and violation >= 0:
        return stats  # no usable curvature / no cost gradient while violating: keep the policy
    direction, case, lam, nu = _direction(
        x, p, q, r, max(s, 1e-12), violation, target_kl, float(b.dot(b))
    )
    theta0 = torch.cat([p_.detach().reshape(-1) for p_ in params])
    frac, accepted, kl_val = 1.0, 0, 0.0
    for step in range(line_search_steps):
        set_flat(params, theta0 + frac * direction)
        with torch.no_grad():
            lr_new, lc_new = surrogates()
            mean1, log_std1 = actor(obs)
            kl = gaussian_kl(mean0, log_std0, mean1, log_std1).mean()
        finite = torch.isfinite(lr_new) and torch.isfinite(lc_new) and torch.isfinite(kl)
        improve = loss_r0 - lr_new.item()
        if (
            finite
            and not (case > 1 and improve < 0)
            and lc_new.item() - loss_c0 <= max(-violation, 0.0)
            and kl.item() <= 1.5 * target_kl
        ):
            accepted, kl_val = step + 1, kl.item()
            break
        frac *= decay
    if not accepted:
        set_flat(params, theta0)
    stats.update(cpo_case=float(case), cpo_accept_step=float(accepted), cpo_kl=kl_val,
                 cpo_lambda=float(lam), cpo_nu=float(nu))  # fmt: skip
    return stats
