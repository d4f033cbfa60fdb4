"""Multi-step offline policy improvement of every ensemble member (Uni-O4 ``abppo.py``).

For member i with behaviour policy pi_i^k (a frozen copy) and current policy pi_i:

    a ~ pi_i^k(.|s),   A = norm(Q(s, a) - V(s)),   A_w = A * (omega if A > 0 else 1 - omega)
    J_k(pi_i) = E[ min(r A_w, clip(r, 1 - eps, 1 + eps) A_w) ],   r = pi_i(a|s) / pi_i^k(a|s)   (Eq. 3)

eps and the learning rate decay linearly to 0. Every ``eval_step`` updates each pi_i is scored
by OPE; when it beats the member's best score so far, pi_i^k <- pi_i (multi-step improvement).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from farm_policies.actor import TanhGaussianActor

from .data import Transitions

ADV_EPS = 1e-8


def normalise(x: Tensor) -> Tensor:
    """(x - mean) / (std + eps) over the batch."""
    return (x - x.mean()) / (x.std() + ADV_EPS)


def weighted_advantage(adv: Tensor, omega: float) -> Tensor:
    """Asymmetric weighting: A * omega where A > 0, A * (1 - omega) elsewhere."""
    return adv * torch.where(adv > 0, omega, 1.0 - omega)


def ppo_clip_objective(logp_new: Tensor, logp_old: Tensor, adv: Tensor, clip: float) -> Tensor:
    """J_k = mean(min(r A, clip(r, 1-eps, 1+eps) A)), r = exp(logp_new - logp_old) (Eq. 3)."""
    ratio = (logp_new - logp_old).exp()
    return torch.minimum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()


def linear_decay(value: float, step: int, total: int) -> float:
    """value * (1 - step / total)."""
    return value * (1.0 - step / total)


@dataclass
class OfflinePPOConfig:
    """Uni-O4 defaults (``bppo_*`` arguments of main.py) except ``steps`` (theirs: 1e4)."""

    steps: int = 2_000
    """policy-improvement steps (each updates every member once)"""
    lr: float = 1e-4
    """initial Adam learning rate (decays linearly to 0)"""
    batch_size: int = 512
    clip: float = 0.25
    """initial PPO clip ratio eps (decays linearly to 0)"""
    omega: float = 0.7
    """asymmetric advantage weight (0.5 disables it)"""
    grad_clip: float = 0.5
    eval_step: int = 100
    """OPE + behaviour replacement every this many steps"""


AdvantageFn = Callable[[Tensor, Tensor], Tensor]
ScoreFn = Callable[[TanhGaussianActor], float]


class OfflinePPO:
    """Improves a list of actors in place; ``behaviour[i]`` is member i's best-OPE snapshot."""

    def __init__(
        self,
        actors: list[TanhGaussianActor],
        advantage_fn: AdvantageFn,
        score_fn: ScoreFn,
        config: OfflinePPOConfig | None = None,
    ) -> None:
        self.cfg = config or OfflinePPOConfig()
        self.actors = actors
        self.advantage_fn, self.score_fn = advantage_fn, score_fn
        self.behaviour = [copy.deepcopy(a).requires_grad_(False) for a in actors]
        self.opts = [torch.optim.Adam(a.parameters(), lr=self.cfg.lr) for a in actors]
        self.best_scores = np.array([score_fn(a) for a in actors], dtype=np.float64)
        self.initial_scores = self.best_scores.copy()
        self.replacements = [0 for _ in actors]

    def member_loss(self, i: int, obs: Tensor, clip: float) -> Tensor:
        """-J_k(pi_i) on a minibatch of states, actions drawn from the behaviour policy."""
        with torch.no_grad():
            action = self.behaviour[i].act(obs)
            logp_old = self.behaviour[i].log_prob(obs, action)
            adv = weighted_advantage(normalise(self.advantage_fn(obs, action)), self.cfg.omega)
        logp_new = self.actors[i].log_prob(obs, action)
        return -ppo_clip_objective(logp_new, logp_old, adv, clip)

    def update(self, obs: Tensor, step: int) -> list[float]:
        """One clipped-surrogate step for every member on the same states."""
        clip = linear_decay(self.cfg.clip, step, self.cfg.steps)
        lr = linear_decay(self.cfg.lr, step, self.cfg.steps)
        losses = []
        for i, (actor, opt) in enumerate(zip(self.actors, self.opts, strict=True)):
            for group in opt.param_groups:
                group["lr"] = lr
            loss = self.member_loss(i, obs, clip)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(actor.parameters(), self.cfg.grad_clip)
            opt.step()
            losses.append(loss.item())
        return losses

    def evaluate_and_replace(self) -> tuple[np.ndarray, list[int]]:
        """OPE-score every member; pi_i^k <- pi_i where the score beats its best so far."""
        scores = np.array([self.score_fn(a) for a in self.actors], dtype=np.float64)
        improved = [i for i in range(len(self.actors)) if scores[i] > self.best_scores[i]]
        for i in improved:
            self.best_scores[i] = scores[i]
            self.behaviour[i].load_state_dict(self.actors[i].state_dict())
            self.replacements[i] += 1
        return scores, improved

    def run(self, data: Transitions, seed: int = 0, progress: bool = True) -> dict[str, list]:
        """All ``cfg.steps`` steps; returns loss and OPE histories."""
        gen = torch.Generator().manual_seed(seed)
        hist: dict[str, list] = {"loss": [], "ope_step": [], "ope_scores": []}
        for step in tqdm(
            range(self.cfg.steps), desc="offline PPO", disable=not progress, leave=False
        ):
            idx = data.sample_idx(self.cfg.batch_size, gen)
            hist["loss"].append(self.update(data.obs[idx], step))
            if (step + 1) % self.cfg.eval_step == 0 or step + 1 == self.cfg.steps:
                scores, _ = self.evaluate_and_replace()
                hist["ope_step"].append(step + 1)
                hist["ope_scores"].append(scores.tolist())
        return hist

    def best(self) -> tuple[int, TanhGaussianActor]:
        """(index, best-OPE snapshot) of the member with the highest OPE score."""
        i = int(np.argmax(self.best_scores))
        return i, self.behaviour[i]
