"""The numpy C_H equals the torch C_H, follows in-place actor updates, and is what the gate uses."""

import numpy as np
import torch

from farm_policies import TanhGaussianActor
from farm_safety_critic.fast_score import NumpyCH
from farm_safety_critic.gate import SafetyGate
from farm_safety_critic.safety_score import c_h
from farm_safety_critic.world_model import WorldModel, WorldModelConfig

torch.set_num_threads(1)
OBS_DIM, ACT_DIM = 9, 3


def _models(seed: int = 0) -> tuple[WorldModel, TanhGaussianActor]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = WorldModelConfig(OBS_DIM, ACT_DIM, latent_dim=16, mlp_dim=32, enc_dim=32)
    wm = WorldModel(cfg, obs_mean=rng.normal(size=OBS_DIM), obs_std=rng.uniform(0.5, 2, OBS_DIM))
    for p in wm.parameters():  # larger weights than the init so every head matters
        p.data.normal_(0.0, 0.5)
    actor = TanhGaussianActor(
        OBS_DIM, ACT_DIM, hidden=32, depth=2, obs_mean=rng.normal(size=OBS_DIM)
    )
    return wm.eval(), actor


def _torch_ch(wm, actor, obs, act, horizon=3, gamma=0.9):
    policy = lambda o: actor.act(o, deterministic=True)  # noqa: E731
    return c_h(wm, policy, torch.as_tensor(obs), torch.as_tensor(act), horizon, gamma).numpy()


def test_numpy_c_h_matches_torch() -> None:
    wm, actor = _models()
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(16, OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1.5, 1.5, (16, ACT_DIM)).astype(np.float32)  # beyond the bound: clipped
    for horizon in (0, 1, 3, 5):
        fast = NumpyCH(wm, actor, horizon, 0.9)(obs, act)
        np.testing.assert_allclose(
            fast, _torch_ch(wm, actor, obs, act, horizon), rtol=1e-4, atol=1e-5
        )


def test_numpy_c_h_sees_in_place_actor_updates() -> None:
    wm, actor = _models()
    fast = NumpyCH(wm, actor, 3, 0.9)
    obs = np.random.default_rng(2).normal(size=(4, OBS_DIM)).astype(np.float32)
    act = np.zeros((4, ACT_DIM), np.float32)
    before = fast(obs, act)
    opt = torch.optim.Adam(actor.parameters(), lr=0.5)
    actor.act(torch.as_tensor(obs), deterministic=True).sum().backward()
    opt.step()  # in place, as PPO's optimiser does
    after = fast(obs, act)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _torch_ch(wm, actor, obs, act), rtol=1e-4, atol=1e-5)


def test_gate_uses_numpy_path_with_same_decisions() -> None:
    wm, actor = _models()
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(32, OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1, 1, (32, ACT_DIM)).astype(np.float32)
    eps = float(np.median(_torch_ch(wm, actor, obs, act)))
    fast = SafetyGate(wm, actor, actor, eps_safe=eps)
    slow = SafetyGate(wm, actor, actor, eps_safe=eps, numpy_scoring=False)
    assert fast.numpy_scorer is not None and slow.numpy_scorer is None
    np.testing.assert_allclose(fast.scores(obs, act), slow.scores(obs, act), rtol=1e-4, atol=1e-5)
    obs[0, 0] = np.nan  # still treated as unsafe on the numpy path
    d = fast(obs, act)
    assert d.replaced[0] and np.isinf(d.score[0]) and np.isfinite(d.actions).all()


def test_gate_runs_a_numpy_recovery_actor_with_the_torch_actions() -> None:
    wm, task = _models()
    _, recovery = _models(seed=5)
    rng = np.random.default_rng(4)
    obs = rng.normal(size=(8, OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1, 1, (8, ACT_DIM)).astype(np.float32)
    gate = SafetyGate(wm, task, recovery, eps_safe=-1.0)  # every row replaced
    assert gate.recovery_numpy is not None
    d = gate(obs, act)
    assert d.replaced.all()
    with torch.no_grad():
        expected = recovery.act(torch.as_tensor(obs), deterministic=True).numpy()
    np.testing.assert_allclose(d.actions, expected, rtol=1e-5, atol=1e-6)
    planner = SafetyGate(wm, task, lambda o: torch.zeros(len(o), ACT_DIM), eps_safe=-1.0)
    assert planner.recovery_numpy is None and (planner(obs, act).actions == 0).all()


def test_numpy_c_h_refolds_world_model_layers_after_in_place_updates() -> None:
    wm, actor = _models()
    fast = NumpyCH(wm, actor, 3, 0.9)
    obs = np.random.default_rng(6).normal(size=(4, OBS_DIM)).astype(np.float32)
    act = np.zeros((4, ACT_DIM), np.float32)
    before = fast(obs, act)
    with torch.no_grad():
        for p in wm.parameters():
            p.mul_(0.7).add_(0.05)  # in place, bumps each tensor's version counter
    after = fast(obs, act)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _torch_ch(wm, actor, obs, act), rtol=1e-4, atol=1e-5)


def test_scorer_follows_a_live_policy_weight_update() -> None:
    """Eq. 10 rolls out pi_task: after LivePolicy.update the scorer-only gate (the safety node's)
    scores with the new weights, as a gate built from scratch on them does."""
    from farm_policies.checkpoint import tensor_digest
    from farm_policies.live import LivePolicy

    wm, actor = _models(0)
    _, other = _models(1)
    live = LivePolicy(actor)
    gate = SafetyGate(wm, actor, None, horizon=3, gamma_risk=0.9, eps_safe=0.3)
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(8, OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1, 1, (8, ACT_DIM)).astype(np.float32)
    before = gate.scores(obs, act)
    state = other.state_dict()
    live.update(1, tensor_digest(state), state)
    after = gate.scores(obs, act)
    fresh = SafetyGate(wm, other, None, horizon=3, gamma_risk=0.9, eps_safe=0.3).scores(obs, act)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, fresh, rtol=1e-5, atol=1e-7)
