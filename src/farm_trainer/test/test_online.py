"""Online loop on the toy 1-D reach env: learning, accounting, filters, cost hook, resume."""

import csv
import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from farm_policies import Policy, TanhGaussianActor, ValueNet, load_policy
from farm_trainer.online import (
    FilterDecision,
    FilterError,
    LagrangianCostHook,
    OnlineConfig,
    OnlineTrainer,
    PassThrough,
    PPOConfig,
    evaluate_policy,
)
from farm_trainer.online.toy_env import TOY_ID

torch.set_num_threads(1)


def fast_config(tmp_path, total_steps=1024, **kw):
    ppo = PPOConfig(
        batch_size=128, minibatch_size=32, epochs=4, gamma=0.9, lr_actor=3e-3, lr_critic=3e-3,
        clip=0.2, value_clip=None, entropy_coef=0.0, reward_scale=1.0,
    )  # fmt: skip
    base = dict(env_id=TOY_ID, total_steps=total_steps, n_envs=4, seed=0, out_dir=str(tmp_path),
                hidden=32, depth=2, progress=False, tensorboard=False, ppo=ppo)  # fmt: skip
    base.update(kw)
    return OnlineConfig(**base)


class Constant:
    """Replace every proposal by a constant action."""

    def __init__(self, value):
        self.value = value

    def __call__(self, obs, proposed):
        n = proposed.shape[0]
        return FilterDecision(np.full_like(proposed, self.value), np.ones(n, bool), np.ones(n), 0.5)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_short_run_improves_return(tmp_path):
    cfg = fast_config(tmp_path, total_steps=128 * 20)
    trainer = OnlineTrainer(cfg)
    before = evaluate_policy(Policy(trainer.actor), lambda: gym.make(TOY_ID), episodes=8, seed0=100)
    trainer.train()
    trainer.close()
    policy = load_policy(tmp_path / "policy_final.safetensors")
    after = evaluate_policy(policy, TOY_ID, episodes=8, seed0=100)
    assert after["return_mean"] > before["return_mean"] + 2.0, (before, after)
    rows = read_csv(tmp_path / "progress.csv")
    assert [int(r["update"]) for r in rows] == list(range(1, 21))
    assert int(rows[-1]["env_steps"]) == 128 * 20
    assert policy.header["meta"]["stage"] == "online"


def test_next_obs_is_real_final_obs_and_costs_counted_on_terminal_step(tmp_path):
    cfg = fast_config(tmp_path, total_steps=256)
    trainer = OnlineTrainer(cfg, action_filter=Constant(-1.0))  # walk into the failure region
    trainer._reset_envs()
    ro, finished = trainer.collect()
    x, a, x_next = ro.obs[..., 0], ro.actions[..., 0], ro.next_obs[..., 0]
    np.testing.assert_allclose(x_next, x + 0.1 * a, atol=1e-5)  # also across episode ends
    assert ro.terminated.any()
    assert (ro.costs[ro.terminated] == 1.0).all() and (ro.costs[~ro.terminated] == 0.0).all()
    c = trainer.counters
    assert c["ir_failure_episodes"] == c["failure_steps"] == int(ro.terminated.sum()) > 0
    assert c["episodes"] == len(finished["return"]) == int((ro.terminated | ro.truncated).sum())
    trainer.close()


def test_truncation_recorded_not_terminal(tmp_path):
    cfg = fast_config(tmp_path, total_steps=256)
    trainer = OnlineTrainer(cfg, action_filter=Constant(0.0))  # stand still: only time limits
    trainer._reset_envs()
    ro, finished = trainer.collect()
    assert not ro.terminated.any() and ro.truncated.sum() == 4 * (32 // 20)
    assert finished["ir_failure"] == [0.0] * 4
    trainer.close()


def test_replace_everything_filter_is_recorded(tmp_path):
    cfg = fast_config(tmp_path, total_steps=256)
    trainer = OnlineTrainer(cfg, action_filter=Constant(0.25))
    trainer._reset_envs()
    ro, _ = trainer.collect()
    assert ro.replaced.all() and np.all(ro.actions == 0.25) and np.all(ro.scores == 1.0)
    assert not np.allclose(ro.proposed, 0.25)
    with torch.no_grad():
        expected = trainer.actor.log_prob(ro.flat("obs"), ro.flat("actions")).numpy()
    np.testing.assert_allclose(ro.logp.reshape(-1), expected, rtol=1e-5, atol=1e-5)
    trainer.train()
    rows = read_csv(tmp_path / "progress.csv")
    assert all(float(r["replaced_frac"]) == 1.0 for r in rows)
    assert trainer.counters["replaced_actions"] == trainer.counters["env_steps"] == 3 * 128
    trainer.close()


@pytest.mark.parametrize("learn", ["executed", "proposed", "own"])
def test_ppo_learns_on_the_chosen_actions_of_replaced_steps(tmp_path, learn):
    """``learn_actions``: the stored old log-prob and the batch's actions are the executed
    (recovery) actions, or the task policy's own proposals (Recovery RL's relabelling)."""
    cfg = fast_config(tmp_path, total_steps=256)
    cfg.ppo.learn_actions = learn
    trainer = OnlineTrainer(cfg, action_filter=Constant(0.25))
    trainer._reset_envs()
    ro, _ = trainer.collect()
    field = "proposed" if learn == "proposed" else "actions"
    with torch.no_grad():
        expected = trainer.actor.log_prob(ro.flat("obs"), ro.flat(field)).numpy()
    np.testing.assert_allclose(ro.logp.reshape(-1), expected, rtol=1e-5, atol=1e-5)
    batch = trainer.make_batch(ro)
    np.testing.assert_array_equal(batch.actions.numpy(), ro.flat(field).numpy())
    if learn == "own":  # every step replaced here: none enters the policy loss
        assert batch.policy_mask is not None and not batch.policy_mask.any()
    else:
        assert batch.policy_mask is None
    ro.logp[:] = 0.0
    trainer.learner.annotate(ro)  # the stream learner's recompute takes the same actions
    np.testing.assert_allclose(ro.logp.reshape(-1), expected, rtol=1e-5, atol=1e-5)
    trainer.close()


def test_an_unknown_learn_actions_value_is_refused():
    with pytest.raises(ValueError, match="learn_actions"):
        PPOConfig(learn_actions="recovery")
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="replaced_penalty"):
            PPOConfig(replaced_penalty=bad)


