"""The recovery decision of Eq. 11, apart from how the safety score was computed.

``RecoveryDecider.decide(obs, proposed, score)``: the recovery action where score > eps_safe,
the proposed task action otherwise. It holds the fixed recovery policy (the scorer does not):
the in-process gate composes a scorer with a decider, the arbiter node runs the decider on the
score the safety node published. Rows whose observation or proposed action is not finite
cannot be trusted to either policy: they execute ``fallback_action`` (zeros: hold still in
FailureBench's delta-position action space), and so does a recovery action that comes out
non-finite, so the executed actions are always finite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from farm_safety_critic.filter import FilterDecision

Policy = Callable[[Tensor], Tensor]


class DeciderInputError(ValueError):
    """Inputs of the wrong shape or type, or a bad threshold / fallback."""


def as_policy(actor: Any, deterministic: bool = True) -> Policy:
    """Tensor -> Tensor policy from an actor with ``act(obs, deterministic)`` or a plain callable.

    A ``farm_policies.policy.Policy`` (numpy wrapper) is unwrapped to its torch actor.
    """
    if isinstance(getattr(actor, "actor", None), torch.nn.Module):
        actor = actor.actor
    if hasattr(actor, "act") and isinstance(actor, torch.nn.Module):
        return lambda obs: actor.act(obs, deterministic=deterministic)
    if callable(actor):
        return actor
    raise DeciderInputError(f"cannot use {type(actor).__name__} as a policy (not callable)")


def hold_still(act_dim: int) -> Policy:
    """A recovery policy that declines every risky action: zeros (hold still in FailureBench's
    delta-position action space; the gripper command at its midpoint)."""
    return lambda obs: torch.zeros(obs.shape[0], act_dim, dtype=torch.float32)


def numpy_actor(actor: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """``fast_score.compile_actor_mean`` for a CPU TanhGaussianActor (or its wrapper), else None."""
    from farm_safety_critic.fast_score import UnsupportedModuleError, compile_actor_mean

    actor = getattr(actor, "actor", actor)
    try:
        return compile_actor_mean(actor)
    except UnsupportedModuleError:
        return None


class RecoveryDecider:
    """Eq. 11 with a fixed recovery policy; numpy in, ``FilterDecision`` out."""

    def __init__(
        self,
        recovery_policy: Policy | Any,
        eps_safe: float,
        act_dim: int,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not np.isfinite(eps_safe):
            raise DeciderInputError(f"eps_safe must be finite, got {eps_safe}")
        self.recovery_policy = as_policy(recovery_policy)
        self.recovery_numpy = numpy_actor(recovery_policy)
        """tanh(mean) of a CPU TanhGaussianActor recovery policy in numpy (same actions as
        ``recovery_policy``, without torch's per-op overhead), else None"""
        self.eps_safe = float(eps_safe)
        self.act_dim = int(act_dim)
        fb = np.zeros(act_dim) if fallback_action is None else np.asarray(fallback_action)
        if fb.shape != (act_dim,) or not np.isfinite(fb).all():
            raise DeciderInputError(f"fallback_action must be finite with shape ({act_dim},)")
        self.fallback_action = fb.astype(np.float32)
        self.device = torch.device(device)

    def recovery_actions(self, obs: np.ndarray) -> np.ndarray:
        """pi_rec's (deterministic) actions for finite float32 rows; non-finite -> fallback."""
        if self.recovery_numpy is not None:
            rec = self.recovery_numpy(obs)
        else:
            t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            with torch.no_grad():
                rec = self.recovery_policy(t).cpu().numpy()
        return np.where(np.isfinite(rec).all(1, keepdims=True), rec, self.fallback_action)

    def decide(self, obs: Any, proposed: Any, score: Any) -> FilterDecision:
        """The executed actions for rows (obs (n, d), proposed (n, act_dim), score (n,))."""
        try:
            obs = np.asarray(obs, dtype=np.float32)
            proposed = np.asarray(proposed, dtype=np.float32)
            score = np.asarray(score, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DeciderInputError(f"obs, proposed and score must be numeric arrays: {e}") from e
        n = obs.shape[0] if obs.ndim == 2 else -1
        if n < 0 or proposed.shape != (n, self.act_dim) or score.shape != (n,):
            raise DeciderInputError(
                f"need obs (n, d), proposed (n, {self.act_dim}), score (n,); got "
                f"{obs.shape}, {proposed.shape}, {score.shape}"
            )
        ok = np.isfinite(obs).all(1) & np.isfinite(proposed).all(1)
        score = np.where(ok & np.isfinite(score), score, np.inf)  # unknown risk counts as unsafe
        replaced = score > self.eps_safe
        actions = proposed.copy()
        actions[~ok] = self.fallback_action
        run_rec = replaced & ok
        if run_rec.any():
            actions[run_rec] = self.recovery_actions(obs[run_rec])
        return FilterDecision(
            actions=actions.astype(np.float32),
            replaced=replaced,
            score=score,
            threshold=self.eps_safe,
        )
