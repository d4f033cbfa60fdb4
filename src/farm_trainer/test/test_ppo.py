"""PPO-clip and value losses against hand-computed cases; PPOUpdater behaviour."""

import math

import numpy as np
import pytest
import torch

from farm_policies import TanhGaussianActor, ValueNet
from farm_trainer.online.ppo import PPOBatch, PPOConfig, PPOUpdater, ppo_clip_loss, value_loss

torch.set_num_threads(1)


def loss_for(ratio, adv, clip=0.2):
    new = torch.tensor([math.log(ratio)], requires_grad=True)
    loss = ppo_clip_loss(new, torch.zeros(1), torch.tensor([adv]), clip)
    loss.backward()
    return loss.item(), new.grad.item()


@pytest.mark.parametrize(
    ("ratio", "adv", "expected", "has_grad"),
    [
        (1.1, 2.0, -2.2, True),  # inside the clip range
        (1.5, 2.0, -2.4, False),  # A > 0, ratio above 1 + eps: clipped, no gradient
        (1.5, -2.0, 3.0, True),  # A < 0, ratio above range: unclipped (pessimistic) term
        (0.5, -2.0, 1.6, False),  # A < 0, ratio below 1 - eps: clipped
        (0.5, 2.0, -1.0, True),  # A > 0, ratio below range: unclipped term
    ],
)
def test_ppo_clip_hand_cases(ratio, adv, expected, has_grad):
    loss, grad = loss_for(ratio, adv)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert (abs(grad) > 1e-8) == has_grad


def test_ppo_clip_mean_over_batch():
    new = torch.log(torch.tensor([1.1, 1.5]))
    loss = ppo_clip_loss(new, torch.zeros(2), torch.tensor([2.0, 2.0]), 0.2)
    assert loss.item() == pytest.approx(-(2.2 + 2.4) / 2, rel=1e-5)


def test_value_loss_clipped_and_unclipped():
    new, old, ret = torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([2.0])
    assert value_loss(new, old, ret, 0.5).item() == pytest.approx(0.5 * 2.25)
    assert value_loss(new, old, ret, None).item() == pytest.approx(0.5)
    # the clipped term only matters when it is worse
    assert value_loss(torch.tensor([1.9]), torch.tensor([1.8]), ret, 0.5).item() == pytest.approx(
        0.5 * 0.01
    )


def test_updater_raises_logp_of_positive_advantage_actions_and_decays_lr():
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, hidden=16, depth=1)
    critic = ValueNet(3, hidden=16, depth=1)
    cfg = PPOConfig(
        batch_size=64, minibatch_size=16, epochs=4, lr_actor=1e-3, clip=0.2, entropy_coef=0.0
    )
    ppo = PPOUpdater(actor, critic, cfg, total_updates=2)
    obs = torch.randn(64, 3)
    good, bad = torch.full((32, 2), 0.5), torch.full((32, 2), -0.5)
    actions = torch.cat([good, bad])
    with torch.no_grad():
        logp = actor.log_prob(obs, actions)
    adv = torch.cat([torch.ones(32), -torch.ones(32)])
    batch = PPOBatch(obs, actions, logp, adv, torch.ones(64), torch.zeros(64))
    s1 = ppo.update(batch)
    with torch.no_grad():
        new = actor.log_prob(obs, actions)
    assert (new[:32] - logp[:32]).mean() > 0 > (new[32:] - logp[32:]).mean()
    assert s1["lr_actor"] == pytest.approx(1e-3)
    s2 = ppo.update(batch)
    assert s2["lr_actor"] == pytest.approx(5e-4)
    assert np.isfinite([s2[k] for k in ("pi_loss", "v_loss", "entropy", "kl", "clipfrac")]).all()


def test_clip_loss_stays_finite_for_far_off_policy_actions():
    new = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    old = torch.tensor([-1500.0, 1500.0, 0.0])  # recovery actions deep in pi_task's tails
    adv = torch.tensor([-1.0, 1.0, 0.5])
    loss = ppo_clip_loss(new, old, adv, clip=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(new.grad).all()


def test_non_finite_loss_skips_the_step_and_keeps_weights():
    actor, critic = TanhGaussianActor(3, 2, hidden=8, depth=1), ValueNet(3, hidden=8, depth=1)
    up = PPOUpdater(actor, critic, PPOConfig())
    before = [p.detach().clone() for p in actor.parameters()]
    up._step(up.opt_actor, actor, torch.tensor(float("nan"), requires_grad=True), 0.5)
    assert up.skipped_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(before, actor.parameters(), strict=True))


