"""TD-MPC2-style latent world model with FARL's constraint head C(z,a) and decoder S(z) (Eq. 4-9).

Components (paper symbols): encoder h(s) -> z, latent dynamics d(z,a) -> z', reward R(z,a)
and Q-ensemble Q(z,a) as two-hot logits, constraint C(z,a) -> P(C=1) in [0,1], decoder S(z) -> s,
policy prior pi(z) (tanh Gaussian). Observations are normalised with fixed, data-derived
buffers stored with the weights; S(z) predicts the *normalised* observation, ``decode_raw``
undoes the normalisation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from farm_policies.actor import normalize_obs
from farm_safety_critic import layers
from farm_safety_critic import math as wm_math

CHECKPOINT_KIND = "farm_world_model"


class WorldModelError(ValueError):
    """Bad world-model configuration, statistics or checkpoint."""


@dataclass
class WorldModelConfig:
    """Architecture of the world model (defaults: TD-MPC2 model size 1)."""

    obs_dim: int
    act_dim: int
    latent_dim: int = 128
    mlp_dim: int = 384
    enc_dim: int = 256
    num_enc_layers: int = 2
    num_q: int = 2
    dropout: float = 0.01
    simnorm_dim: int = layers.SIMNORM_DIM
    log_std_min: float = -10.0
    log_std_max: float = 2.0

    def __post_init__(self) -> None:
        for name in ("obs_dim", "act_dim", "latent_dim", "mlp_dim", "enc_dim", "num_q"):
            if int(getattr(self, name)) < 1:
                raise WorldModelError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_enc_layers < 1:
            raise WorldModelError(f"num_enc_layers must be >= 1, got {self.num_enc_layers}")
        if self.latent_dim % self.simnorm_dim:
            raise WorldModelError(
                f"latent_dim ({self.latent_dim}) must be a multiple of simnorm_dim ({self.simnorm_dim})"
            )
        if self.num_q < 2:
            raise WorldModelError("num_q must be >= 2 (the TD target takes a min over two Qs)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise WorldModelError(f"unknown world-model config keys: {sorted(unknown)}")
        return cls(**d)


class WorldModel(nn.Module):
    """h, d, R, Q (+ target Q), C, S and pi of FARL's world model."""

    def __init__(self, cfg: WorldModelConfig, obs_mean: Any = None, obs_std: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        za = cfg.latent_dim + cfg.act_dim
        head = 2 * [cfg.mlp_dim]
        enc_hidden = (cfg.num_enc_layers - 1) * [cfg.enc_dim]
        self._encoder = layers.mlp(
            cfg.obs_dim, enc_hidden, cfg.latent_dim, act=layers.SimNorm(cfg.simnorm_dim)
        )
        self._dynamics = layers.mlp(za, head, cfg.latent_dim, act=layers.SimNorm(cfg.simnorm_dim))
        self._reward = layers.mlp(za, head, wm_math.NUM_BINS)
        self._constraint = layers.mlp(za, head, 1)
        self._decoder = layers.mlp(cfg.latent_dim, head, cfg.obs_dim)
        self._pi = layers.mlp(cfg.latent_dim, head, 2 * cfg.act_dim)
        self._Qs = nn.ModuleList(
            [layers.mlp(za, head, wm_math.NUM_BINS, dropout=cfg.dropout) for _ in range(cfg.num_q)]
        )
        self.apply(layers.weight_init)
        for last in [self._reward[-1], *(q[-1] for q in self._Qs)]:
            nn.init.zeros_(last.weight)
        self._target_Qs = copy.deepcopy(self._Qs).requires_grad_(False)
        self.register_buffer("obs_mean", _stat(obs_mean, cfg.obs_dim, 0.0, "obs_mean"))
        std = _stat(obs_std, cfg.obs_dim, 1.0, "obs_std")
        if (std <= 0).any():
            raise WorldModelError("obs_std must be strictly positive")
        self.register_buffer("obs_std", std)

    def train(self, mode: bool = True) -> WorldModel:
        """Keep the target Qs in eval mode (no dropout)."""
        super().train(mode)
        self._target_Qs.train(False)
        return self

    # -- observations --------------------------------------------------------------------
    def normalize(self, obs_raw: Tensor) -> Tensor:
        return normalize_obs(obs_raw, self.obs_mean, self.obs_std)

    def denormalize(self, obs_norm: Tensor) -> Tensor:
        return obs_norm * self.obs_std + self.obs_mean

    # -- components ----------------------------------------------------------------------
    def encode(self, obs_raw: Tensor) -> Tensor:
        """h(s): raw observation -> SimNorm latent z."""
        return self._encoder(self.normalize(obs_raw))

    def next(self, z: Tensor, a: Tensor) -> Tensor:
        """d(z, a): next latent."""
        return self._dynamics(torch.cat([z, a], dim=-1))

    def reward(self, z: Tensor, a: Tensor) -> Tensor:
        """R(z, a) as two-hot logits (..., NUM_BINS)."""
        return self._reward(torch.cat([z, a], dim=-1))

    def reward_value(self, z: Tensor, a: Tensor) -> Tensor:
        """Scalar predicted reward, shape (...,)."""
        return wm_math.two_hot_inv(self.reward(z, a))

    def constraint_logit(self, z: Tensor, a: Tensor) -> Tensor:
        """Pre-sigmoid constraint head, shape (...,)."""
        return self._constraint(torch.cat([z, a], dim=-1)).squeeze(-1)

    def constraint(self, z: Tensor, a: Tensor) -> Tensor:
        """C(z, a) = P(C(s, a) = 1) in [0, 1], shape (...,)."""
        return torch.sigmoid(self.constraint_logit(z, a))

    def decode(self, z: Tensor) -> Tensor:
        """S(z): predicted *normalised* observation."""
        return self._decoder(z)

    def decode_raw(self, z: Tensor) -> Tensor:
        """S(z) mapped back to raw observation units (input of the task policy in Eq. 10)."""
        return self.denormalize(self.decode(z))

    def pi(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Policy prior: (tanh(mu), tanh-Gaussian sample, log pi(sample))."""
        mu, raw = self._pi(z).chunk(2, dim=-1)
        cfg = self.cfg
        log_std = cfg.log_std_min + 0.5 * (cfg.log_std_max - cfg.log_std_min) * (
            torch.tanh(raw) + 1
        )
        eps = torch.randn_like(mu)
        u = mu + eps * log_std.exp()
        log_pi = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        a = torch.tanh(u)
        log_pi = log_pi - torch.log(torch.relu(1 - a.pow(2)) + 1e-6).sum(-1)
        return torch.tanh(mu), a, log_pi

    def Q_logits(self, z: Tensor, a: Tensor, target: bool = False) -> Tensor:
        """All Q heads as logits, shape (num_q, ..., NUM_BINS)."""
        za = torch.cat([z, a], dim=-1)
        qs = self._target_Qs if target else self._Qs
        return torch.stack([q(za) for q in qs])

    def Q(self, z: Tensor, a: Tensor, reduce: str = "min", target: bool = False) -> Tensor:
        """Scalar Q of two randomly chosen heads, reduced by ``min`` or ``avg``."""
        logits = self.Q_logits(z, a, target=target)
        idx = torch.randperm(self.cfg.num_q, device=logits.device)[:2]
        q = wm_math.two_hot_inv(logits[idx])
        if reduce == "min":
            return q.min(0).values
        if reduce == "avg":
            return q.mean(0)
        raise WorldModelError(f"reduce must be 'min' or 'avg', got {reduce!r}")

    @torch.no_grad()
    def soft_update_target_Q(self, tau: float = 0.01) -> None:
        """Polyak averaging: target <- (1 - tau) target + tau online."""
        for p_t, p in zip(self._target_Qs.parameters(), self._Qs.parameters(), strict=True):
            p_t.lerp_(p, tau)

    # -- parameter groups ----------------------------------------------------------------
    def pi_parameters(self) -> Iterator[nn.Parameter]:
        return self._pi.parameters()

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        return self._encoder.parameters()

    def model_parameters(self) -> list[nn.Parameter]:
        """Everything trained by the Eq. 4 loss except the encoder (own lr) and pi."""
        mods = [self._dynamics, self._reward, self._constraint, self._decoder, self._Qs]
        return [p for m in mods for p in m.parameters()]

    def Q_parameters(self) -> Iterator[nn.Parameter]:
        return self._Qs.parameters()

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path, extra_header: dict[str, Any] | None = None) -> None:
        """Write weights + normalisation buffers + config (safetensors + JSON header, atomic)."""
        from farm_policies.checkpoint import save_checkpoint

        header = {"kind": CHECKPOINT_KIND, "config": asdict(self.cfg), **(extra_header or {})}
        save_checkpoint(Path(path), {"world_model": self}, header)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> WorldModel:
        """Rebuild a world model written by ``save``; raises WorldModelError on a foreign file."""
        from farm_policies.checkpoint import load_checkpoint

        states, header = load_checkpoint(Path(path))
        if header.get("kind") != CHECKPOINT_KIND or "world_model" not in states:
            raise WorldModelError(
                f"{path} is not a world-model checkpoint (kind={header.get('kind')!r})"
            )
        model = cls(WorldModelConfig.from_dict(header["config"]))
        try:
            model.load_state_dict(states["world_model"])
        except RuntimeError as e:
            raise WorldModelError(f"{path}: weights do not match the stored config: {e}") from e
        return model.to(map_location).eval()


def _stat(x: Any, dim: int, fill: float, name: str) -> Tensor:
    t = torch.full((dim,), fill) if x is None else torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.shape != (dim,):
        raise WorldModelError(f"{name} must have shape ({dim},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise WorldModelError(f"{name} contains non-finite values")
    return t.clone().float()