def test_the_replaced_penalty_is_taken_off_the_rewards_of_replaced_steps_only(tmp_path):
    """``replaced_penalty``: GAE sees reward - penalty where the gate replaced the action, the
    reward itself elsewhere (and in the logged returns)."""
    cfg = fast_config(tmp_path, total_steps=256)
    trainer = OnlineTrainer(cfg, action_filter=Constant(0.25))
    trainer._reset_envs()
    ro, _ = trainer.collect()
    ro.replaced[:] = False
    ro.replaced[::2] = True
    rewards = ro.rewards.copy()
    penalised = dataclasses.replace(trainer.learner.cfg, replaced_penalty=2.0)
    plain = trainer.make_batch(ro)
    trainer.learner.cfg = penalised
    batch = trainer.make_batch(ro)
    np.testing.assert_array_equal(ro.rewards, rewards)  # the rollout itself is untouched
    trainer.learner.cfg = dataclasses.replace(penalised, replaced_penalty=0.0)
    ro.rewards[::2] -= 2.0
    shifted = trainer.make_batch(ro)
    np.testing.assert_allclose(batch.returns.numpy(), shifted.returns.numpy(), rtol=1e-6)
    assert not np.allclose(batch.returns.numpy(), plain.returns.numpy())
    trainer.close()


def test_pass_through_and_bad_filter_output():
    d = PassThrough()(np.zeros((3, 2)), np.full((3, 1), 0.3))
    assert not d.replaced.any() and np.isnan(d.score).all() and np.isnan(d.threshold)
    with pytest.raises(FilterError, match="shape"):
        FilterDecision(np.zeros((2, 1)), np.zeros(3, bool), np.zeros(3), 0.0).validate(3, 1)
    with pytest.raises(FilterError, match="non-finite"):
        FilterDecision(np.full((3, 1), np.nan), np.zeros(3, bool), np.zeros(3), 0.0).validate(3, 1)


def test_lagrangian_cost_hook_raises_multiplier_on_failures(tmp_path):
    cfg = fast_config(tmp_path, total_steps=256)
    hook = LagrangianCostHook(ValueNet(2, hidden=16, depth=1), cost_limit=0.0, lr_lambda=0.5)
    trainer = OnlineTrainer(cfg, action_filter=Constant(-1.0), cost_hook=hook)
    trainer.train()
    assert float(hook.lagrange) > 0
    rows = read_csv(tmp_path / "progress.csv")
    assert float(rows[-1]["cost_hook/lagrange"]) == pytest.approx(float(hook.lagrange))
    trainer.close()


def test_resume_after_interruption_restores_counters_and_state(tmp_path):
    cfg = fast_config(tmp_path, total_steps=128 * 5, checkpoint_every=2)
    first = OnlineTrainer(cfg)
    first.train(max_updates=3)  # "killed" after update 3; last checkpoint is update 2
    assert len(read_csv(tmp_path / "progress.csv")) == 3
    first.close()
    from farm_policies import load_checkpoint

    sds, header = load_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    saved = header["counters"]
    assert saved["update"] == 2 and saved["env_steps"] == 256

    second = OnlineTrainer(cfg)
    assert second.resume()
    assert second.counters == saved
    for k, v in second.actor.state_dict().items():
        assert torch.equal(v, sds["actor"][k])
    assert second.ppo.n_updates == 2
    assert int(second.ppo.opt_actor.state_dict()["state"][0]["step"]) == 2 * 4 * 4
    assert [int(r["update"]) for r in read_csv(tmp_path / "progress.csv")] == [1, 2]
    out = second.train()
    second.close()
    assert out["update"] == 5 and out["env_steps"] == 128 * 5
    assert [int(r["update"]) for r in read_csv(tmp_path / "progress.csv")] == [1, 2, 3, 4, 5]


