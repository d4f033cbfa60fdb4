"""The world model and the Q-risk critic learn a planted failure (2-D point mass, x > 1 fails)."""

import json

import numpy as np
import pytest
import torch

from farm_safety_critic.calibration import roc_auc
from farm_safety_critic.gate import SafetyGate, build_gate
from farm_safety_critic.mppi import MPPIConfig, build_mppi_gate
from farm_safety_critic.qrisk import QRisk, QRiskGate, build_qrisk_gate
from farm_safety_critic.safety_score import c_h
from farm_safety_critic.toy import point_mass_dataset, steps_to_failure
from farm_safety_critic.world_model import WorldModel
from farm_trainer.safety.train_qrisk import QRiskTrainConfig, train_qrisk
from farm_trainer.safety.train_world_model import WorldModelTrainConfig, main, train_world_model

torch.set_num_threads(1)
HORIZON = 3
SMALL = {"latent_dim": 16, "mlp_dim": 32, "enc_dim": 32}


def _push(obs):
    return torch.tensor([[1.0, 0.0]]).expand(obs.shape[0], 2)


def _probe_states(n=200, seed=0):
    """States along x with the label "a constant +x push fails within H + 1 steps"."""
    x = np.linspace(-1.0, 0.99, n)
    y = np.random.default_rng(seed).uniform(-1.0, 1.0, n)
    obs = torch.tensor(np.stack([x, y], 1), dtype=torch.float32)
    return obs, steps_to_failure(x) <= HORIZON + 1


