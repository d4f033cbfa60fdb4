"""Recovery RL's Q-risk safety critic (ablation ``recrl``; paper Eq. 15-16, Thananjeyan et al.).

Q_risk(s, a) estimates the discounted probability of a future constraint violation:
two MLPs on [s, a] with sigmoid outputs, target
    y = c + (1 - done) * gamma_safe * max(Q1', Q2')(s', a'),   a' ~ pi(s')
trained by MSE; Q_risk = max(Q1, Q2). The gate fires where Q_risk(s, a_task) > eps_safe.

Target networks: Recovery RL uses a soft update with tau_safe = 2e-4 over long online runs;
our offline pre-training is a few thousand steps, so the default is tau = 5e-3 (the usual
SAC value), which lets the target follow within ~1/tau = 200 steps. With gamma_safe = 0.8 the
fixed point is reached after a few dozen target half-lives.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from farm_policies.actor import normalize_obs
from farm_safety_critic.gate import Policy, ScoreGate
from farm_safety_critic.sequence_sampler import SliceBatch
from farm_safety_critic.world_model import WorldModelError, _stat

CHECKPOINT_KIND = "farm_qrisk"


@dataclass
class QRiskConfig:
    obs_dim: int
    act_dim: int
    hidden: int = 256


def _q_net(cfg: QRiskConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(cfg.obs_dim + cfg.act_dim, cfg.hidden),
        nn.ReLU(),
        nn.Linear(cfg.hidden, cfg.hidden),
        nn.ReLU(),
        nn.Linear(cfg.hidden, 1),
        nn.Sigmoid(),
    )


class QRisk(nn.Module):
    """Twin sigmoid Q-risk critics with target copies and fixed observation normalisation."""

    def __init__(self, cfg: QRiskConfig, obs_mean: Any = None, obs_std: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.q1, self.q2 = _q_net(cfg), _q_net(cfg)
        self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)
        self.register_buffer("obs_mean", _stat(obs_mean, cfg.obs_dim, 0.0, "obs_mean"))
        std = _stat(obs_std, cfg.obs_dim, 1.0, "obs_std")
        if (std <= 0).any():
            raise WorldModelError("obs_std must be strictly positive")
        self.register_buffer("obs_std", std)

    def _sa(self, obs_raw: Tensor, a: Tensor) -> Tensor:
        s = normalize_obs(obs_raw, self.obs_mean, self.obs_std)
        return torch.cat([s, a], dim=-1)

    def forward(self, obs_raw: Tensor, a: Tensor, target: bool = False) -> tuple[Tensor, Tensor]:
        """(Q1, Q2), each (batch,) in [0, 1]."""
        sa = self._sa(obs_raw, a)
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        return q1(sa).squeeze(-1), q2(sa).squeeze(-1)

    def risk(self, obs_raw: Tensor, a: Tensor) -> Tensor:
        """Q_risk(s, a) = max(Q1, Q2)."""
        return torch.maximum(*self(obs_raw, a))

    @torch.no_grad()
    def soft_update(self, tau: float) -> None:
        for tgt, src in ((self.q1_target, self.q1), (self.q2_target, self.q2)):
            for p_t, p in zip(tgt.parameters(), src.parameters(), strict=True):
                p_t.lerp_(p, tau)

    def online_parameters(self) -> list[nn.Parameter]:
        return [*self.q1.parameters(), *self.q2.parameters()]

    def save(self, path: str | Path, extra_header: dict[str, Any] | None = None) -> None:
        from farm_policies.checkpoint import save_checkpoint

        header = {"kind": CHECKPOINT_KIND, "config": asdict(self.cfg), **(extra_header or {})}
        save_checkpoint(Path(path), {"qrisk": self}, header)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> QRisk:
        from farm_policies.checkpoint import load_checkpoint

        states, header = load_checkpoint(Path(path))
        if header.get("kind") != CHECKPOINT_KIND or "qrisk" not in states:
            raise WorldModelError(
                f"{path} is not a Q-risk checkpoint (kind={header.get('kind')!r})"
            )
        model = cls(QRiskConfig(**header["config"]))
        model.load_state_dict(states["qrisk"])
        return model.to(map_location).eval()


def qrisk_target(
    c: Tensor, done: Tensor, q1_next: Tensor, q2_next: Tensor, gamma_safe: float
) -> Tensor:
    """y = c + (1 - done) * gamma_safe * max(Q1', Q2') (Eq. 16 with Recovery RL's max)."""
    return c + (1.0 - done) * gamma_safe * torch.maximum(q1_next, q2_next)


def next_actions(batch: SliceBatch, policy: Policy | None) -> Tensor:
    """a' for the target: pi(s') if a policy is given, else the logged next action (SARSA).

    Without a policy, rows whose next action is not logged (end of a truncated episode) reuse
    a_t; terminal rows do not bootstrap, so their a' is irrelevant.
    """
    if policy is not None:
        return policy(batch.next_obs[0])
    has_next = batch.mask[1].bool().unsqueeze(-1)
    return torch.where(has_next, batch.actions[1], batch.actions[0])


def qrisk_loss(
    model: QRisk, batch: SliceBatch, gamma_safe: float, policy: Policy | None = None
) -> tuple[Tensor, dict[str, float]]:
    """MSE of both critics to the shared target, on the first transition of 2-step slices."""
    if batch.obs.shape[0] < 2:
        raise ValueError("Q-risk needs slices of horizon >= 1 (for the logged next action)")
    s, a, c, done = batch.obs[0], batch.actions[0], batch.costs[0], batch.terminated[0]
    with torch.no_grad():
        q1n, q2n = model(batch.next_obs[0], next_actions(batch, policy), target=True)
        y = qrisk_target(c, done, q1n, q2n, gamma_safe)
    q1, q2 = model(s, a)
    loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    return loss, {"loss/qrisk": float(loss.detach()), "qrisk/target_mean": float(y.mean())}


class QRiskGate(ScoreGate):
    """Recovery RL's gate: score = Q_risk(s, a_task), recovery where score > eps_safe."""

    def __init__(
        self,
        qrisk: QRisk,
        recovery_policy: Policy | Any,
        eps_safe: float = 0.3,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(
            recovery_policy, eps_safe, qrisk.cfg.obs_dim, qrisk.cfg.act_dim, fallback_action, device
        )
        self.qrisk = qrisk.to(self.device).eval()

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        return self.qrisk.risk(obs, proposed.clamp(-1.0, 1.0))


def build_qrisk_gate(
    qrisk_path: str | Path, recovery_actor_path: str | Path, **hparams: Any
) -> QRiskGate:
    """QRiskGate from a Q-risk checkpoint and a recovery-policy checkpoint.

    ``hparams``: eps_safe, fallback_action, device.
    """
    from farm_policies.checkpoint import load_actor_value

    device = hparams.get("device", "cpu")
    qrisk = QRisk.load(qrisk_path, map_location=device)
    recovery, _, _ = load_actor_value(
        recovery_actor_path, obs_dim=qrisk.cfg.obs_dim, act_dim=qrisk.cfg.act_dim
    )
    return QRiskGate(qrisk, recovery.to(device).eval(), **hparams)
