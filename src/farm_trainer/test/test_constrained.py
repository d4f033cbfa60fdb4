"""The constrained baselines (PPO-Lagrangian, P3O, CPO) on hand-made batches and in the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farm_policies import TanhGaussianActor, ValueNet, load_checkpoint
from farm_trainer.methods import METHODS, MethodParams, attach_cost_hook
from farm_trainer.online import CPOCostHook, OnlineTrainer, P3OCostHook
from farm_trainer.online.cost import CostCritic, finished_episodes
from farm_trainer.online.cpo import conjugate_gradient, cpo_step, gaussian_kl
from farm_trainer.online.ppo import PPOBatch
from farm_trainer.online.rollout import Rollout

from .test_online import fast_config, read_csv

torch.set_num_threads(1)


def conflicting_batch(actor: TanhGaussianActor, n: int = 512, seed: int = 0) -> PPOBatch:
    """Reward prefers larger actions, cost prefers smaller: the two surrogates conflict."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, actor.obs_dim, generator=g)
    with torch.no_grad():
        act = actor.act(obs)
        logp = actor.log_prob(obs, act)
    a = act[:, 0]
    adv_r = a - a.mean()
    adv_c = 0.5 * (a - a.mean())
    zeros = torch.zeros(n)
    return PPOBatch(obs, act, logp, adv_r, zeros, zeros, cost_advantages=adv_c)


def mean_action(actor: TanhGaussianActor, obs: torch.Tensor) -> float:
    with torch.no_grad():
        return float(actor(obs)[0].mean())


def test_conjugate_gradient_solves_a_spd_system():
    a = torch.tensor([[4.0, 1.0], [1.0, 3.0]])
    b = torch.tensor([1.0, 2.0])
    x = conjugate_gradient(lambda v: a @ v, b, iters=10)
    torch.testing.assert_close(a @ x, b, atol=1e-5, rtol=0)


def test_gaussian_kl_is_zero_for_equal_and_positive_otherwise():
    m, s = torch.zeros(3, 2), torch.zeros(3, 2)
    assert float(gaussian_kl(m, s, m, s).abs().max()) < 1e-7
    assert float(gaussian_kl(m, s, m + 0.5, s - 0.2).min()) > 0


@pytest.mark.parametrize(
    ("violation", "direction"),
    [(-0.5, +1), (0.5, -1)],
    ids=["feasible: reward step", "violated: cost-lowering step"],
)
def test_cpo_step_follows_the_constraint_and_stays_in_the_trust_region(violation, direction):
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 1, hidden=32, depth=2)
    batch = conflicting_batch(actor)
    before = mean_action(actor, batch.obs)
    with torch.no_grad():
        mean0, log_std0 = actor(batch.obs)
    stats = cpo_step(actor, batch, violation, target_kl=0.01)
    assert stats["cpo_accept_step"] >= 1
    with torch.no_grad():
        mean1, log_std1 = actor(batch.obs)
    kl = float(gaussian_kl(mean0, log_std0, mean1, log_std1).mean())
    assert 0 < kl <= 1.5 * 0.01
    assert direction * (mean_action(actor, batch.obs) - before) > 0
    expected_case = (3, 4) if violation < 0 else (0, 1)
    assert stats["cpo_case"] in expected_case


def test_p3o_penalty_is_active_only_when_the_budget_is_exceeded():
    hook = P3OCostHook(ValueNet(3, hidden=16, depth=1), cost_limit=0.1, kappa=20.0)
    zero = torch.zeros(8)
    hook.recent_episodes[:4] = torch.tensor([[0.0, 200.0]] * 4)  # J_c = 0 < d
    assert float(hook.actor_penalty(zero, zero)) == 0.0
    hook.recent_episodes[:4, 0] = 1.0  # every recent episode failed: J_c = 1 > d
    assert float(hook.actor_penalty(zero, zero)) == pytest.approx(20.0 * 0.9)


def test_p3o_penalty_gradient_lowers_the_cost_surrogate():
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 1, hidden=32, depth=2)
    batch = conflicting_batch(actor)
    hook = P3OCostHook(ValueNet(3, hidden=16, depth=1), cost_limit=0.0, kappa=20.0)
    hook.recent_episodes[:] = torch.tensor([1.0, 200.0])
    opt = torch.optim.SGD(actor.parameters(), lr=1e-2)
    before = mean_action(actor, batch.obs)
    for _ in range(20):
        new_logp, _ = actor.evaluate_actions(batch.obs, batch.actions)
        loss = hook.actor_penalty(new_logp - batch.logp, batch.cost_advantages)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert mean_action(actor, batch.obs) < before


def test_finished_episodes_counts_cost_and_length_of_episodes_ending_in_the_rollout():
    ro = Rollout.empty(4, 2, 1, 1)
    ro.costs[2, 0] = 1.0
    ro.terminated[2, 0] = True
    ro.truncated[3, 1] = True
    costs, lengths = finished_episodes(ro)
    assert sorted(zip(costs.tolist(), lengths.tolist(), strict=True)) == [(0.0, 4.0), (1.0, 3.0)]


def test_cost_critic_window_survives_a_checkpoint(tmp_path):
    critic = CostCritic(ValueNet(2, hidden=8, depth=1), window=4)
    critic.recent_episodes[:2] = torch.tensor([[1.0, 10.0], [0.0, 20.0]])
    restored = CostCritic(ValueNet(2, hidden=8, depth=1), window=4)
    restored.load_state_dict(critic.state_dict())
    assert restored.episode_cost == pytest.approx(0.5)
    assert restored.episode_length == pytest.approx(15.0)


@pytest.mark.parametrize("method", ["ppo-lag", "p3o", "cpo"])
def test_constrained_method_trains_logs_and_resumes_in_the_online_loop(tmp_path, method):
    assert METHODS[method].make_cost_hook is not None and not METHODS[method].needs
    cfg = fast_config(tmp_path, total_steps=128 * 4, checkpoint_every=2, method=method)
    trainer = OnlineTrainer(cfg)
    attach_cost_hook(method, trainer, MethodParams(cost_limit=0.0))
    trainer.train(max_updates=2)
    state = {k: v.clone() for k, v in trainer.cost_hook.state_dict().items()}
    trainer.close()
    rows = read_csv(tmp_path / "progress.csv")
    assert len(rows) == 2 and "cost_hook/ep_cost" in rows[-1]
    if method == "cpo":
        assert "cost_hook/cpo_case" in rows[-1] and "cpo_case" in rows[-1]
    sds, _ = load_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    assert "cost_hook" in sds

    again = OnlineTrainer(cfg)
    attach_cost_hook(method, again, MethodParams(cost_limit=0.0))
    assert again.resume()
    for k, v in again.cost_hook.state_dict().items():
        torch.testing.assert_close(v, state[k], equal_nan=True)
    again.train()
    assert again.counters["update"] == 4
    weights = [p.detach().numpy() for p in again.actor.parameters()]
    assert all(np.isfinite(w).all() for w in weights)
    again.close()


def test_cpo_hook_refuses_a_batch_without_cost_advantages():
    actor = TanhGaussianActor(3, 1, hidden=8, depth=1)
    hook = CPOCostHook(ValueNet(3, hidden=8, depth=1))
    from farm_trainer.online.ppo import PPOUpdater

    batch = conflicting_batch(actor, n=16)
    batch.cost_advantages = None
    with pytest.raises(ValueError, match="cost advantages"):
        PPOUpdater(actor, ValueNet(3, hidden=8, depth=1)).update(batch, hook=hook)
