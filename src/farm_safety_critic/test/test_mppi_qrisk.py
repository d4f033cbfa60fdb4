"""MPPI over a hand-built world model, and the Q-risk target / loss on hand cases."""

import numpy as np
import pytest
import torch

from farm_safety_critic.mppi import MPPIConfig, MPPIPlanner
from farm_safety_critic.qrisk import QRisk, QRiskConfig, next_actions, qrisk_loss, qrisk_target
from farm_safety_critic.sequence_sampler import SliceBatch
from farm_safety_critic.world_model import WorldModel, WorldModelConfig

torch.set_num_threads(1)


class RewardVsConstraint(WorldModel):
    """Reward = a[0] (wants +1), constraint fires when a[0] > 0.5; Q = 0, pi = 0."""

    def __init__(self):
        super().__init__(WorldModelConfig(2, 2, latent_dim=8, mlp_dim=8, enc_dim=8))

    def encode(self, obs):
        return torch.zeros(obs.shape[0], 8)

    def next(self, z, a):
        return z

    def reward_value(self, z, a):
        return a[..., 0]

    def constraint(self, z, a):
        return (a[..., 0] > 0.5).float()

    def pi(self, z):
        zero = torch.zeros(*z.shape[:-1], 2)
        return zero, zero, torch.zeros(z.shape[:-1])

    def Q(self, z, a, reduce="min", target=False):
        return torch.zeros(a.shape[:-1])


def _cfg(**kw):
    base = dict(horizon=3, num_samples=128, iterations=4, num_elites=16, num_pi_trajs=4)
    return MPPIConfig(**{**base, **kw})


def test_mppi_respects_constraint_and_maximises_reward():
    obs = torch.zeros(3, 2)
    a = MPPIPlanner(RewardVsConstraint(), _cfg(eps_safe=0.3), seed=0)(obs)
    assert a.shape == (3, 2)
    assert (a[:, 0] <= 0.5).all() and (a[:, 0] > 0.2).all()  # best safe: just under the limit
    free = MPPIPlanner(RewardVsConstraint(), _cfg(eps_safe=100.0, constraint_penalty=0.0), seed=0)(
        obs
    )
    assert (free[:, 0] > 0.8).all()


def test_mppi_evaluate_hand_case():
    planner = MPPIPlanner(RewardVsConstraint(), _cfg(gamma=0.5, gamma_risk=0.5))
    acts = torch.tensor([[[[1.0, 0], [0.0, 0], [1.0, 0]]]])  # (n=1, S=1, H=3, A)
    ret, risk = planner.evaluate(torch.zeros(1, 8), acts)
    assert ret.item() == pytest.approx(1.0 + 0.25)  # 1 + 0.5*0 + 0.25*1 (+ 0.125 * Q = 0)
    assert risk.item() == pytest.approx(1.0 + 0.25)  # C fires at i = 0 and i = 2; pi(z_H) = 0 safe


def test_mppi_config_validation():
    with pytest.raises(ValueError):
        MPPIConfig(num_samples=8, num_elites=16)


def test_mppi_runs_on_real_world_model():
    torch.manual_seed(0)
    wm = WorldModel(WorldModelConfig(3, 2, latent_dim=16, mlp_dim=16, enc_dim=16))
    a = MPPIPlanner(wm, _cfg())(torch.randn(5, 3))
    assert a.shape == (5, 2) and torch.isfinite(a).all() and a.abs().max() <= 1.0


def test_qrisk_target_hand_case():
    c, done = torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    q1, q2 = torch.tensor([0.2, 0.9, 0.5]), torch.tensor([0.4, 0.9, 0.1])
    y = qrisk_target(c, done, q1, q2, gamma_safe=0.5)
    assert torch.allclose(y, torch.tensor([0.2, 1.0, 0.25]))


def _batch():
    # two 2-step slices: row 0 has a logged next action, row 1 ends (mask 0) after a terminal
    return SliceBatch(
        obs=torch.zeros(2, 2, 2),
        actions=torch.tensor([[[0.1, 0.1], [0.2, 0.2]], [[0.3, 0.3], [0.2, 0.2]]]),
        rewards=torch.zeros(2, 2),
        costs=torch.tensor([[0.0, 1.0], [0.0, 1.0]]),
        terminated=torch.tensor([[0.0, 1.0], [0.0, 1.0]]),
        next_obs=torch.zeros(2, 2, 2),
        mask=torch.tensor([[1.0, 1.0], [1.0, 0.0]]),
    )


def test_next_actions_sarsa_and_policy():
    a = next_actions(_batch(), None)
    assert torch.allclose(a, torch.tensor([[0.3, 0.3], [0.2, 0.2]]))
    assert torch.allclose(next_actions(_batch(), lambda s: torch.ones(2, 2)), torch.ones(2, 2))


def test_qrisk_loss_and_outputs_in_unit_interval():
    torch.manual_seed(0)
    q = QRisk(QRiskConfig(2, 2, hidden=8))
    loss, m = qrisk_loss(q, _batch(), gamma_safe=0.8)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in q.online_parameters())
    assert all(p.grad is None for p in q.q1_target.parameters())
    r = q.risk(torch.randn(50, 2) * 100, torch.rand(50, 2))
    assert ((r >= 0) & (r <= 1)).all()
    q1, q2 = q(torch.zeros(4, 2), torch.zeros(4, 2))
    assert torch.allclose(q.risk(torch.zeros(4, 2), torch.zeros(4, 2)), torch.maximum(q1, q2))
    assert np.isfinite(m["loss/qrisk"])


def test_mppi_as_recovery_policy_of_the_gate():
    from farm_safety_critic.gate import SafetyGate

    torch.manual_seed(0)
    wm = WorldModel(WorldModelConfig(3, 2, latent_dim=16, mlp_dim=16, enc_dim=16))
    task = lambda obs: torch.zeros(obs.shape[0], 2)  # noqa: E731
    gate = SafetyGate(wm, task, MPPIPlanner(wm, _cfg()), eps_safe=-1.0)  # always fires
    d = gate(np.random.default_rng(0).standard_normal((4, 3)), np.zeros((4, 2)))
    assert d.replaced.all() and np.isfinite(d.actions).all() and np.abs(d.actions).max() <= 1.0
