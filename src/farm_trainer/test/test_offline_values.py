"""Monte-Carlo returns, expectile loss, IQL Q/V and dataset validation."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from farm_trainer.offline.data import OfflineDataError, episode_ends, to_transitions
from farm_trainer.offline.q_fitting import IQLCritic, expectile_loss, fit_iql
from farm_trainer.offline.value_fitting import fit_value_mc, mc_returns

torch.set_num_threads(1)


def test_mc_returns_termination_vs_truncation():
    r = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    terminated = np.array([0, 0, 1, 0, 0, 0, 0], bool)
    truncated = np.array([0, 0, 0, 0, 1, 0, 0], bool)
    ids = np.array([0, 0, 0, 1, 1, 2, 2])
    ends = episode_ends(terminated, truncated, ids)
    assert ends.tolist() == [False, False, True, False, True, False, True]
    bootstrap = np.full(7, 4.0)
    g = mc_returns(r, terminated, ends, gamma=0.5, bootstrap=bootstrap)
    # ep 0 terminates: no tail. ep 1 truncated: tail 0.5 * 4. ep 2 ends with the data: tail too.
    assert g.tolist() == pytest.approx([1.75, 1.5, 1.0, 2.5, 3.0, 4.0, 4.0])
    g0 = mc_returns(r, terminated, ends, gamma=0.5)
    assert g0.tolist() == pytest.approx([1.75, 1.5, 1.0, 1.5, 1.0, 3.0, 2.0])


def test_expectile_loss_hand_case():
    u = torch.tensor([2.0, -1.0])
    assert expectile_loss(u, 0.7).item() == pytest.approx((0.7 * 4 + 0.3 * 1) / 2)
    assert expectile_loss(u, 0.5).item() == pytest.approx(0.5 * (4 + 1) / 2)


def bandit_dataset(n: int = 512) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    act = np.where(rng.random(n) < 0.5, -0.5, 0.5).astype(np.float32)[:, None]
    obs = np.zeros((n, 2), np.float32)
    return SimpleNamespace(
        observations=obs,
        actions=act,
        rewards=(act[:, 0] > 0).astype(np.float32),
        terminated=np.ones(n, bool),
        truncated=np.zeros(n, bool),
        episode_ids=np.arange(n),
        next_observations=obs,
        metadata={},
    )


def test_iql_bandit_q_and_expectile_v():
    torch.manual_seed(0)
    data = to_transitions(bandit_dataset())
    critic = IQLCritic.build(data, hidden=32, depth=2)
    fit_iql(
        critic,
        data,
        steps=400,
        lr=5e-3,
        batch_size=128,
        tau=0.2,
        target_update_freq=1,
        progress=False,
    )
    s = torch.zeros(2, 2)
    with torch.no_grad():
        q = critic.q.min_q(s, torch.tensor([[-0.5], [0.5]]))
        v = critic.v(s[:1]).item()
    assert q.tolist() == pytest.approx([0.0, 1.0], abs=0.08)
    assert v == pytest.approx(0.7, abs=0.08)  # 0.7-expectile of {0, 1} with equal mass


def test_value_mc_regression_fits_returns():
    torch.manual_seed(0)
    obs = torch.linspace(-1, 1, 256).unsqueeze(1)
    from farm_policies.actor import ValueNet

    value = ValueNet(1, hidden=32, depth=2)
    hist = fit_value_mc(
        value, obs, 3.0 * obs[:, 0], steps=600, lr=3e-3, batch_size=64, progress=False
    )
    assert hist[-1] < 0.01


def good_fields(n: int = 10) -> dict:
    return dict(
        observations=np.zeros((n, 3), np.float32),
        actions=np.zeros((n, 2), np.float32),
        rewards=np.zeros(n, np.float32),
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
        episode_ids=np.zeros(n, np.int64),
        next_observations=np.zeros((n, 3), np.float32),
    )


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f.pop("rewards"), "no field 'rewards'"),
        (lambda f: f["observations"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda f: f["actions"].__setitem__((1, 1), 1.5), r"\[-1, 1\]"),
        (lambda f: f.__setitem__("rewards", np.zeros(9, np.float32)), "9 rows"),
        (
            lambda f: f.__setitem__("next_observations", np.zeros((10, 4), np.float32)),
            "next_observations",
        ),
        (lambda f: f.__setitem__("actions", np.zeros(10, np.float32)), "2-D"),
    ],
)
def test_bad_dataset_rejected(mutate, match):
    fields = good_fields()
    mutate(fields)
    with pytest.raises(OfflineDataError, match=match):
        to_transitions(SimpleNamespace(**fields))


def test_good_dataset_accepted_with_reward_scale():
    fields = good_fields()
    fields["rewards"][:] = 2.0
    data = to_transitions(SimpleNamespace(**fields), reward_scale=0.1)
    assert torch.allclose(data.rewards, torch.full((10,), 0.2))
    assert data.episode_returns().tolist() == pytest.approx([20.0])
    assert (data.obs_std > 0).all()
