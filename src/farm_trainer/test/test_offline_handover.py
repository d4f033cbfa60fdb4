"""The guarded hand-over: model returns without the IQL critic, and the rule that keeps BC
unless the improved policy is better under every model member."""

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from point_reach import PointReach, demos, tiny_config

from farm_policies.actor import TanhGaussianActor, ValueNet
from farm_policies.checkpoint import CheckpointError, load_actor_value
from farm_trainer.offline import pipeline as offline_pipeline
from farm_trainer.offline.data import to_transitions
from farm_trainer.offline.handover import choose_handover, paired_lower_bound
from farm_trainer.offline.model_return import (
    RewardEnsemble,
    fit_reward,
    model_returns,
    replay_bias,
    replay_error,
    replay_errors,
)
from farm_trainer.offline.ope import DynamicsEnsemble
from farm_trainer.offline.pipeline import run_offline

torch.set_num_threads(1)


def table(means, n=64, noise=0.1, seed=0):
    """(E, N) model returns with per-member means ``means`` and start-state noise."""
    gen = torch.Generator().manual_seed(seed)
    return torch.tensor(means).unsqueeze(1) + noise * torch.randn(len(means), n, generator=gen)


def test_improved_is_handed_over_only_when_better_under_every_member():
    bc = [table([1.0, 1.0, 1.0], seed=1), table([0.5, 0.5, 0.5], seed=2)]
    better = bc[0] + 0.2
    d = choose_handover(bc, better, z=1.645)
    assert d.policy == "improved" and d.bc_member == 0
    assert d.margin_lower_bound > 0 and d.margin_mean == pytest.approx(0.2, abs=1e-5)

    # better on average over the members, worse under one of them: BC is kept
    mixed = bc[0] + torch.tensor([[0.6], [0.6], [-0.3]])
    assert float((mixed - bc[0]).mean()) > 0
    assert choose_handover(bc, mixed, z=1.645).policy == "bc"

    # a mean gain smaller than its noise cannot be told apart: BC is kept
    noisy = bc[0] + 0.01 + table([0.0, 0.0, 0.0], noise=0.5, seed=3)
    assert choose_handover(bc, noisy, z=1.645).policy == "bc"
    # ... while z = 0 (no confidence asked) accepts any positive mean under every member
    assert paired_lower_bound(torch.full((3, 8), 0.01), 0.0) == pytest.approx(0.01)


def test_best_bc_member_is_the_pessimistic_one():
    # member 0 has the higher average but one model that finds it poor; member 1 is steady
    bc = [table([2.0, 2.0, -1.0], noise=0.0), table([0.8, 0.8, 0.8], noise=0.0)]
    d = choose_handover(bc, table([0.0, 0.0, 0.0], noise=0.0), z=1.645)
    assert d.bc_member == 1 and d.policy == "bc"
    assert d.bc_scores == pytest.approx([-1.0, 0.8])