def test_resume_without_checkpoint_returns_false_and_init_from_checkpoint(tmp_path):
    from farm_policies import save_policy

    actor = TanhGaussianActor(2, 1, hidden=8, depth=1, obs_mean=[0.1, 0.2], obs_std=[2.0, 3.0])
    save_policy(tmp_path / "init" / "policy.safetensors", actor)
    cfg = fast_config(tmp_path / "run", init=str(tmp_path / "init"))
    trainer = OnlineTrainer(cfg)
    assert not trainer.resume()
    assert trainer.actor.hidden == 8
    np.testing.assert_allclose(trainer.critic.normalizer.obs_std.numpy(), [2.0, 3.0])
    trainer.close()
    # C2's layout: actor.safetensors without a value net + a sibling value.safetensors
    from farm_policies import save_checkpoint

    value = ValueNet(2, hidden=4, depth=1)
    save_policy(tmp_path / "off" / "actor.safetensors", actor)
    save_checkpoint(tmp_path / "off" / "value.safetensors", {"value": value}, {"obs_dim": 2})
    save_policy(tmp_path / "off" / "bc_0.safetensors", actor)
    trainer = OnlineTrainer(fast_config(tmp_path / "run2", init=str(tmp_path / "off")))
    assert trainer.critic.hidden == 4 and trainer.actor.hidden == 8
    trainer.close()


def test_evaluate_policy_toy():
    actor = TanhGaussianActor(2, 1, hidden=8, depth=1)
    res = evaluate_policy(Policy(actor), TOY_ID, episodes=3, seed0=0)
    assert res["episodes"] == 3 and len(res["returns"]) == 3
    assert res["length_mean"] == 20 and res["failure_rate"] == 0.0
    res = evaluate_policy(Policy(actor), TOY_ID, episodes=2, action_filter=Constant(-1.0))
    assert res["failure_rate"] == 1.0 and res["replaced_frac"] == 1.0


def test_run_logger_csv_truncation_and_tensorboard(tmp_path):
    from farm_trainer.logging_utils import RunLogger

    log = RunLogger(tmp_path, tensorboard=True)
    for u in range(1, 4):
        log.log({"update": u, "ep_return": float(u), "note": float("nan")}, step=u)
    with pytest.raises(KeyError, match="surprise"):
        log.log({"update": 4, "surprise": 1.0})
    log.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    rows = read_csv(tmp_path / "progress.csv")
    assert [r["update"] for r in rows] == ["1", "2", "3"] and rows[0]["note"] == ""
    RunLogger(tmp_path, tensorboard=False, truncate_after=("update", 2)).close()
    assert [r["update"] for r in read_csv(tmp_path / "progress.csv")] == ["1", "2"]


def test_make_filter_receives_the_live_actor(tmp_path):
    seen = []

    def factory(actor):
        seen.append(actor)
        return PassThrough()

    trainer = OnlineTrainer(fast_config(tmp_path), make_filter=factory)
    assert seen == [trainer.actor]
    trainer.close()


def test_non_finite_actions_hold_still_instead_of_crashing():
    from failurebench_sim.command import hold_still_if_nonfinite

    a, n = hold_still_if_nonfinite(np.array([[0.5, np.nan], [0.2, -0.3], [np.inf, 0.0]]))
    assert n == 2 and np.array_equal(a, np.array([[0, 0], [0.2, -0.3], [0, 0]], np.float32))
    same, n = hold_still_if_nonfinite(np.array([[0.1, 0.2]]))
    assert n == 0 and np.allclose(same, [[0.1, 0.2]])


def test_an_adapting_filter_sees_every_episode_logs_and_resumes_its_state(tmp_path):
    from types import SimpleNamespace

    from farm_safety_critic.eps_control import AdaptiveEpsSafe

    class Gate(PassThrough):
        decider = SimpleNamespace(eps_safe=0.1)
        eps_safe = 0.1

    cfg = fast_config(tmp_path, total_steps=128 * 4, checkpoint_every=2)
    ctl = AdaptiveEpsSafe(Gate(), target_rate=0.0)
    seen = []
    ctl.observe_episodes = lambda f, orig=ctl.observe_episodes: (seen.extend(f), orig(f))[1]
    trainer = OnlineTrainer(cfg, action_filter=ctl)
    trainer.train(max_updates=2)
    rows = read_csv(tmp_path / "progress.csv")
    assert len(seen) == trainer.counters["episodes"] > 0
    assert all(float(r["filter/eps_safe"]) <= 0.1 + 1e-9 for r in rows)
    assert "filter/failure_rate_window" in rows[-1]
    state = {k: v.clone() for k, v in ctl.state_dict().items()}
    trainer.close()
    Gate.decider = SimpleNamespace(eps_safe=0.1)
    again_ctl = AdaptiveEpsSafe(Gate(), target_rate=0.0)
    again = OnlineTrainer(cfg, action_filter=again_ctl)
    assert again.resume()
    for k, v in again_ctl.state_dict().items():
        torch.testing.assert_close(v, state[k], equal_nan=True)
    assert again_ctl.eps_safe == pytest.approx(ctl.eps_safe)
    again.close()
