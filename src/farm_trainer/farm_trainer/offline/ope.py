"""Off-policy evaluation by rolling policies out in a learned dynamics ensemble (Uni-O4 ``dynamics_eval``).

    score(pi) = mean_{s_0 ~ D, t < H} Q(s_t, mu_pi(s_t)),   s_{t+1} = f_e(s_t, mu_pi(s_t)), e ~ U{1..E}

We keep Uni-O4's model-based OPE rather than fitted-Q evaluation: the Q already exists, the
dynamics ensemble is cheap (an MLP per member on (s, a) -> delta s), and a short horizon H keeps
compounding model error small for 500-step manipulation episodes (Uni-O4 uses H = 2-8 on Kitchen).
The initial states and member choices are fixed per OPE instance (common random numbers), so
scores of successive policies are compared on the same rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from farm_policies.actor import ObsNormalizer, TanhGaussianActor

from .data import Transitions


class EnsembleLinear(nn.Module):
    """E independent linear layers applied to an (E, B, in) batch."""

    def __init__(self, n_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n_members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_members, 1, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def member_forward(net: nn.Sequential, x: Tensor, member: int) -> Tensor:
    """Member ``member`` of an ensemble MLP (``EnsembleLinear`` layers) on a (B, in) batch."""
    for layer in net:
        if isinstance(layer, EnsembleLinear):
            x = torch.addmm(layer.bias[member], x, layer.weight[member])
        else:
            x = layer(x)
    return x


class StateActionEnsemble(nn.Module):
    """E MLPs on (normalised s, a) -> ``out_dim`` outputs; ``forward -> (E, B, out_dim)``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        out_dim: int,
        n_members: int,
        hidden: int,
        depth: int,
        obs_mean: Any = None,
        obs_std: Any = None,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.n_members, self.hidden, self.depth = n_members, hidden, depth
        self.normalizer = ObsNormalizer(obs_dim, obs_mean, obs_std)
        layers: list[nn.Module] = []
        width = obs_dim + act_dim
        for _ in range(depth):
            layers += [EnsembleLinear(n_members, width, hidden), nn.SiLU()]
            width = hidden
        layers.append(EnsembleLinear(n_members, width, out_dim))
        self.net = nn.Sequential(*layers)

    def config(self) -> dict[str, Any]:
        """Architecture needed to rebuild this module."""
        return {
            "class": type(self).__name__,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "n_members": self.n_members,
            "hidden": self.hidden,
            "depth": self.depth,
        }

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """Predictions of every member; obs/action are (B, .) or already (E, B, .)."""
        x = torch.cat([self.normalizer(obs), action], dim=-1)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_members, -1, -1)
        return self.net(x)

    def member_forward(self, obs: Tensor, action: Tensor, member: int) -> Tensor:
        """Prediction of one member for a (B, .) batch, (B, out_dim)."""
        return member_forward(self.net, torch.cat([self.normalizer(obs), action], dim=-1), member)