def test_bad_model_returns_are_rejected():
    with pytest.raises(ValueError, match="at least one"):
        choose_handover([], table([1.0]), 1.0)
    with pytest.raises(ValueError, match="shape"):
        choose_handover([table([1.0, 1.0])], table([1.0]), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        choose_handover([table([1.0]) * float("nan")], table([1.0]), 1.0)


def test_model_return_of_one_step_is_reward_plus_discounted_value():
    data = to_transitions(demos(episodes=4), 0.1, 1e-2)
    dyn = DynamicsEnsemble.for_data(data, n_members=2, hidden=16, depth=1)
    reward = RewardEnsemble.for_data(data, n_members=2, hidden=16, depth=1)
    value = ValueNet(data.obs_dim, 16, 1, obs_mean=data.obs_mean, obs_std=data.obs_std)
    actor = TanhGaussianActor(data.obs_dim, data.act_dim, 16, 1)
    init = data.obs[:5]
    got = model_returns(actor, dyn, reward, value, init, horizon=1, gamma=0.9)
    assert got.shape == (2, 5)
    with torch.no_grad():
        a = actor.act(init, deterministic=True)
        for e in range(2):
            nxt = dyn.step(init, a, torch.full((5,), e))
            want = reward(init, a)[e] + 0.9 * value(nxt)
            torch.testing.assert_close(got[e], want)
    with pytest.raises(ValueError, match="members"):
        bad = RewardEnsemble.for_data(data, n_members=3, hidden=16, depth=1)
        model_returns(actor, dyn, bad, value, init, 1, 0.9)


def test_reward_ensemble_fits_the_data():
    data = to_transitions(demos(episodes=10), 0.1, 1e-2)
    # a smooth reward of (s, a): minus the distance left after the step
    dist = (data.obs[:, :2] + 0.1 * data.actions - data.obs[:, 2:]).norm(dim=1)
    data = dataclasses.replace(data, rewards=-0.1 * dist)
    model = RewardEnsemble.for_data(data, n_members=2, hidden=64, depth=2)
    fit_reward(model, data, 600, lr=3e-3, batch_size=128, progress=False)
    with torch.no_grad():
        err = model(data.obs, data.actions) - data.rewards
    assert (err.pow(2).mean(dim=1) < 0.1 * data.rewards.var()).all()


def test_guarded_pipeline_refuses_a_worse_improvement_and_resumes(tmp_path, monkeypatch):
    """Offline PPO is made to return a policy that walks away from the goal: the guarded
    hand-over keeps the best BC member, which the environment confirms is better."""

    def sabotaged_best(self):
        i = int(np.argmax(self.best_scores))
        bad = copy.deepcopy(self.behaviour[i])
        with torch.no_grad():
            head = [m for m in bad.modules() if isinstance(m, torch.nn.Linear)][-1]
            head.weight[: bad.act_dim].neg_()
            head.bias[: bad.act_dim].neg_()
        return i, bad

    monkeypatch.setattr(offline_pipeline.OfflinePPO, "best", sabotaged_best)
    cfg = tiny_config(handover="guarded", reward_steps=300, bc_steps=600, value_steps=300,
                      dyn_steps=400, handover_horizon=10, eval_episodes=6)  # fmt: skip
    report = run_offline(demos(), tmp_path, cfg, task="PointReach", env_fn=PointReach)
    for name in ("improved.safetensors", "reward.safetensors", "actor.safetensors"):
        assert (tmp_path / name).is_file(), name
    h = report["stages"]["handover"]
    assert h["policy"] == "bc" and h["margin_lower_bound"] < 0
    ev = report["evaluation"]
    assert ev["handed_over_policy"] == "bc"
    handed = ev.get("handed_over", ev["bc"])  # the PPO member itself when it is the best BC one
    assert handed["return_mean"] > ev["improved"]["return_mean"]

    actor, value, header = load_actor_value(tmp_path / "actor.safetensors")
    assert header["meta"]["handover"] == "bc" and header["meta"]["member"] == h["bc_member"]
    bc, _, _ = load_actor_value(tmp_path / f"bc_{h['bc_member']}.safetensors")
    for a, b in zip(actor.state_dict().values(), bc.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert value is not None

    again = run_offline(demos(), tmp_path, cfg, task="PointReach", env_fn=PointReach)
    assert again["resumed_stages"] == ["critics", "value", "dynamics", "bc", "ppo", "handover"]
    assert h["tolerance_rule"] == "replay" and h["tolerance"] == h["replay_error"]
    assert 0 <= h["replay_bias"] <= h["replay_error"]
    other = dataclasses.replace(cfg, handover_tolerance="bias")  # chosen under another rule
    with pytest.raises(CheckpointError, match="handover_tolerance"):
        run_offline(demos(), tmp_path, other, task="PointReach", env_fn=PointReach)


def test_bad_handover_config():
    with pytest.raises(ValueError, match="handover"):
        tiny_config(handover="always")
    with pytest.raises(ValueError, match="handover_z"):
        tiny_config(handover_z=-1.0)
    with pytest.raises(ValueError, match="handover_tolerance"):
        tiny_config(handover_tolerance="vibes")


def test_replay_error_is_zero_for_a_perfect_model_and_grows_with_model_error():
    data = to_transitions(demos(episodes=6), 0.1, 1e-2)
    dyn = DynamicsEnsemble.for_data(data, n_members=2, hidden=8, depth=1)
    reward = RewardEnsemble.for_data(data, n_members=2, hidden=8, depth=1)
    value = ValueNet(data.obs_dim, 8, 1, obs_mean=data.obs_mean, obs_std=data.obs_std)

    class Exact(torch.nn.Module):
        """The true PointReach step and reward (without the success bonus) as an 'ensemble'."""

        n_members = 2

        def step(self, obs, action, member):
            nxt = obs.clone()
            nxt[:, :2] = (obs[:, :2] + 0.1 * action.clamp(-1, 1)).clamp(-2, 2)
            return nxt

    class ExactReward(torch.nn.Module):
        n_members = 2

        def member_forward(self, obs, action, member):
            return -0.1 * ((obs[:, :2] + 0.1 * action).clamp(-2, 2) - obs[:, 2:]).norm(dim=1)

    no_bonus = dataclasses.replace(data, rewards=data.rewards.clamp_max(0.0))
    exact = replay_error(replay_errors(Exact(), ExactReward(), value, no_bonus, 64, 5, 0.9))
    assert exact < 1e-3  # the success steps differ slightly (their bonus is clipped away)
    errors = replay_errors(dyn, reward, value, no_bonus, 64, 5, 0.9)
    assert errors.shape == (2, 64) and replay_error(errors) > 10 * max(exact, 1e-3)
    assert replay_bias(errors) <= replay_error(errors)
    none = replay_errors(dyn, reward, value, data, 8, 10_000, 0.9)  # no episode that long
    assert math.isnan(replay_error(none)) and math.isnan(replay_bias(none))


def test_the_bias_tolerance_is_the_shared_part_of_the_model_error():
    """A constant offset (shared by every policy's return) is all bias; zero-mean start-state
    noise is error of one return but no bias."""
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(3, 4096, generator=gen)
    assert replay_bias(noise + 0.5) == pytest.approx(0.5, abs=0.05)
    assert replay_bias(noise) < 0.1 < 0.7 < replay_error(noise)


def test_a_margin_within_the_models_error_keeps_bc():
    bc = [table([1.0, 1.0, 1.0], seed=1)]
    better = bc[0] + 0.2
    assert choose_handover(bc, better, 1.645, tolerance=0.1).policy == "improved"
    assert choose_handover(bc, better, 1.645, tolerance=0.5).policy == "bc"
    assert choose_handover(bc, better, 1.645, tolerance=float("nan")).policy == "bc"
    with pytest.raises(ValueError, match="tolerance"):
        choose_handover(bc, better, 1.645, tolerance=-1.0)


def test_cli_runs_the_guarded_handover(tmp_path, capsys):
    from failurebench_sim.datasets import save_dataset
    from farm_trainer.offline.cli import main

    save_dataset(tmp_path / "demos.npz", demos(episodes=4))
    steps = ("--bc-steps", "5", "--critic-steps", "5", "--value-steps", "5", "--dyn-steps", "5",
             "--ppo-steps", "5", "--reward-steps", "5")  # fmt: skip
    rc = main(["offline", "--task", "PointReach-v0", "--demos", str(tmp_path / "demos.npz"),
               "--out", str(tmp_path / "run"), "--handover", "guarded", "--no-progress", *steps])  # fmt: skip
    assert rc == 0
    assert (tmp_path / "run" / "improved.safetensors").is_file()
    out = json.loads(capsys.readouterr().out)
    assert out["handover"]["policy"] in ("bc", "improved")
    with pytest.raises(SystemExit):
        main(["--task", "x", "--demos", "d", "--out", "o", "--handover", "always"])


def test_resumed_handover_keeps_its_label_and_other_settings_are_refused(tmp_path, monkeypatch):
    from farm_trainer.offline.handover import Handover

    def accept(bc_returns, improved_returns, z, tolerance=0.0):
        return Handover("improved", 0, [0.0] * len(bc_returns), 1.0, 1.0, 1.0, tolerance, z)

    monkeypatch.setattr(offline_pipeline, "choose_handover", accept)
    cfg = tiny_config(handover="guarded", reward_steps=20, eval_episodes=1)
    first = run_offline(
        demos(episodes=6), tmp_path / "g", cfg, task="PointReach", env_fn=PointReach
    )
    again = run_offline(
        demos(episodes=6), tmp_path / "g", cfg, task="PointReach", env_fn=PointReach
    )
    for report in (first, again):
        assert report["evaluation"]["handed_over_policy"] == "improved"
        assert "handed_over" not in report["evaluation"]
    assert "handover" in again["resumed_stages"]

    # an 'ope' directory holds the ungated PPO output as actor.safetensors: not a hand-over
    ope = tiny_config(eval_episodes=0)
    run_offline(demos(episodes=6), tmp_path / "o", ope, task="PointReach", env_fn=PointReach)
    with pytest.raises(CheckpointError, match="clean output directory"):
        run_offline(demos(episodes=6), tmp_path / "o", cfg, task="PointReach", env_fn=PointReach)
    # ... and a guarded directory's actor.safetensors is not offline PPO's output
    with pytest.raises(CheckpointError, match="clean output directory"):
        run_offline(demos(episodes=6), tmp_path / "g", ope, task="PointReach", env_fn=PointReach)
