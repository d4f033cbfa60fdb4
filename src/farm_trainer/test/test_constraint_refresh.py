"""farm-refresh: the world model learns the IR failures of fine-tuning, guarded against forgetting.

A 2-D point mass whose offline data fail at x > 1 only; online, x < -1 fails too. The refresh
must learn the new failure from the executed transitions, keep the offline one (held-out AUC),
score with the refreshed model on the gate's numpy path, undo a refresh that forgets, and keep
its state in a checkpoint.
"""

import numpy as np
import pytest
import torch

from farm_safety_critic.gate import SafetyGate
from farm_safety_critic.toy import STEP, point_mass_dataset
from farm_trainer.online.constraint_refresh import ConstraintRefresh, OnlineBuffer, RefreshConfig
from farm_trainer.online.rollout import Rollout
from farm_trainer.safety.train_world_model import WorldModelTrainConfig, train_world_model

torch.set_num_threads(1)
SMALL = {"latent_dim": 16, "mlp_dim": 32, "enc_dim": 32}


def online_rollout(T=64, n=8, seed=0):
    """n drifting point masses for T steps (auto-reset); both x > 1 and x < -1 fail."""
    rng = np.random.default_rng(seed)
    ro = Rollout.empty(T, n, 2, 2)
    s = np.stack([rng.uniform(-0.9, 0.9, n), rng.uniform(-1, 1, n)], 1)
    mu = rng.uniform(-1, 1, (n, 2))
    mu[:, 0] = -np.abs(mu[:, 0])  # drift towards the new failure
    age = np.zeros(n, int)
    for t in range(T):
        a = np.clip(mu + 0.5 * rng.standard_normal((n, 2)), -1, 1).astype(np.float32)
        s2 = s + STEP * a
        s2[:, 1] = np.clip(s2[:, 1], -1, 1)
        fail = np.abs(s2[:, 0]) > 1.0
        age += 1
        trunc = ~fail & (age >= 25)
        ro.obs[t], ro.actions[t], ro.next_obs[t] = s, a, s2
        ro.rewards[t], ro.costs[t] = -np.abs(s2[:, 0] - 0.5), fail
        ro.terminated[t], ro.truncated[t] = fail, trunc
        done = fail | trunc
        s = s2.copy()
        s[done] = np.stack([rng.uniform(-0.9, 0.9, done.sum()), rng.uniform(-1, 1, done.sum())], 1)
        age[done] = 0
    return ro


def never_below(ds, x_min=-1.0):
    """``ds`` without the episodes that visit x < x_min (the offline data never see it)."""
    from failurebench_sim.datasets import FIELDS, Dataset

    low = np.unique(ds.episode_ids[np.minimum(ds.observations, ds.next_observations)[:, 0] < x_min])
    keep = ~np.isin(ds.episode_ids, low)
    return Dataset(**{k: getattr(ds, k)[keep] for k in FIELDS}, metadata=ds.metadata)


@pytest.fixture(scope="module")
def offline():
    data = never_below(point_mass_dataset(400, seed=0))
    heldout = never_below(point_mass_dataset(150, seed=1))
    cfg = WorldModelTrainConfig(model=SMALL, lr=1e-3, failure_fraction=0.5, log_every=50)
    model, _ = train_world_model([data], 300, 64, 0, config=cfg, progress=False)
    return model, cfg, data, heldout


def _gate(model):
    """A gate on a copy of ``model`` with a (random) TanhGaussianActor: the numpy scorer."""
    import copy

    from farm_policies import TanhGaussianActor

    torch.manual_seed(0)
    gate = SafetyGate(copy.deepcopy(model), TanhGaussianActor(2, 2, 16, 2),
                      lambda obs: obs[:, :2] * 0, horizon=3, eps_safe=0.3)  # fmt: skip
    assert gate.numpy_scorer is not None
    return gate


def _near_new_failure():
    obs = np.stack([np.full(64, -0.9), np.linspace(-0.8, 0.8, 64)], 1).astype(np.float32)
    return obs, -np.ones((64, 2), np.float32)


def test_the_buffer_keeps_the_latest_rows_as_episodes():
    buf = OnlineBuffer(capacity=300, obs_dim=2, act_dim=2)
    fails = sum(buf.add(online_rollout(T=64, n=2, seed=k)) for k in range(3))
    tr = buf.transitions()
    assert len(buf) == len(tr) == 300
    assert tr.costs.sum() <= fails and (tr.costs > 0).sum() > 0
    # an episode ends at every failure and no id comes back after another one
    ends = np.flatnonzero(np.diff(tr.episode_ids) != 0)
    assert set(np.flatnonzero(tr.terminated)) <= set(ends) | {len(tr) - 1}
    runs = tr.episode_ids[np.concatenate([[0], ends + 1])]
    assert len(np.unique(runs)) == len(runs)
    last = online_rollout(T=64, n=2, seed=2)  # the newest rows are the last rollout's, env 1
    np.testing.assert_array_equal(tr.observations[-64:], last.obs[:, 1])


