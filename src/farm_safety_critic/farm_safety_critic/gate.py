"""Recovery gate (Eq. 11): run pi_rec where the safety score exceeds eps_safe, pi_task otherwise.

``ScoreGate`` = a scorer (input validation, numpy-in scores) + a ``RecoveryDecider`` (which
holds pi_rec and applies Eq. 11); ``SafetyGate`` scores with the world model's C_H (Eq. 10).
Rows whose observation or proposed action is not finite cannot be scored: they are treated as
unsafe (score = +inf, replaced = True) and execute the decider's ``fallback_action`` (hold
still), as does a non-finite recovery action, so the executed actions are always finite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from farm_safety_critic.decider import (
    DeciderInputError,
    Policy,
    RecoveryDecider,
    as_policy,
    hold_still,
)
from farm_safety_critic.filter import FilterDecision
from farm_safety_critic.safety_score import c_h
from farm_safety_critic.world_model import WorldModel

GateInputError = DeciderInputError  # observations / proposed actions of the wrong shape or type


class ScoreGate:
    """Threshold a per-row safety score; subclasses implement ``score``."""

    def __init__(
        self,
        recovery_policy: Policy | Any,
        eps_safe: float,
        obs_dim: int,
        act_dim: int,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.decider = (
            None
            if recovery_policy is None  # a scorer only (the safety node): no decisions
            else RecoveryDecider(recovery_policy, eps_safe, act_dim, fallback_action, device)
        )
        if not np.isfinite(eps_safe):
            raise GateInputError(f"eps_safe must be finite, got {eps_safe}")
        self._eps_safe = float(eps_safe)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.device = torch.device(device)

    @property
    def eps_safe(self) -> float:
        return self._eps_safe if self.decider is None else self.decider.eps_safe

    @property
    def recovery_policy(self) -> Policy:
        return self.decider.recovery_policy

    @property
    def recovery_numpy(self):
        return self.decider.recovery_numpy

    @property
    def fallback_action(self) -> np.ndarray:
        return self.decider.fallback_action

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        """Safety score per row, shape (n,); higher is riskier."""
        raise NotImplementedError

    def _tensor(self, x: np.ndarray) -> Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _check(self, obs: Any, proposed: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            obs = np.asarray(obs, dtype=np.float32)
            proposed = np.asarray(proposed, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise GateInputError(f"obs and proposed must be numeric arrays: {e}") from e
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise GateInputError(f"obs must have shape (n, {self.obs_dim}), got {obs.shape}")
        if proposed.shape != (obs.shape[0], self.act_dim):
            raise GateInputError(
                f"proposed must have shape ({obs.shape[0]}, {self.act_dim}), got {proposed.shape}"
            )
        return obs, proposed

    def score_numpy(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        """``score`` on finite float32 numpy rows; subclasses may override with a faster path."""
        return self.score(self._tensor(obs), self._tensor(proposed)).cpu().numpy()

    @torch.no_grad()
    def _scores_checked(
        self, obs: np.ndarray, proposed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(obs).all(1) & np.isfinite(proposed).all(1)
        score = np.full(obs.shape[0], np.inf)
        if ok.any():
            rows = slice(None) if ok.all() else ok  # no boolean-index copies in the usual case
            s = self.score_numpy(obs[rows], proposed[rows])
            score[rows] = np.where(np.isfinite(s), s, np.inf)
        return score, ok

    def scores(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        """Validated numpy scores (n,), +inf where a row is not finite (unsafe by default)."""
        return self._scores_checked(*self._check(obs, proposed))[0]

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision:
        """Eq. 11: the decider's choice on this gate's scores."""
        if self.decider is None:
            raise GateInputError("this gate was built without a recovery policy: scores only")
        obs, proposed = self._check(obs, proposed)
        return self.decider.decide(obs, proposed, self._scores_checked(obs, proposed)[0])


class SafetyGate(ScoreGate):
    """FARL's gate: score = C_H of the task policy under the world model (Eq. 10, 11).

    Eq. 10 is an expectation over pi_task; a ``TanhGaussianActor`` task policy is rolled out
    with its mean action (``deterministic=True``), a one-sample approximation that keeps one
    world-model call per control step. Pass any Tensor -> Tensor callable to change that (a
    stochastic policy, or ``MPPIPlanner`` as the *recovery* policy for the ``mppi`` ablation).
    """

    def __init__(
        self,
        world_model: WorldModel,
        task_policy: Policy | Any,
        recovery_policy: Policy | Any,
        horizon: int = 3,
        gamma_risk: float = 0.9,
        eps_safe: float = 0.3,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        numpy_scoring: bool = True,
    ) -> None:
        super().__init__(
            recovery_policy,
            eps_safe,
            world_model.cfg.obs_dim,
            world_model.cfg.act_dim,
            fallback_action,
            device,
        )
        if horizon < 0 or not 0 <= gamma_risk <= 1:
            raise GateInputError(
                f"need horizon >= 0 and 0 <= gamma_risk <= 1, got {horizon}, {gamma_risk}"
            )
        self.world_model = world_model.to(self.device).eval()
        self.task_policy = as_policy(task_policy)
        self.horizon, self.gamma_risk = int(horizon), float(gamma_risk)
        self.numpy_scorer = (
            _numpy_scorer(world_model, task_policy, self.horizon, self.gamma_risk)
            if numpy_scoring
            else None
        )

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        return c_h(self.world_model, self.task_policy, obs, proposed, self.horizon, self.gamma_risk)

    def score_numpy(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        """The numpy C_H (same numbers, ~10x lower latency) when the modules allow it."""
        if self.numpy_scorer is not None:
            return self.numpy_scorer(obs, proposed)
        return super().score_numpy(obs, proposed)


class EnsembleSafetyGate(ScoreGate):
    """C_H averaged over an ensemble of world models (each rolled out with the same task policy).

    The members share data and config and differ in their initialisation seed; their mean ranks
    held-out IR failures better than one member on three of four FailureBench tasks
    (``scripts/ensemble_probe.py``), and spreading the score by their disagreement
    (mean + k * std) did not rank better than the mean, so the mean it is.
    """

    def __init__(
        self,
        world_models: list[WorldModel],
        task_policy: Policy | Any,
        recovery_policy: Policy | Any,
        horizon: int = 3,
        gamma_risk: float = 0.9,
        eps_safe: float = 0.3,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not world_models:
            raise GateInputError("an ensemble gate needs at least one world model")
        dims = {(m.cfg.obs_dim, m.cfg.act_dim) for m in world_models}
        if len(dims) != 1:
            raise GateInputError(f"world models disagree on (obs_dim, act_dim): {sorted(dims)}")
        first = world_models[0].cfg
        super().__init__(recovery_policy, eps_safe, first.obs_dim, first.act_dim,
                         fallback_action, device)  # fmt: skip
        self.members = [
            SafetyGate(m, task_policy, None, horizon, gamma_risk, eps_safe, device=device)
            for m in world_models
        ]
        self.horizon, self.gamma_risk = int(horizon), float(gamma_risk)

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        return torch.stack([m.score(obs, proposed) for m in self.members]).mean(0)

    def score_numpy(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        return np.mean([m.score_numpy(obs, proposed) for m in self.members], axis=0)


class AnyOfGate(ScoreGate):
    """Recovery where any member gate would fire at its own threshold.

    Scores are in the units of ``eps_safe`` (default eps_1, the first member's threshold):
    member i's score times eps_safe / eps_i, the largest of them, against ``eps_safe``. So
    ``eps_safe`` keeps its meaning (FARM's C_H threshold, calibrated as before, also where C_H
    is left out of the members), and moving it (farm-pid, a live parameter) scales every
    member's threshold alike. FARM's C_H looks H steps ahead through the world model;
    Recovery RL's Q-risk is a discounted cost critic that looks further.
    """

    def __init__(
        self,
        members: list[ScoreGate],
        recovery_policy: Policy | Any,
        eps_safe: float | None = None,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not members:
            raise GateInputError("an any-of gate needs at least one member gate")
        dims = {(m.obs_dim, m.act_dim) for m in members}
        if len(dims) != 1:
            raise GateInputError(f"member gates disagree on (obs_dim, act_dim): {sorted(dims)}")
        if not all(m.eps_safe > 0 for m in members):
            raise GateInputError("every member gate needs a threshold > 0")
        ((obs_dim, act_dim),) = dims
        eps = members[0].eps_safe if eps_safe is None else eps_safe
        if not eps > 0:
            raise GateInputError(f"an any-of gate's eps_safe (the scores' unit) must be > 0: {eps}")
        super().__init__(recovery_policy, eps, obs_dim, act_dim, fallback_action, device)
        self.members = list(members)
        self.scales = [eps / m.eps_safe for m in members]
        """member i's score times this is in ``eps_safe``'s units (fixed at construction)"""

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        scaled = []
        for m, k in zip(self.members, self.scales, strict=True):
            s = m.score(obs, proposed)
            scaled.append(torch.where(s.isfinite(), s * k, torch.inf))  # unknown risk: unsafe
        return torch.stack(scaled).amax(0)

    def score_numpy(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        scaled = []
        for m, k in zip(self.members, self.scales, strict=True):
            s = np.asarray(m.score_numpy(obs, proposed))
            scaled.append(np.where(np.isfinite(s), s * k, np.inf))  # unknown risk: unsafe
        return np.max(scaled, axis=0)


def _numpy_scorer(world_model: WorldModel, task_policy: Any, horizon: int, gamma_risk: float):
    """``NumpyCH`` for a TanhGaussianActor task policy on CPU, else None (torch path)."""
    from farm_safety_critic.fast_score import NumpyCH, UnsupportedModuleError

    if type(world_model) is not WorldModel:  # a subclass may override encode/next/...
        return None
    actor = getattr(task_policy, "actor", task_policy)
    try:
        return NumpyCH(world_model, actor, horizon, gamma_risk)
    except UnsupportedModuleError:
        return None


def build_gate(
    world_model_path: str | Path,
    task_actor: Policy | Any,
    recovery_actor_path: str | Path | None,
    **hparams: Any,
) -> SafetyGate:
    """SafetyGate from a world-model checkpoint and a recovery-policy checkpoint.

    ``task_actor`` is the live task policy (e.g. the PPO actor being fine-tuned; it is called,
    not copied, so updates are seen). ``recovery_actor_path`` None: the recovery holds still
    (``decider.hold_still``). ``hparams``: horizon, gamma_risk, eps_safe, fallback_action,
    device.
    """
    device = hparams.get("device", "cpu")
    world_model = WorldModel.load(world_model_path, map_location=device)
    recovery = load_recovery(recovery_actor_path, world_model.cfg, device)
    return SafetyGate(world_model, task_actor, recovery, **hparams)


def load_recovery(path: str | Path | None, wm: Any, device: str | torch.device) -> Any:
    """The recovery actor of a checkpoint, or hold still (``path`` None)."""
    if path is None:
        return hold_still(wm.act_dim)
    from farm_policies.checkpoint import load_actor_value

    recovery, _, _ = load_actor_value(path, obs_dim=wm.obs_dim, act_dim=wm.act_dim)
    return recovery.to(device).eval()


MEMBER_FILE = "member{k}.safetensors"
"""world model k >= 1 of an ensemble, beside member 0 (the world model) in its folder"""


def ensemble_paths(world_model_path: str | Path, members: int) -> list[Path]:
    """``world_model_path`` and the other ``members - 1`` world models of its ensemble."""
    first = Path(world_model_path)
    return [first, *(first.with_name(MEMBER_FILE.format(k=k)) for k in range(1, members))]


def build_ensemble_gate(
    world_model_paths: list[str | Path],
    task_actor: Policy | Any,
    recovery_actor_path: str | Path | None,
    **hparams: Any,
) -> EnsembleSafetyGate:
    """``EnsembleSafetyGate`` from world-model checkpoints (``build_gate``'s other arguments)."""
    device = hparams.get("device", "cpu")
    models = [WorldModel.load(p, map_location=device) for p in world_model_paths]
    recovery = load_recovery(recovery_actor_path, models[0].cfg, device)
    return EnsembleSafetyGate(models, task_actor, recovery, **hparams)