@pytest.fixture(scope="module")
def data():
    return point_mass_dataset(300, seed=0), point_mass_dataset(100, seed=1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("wm") / "world_model.safetensors"
    cfg = WorldModelTrainConfig(model=SMALL, lr=1e-3, failure_fraction=0.5, log_every=50)
    model, metrics = train_world_model(
        [data[0]],
        steps=150,
        batch=64,
        seed=0,
        out_path=out,
        config=cfg,
        eval_dataset=data[1],
        progress=False,
    )
    return model, metrics, out


def test_world_model_predicts_planted_failure(trained):
    model, metrics, _ = trained
    obs, about_to_fail = _probe_states()
    scores = c_h(model, _push, obs, _push(obs), HORIZON, gamma_risk=0.9).numpy()
    assert roc_auc(scores, about_to_fail) > 0.9
    assert scores[about_to_fail].mean() > scores[~about_to_fail].mean() + 0.5
    assert metrics["heldout_eval"]["roc_auc"] > 0.9  # open-loop C_H along logged actions


def test_checkpoint_and_metrics_round_trip(trained):
    model, metrics, out = trained
    loaded = WorldModel.load(out)
    obs, _ = _probe_states(20)
    a = _push(obs)
    assert torch.allclose(
        c_h(loaded, _push, obs, a, HORIZON, 0.9), c_h(model, _push, obs, a, HORIZON, 0.9)
    )
    assert torch.equal(loaded.obs_mean, model.obs_mean)
    saved = json.loads(out.with_name("world_model.metrics.json").read_text())
    assert saved["steps"] == 150 and saved["final"]["loss/total"] == pytest.approx(
        metrics["final"]["loss/total"]
    )


def test_build_gate_from_checkpoints(trained, tmp_path):
    from farm_policies.actor import TanhGaussianActor
    from farm_policies.checkpoint import save_policy

    _, _, out = trained
    rec_path = tmp_path / "recovery.safetensors"
    save_policy(rec_path, TanhGaussianActor(2, 2, hidden=8, depth=1))
    gate = build_gate(out, _push, rec_path, horizon=HORIZON, gamma_risk=0.9, eps_safe=0.5)
    assert isinstance(gate, SafetyGate)
    obs = np.array([[-0.9, 0.0], [0.95, 0.0]], np.float32)
    d = gate(obs, np.array([[1.0, 0.0], [1.0, 0.0]], np.float32))
    assert d.replaced.tolist() == [False, True]
    assert np.allclose(d.actions[0], [1.0, 0.0]) and np.abs(d.actions[1]).max() < 1.0
    small = MPPIConfig(num_samples=64, iterations=2, num_elites=8, num_pi_trajs=4, eps_safe=0.5)
    mppi_gate = build_mppi_gate(
        out, _push, mppi=small, horizon=HORIZON, gamma_risk=0.9, eps_safe=0.5
    )
    d = mppi_gate(obs, np.array([[1.0, 0.0], [1.0, 0.0]], np.float32))
    assert d.replaced.tolist() == [False, True] and d.actions[1, 0] < 1.0


def test_world_model_cli(data, tmp_path):
    from failurebench_sim.datasets import save_dataset

    save_dataset(tmp_path / "toy.npz", data[0])
    out = tmp_path / "cli" / "wm.safetensors"
    rc = main(
        [
            "world-model",
            "--task",
            "toy",
            "--data",
            str(tmp_path / "toy.npz"),
            "--out",
            str(out),
            "--steps",
            "3",
            "--batch",
            "16",
            "--latent-dim",
            "16",
            "--mlp-dim",
            "16",
            "--enc-dim",
            "16",
            "--no-progress",
        ]
    )
    assert rc == 0 and out.exists() and (tmp_path / "cli" / "wm.metrics.json").exists()
    assert WorldModel.load(out).cfg.latent_dim == 16


def test_qrisk_learns_planted_failure(data, tmp_path):
    cfg = QRiskTrainConfig(hidden=64, lr=1e-3, failure_fraction=0.5, tau=0.02, log_every=100)
    out = tmp_path / "qrisk.safetensors"
    model, metrics = train_qrisk(
        [data[0]],
        steps=300,
        batch=128,
        seed=0,
        out_path=out,
        config=cfg,
        eval_dataset=data[1],
        progress=False,
    )
    assert metrics["heldout_eval"]["roc_auc"] > 0.9
    obs, about_to_fail = _probe_states()
    risk = model.risk(obs, _push(obs)).detach().numpy()
    assert roc_auc(risk, about_to_fail) > 0.9
    loaded = QRisk.load(out)
    assert torch.allclose(loaded.risk(obs, _push(obs)), model.risk(obs, _push(obs)))
    gate = QRiskGate(loaded, lambda o: -_push(o), eps_safe=0.5)
    d = gate(
        np.array([[-0.9, 0.0], [0.95, 0.0]], np.float32),
        np.array([[1.0, 0.0], [1.0, 0.0]], np.float32),
    )
    assert d.replaced.tolist() == [False, True] and d.actions[1].tolist() == [-1.0, 0.0]


def test_build_qrisk_gate_from_checkpoints(data, tmp_path):
    from farm_policies.actor import TanhGaussianActor
    from farm_policies.checkpoint import save_policy

    out, rec = tmp_path / "q.safetensors", tmp_path / "rec.safetensors"
    train_qrisk(
        [data[0]], steps=2, batch=8, out_path=out, config=QRiskTrainConfig(hidden=8), progress=False
    )
    save_policy(rec, TanhGaussianActor(2, 2, hidden=8, depth=1))
    gate = build_qrisk_gate(out, rec, eps_safe=0.3)
    assert isinstance(gate, QRiskGate) and gate.eps_safe == 0.3
    assert gate(np.zeros((3, 2)), np.zeros((3, 2))).actions.shape == (3, 2)


def test_obs_noise_augmentation_perturbs_inputs_only_when_enabled():
    from farm_safety_critic.sequence_sampler import SequenceSampler
    from farm_trainer.safety.train_world_model import with_obs_noise

    batch = SequenceSampler([point_mass_dataset(n_episodes=4, seed=0)], 2, 0.25, seed=0).sample(8)
    std = torch.full((batch.obs.shape[-1],), 0.1)
    noisy = with_obs_noise(batch, std)
    diff = (noisy.obs - batch.obs).std().item()
    assert 0.05 < diff < 0.2 and not torch.equal(noisy.next_obs, batch.next_obs)
    for name in ("actions", "rewards", "costs", "terminated", "mask"):
        assert torch.equal(getattr(noisy, name), getattr(batch, name))
    assert torch.equal(with_obs_noise(batch, torch.zeros_like(std)).obs, batch.obs)
