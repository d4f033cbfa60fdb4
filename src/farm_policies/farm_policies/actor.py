"""Tanh-Gaussian actor and state-value network with fixed observation normalisation.

The actor follows Uni-O4's ``GaussPolicyMLP``: an MLP outputs the pre-tanh mean and a log-std
soft-clamped to [LOG_STD_MIN, LOG_STD_MAX]; actions are ``tanh`` of a Gaussian sample, so
log-probabilities include the tanh change of variables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farm_policies.networks import ACTOR_HEAD_GAIN, VALUE_HEAD_GAIN, mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 0.0
OBS_CLIP = 10.0
ACTION_EPS = 1e-6
_LOG_2PI = math.log(2.0 * math.pi)


def soft_clamp(x: Tensor, low: float = LOG_STD_MIN, high: float = LOG_STD_MAX) -> Tensor:
    """Smoothly map R onto (low, high) (Uni-O4 ``soft_clamp``)."""
    return low + 0.5 * (high - low) * (torch.tanh(x) + 1.0)


def _as_stat(x: Any, dim: int, fill: float, name: str) -> Tensor:
    t = (
        torch.full((dim,), fill)
        if x is None
        else torch.as_tensor(np.asarray(x), dtype=torch.float32)
    )
    if t.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains non-finite values")
    return t.clone().float()


def normalize_obs(obs_raw: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """FARM's one observation normalisation: (s - mean) / std, clipped to +-OBS_CLIP (actor,
    value, world model and Q-risk alike; the numpy fast paths fold the same formula)."""
    return ((obs_raw - mean) / std).clamp(-OBS_CLIP, OBS_CLIP)


class ObsNormalizer(nn.Module):
    """Fixed (offline-dataset) observation normalisation, stored as buffers with the weights."""

    def __init__(self, obs_dim: int, obs_mean: Any = None, obs_std: Any = None) -> None:
        super().__init__()
        std = _as_stat(obs_std, obs_dim, 1.0, "obs_std")
        if (std <= 0).any():
            raise ValueError("obs_std must be strictly positive")
        self.register_buffer("obs_mean", _as_stat(obs_mean, obs_dim, 0.0, "obs_mean"))
        self.register_buffer("obs_std", std)

    def forward(self, obs_raw: Tensor) -> Tensor:
        return normalize_obs(obs_raw, self.obs_mean, self.obs_std)


class TanhGaussianActor(nn.Module):
    """pi(a|s) = tanh_# N(mu(s), sigma(s)); actions in (-1, 1).

    ``state_dependent_std=True`` (Uni-O4 default) predicts log-std from the state; otherwise a
    free parameter vector is used. Both are soft-clamped to [-5, 0].
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: int = 256,
        depth: int = 3,
        activation: str = "relu",
        state_dependent_std: bool = True,
        obs_mean: Any = None,
        obs_std: Any = None,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.depth, self.activation = int(hidden), int(depth), activation
        self.state_dependent_std = bool(state_dependent_std)
        self.normalizer = ObsNormalizer(obs_dim, obs_mean, obs_std)
        n_out = 2 * act_dim if state_dependent_std else act_dim
        self.net = mlp(obs_dim, n_out, hidden, depth, activation, out_gain=ACTOR_HEAD_GAIN)
        if not state_dependent_std:
            self.log_std_param = nn.Parameter(torch.zeros(act_dim))

    def config(self) -> dict[str, Any]:
        """Architecture needed to rebuild this module (stored in checkpoint headers)."""
        return {
            "class": "TanhGaussianActor",
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden": self.hidden,
            "depth": self.depth,
            "activation": self.activation,
            "state_dependent_std": self.state_dependent_std,
        }

    def forward(self, obs_raw: Tensor) -> tuple[Tensor, Tensor]:
        """Return (pre-tanh mean, log_std), each (..., act_dim)."""
        out = self.net(self.normalizer(obs_raw))
        if self.state_dependent_std:
            mean, raw_log_std = out.chunk(2, dim=-1)
        else:
            mean, raw_log_std = out, self.log_std_param.expand_as(out)
        return mean, soft_clamp(raw_log_std)

    @staticmethod
    def _log_prob_pre_tanh(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
        """log N(u; mean, std) - sum log(1 - tanh(u)^2), summed over action dims."""
        z = (u - mean) / log_std.exp()
        gauss = -0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return (gauss - log_det).sum(-1)

    def act(self, obs_raw: Tensor, deterministic: bool = False) -> Tensor:
        """Action in (-1, 1): tanh(mean) if deterministic, else a tanh-Gaussian sample."""
        mean, log_std = self(obs_raw)
        if deterministic:
            return torch.tanh(mean)
        return torch.tanh(mean + log_std.exp() * torch.randn_like(mean))

    def sample(self, obs_raw: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterised sample: (action, log pi(action|s)); action clamped to +-(1-1e-6)."""
        mean, log_std = self(obs_raw)
        u = mean + log_std.exp() * torch.randn_like(mean)
        bound = 1.0 - ACTION_EPS
        u = u.clamp(-math.atanh(bound), math.atanh(bound))
        return torch.tanh(u), self._log_prob_pre_tanh(u, mean, log_std)

    def evaluate_actions(self, obs_raw: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """(log pi(action|s), log_std) from one forward pass (used by the PPO update)."""
        mean, log_std = self(obs_raw)
        a = action.clamp(-1.0 + ACTION_EPS, 1.0 - ACTION_EPS)
        return self._log_prob_pre_tanh(torch.atanh(a), mean, log_std), log_std

    def log_prob(self, obs_raw: Tensor, action: Tensor) -> Tensor:
        """log pi(action|s) for actions in [-1, 1] (clamped to +-(1-1e-6) before atanh)."""
        return self.evaluate_actions(obs_raw, action)[0]

    def entropy_estimate(self, obs_raw: Tensor) -> Tensor:
        """Single-sample Monte-Carlo estimate of H[pi(.|s)] = -log pi(a|s), a ~ pi."""
        return -self.sample(obs_raw)[1]


class ValueNet(nn.Module):
    """V(s) with the same fixed observation normalisation as the actor."""

    def __init__(
        self,
        obs_dim: int,
        hidden: int = 256,
        depth: int = 3,
        activation: str = "relu",
        obs_mean: Any = None,
        obs_std: Any = None,
    ) -> None:
        super().__init__()
        self.obs_dim = int(obs_dim)
        self.hidden, self.depth, self.activation = int(hidden), int(depth), activation
        self.normalizer = ObsNormalizer(obs_dim, obs_mean, obs_std)
        self.net = mlp(obs_dim, 1, hidden, depth, activation, out_gain=VALUE_HEAD_GAIN)

    def config(self) -> dict[str, Any]:
        """Architecture needed to rebuild this module."""
        return {
            "class": "ValueNet",
            "obs_dim": self.obs_dim,
            "hidden": self.hidden,
            "depth": self.depth,
            "activation": self.activation,
        }

    def forward(self, obs_raw: Tensor) -> Tensor:
        """V(s), shape (...,)."""
        return self.net(self.normalizer(obs_raw)).squeeze(-1)


def build_module(config: dict[str, Any]) -> nn.Module:
    """Rebuild a TanhGaussianActor or ValueNet from its ``config()``."""
    kwargs = {k: v for k, v in config.items() if k != "class"}
    if config.get("class") == "TanhGaussianActor":
        return TanhGaussianActor(**kwargs)
    if config.get("class") == "ValueNet":
        return ValueNet(**kwargs)
    raise ValueError(f"unknown module class {config.get('class')!r}")
