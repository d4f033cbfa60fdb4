"""Jointly trained behaviour-cloning ensemble (Uni-O4 ``BC_ensemble.joint_train``, kl_type 'heuristic').

For member i on a shared minibatch (s, a) from the demonstrations:

    L_i = -log pi_i(a|s) - alpha_bc * (log pi_i(a|s) - max_{j != i} sg[log pi_j(a|s)])

Because the max over the other members is detached (as in Uni-O4), the gradient of the
diversity term is alpha_bc times the NLL gradient; members differ through their initialisation.
"""

from __future__ import annotations

import torch
from torch import Tensor
from tqdm import tqdm

from farm_policies.actor import TanhGaussianActor

from .data import Transitions


def build_ensemble(
    data: Transitions, num_policies: int = 4, hidden: int = 256, depth: int = 3, seed: int = 0
) -> list[TanhGaussianActor]:
    """K actors with the dataset's fixed observation normalisation, each with its own init seed."""
    actors = []
    for i in range(num_policies):
        torch.manual_seed(seed * 1000 + i)
        actors.append(
            TanhGaussianActor(
                data.obs_dim,
                data.act_dim,
                hidden,
                depth,
                obs_mean=data.obs_mean,
                obs_std=data.obs_std,
            )
        )
    return actors


def ensemble_log_probs(actors: list[TanhGaussianActor], obs: Tensor, actions: Tensor) -> Tensor:
    """log pi_i(a|s) for every member, shape (K, B)."""
    return torch.stack([actor.log_prob(obs, actions) for actor in actors])


def diversity_bc_loss(log_probs: Tensor, alpha_bc: float) -> Tensor:
    """Per-member loss L_i (shape (K,)) from log-probs (K, B); see the module docstring."""
    nll = -log_probs
    k = log_probs.shape[0]
    if k == 1 or alpha_bc == 0.0:
        return nll.mean(1)
    others = log_probs.detach().unsqueeze(0).expand(k, k, -1).clone()
    others[torch.arange(k), torch.arange(k)] = -torch.inf
    max_other = others.max(dim=1).values
    return (nll - alpha_bc * (log_probs - max_other)).mean(1)


def fit_bc_ensemble(
    actors: list[TanhGaussianActor],
    data: Transitions,
    steps: int,
    lr: float = 1e-4,
    batch_size: int = 512,
    alpha_bc: float = 0.1,
    action_bound: float = 0.99,
    seed: int = 0,
    progress: bool = True,
) -> list[list[float]]:
    """Train all members jointly; returns the per-step loss of each member.

    Demonstration actions are clipped to +-``action_bound`` for the likelihood: a tanh-Gaussian
    gives saturated (|a| = 1) scripted actions an unbounded density that would dominate the NLL.
    """
    gen = torch.Generator().manual_seed(seed)
    params = [p for actor in actors for p in actor.parameters()]
    opt = torch.optim.Adam(params, lr=lr)  # Adam is per-parameter: same as one optimiser per member
    actions = data.actions.clamp(-action_bound, action_bound)
    hist: list[list[float]] = [[] for _ in actors]
    for _ in tqdm(range(steps), desc="BC ensemble", disable=not progress, leave=False):
        idx = data.sample_idx(batch_size, gen)
        losses = diversity_bc_loss(
            ensemble_log_probs(actors, data.obs[idx], actions[idx]), alpha_bc
        )
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        for h, loss in zip(hist, losses.tolist(), strict=True):
            h.append(loss)
    return hist
