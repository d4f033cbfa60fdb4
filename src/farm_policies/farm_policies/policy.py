"""Inference wrapper used by the benchmark and the ROS policy node."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from farm_policies.actor import TanhGaussianActor, ValueNet


class Policy:
    """Numpy-in / numpy-out wrapper around a ``TanhGaussianActor`` (no gradients, CPU or GPU)."""

    def __init__(
        self,
        actor: TanhGaussianActor,
        value: ValueNet | None = None,
        header: dict[str, Any] | None = None,
    ) -> None:
        self.actor = actor.eval()
        self.value = value.eval() if value is not None else None
        self.header = dict(header or {})

    @property
    def obs_dim(self) -> int:
        return self.actor.obs_dim

    @property
    def act_dim(self) -> int:
        return self.actor.act_dim

    def _obs_tensor(self, obs: np.ndarray) -> tuple[torch.Tensor, bool]:
        arr = np.asarray(obs)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"observation must be numeric, got dtype {arr.dtype}")
        single = arr.ndim == 1
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.obs_dim:
            raise ValueError(
                f"observation must have shape ({self.obs_dim},) or (n, {self.obs_dim}), "
                f"got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("observation contains NaN or inf")
        device = next(self.actor.parameters()).device
        t = torch.as_tensor(arr, dtype=torch.float32, device=device)
        return (t.unsqueeze(0) if single else t), single

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions (act_dim,) or (n, act_dim), float32 in [-1, 1]."""
        t, single = self._obs_tensor(obs)
        a = self.actor.act(t, deterministic=deterministic).clamp(-1.0, 1.0)
        a = a.cpu().numpy().astype(np.float32)
        return a[0] if single else a

    @torch.no_grad()
    def state_value(self, obs: np.ndarray) -> np.ndarray:
        """V(s), shape () or (n,); requires a value network."""
        if self.value is None:
            raise ValueError("this policy has no value network")
        t, single = self._obs_tensor(obs)
        v = self.value(t).cpu().numpy().astype(np.float32)
        return v[0] if single else v

    def reset(self) -> None:
        """No episode state (FailureBench's ``datasets.Policy`` protocol)."""

    __call__ = act
