"""BC ensemble: fitting a known policy and the Uni-O4 diversity term."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from farm_trainer.offline.bc_ensemble import build_ensemble, diversity_bc_loss, fit_bc_ensemble
from farm_trainer.offline.data import to_transitions

torch.set_num_threads(1)


def linear_policy_dataset(n: int = 2000, seed: int = 0) -> tuple[SimpleNamespace, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = np.array([[0.8, -0.5, 0.3], [0.2, 0.6, -0.7]], dtype=np.float32)
    obs = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    act = np.clip(np.tanh(obs @ w.T) + 0.02 * rng.standard_normal((n, 2)), -1, 1).astype(np.float32)
    ds = SimpleNamespace(
        observations=obs,
        actions=act,
        rewards=np.zeros(n, np.float32),
        terminated=np.zeros(n, bool),
        truncated=(np.arange(n) % 50 == 49),
        episode_ids=np.arange(n) // 50,
        next_observations=obs,
        metadata={},
    )
    return ds, w


def test_bc_recovers_linear_tanh_policy():
    torch.manual_seed(0)
    ds, w = linear_policy_dataset()
    data = to_transitions(ds)
    actors = build_ensemble(data, num_policies=2, hidden=64, depth=2, seed=0)
    hist = fit_bc_ensemble(actors, data, steps=600, lr=3e-3, batch_size=256, seed=0, progress=False)
    assert hist[0][-1] < hist[0][0]
    test_obs = torch.as_tensor(
        np.random.default_rng(1).uniform(-0.9, 0.9, (500, 3)), dtype=torch.float32
    )
    expected = torch.tanh(test_obs @ torch.as_tensor(w).T)
    for actor in actors:
        with torch.no_grad():
            err = (actor.act(test_obs, deterministic=True) - expected).abs().mean().item()
        assert err < 0.05


def test_diversity_loss_hand_case():
    lp = torch.tensor([[-1.0, -2.0], [-3.0, -0.5]])
    alpha = 0.1
    loss = diversity_bc_loss(lp, alpha)
    # member 0: max over member 1 = [-3, -0.5]; member 1: max over member 0 = [-1, -2]
    l0 = np.mean([1.0 - alpha * (-1.0 + 3.0), 2.0 - alpha * (-2.0 + 0.5)])
    l1 = np.mean([3.0 - alpha * (-3.0 + 1.0), 0.5 - alpha * (-0.5 + 2.0)])
    assert loss.tolist() == pytest.approx([l0, l1])


def test_diversity_loss_finite_and_differentiable():
    lp = torch.randn(4, 32, requires_grad=True)
    loss = diversity_bc_loss(lp, 0.1)
    assert loss.shape == (4,) and torch.isfinite(loss).all()
    loss.sum().backward()
    assert torch.isfinite(lp.grad).all()
    # the max over other members is detached: d L_i / d log pi_i = -(1 + alpha) / B, nothing else
    assert torch.allclose(lp.grad, torch.full_like(lp, -(1.1) / 32))


def test_single_member_is_plain_nll():
    lp = torch.tensor([[-1.0, -3.0]])
    assert diversity_bc_loss(lp, 0.1).item() == pytest.approx(2.0)


def test_saturated_demo_actions_give_finite_loss():
    ds, _ = linear_policy_dataset(n=300)
    ds.actions[:, 0] = 1.0
    data = to_transitions(ds)
    actors = build_ensemble(data, num_policies=2, hidden=32, depth=1)
    hist = fit_bc_ensemble(actors, data, steps=20, lr=1e-3, batch_size=64, progress=False)
    assert all(np.isfinite(h).all() for h in hist)
