"""Task-policy inference that takes live weight updates (the policy node and the safety node).

``LivePolicy.update`` accepts a new actor state only when its version is newer than the running
one, its sha256 (``checkpoint.tensor_digest``) matches the tensors, and every tensor has the
running actor's name, shape and dtype; otherwise it raises ``WeightUpdateError`` with the reason
and the old weights keep running. Accepted weights are copied *in place*, so everything holding
views of the actor's parameters (the numpy C_H scorer of Eq. 10, which rolls out pi_task)
follows the update without being rebuilt. A non-finite observation holds still (zeros) instead
of raising: the robot must never get a NaN command.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from failurebench_sim.command import hold_still_if_nonfinite
from farm_policies.actor import TanhGaussianActor
from farm_policies.checkpoint import load_actor_value, tensor_digest


class WeightUpdateError(ValueError):
    """A weight update was rejected (stale version, hash mismatch, wrong names or shapes)."""


class LivePolicy:
    """A ``TanhGaussianActor`` with a version, numpy inference and validated weight swaps."""

    def __init__(self, actor: TanhGaussianActor, version: int = 0, seed: int = 0) -> None:
        self.actor = actor.eval()
        self.version = int(version)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.rejected: list[str] = []

    @classmethod
    def from_checkpoint(cls, path: str, seed: int = 0) -> LivePolicy:
        """The actor of a policy checkpoint; its version is the online update that wrote it
        (header ``meta.update``; 0 for an offline checkpoint)."""
        actor, _, header = load_actor_value(path)
        return cls(actor, int((header.get("meta") or {}).get("update", 0)), seed)

    @property
    def obs_dim(self) -> int:
        return self.actor.obs_dim

    @property
    def act_dim(self) -> int:
        return self.actor.act_dim

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, bool]:
        """(action (act_dim,) float32 in [-1, 1], held) for one observation; ``held`` is True
        (and the action zeros) when the observation has the wrong size or is not finite."""
        o = np.asarray(obs, dtype=np.float32).reshape(-1)
        if o.shape != (self.obs_dim,) or not np.isfinite(o).all():
            return np.zeros(self.act_dim, dtype=np.float32), True
        t = torch.as_tensor(o).unsqueeze(0)
        if deterministic:
            a = self.actor.act(t, deterministic=True)
        else:  # a seeded draw: the same seed gives the same exploration on every machine
            mean, log_std = self.actor(t)
            noise = torch.randn(mean.shape, generator=self.generator)
            a = torch.tanh(mean + log_std.exp() * noise)
        action, n_bad = hold_still_if_nonfinite(a[0].clamp(-1.0, 1.0).numpy())
        return action, bool(n_bad)

    def update(self, version: int, sha256: str, state: Mapping[str, Tensor | np.ndarray]) -> None:
        """Swap in ``state`` (the actor's state_dict) or raise ``WeightUpdateError``."""
        reason = self._check(int(version), str(sha256), state)
        if reason:
            self.rejected.append(reason)
            raise WeightUpdateError(reason)
        with torch.no_grad():
            for name, p in self.actor.state_dict().items():
                p.numpy()[...] = np.asarray(state[name])  # in place: views stay valid
        self.version = int(version)

    def _check(self, version: int, sha256: str, state: Mapping[str, Tensor | np.ndarray]) -> str:
        if version <= self.version:
            return f"stale version {version} (running {self.version})"
        current = self.actor.state_dict()
        if set(state) != set(current):
            extra, missing = sorted(set(state) - set(current)), sorted(set(current) - set(state))
            return f"tensor names differ: missing {missing[:3]}, unexpected {extra[:3]}"
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}
        for name, ref in current.items():
            t = tensors[name]
            if t.shape != ref.shape or t.dtype != ref.dtype:
                return f"{name}: {tuple(t.shape)} {t.dtype} != {tuple(ref.shape)} {ref.dtype}"
            # numpy, not torch: a torch op per tensor costs ~1 ms on a loaded 2-core box
            if not np.isfinite(t.numpy()).all():
                return f"{name}: non-finite values"
        if tensor_digest(tensors) != sha256:
            return "sha256 does not match the tensors"
        return ""
