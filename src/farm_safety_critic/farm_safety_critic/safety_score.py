"""C_H: discounted near-future constraint of the task policy under the world model (Eq. 10).

Index convention (the paper's sum runs i = t .. t+H inclusive, i.e. H + 1 terms):

    z_0 = h(s_t),                 a_0 = proposed task action a_t
    z_{i+1} = d(z_i, a_i),        a_i = pi_task(S(z_i))   for i = 1 .. H
    C_H = sum_{i=0}^{H} gamma_risk^i * C(z_i, a_i)

so H = 3 takes 3 latent dynamics steps and 4 constraint evaluations. The world model is
trained on slices of the same length (H + 1 transitions, ``sequence_sampler``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from farm_safety_critic.world_model import WorldModel

Policy = Callable[[Tensor], Tensor]


@torch.no_grad()
def c_h_terms(
    world_model: WorldModel,
    policy: Policy,
    obs: Tensor,
    proposed_action: Tensor,
    horizon: int,
    action_bound: float | None = 1.0,
    decoded: list[Tensor] | None = None,
) -> Tensor:
    """Undiscounted per-step constraint probabilities C(z_i, a_i), shape (horizon + 1, batch).

    ``decoded``: a list that receives the decoded raw observation S(z_i) of every step (the
    imagined trajectory the safety node draws in rviz).

    ``policy`` maps raw observations (batch, obs_dim) to actions; actions are clipped to
    [-action_bound, action_bound] as the environment does (None: no clipping).
    """
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")

    def clip(a: Tensor) -> Tensor:
        return a if action_bound is None else a.clamp(-action_bound, action_bound)

    z, a = world_model.encode(obs), clip(proposed_action)
    terms = []
    for i in range(horizon + 1):
        terms.append(world_model.constraint(z, a))
        if decoded is not None:
            decoded.append(world_model.decode_raw(z))
        if i < horizon:
            z = world_model.next(z, a)
            a = clip(policy(world_model.decode_raw(z)))
    return torch.stack(terms)


def discount_sum(terms: Tensor, gamma_risk: float) -> Tensor:
    """sum_i gamma_risk^i * terms_i over the leading (time) axis."""
    disc = gamma_risk ** torch.arange(terms.shape[0], dtype=terms.dtype, device=terms.device)
    return (disc[:, None] * terms).sum(0)


@torch.no_grad()
def c_h(
    world_model: WorldModel,
    policy: Policy,
    obs: Tensor,
    proposed_action: Tensor,
    horizon: int,
    gamma_risk: float,
    action_bound: float | None = 1.0,
) -> Tensor:
    """Eq. 10: C_H = sum_{i=0}^{H} gamma_risk^i C(z_i, a_i), shape (batch,). See module doc."""
    terms = c_h_terms(world_model, policy, obs, proposed_action, horizon, action_bound)
    return discount_sum(terms, gamma_risk)
