"""OPE: a learned dynamics ensemble + Q ranks a better policy above a worse one."""

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from farm_trainer.offline.data import to_transitions
from farm_trainer.offline.ope import OPE, DynamicsEnsemble, fit_dynamics

torch.set_num_threads(1)
GOAL = torch.tensor([0.5, -0.5])


class FixedPolicy(nn.Module):
    """Deterministic gain policy a = clip(k * (goal - pos)); k < 0 walks away from the goal."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return (self.gain * (GOAL - obs)).clamp(-1, 1)


def true_step(obs, action, members):
    return obs + 0.1 * action


def q_true(obs, action):
    """Q of reaching the goal: higher when the next state is closer."""
    return -(obs + 0.1 * action - GOAL).norm(dim=-1)


def random_transitions(n: int = 3000) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return SimpleNamespace(
        observations=obs,
        actions=act,
        rewards=np.zeros(n, np.float32),
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
        episode_ids=np.arange(n),
        next_observations=obs + 0.1 * act,
        metadata={},
    )


def test_ope_ranks_policies_with_true_dynamics():
    init = torch.rand(128, 2) * 2 - 1
    ope = OPE(true_step, q_true, init, horizon=5)
    good, bad = ope(FixedPolicy(3.0)), ope(FixedPolicy(-3.0))
    assert good > bad


def test_learned_dynamics_and_ope_ranking():
    torch.manual_seed(0)
    data = to_transitions(random_transitions())
    model = DynamicsEnsemble.for_data(data, n_members=3, hidden=64, depth=2)
    hist = fit_dynamics(model, data, steps=400, lr=3e-3, batch_size=128, progress=False)
    assert hist[-1] < 0.1 * hist[0]
    obs, act = torch.rand(64, 2) * 1.6 - 0.8, torch.rand(64, 2) * 2 - 1
    pred = model.step(obs, act, torch.zeros(64, dtype=torch.long))
    assert (pred - (obs + 0.1 * act)).abs().max() < 0.02
    ope = OPE.from_data(model, q_true, data, n_states=256, horizon=5, seed=0)
    scores = [ope(FixedPolicy(k)) for k in (3.0, 0.5, -3.0)]
    assert scores[0] > scores[1] > scores[2]
    assert ope(FixedPolicy(3.0)) == scores[0]  # common random numbers: deterministic score


def test_step_uses_the_selected_member():
    torch.manual_seed(0)
    model = DynamicsEnsemble(2, 2, n_members=3, hidden=8, depth=2)
    obs, act = torch.randn(6, 2), torch.randn(6, 2)
    members = torch.tensor([0, 1, 2, 2, 1, 0])
    full = model(obs, act)  # (E, B, obs_dim)
    expected = obs + full[members, torch.arange(6)]  # identity delta normalisation
    assert torch.allclose(model.step(obs, act, members), expected, atol=1e-6)