def test_a_policy_mask_keeps_masked_steps_out_of_the_policy_loss():
    """``learn_actions: own``: the update does not depend on the advantages of masked (replaced)
    steps, and the loss is the kept steps' mean."""
    new, old = torch.zeros(4), torch.zeros(4)
    adv, mask = torch.tensor([1.0, 2.0, 30.0, -40.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert ppo_clip_loss(new, old, adv, 0.2, mask) == pytest.approx(-1.5)
    assert ppo_clip_loss(new, old, adv, 0.2, torch.zeros(4)) == 0.0

    def trained(masked_adv: float) -> list[torch.Tensor]:
        torch.manual_seed(0)
        actor = TanhGaussianActor(3, 2, hidden=8, depth=1)
        critic = ValueNet(3, hidden=8, depth=1)
        ppo = PPOUpdater(actor, critic, PPOConfig(minibatch_size=16, epochs=2, lr_actor=1e-3))
        gen = torch.Generator().manual_seed(1)
        obs, act = torch.randn(64, 3, generator=gen), torch.rand(64, 2, generator=gen) - 0.5
        with torch.no_grad():
            logp = actor.log_prob(obs, act)
        keep = (torch.arange(64) % 3 != 0).float()
        adv = torch.where(keep > 0, torch.randn(64, generator=gen), torch.full((64,), masked_adv))
        batch = PPOBatch(obs, act, logp, adv, torch.ones(64), torch.zeros(64), policy_mask=keep)
        ppo.update(batch, generator=torch.Generator().manual_seed(2))
        return [q.detach().clone() for q in actor.parameters()]

    a, b = trained(100.0), trained(-100.0)
    assert all(torch.allclose(x, y) for x, y in zip(a, b, strict=True))

    torch.manual_seed(0)  # a batch whose every step was replaced leaves the actor as it was
    actor, critic = TanhGaussianActor(3, 2, hidden=8, depth=1), ValueNet(3, hidden=8, depth=1)
    before = [q.detach().clone() for q in actor.parameters()]
    obs, act = torch.randn(32, 3), torch.zeros(32, 2)
    none = PPOBatch(obs, act, actor.log_prob(obs, act).detach(), torch.randn(32), torch.ones(32),
                    torch.zeros(32), policy_mask=torch.zeros(32))  # fmt: skip
    PPOUpdater(actor, critic, PPOConfig(minibatch_size=16, epochs=2)).update(none)
    assert all(torch.equal(x, y) for x, y in zip(before, actor.parameters(), strict=True))


def test_dual_clip_bounds_far_off_policy_rows_with_negative_advantage_only():
    """Dual-clip PPO: where A < 0 a ratio far above 1 (a gate's replacement, not sampled from
    pi_task) costs at most c * |A| and gives no gradient; elsewhere the loss is PPO-clip's."""
    log_ratio = torch.tensor([15.0, 15.0, 0.01, -0.5], requires_grad=True)
    adv = torch.tensor([-1.0, 1.0, -1.0, -1.0])
    plain = ppo_clip_loss(log_ratio, torch.zeros(4), adv, 0.05, mask=None)
    dual = ppo_clip_loss(log_ratio, torch.zeros(4), adv, 0.05, mask=None, dual_clip=3.0)
    assert plain.item() > 1e5  # e^15 * 1 / 4: the first row dominates the plain loss
    # rows: max(-e^15, -3) = -3; min(e^15, 1.05) = 1.05; -e^0.01 (unclipped); min(-0.61, -0.95)
    assert dual.item() == pytest.approx((3.0 - 1.05 + math.exp(0.01) + 0.95) / 4, rel=1e-5)
    dual.backward()
    assert log_ratio.grad[0] == 0.0 and log_ratio.grad[1] == 0.0  # bound / clipped: no gradient
    assert log_ratio.grad[2] != 0.0  # an on-policy ratio learns as before


def test_dual_clip_is_off_by_default_and_validated():
    assert PPOConfig().dual_clip == 0.0
    for bad in (0.5, 1.0, -2.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="dual_clip"):
            PPOConfig(dual_clip=bad)


def test_the_updater_applies_the_configured_dual_clip():
    """Executed actions far outside pi_task (logged with a log-probability 30 below the
    policy's) with negative advantages: plain PPO's loss is the e^20 clamp's, dual-clip's is
    bounded by c * |A| (normalised advantages, here +-1)."""
    losses = {}
    for c in (0.0, 3.0):
        torch.manual_seed(0)
        actor, critic = TanhGaussianActor(3, 2, hidden=8, depth=1), ValueNet(3, hidden=8, depth=1)
        cfg = PPOConfig(minibatch_size=16, epochs=1, entropy_coef=0.0, dual_clip=c)
        obs, actions = torch.randn(32, 3), torch.zeros(32, 2)
        with torch.no_grad():
            logp = actor.log_prob(obs, actions) - 30.0
        adv = torch.cat([torch.ones(16), -torch.ones(16)])[torch.randperm(32)]
        batch = PPOBatch(obs, actions, logp, adv, torch.ones(32), torch.zeros(32))
        losses[c] = PPOUpdater(actor, critic, cfg).update(batch)["pi_loss"]
    assert losses[0.0] > 1e6 and 0.0 < losses[3.0] <= 3.0