class DynamicsEnsemble(StateActionEnsemble):
    """E deterministic MLPs predicting the normalised state change; ``forward -> (E, B, obs_dim)``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        n_members: int = 5,
        hidden: int = 200,
        depth: int = 3,
        obs_mean: Any = None,
        obs_std: Any = None,
        delta_mean: Any = None,
        delta_std: Any = None,
        obs_low: Any = None,
        obs_high: Any = None,
    ) -> None:
        super().__init__(obs_dim, act_dim, obs_dim, n_members, hidden, depth, obs_mean, obs_std)
        self.delta = ObsNormalizer(obs_dim, delta_mean, delta_std)
        low = torch.full((obs_dim,), -1e6) if obs_low is None else torch.as_tensor(obs_low)
        high = torch.full((obs_dim,), 1e6) if obs_high is None else torch.as_tensor(obs_high)
        self.register_buffer("obs_low", low.float().clone())
        self.register_buffer("obs_high", high.float().clone())

    def loss(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """MSE in normalised-delta space, inputs shaped (E, B, .) (one bootstrap batch per member)."""
        target = (next_obs - obs - self.delta.obs_mean) / self.delta.obs_std
        return (self(obs, action) - target).pow(2).mean()

    @torch.no_grad()
    def step(self, obs: Tensor, action: Tensor, members: Tensor) -> Tensor:
        """s' = s + delta from member ``members[b]`` for each row b, clipped to the data's range."""
        pred = torch.empty_like(obs)
        for e in members.unique().tolist():
            rows = members == e
            pred[rows] = self.member_forward(obs[rows], action[rows], e)
        next_obs = obs + self.delta.obs_mean + pred * self.delta.obs_std
        return torch.maximum(torch.minimum(next_obs, self.obs_high), self.obs_low)

    @classmethod
    def for_data(
        cls, data: Transitions, n_members: int = 5, hidden: int = 200, depth: int = 3
    ) -> DynamicsEnsemble:
        """Build with normalisation statistics and state bounds from the dataset."""
        delta = (data.next_obs - data.obs).double()
        span = data.obs.max(0).values - data.obs.min(0).values
        return cls(
            data.obs_dim,
            data.act_dim,
            n_members,
            hidden,
            depth,
            obs_mean=data.obs_mean,
            obs_std=data.obs_std,
            delta_mean=delta.mean(0).float(),
            delta_std=delta.std(0).clamp_min(1e-4).float(),
            obs_low=data.obs.min(0).values - 0.1 * span,
            obs_high=data.obs.max(0).values + 0.1 * span,
        )


def fit_ensemble(
    model: StateActionEnsemble,
    batch_loss: Callable[[Tensor], Tensor],
    n_rows: int,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: bool,
    desc: str,
) -> list[float]:
    """Adam on ``batch_loss(idx)``, idx (E, batch) so that each member draws its own minibatch
    of the ``n_rows`` dataset rows; returns the loss history."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = []
    for _ in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        idx = torch.randint(0, n_rows, (model.n_members, batch_size), generator=gen)
        loss = batch_loss(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
    return hist


def fit_dynamics(
    model: DynamicsEnsemble,
    data: Transitions,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """The ensemble's normalised-delta MSE (``fit_ensemble``); returns the loss history."""

    def loss(i: Tensor) -> Tensor:
        return model.loss(data.obs[i], data.actions[i], data.next_obs[i])

    return fit_ensemble(model, loss, len(data), steps, lr, batch_size, seed, progress, "dynamics")


StepFn = Callable[[Tensor, Tensor, Tensor], Tensor]
QFn = Callable[[Tensor, Tensor], Tensor]


@torch.no_grad()
def rollout_q_score(
    actor: TanhGaussianActor, step_fn: StepFn, q_fn: QFn, init_obs: Tensor, members: Tensor
) -> float:
    """Mean Q(s_t, mu(s_t)) over a deterministic rollout of ``members.shape[0]`` steps."""
    obs, total = init_obs, 0.0
    for t in range(members.shape[0]):
        action = actor.act(obs, deterministic=True)
        total += q_fn(obs, action).mean().item()
        obs = step_fn(obs, action, members[t])
    return total / members.shape[0]


class OPE:
    """Scores a policy by ``rollout_q_score`` from fixed dataset states with fixed member draws."""

    def __init__(
        self,
        step_fn: StepFn,
        q_fn: QFn,
        init_obs: Tensor,
        horizon: int = 10,
        n_members: int = 1,
        seed: int = 0,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"OPE horizon must be >= 1, got {horizon}")
        gen = torch.Generator().manual_seed(seed)
        self.step_fn, self.q_fn, self.init_obs = step_fn, q_fn, init_obs
        self.members = torch.randint(0, n_members, (horizon, init_obs.shape[0]), generator=gen)

    @classmethod
    def from_data(
        cls,
        dynamics: DynamicsEnsemble,
        q_fn: QFn,
        data: Transitions,
        n_states: int = 512,
        horizon: int = 10,
        seed: int = 0,
    ) -> OPE:
        """``n_states`` initial states drawn from the dataset (without replacement when possible)."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(data), size=n_states, replace=n_states > len(data))
        return cls(
            dynamics.step, q_fn, data.obs[torch.as_tensor(idx)], horizon, dynamics.n_members, seed
        )

    def __call__(self, actor: TanhGaussianActor) -> float:
        return rollout_q_score(actor, self.step_fn, self.q_fn, self.init_obs, self.members)
