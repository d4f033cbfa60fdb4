"""Each Eq. 4-9 loss term on a tiny hand-computed case."""

import math

import pytest
import torch

from farm_safety_critic import losses as L
from farm_safety_critic.math import NUM_BINS
from farm_safety_critic.sequence_sampler import SliceBatch
from farm_safety_critic.world_model import WorldModel, WorldModelConfig

torch.set_num_threads(1)


def test_horizon_weights_and_weighted_mean():
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    w = L.horizon_weights(mask, rho=0.5)
    assert torch.equal(w, torch.tensor([[1.0, 1.0], [0.5, 0.0], [0.25, 0.25]]))
    per = torch.tensor([[1.0, 2.0], [4.0, 100.0], [8.0, 8.0]])
    # (1 + 2 + 2 + 0 + 2 + 2) / 6
    assert L.weighted(per, w).item() == pytest.approx(9.0 / 6.0)


def test_reward_and_value_soft_ce_uniform_logits():
    w = torch.ones(2, 3)
    assert L.reward_loss(torch.zeros(2, 3, NUM_BINS), torch.zeros(2, 3), w).item() == pytest.approx(
        math.log(NUM_BINS)
    )
    v = L.value_loss(torch.zeros(2, 2, 3, NUM_BINS), torch.ones(2, 3), w)
    assert v.item() == pytest.approx(math.log(NUM_BINS))


def test_td_target_stops_at_termination():
    r, term, q = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), torch.tensor([10.0, 10.0])
    assert torch.allclose(L.td_target(r, term, q, gamma=0.9), torch.tensor([10.0, 1.0]))


def test_consistency_loss_value_and_stop_gradient():
    z_pred = torch.ones(1, 2, 4, requires_grad=True)
    z_tgt = torch.zeros(1, 2, 4, requires_grad=True)
    loss = L.consistency_loss(z_pred, z_tgt, torch.ones(1, 2))
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert z_pred.grad is not None and z_tgt.grad is None


def test_constraint_loss_bce_pos_weight_and_mse():
    logit, w = torch.zeros(1, 2), torch.ones(1, 2)
    c = torch.tensor([[1.0, 0.0]])
    assert L.constraint_loss(logit, c, w).item() == pytest.approx(math.log(2))
    # pos_weight scales only the cost=1 term: (3 log2 + log2) / 2
    assert L.constraint_loss(logit, c, w, pos_weight=3.0).item() == pytest.approx(2 * math.log(2))
    assert L.constraint_loss(logit, c, w, kind="mse").item() == pytest.approx(0.25)
    with pytest.raises(L.LossConfigError):
        L.constraint_loss(logit, c, w, kind="hinge")


def test_decoder_loss():
    assert (
        L.decoder_loss(torch.full((1, 1, 3), 2.0), torch.zeros(1, 1, 3), torch.ones(1, 1)).item()
        == 4.0
    )


def test_policy_loss_sign_and_scale():
    q, log_pi, w = torch.tensor([[4.0]]), torch.tensor([[-1.0]]), torch.ones(1, 1)
    assert L.policy_loss(q, log_pi, w, torch.tensor(2.0), entropy_coef=0.5).item() == pytest.approx(
        -2.5
    )


def test_loss_config_rejects_bad_values():
    with pytest.raises(L.LossConfigError):
        L.LossConfig(constraint_loss="l1")
    with pytest.raises(L.LossConfigError):
        L.LossConfig(pos_weight=0.0)


def _batch(T=4, B=5, obs_dim=3, act_dim=2):
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(T, B)
    mask[2:, 0] = 0.0
    return SliceBatch(
        obs=torch.randn(T, B, obs_dim, generator=g),
        actions=torch.rand(T, B, act_dim, generator=g) * 2 - 1,
        rewards=torch.randn(T, B, generator=g),
        costs=(torch.rand(T, B, generator=g) > 0.7).float(),
        terminated=torch.zeros(T, B),
        next_obs=torch.randn(T, B, obs_dim, generator=g),
        mask=mask,
    )


def test_world_model_loss_runs_and_reaches_every_module():
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig(3, 2, latent_dim=16, mlp_dim=32, enc_dim=32))
    total, z, metrics = L.world_model_loss(model, _batch(), L.LossConfig())
    assert torch.isfinite(total) and z.shape == (4, 5, 16) and not z.requires_grad
    assert set(metrics) >= {
        "loss/reward",
        "loss/value",
        "loss/consistency",
        "loss/constraint",
        "loss/decoder",
    }
    total.backward()
    for name, mod in [
        ("enc", model._encoder),
        ("dyn", model._dynamics),
        ("c", model._constraint),
        ("dec", model._decoder),
    ]:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters()), name
    assert all(p.grad is None for p in model._target_Qs.parameters())
    assert all(p.grad is None for p in model.pi_parameters())
    model.zero_grad()
    loss, m = L.pi_loss(model, z, _batch().mask, L.LossConfig(), L.RunningScale())
    loss.backward()
    assert all(p.grad is None for p in model.Q_parameters())
    assert any(p.grad is not None for p in model.pi_parameters())
