"""Generalised advantage estimation over a (T, n_envs) rollout."""

from __future__ import annotations

import torch
from torch import Tensor


def _t(x) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


def compute_gae(
    rewards,
    values,
    next_values,
    terminated,
    truncated,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[Tensor, Tensor]:
    """GAE(gamma, lambda) for (T, n_envs) arrays; returns (advantages, returns = adv + values).

    ``next_values[t]`` must be V of the *real* next observation s_{t+1} (the final observation
    when the episode ended at t, not the auto-reset one).

        delta_t = r_t + gamma * (1 - term_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - term_t) * (1 - trunc_t) * A_{t+1}

    A time-limit truncation still bootstraps from V(s_{t+1}) but cuts the recursion (the next
    row belongs to a new episode); a termination (failure/success) neither bootstraps nor
    continues. The last row bootstraps from ``next_values[-1]`` unless terminated.
    """
    r, v, nv = _t(rewards), _t(values), _t(next_values)
    term, trunc = _t(terminated), _t(truncated)
    if not (r.shape == v.shape == nv.shape == term.shape == trunc.shape) or r.ndim != 2:
        raise ValueError(
            "compute_gae expects equal (T, n_envs) shapes, got "
            f"{[tuple(x.shape) for x in (r, v, nv, term, trunc)]}"
        )
    not_term = 1.0 - term
    not_done = not_term * (1.0 - trunc)
    delta = r + gamma * not_term * nv - v
    adv = torch.zeros_like(r)
    last = torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        last = delta[t] + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + v