def test_a_refresh_learns_an_online_failure_and_the_numpy_gate_sees_it(offline):
    model, train_cfg, data, heldout = offline
    gate = _gate(model)
    refresh = ConstraintRefresh(gate, [data], heldout, train_cfg,
                                RefreshConfig(every=2, steps=150, batch=64, guard_drop=0.05))  # fmt: skip
    obs, act = _near_new_failure()
    before = gate.score_numpy(obs, act).mean()
    for k in range(4):
        refresh.observe_rollout(online_rollout(seed=10 + k))
    stats = refresh.last_stats
    assert stats["refreshes"] >= 1 and stats["heldout_roc_auc"] >= refresh.auc0 - 0.05
    after = gate.score_numpy(obs, act)
    assert after.mean() > before + 0.2, (before, after.mean())
    torch_scores = gate.score(torch.as_tensor(obs), torch.as_tensor(act)).detach().numpy()
    np.testing.assert_allclose(after, torch_scores, rtol=1e-4, atol=1e-5)

    # the refreshed model and the buffer travel in the state (a run's checkpoint)
    other = ConstraintRefresh(_gate(model), [data], heldout, train_cfg, refresh.cfg)
    other.load_state_dict(refresh.state_dict())
    np.testing.assert_allclose(other.gate.score_numpy(obs, act), after, rtol=1e-5, atol=1e-6)
    assert len(other.buffer) == len(refresh.buffer)


def test_a_kept_refresh_chooses_eps_safe_again_by_the_pipelines_rule(offline):
    """farm-refresh-cal: the threshold follows the refreshed scores (and travels in the state)."""
    from farm_safety_critic import calibration as cal

    model, train_cfg, data, heldout = offline
    gate = _gate(model)
    rule = {"max_firing": 0.1, "max_expert_firing": 0.5}
    refresh = ConstraintRefresh(gate, [data], heldout, train_cfg,
                                RefreshConfig(every=1, steps=100, batch=64, guard_drop=0.05),
                                eps_rule=rule, expert=heldout)  # fmt: skip
    refresh.observe_rollout(online_rollout(seed=21))
    assert refresh.last_stats["refreshes"] == 1
    expected = cal.choose_eps_safe(cal.score_dataset(gate.scores, heldout),
                                   refresh.heldout_labels,
                                   cal.score_dataset(gate.scores, heldout), **rule)["eps_safe"]  # fmt: skip
    assert gate.decider.eps_safe == refresh.last_stats["eps_safe"] == expected
    other = ConstraintRefresh(_gate(model), [data], heldout, train_cfg, refresh.cfg,
                              eps_rule=rule, expert=heldout)  # fmt: skip
    other.load_state_dict(refresh.state_dict())
    assert other.gate.decider.eps_safe == expected
    with pytest.raises(ValueError, match="expert"):
        ConstraintRefresh(_gate(model), [data], heldout, train_cfg, eps_rule=rule)


def test_a_refresh_that_forgets_the_offline_failures_is_undone(offline, monkeypatch):
    model, train_cfg, data, heldout = offline
    gate = _gate(model)
    refresh = ConstraintRefresh(gate, [data], heldout, train_cfg,
                                RefreshConfig(every=1, steps=20, batch=64))  # fmt: skip
    obs, act = _near_new_failure()
    before = gate.score_numpy(obs, act)
    monkeypatch.setattr(refresh, "heldout_report", lambda: {"roc_auc": refresh.auc0 - 0.5})
    refresh.observe_rollout(online_rollout(seed=3))
    assert refresh.last_stats["undone"] == 1 and refresh.last_stats["refreshes"] == 0
    np.testing.assert_array_equal(gate.score_numpy(obs, act), before)


def test_no_refresh_without_new_failures(offline):
    model, train_cfg, data, heldout = offline
    refresh = ConstraintRefresh(_gate(model), [data], heldout, train_cfg,
                                RefreshConfig(every=1, steps=5, batch=64))  # fmt: skip
    ro = online_rollout(seed=4)
    ro.costs[:] = 0
    refresh.observe_rollout(ro)
    assert refresh.last_stats["refreshes"] == 0 and refresh.last_stats["undone"] == 0


def test_bad_refresh_settings_are_refused():
    with pytest.raises(ValueError):
        RefreshConfig(online_fraction=1.0)
    with pytest.raises(ValueError):
        RefreshConfig(every=0)


def test_farm_refresh_runs_in_the_pipeline_from_the_registry(tmp_path):
    """The method of the experiment configs: the online loop feeds it every rollout."""
    import csv
    from pathlib import Path

    from farm_trainer.experiments import load_config, run_experiment

    smoke = Path(__file__).resolve().parents[3] / "config" / "experiments" / "smoke.yaml"
    cfg = load_config(smoke).replace(name="refresh", methods=["farm-refresh"])
    cfg.gate.refresh_every, cfg.gate.refresh_steps = 1, 3
    cfg.online.steps = 256
    run_experiment(cfg, tmp_path, log=lambda s: None)
    run = tmp_path / "refresh" / "BoundedPush-v0" / "online" / "farm-refresh_s0"
    rows = list(csv.DictReader(open(run / "progress.csv")))
    assert len(rows) == 2 and (run / "policy_final.safetensors").exists()
    # the smoke data's 300 held-out rows hold no failure: no refresh can be checked, none is kept
    assert (
        rows[-1]["filter/heldout_roc_auc"] in ("", "nan")
        and float(rows[-1]["filter/refreshes"]) == 0
    )
    assert [float(r["filter/online_rows"]) for r in rows] == [128, 256]  # every rollout is seen
