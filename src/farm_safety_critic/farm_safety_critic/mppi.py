"""MPPI over the world model in place of the recovery policy (ablation ``mppi``, paper Study 2).

For each environment: sample action sequences (Gaussian around a running mean, plus a few
policy-prior trajectories), roll them out in latent space, score

    G = sum_{i<H} gamma^i R(z_i, a_i) + gamma^H Q(z_H, pi(z_H)) - penalty * C_seq
    C_seq = sum_{i<H} gamma_risk^i C(z_i, a_i) + gamma_risk^H C(z_H, pi(z_H))   (as Eq. 10)

drop sequences whose C_seq exceeds eps_safe (unless all do, then rank by the penalised G),
refit mean/std to the softmax-weighted elites (TD-MPC2, temperature 0.5) and, after the last
iteration, execute the first action of the best elite. Batched over environments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from farm_safety_critic.gate import SafetyGate
from farm_safety_critic.world_model import WorldModel


@dataclass
class MPPIConfig:
    """Planner settings (TD-MPC2 defaults; smaller sample counts are fine on CPU)."""

    horizon: int = 3
    num_samples: int = 512
    iterations: int = 6
    num_elites: int = 64
    num_pi_trajs: int = 24
    temperature: float = 0.5
    min_std: float = 0.05
    max_std: float = 2.0
    gamma: float = 0.99
    gamma_risk: float = 0.9
    eps_safe: float = 0.3
    constraint_penalty: float = 1000.0

    def __post_init__(self) -> None:
        if not 0 < self.num_elites <= self.num_samples:
            raise ValueError("need 0 < num_elites <= num_samples")
        if not 0 <= self.num_pi_trajs < self.num_samples:
            raise ValueError("need 0 <= num_pi_trajs < num_samples")
        if self.horizon < 1 or self.iterations < 1:
            raise ValueError("horizon and iterations must be >= 1")


class MPPIPlanner:
    """Callable raw obs (n, obs_dim) -> action (n, act_dim); usable as a gate's recovery policy."""

    def __init__(
        self, world_model: WorldModel, cfg: MPPIConfig | None = None, seed: int = 0
    ) -> None:
        self.model = world_model.eval()
        self.cfg = cfg or MPPIConfig()
        self.generator = torch.Generator(device=world_model.obs_mean.device).manual_seed(seed)

    @torch.no_grad()
    def evaluate(self, z0: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Return (G, C_seq), each (n, S), for action sequences (n, S, H, A) from latents (n, L)."""
        cfg, m = self.cfg, self.model
        z = z0[:, None].expand(-1, actions.shape[1], -1)
        ret = torch.zeros(actions.shape[:2], device=z0.device)
        risk = torch.zeros_like(ret)
        for i in range(cfg.horizon):
            a = actions[:, :, i]
            ret += cfg.gamma**i * m.reward_value(z, a)
            risk += cfg.gamma_risk**i * m.constraint(z, a)
            z = m.next(z, a)
        a_H = m.pi(z)[0]
        ret += cfg.gamma**cfg.horizon * m.Q(z, a_H, reduce="avg")
        risk += cfg.gamma_risk**cfg.horizon * m.constraint(z, a_H)
        return ret, risk

    @torch.no_grad()
    def pi_trajectories(self, z0: Tensor) -> Tensor:
        """Sequences from the policy prior, (n, P, H, A)."""
        cfg = self.cfg
        z = z0[:, None].expand(-1, cfg.num_pi_trajs, -1)
        acts = []
        for _ in range(cfg.horizon):
            a = self.model.pi(z)[1]
            acts.append(a)
            z = self.model.next(z, a)
        return torch.stack(acts, dim=2)

    @torch.no_grad()
    def plan(self, obs: Tensor) -> Tensor:
        cfg, m = self.cfg, self.model
        n, A, H = obs.shape[0], m.cfg.act_dim, cfg.horizon
        z0 = m.encode(obs)
        pi_acts = self.pi_trajectories(z0) if cfg.num_pi_trajs else None
        mean = torch.zeros(n, H, A, device=obs.device)
        std = torch.full((n, H, A), cfg.max_std, device=obs.device)
        n_rand = cfg.num_samples - cfg.num_pi_trajs
        for _ in range(cfg.iterations):
            noise = torch.randn(n, n_rand, H, A, device=obs.device, generator=self.generator)
            acts = (mean[:, None] + std[:, None] * noise).clamp(-1.0, 1.0)
            if pi_acts is not None:
                acts = torch.cat([pi_acts, acts], dim=1)
            ret, risk = self.evaluate(z0, acts)
            score = ret - cfg.constraint_penalty * risk
            safe = risk <= cfg.eps_safe
            any_safe = safe.any(1, keepdim=True)
            score = torch.where(safe | ~any_safe, score, torch.full_like(score, -torch.inf))
            elite_score, idx = score.topk(cfg.num_elites, dim=1)
            elites = acts.gather(1, idx[:, :, None, None].expand(-1, -1, H, A))
            w = torch.softmax(cfg.temperature * (elite_score - elite_score[:, :1]), dim=1)
            w = torch.nan_to_num(w)[:, :, None, None]
            mean = (w * elites).sum(1)
            std = (
                ((w * (elites - mean[:, None]).pow(2)).sum(1))
                .sqrt()
                .clamp(cfg.min_std, cfg.max_std)
            )
        return elites[:, 0, 0]

    __call__ = plan


def build_mppi_gate(
    world_model_path: str | Path,
    task_actor: Any,
    mppi: MPPIConfig | None = None,
    seed: int = 0,
    **hparams: Any,
) -> SafetyGate:
    """SafetyGate whose recovery action comes from MPPI over the same world model.

    ``hparams``: horizon, gamma_risk, eps_safe, fallback_action, device (as ``build_gate``).
    MPPI's own eps_safe / gamma_risk / horizon default to the gate's.
    """
    device = hparams.get("device", "cpu")
    world_model = WorldModel.load(world_model_path, map_location=device)
    cfg = mppi or MPPIConfig(
        horizon=hparams.get("horizon", 3),
        gamma_risk=hparams.get("gamma_risk", 0.9),
        eps_safe=hparams.get("eps_safe", 0.3),
    )
    return SafetyGate(world_model, task_actor, MPPIPlanner(world_model, cfg, seed), **hparams)
