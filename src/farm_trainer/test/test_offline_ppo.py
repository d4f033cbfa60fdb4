"""Offline PPO: clipped objective (Eq. 3), advantage weighting, improvement and replacement."""

import numpy as np
import pytest
import torch

from farm_policies.actor import TanhGaussianActor
from farm_trainer.offline.offline_ppo import (
    OfflinePPO,
    OfflinePPOConfig,
    linear_decay,
    ppo_clip_objective,
    weighted_advantage,
)

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "ratio, adv, expected",
    [
        (1.1, 2.0, 2.2),  # inside the clip range
        (1.5, 2.0, 2.5),  # A > 0, ratio above 1 + eps: clipped to 1.25
        (0.5, 2.0, 1.0),  # A > 0, ratio below 1 - eps: min keeps the unclipped 0.5 * 2
        (1.5, -2.0, -3.0),  # A < 0, ratio above: min keeps the unclipped -3
        (0.5, -2.0, -1.5),  # A < 0, ratio below 1 - eps: clipped to 0.75
    ],
)
def test_ppo_clip_objective_hand_cases(ratio, adv, expected):
    j = ppo_clip_objective(
        torch.tensor([np.log(ratio)]), torch.tensor([0.0]), torch.tensor([adv]), 0.25
    )
    assert j.item() == pytest.approx(expected, rel=1e-5)


def test_weighted_advantage_and_decay():
    a = torch.tensor([2.0, -1.0, 0.0])
    assert weighted_advantage(a, 0.7).tolist() == pytest.approx([1.4, -0.3, 0.0])
    assert weighted_advantage(a, 0.5).tolist() == pytest.approx([1.0, -0.5, 0.0])
    assert linear_decay(0.25, 50, 100) == pytest.approx(0.125)


def quadratic_advantage(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    return -(action - 0.5).pow(2).sum(-1)


def test_offline_ppo_increases_surrogate_and_moves_policy():
    torch.manual_seed(0)
    actor = TanhGaussianActor(2, 1, hidden=32, depth=2)
    cfg = OfflinePPOConfig(steps=60, lr=1e-3, batch_size=256, eval_step=1000)
    ppo = OfflinePPO([actor], quadratic_advantage, lambda a: 0.0, cfg)
    obs = torch.randn(256, 2)
    torch.manual_seed(1)
    with torch.no_grad():
        j_before = -ppo.member_loss(0, obs, clip=0.25).item()  # ratio = 1: mean weighted advantage
        mean_before = actor.act(obs, deterministic=True).mean().item()
    for step in range(cfg.steps):
        ppo.update(obs, step)
    torch.manual_seed(1)
    with torch.no_grad():
        j_after = -ppo.member_loss(0, obs, clip=0.25).item()
        mean_after = actor.act(obs, deterministic=True).mean().item()
    assert j_after > j_before
    assert abs(mean_after - 0.5) < abs(mean_before - 0.5)


def test_behaviour_replaced_only_when_ope_improves():
    torch.manual_seed(0)
    actors = [TanhGaussianActor(2, 1, hidden=16, depth=1) for _ in range(2)]
    scores = iter([0.0, 0.0, 1.0, -1.0])  # initial (2 members), then one eval round
    ppo = OfflinePPO(
        actors, quadratic_advantage, lambda a: next(scores), OfflinePPOConfig(steps=5, lr=1e-2)
    )
    ppo.update(torch.randn(64, 2), 0)
    _, improved = ppo.evaluate_and_replace()
    assert improved == [0] and ppo.replacements == [1, 0]
    for p, q in zip(ppo.behaviour[0].parameters(), actors[0].parameters(), strict=True):
        assert torch.equal(p, q)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(ppo.behaviour[1].parameters(), actors[1].parameters(), strict=True)
    )
    i, best = ppo.best()
    assert i == 0 and best is ppo.behaviour[0]
