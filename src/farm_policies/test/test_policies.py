"""Actor maths, Policy inference and safetensors checkpoint round trips / rejection."""

import numpy as np
import pytest
import torch

from farm_policies import (
    CheckpointError,
    Policy,
    TanhGaussianActor,
    ValueNet,
    instantiate,
    load_checkpoint,
    load_policy,
    mlp,
    save_checkpoint,
    save_policy,
)

torch.set_num_threads(1)
OBS, ACT = 7, 3


def make_actor(seed=0, **kw):
    torch.manual_seed(seed)
    mean = np.linspace(-1, 1, OBS)
    std = np.linspace(0.5, 2.0, OBS)
    return TanhGaussianActor(OBS, ACT, hidden=32, depth=2, obs_mean=mean, obs_std=std, **kw)


def test_mlp_layers_and_head_gain():
    net = mlp(5, 2, hidden=16, depth=3, out_gain=0.01)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4
    assert linears[-1].weight.abs().max() < 0.05
    assert net(torch.zeros(4, 5)).shape == (4, 2)


@pytest.mark.parametrize("state_dependent_std", [True, False])
def test_log_prob_matches_sample_and_change_of_variables(state_dependent_std):
    actor = make_actor(state_dependent_std=state_dependent_std)
    obs = torch.randn(64, OBS)
    a, logp = actor.sample(obs)
    assert a.shape == (64, ACT) and logp.shape == (64,)
    assert torch.allclose(actor.log_prob(obs, a), logp, atol=1e-3)
    mean, log_std = actor(obs)
    assert (log_std >= -5).all() and (log_std <= 0).all()
    u = torch.atanh(a.double())
    ref = torch.distributions.Normal(mean.double(), log_std.exp().double()).log_prob(u)
    ref = (ref - torch.log1p(-a.double().pow(2))).sum(-1)
    assert torch.allclose(logp.double(), ref, atol=1e-3)


def test_log_prob_finite_at_action_bounds():
    actor = make_actor()
    obs = torch.randn(4, OBS)
    a = torch.tensor([[1.0, -1.0, 0.0]] * 4)
    lp = actor.log_prob(obs, a)
    assert torch.isfinite(lp).all()
    lp.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in actor.parameters() if p.grad is not None)


def test_deterministic_vs_stochastic_and_entropy():
    actor = make_actor()
    obs = torch.randn(8, OBS)
    d1, d2 = actor.act(obs, deterministic=True), actor.act(obs, deterministic=True)
    assert torch.equal(d1, d2)
    assert torch.allclose(d1, torch.tanh(actor(obs)[0]), rtol=1e-6, atol=1e-7)
    s1, s2 = actor.act(obs), actor.act(obs)
    assert not torch.equal(s1, s2)
    assert s1.abs().max() < 1
    assert actor.entropy_estimate(obs).shape == (8,)


def test_normalisation_buffers_and_clip():
    actor = make_actor()
    assert set(dict(actor.named_buffers())) == {"normalizer.obs_mean", "normalizer.obs_std"}
    z = actor.normalizer(torch.full((1, OBS), 1e6))
    assert z.max() == 10.0
    with pytest.raises(ValueError, match="obs_std"):
        TanhGaussianActor(OBS, ACT, obs_std=np.zeros(OBS))
    with pytest.raises(ValueError, match="shape"):
        TanhGaussianActor(OBS, ACT, obs_mean=np.zeros(OBS + 1))


def test_policy_act_shapes_and_validation():
    policy = Policy(make_actor())
    single = policy.act(np.zeros(OBS))
    batch = policy.act(np.zeros((5, OBS)), deterministic=False)
    assert single.shape == (ACT,) and single.dtype == np.float32
    assert batch.shape == (5, ACT) and batch.dtype == np.float32
    assert np.all(np.abs(batch) <= 1)
    for bad in (
        np.zeros(OBS + 1),
        np.zeros((2, 3, OBS)),
        np.full(OBS, np.nan),
        np.full(OBS, np.inf),
    ):
        with pytest.raises(ValueError):
            policy.act(bad)
    with pytest.raises(ValueError, match="value network"):
        policy.state_value(np.zeros(OBS))


def test_policy_round_trip(tmp_path):
    actor = make_actor(state_dependent_std=False)
    torch.manual_seed(1)
    value = ValueNet(OBS, hidden=16, depth=2, obs_mean=np.ones(OBS), obs_std=np.full(OBS, 3.0))
    path = save_policy(tmp_path / "p.safetensors", actor, value, meta={"stage": "bc"}, seed=3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    policy = load_policy(path, obs_dim=OBS, act_dim=ACT)
    obs = np.random.default_rng(0).normal(size=(6, OBS))
    expected = torch.tanh(actor(torch.as_tensor(obs, dtype=torch.float32))[0]).detach().numpy()
    np.testing.assert_allclose(policy.act(obs), expected, atol=1e-6)
    v = value(torch.as_tensor(obs, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(policy.state_value(obs), v, atol=1e-6)
    h = policy.header
    assert h["obs_dim"] == OBS and h["act_dim"] == ACT and h["seed"] == 3
    assert h["meta"] == {"stage": "bc"} and h["architecture"]["hidden"] == 32
    np.testing.assert_allclose(h["normalization"]["obs_std"], np.linspace(0.5, 2.0, OBS), atol=1e-6)
    assert "created" in h and h["format_version"] == 1


def test_generic_checkpoint_with_raw_tensors(tmp_path):
    tensors = {"x": torch.arange(6.0).reshape(2, 3), "step": torch.tensor(5)}
    save_checkpoint(tmp_path / "c.safetensors", {"opt": tensors}, {"note": "hi"})
    sds, header = load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(sds["opt"]["x"], tensors["x"]) and int(sds["opt"]["step"]) == 5
    assert header["note"] == "hi"


def test_rejects_missing_garbage_truncated_corrupted(tmp_path):
    path = save_policy(tmp_path / "p.safetensors", make_actor())
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nope.safetensors")
    (tmp_path / "garbage").write_bytes(b"definitely not a safetensors file")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_policy(tmp_path / "garbage")
    data = path.read_bytes()
    (tmp_path / "trunc").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_policy(tmp_path / "trunc")
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    (tmp_path / "flip").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="checksum"):
        load_policy(tmp_path / "flip")


def test_rejects_foreign_safetensors_and_mismatches(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign"))
    with pytest.raises(CheckpointError, match="no FARM header"):
        load_policy(tmp_path / "foreign")
    path = save_policy(tmp_path / "p.safetensors", make_actor())
    with pytest.raises(CheckpointError, match="obs_dim mismatch"):
        load_policy(path, obs_dim=OBS + 1)
    with pytest.raises(CheckpointError, match="act_dim mismatch"):
        load_policy(path, act_dim=ACT + 1)
    # Architecture in the header disagrees with the stored weights.
    sds, header = load_checkpoint(path)
    header["modules"]["actor"]["config"]["hidden"] = 64
    with pytest.raises(CheckpointError, match="does not match"):
        instantiate(sds, header, "actor")
    with pytest.raises(CheckpointError, match="no module"):
        instantiate(sds, header, "value")
