"""World-model shapes, configuration validation, target update and checkpoint rejection."""

import pytest
import torch

from farm_safety_critic.world_model import WorldModel, WorldModelConfig, WorldModelError

torch.set_num_threads(1)


def _wm(**kw):
    return WorldModel(WorldModelConfig(5, 2, latent_dim=16, mlp_dim=16, enc_dim=16, **kw))


def test_component_shapes_and_ranges():
    torch.manual_seed(0)
    wm = _wm()
    obs, a = torch.randn(4, 5), torch.rand(4, 2) * 2 - 1
    z = wm.encode(obs)
    assert z.shape == (4, 16) and torch.allclose(
        z.view(4, 2, 8).sum(-1), torch.ones(4, 2), atol=1e-5
    )
    assert wm.next(z, a).shape == (4, 16)
    assert wm.reward(z, a).shape == (4, 101) and wm.Q_logits(z, a).shape == (2, 4, 101)
    c = wm.constraint(z, a)
    assert c.shape == (4,) and ((c >= 0) & (c <= 1)).all()
    assert wm.decode_raw(z).shape == (4, 5)
    mu, pi, log_pi = wm.pi(z)
    assert mu.abs().max() < 1 and pi.abs().max() <= 1 and log_pi.shape == (4,)
    assert wm.Q(z, a).shape == (4,)


def test_default_size_is_tdmpc2_size_one():
    cfg = WorldModelConfig(39, 4)
    assert (cfg.latent_dim, cfg.mlp_dim, cfg.enc_dim, cfg.num_q) == (128, 384, 256, 2)


def test_config_and_stats_validation():
    with pytest.raises(WorldModelError):
        WorldModelConfig(5, 2, latent_dim=12)  # not a multiple of the SimNorm group
    with pytest.raises(WorldModelError):
        WorldModelConfig(5, 2, num_q=1)
    with pytest.raises(WorldModelError):
        WorldModel(WorldModelConfig(5, 2, latent_dim=16), obs_std=[1, 1, 0, 1, 1])
    with pytest.raises(WorldModelError):
        WorldModel(WorldModelConfig(5, 2, latent_dim=16), obs_mean=[0, 0])
    with pytest.raises(WorldModelError):
        WorldModelConfig.from_dict({"obs_dim": 5, "act_dim": 2, "bogus": 1})


def test_target_q_polyak_and_eval_mode():
    wm = _wm()
    with torch.no_grad():
        for p in wm._Qs.parameters():
            p.add_(1.0)
    before = [p.clone() for p in wm._target_Qs.parameters()]
    wm.soft_update_target_Q(0.01)
    for b, t, o in zip(before, wm._target_Qs.parameters(), wm._Qs.parameters(), strict=True):
        assert torch.allclose(t, b + 0.01 * (o - b))
    wm.train()
    assert wm._Qs.training and not wm._target_Qs.training


def test_normalisation_buffers_saved_and_foreign_checkpoint_rejected(tmp_path):
    from farm_policies.actor import TanhGaussianActor
    from farm_policies.checkpoint import save_policy

    wm = WorldModel(
        WorldModelConfig(5, 2, latent_dim=16, mlp_dim=16, enc_dim=16), obs_mean=[1, 2, 3, 4, 5]
    )
    wm.save(tmp_path / "wm.safetensors")
    loaded = WorldModel.load(tmp_path / "wm.safetensors")
    assert loaded.obs_mean.tolist() == [1, 2, 3, 4, 5] and loaded.cfg == wm.cfg
    save_policy(tmp_path / "actor.safetensors", TanhGaussianActor(5, 2, hidden=8, depth=1))
    with pytest.raises(WorldModelError, match="not a world-model"):
        WorldModel.load(tmp_path / "actor.safetensors")
