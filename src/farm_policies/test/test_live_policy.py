"""LivePolicy: validated weight swaps (version, sha256, names, shapes) and hold-still on bad obs."""

import numpy as np
import pytest
import torch

from farm_policies.actor import TanhGaussianActor
from farm_policies.checkpoint import tensor_digest
from farm_policies.live import LivePolicy, WeightUpdateError


def _actor(seed: int) -> TanhGaussianActor:
    torch.manual_seed(seed)
    return TanhGaussianActor(6, 2, hidden=16, depth=2)


def _push(policy: LivePolicy, state, version: int, sha: str | None = None) -> None:
    policy.update(version, tensor_digest(state) if sha is None else sha, state)


def test_update_changes_actions_and_keeps_views_valid():
    policy, new = LivePolicy(_actor(0)), _actor(1).state_dict()
    obs = np.linspace(-1, 1, 6)
    param = next(policy.actor.parameters())  # a view the numpy C_H scorer would hold
    before, _ = policy.act(obs)
    _push(policy, new, 1)
    after, held = policy.act(obs)
    assert policy.version == 1 and not held and not np.allclose(before, after)
    assert param.data_ptr() == next(policy.actor.parameters()).data_ptr()  # copied in place
    np.testing.assert_allclose(
        after,
        _actor(1).act(torch.as_tensor(obs[None], dtype=torch.float32), True)[0].detach().numpy(),
        atol=1e-6,
    )


@pytest.mark.parametrize("case", ["stale", "hash", "shape", "names", "nan"])
def test_bad_updates_are_rejected_and_the_old_weights_keep_running(case):
    policy = LivePolicy(_actor(0), version=3)
    obs = np.ones(6)
    before, _ = policy.act(obs)
    state = {k: v.clone() for k, v in _actor(1).state_dict().items()}
    version, sha = 4, None
    if case == "stale":
        version = 3
    elif case == "hash":
        sha = "0" * 64
    elif case == "shape":
        k = next(iter(state))
        state[k] = torch.zeros(3, 3)
    elif case == "names":
        state["extra.weight"] = torch.zeros(1)
    elif case == "nan":
        k = next(iter(state))
        state[k][0] = float("nan")
    with pytest.raises(WeightUpdateError):
        _push(policy, state, version, sha)
    assert policy.version == 3 and len(policy.rejected) == 1
    np.testing.assert_array_equal(policy.act(obs)[0], before)


def test_nonfinite_or_wrong_size_observation_holds_still():
    policy = LivePolicy(_actor(0))
    for obs in (np.full(6, np.nan), np.ones(5), np.array([np.inf, 0, 0, 0, 0, 0])):
        action, held = policy.act(obs)
        assert held and action.tolist() == [0.0, 0.0]


def test_seeded_exploration_is_reproducible():
    a = [LivePolicy(_actor(0), seed=7).act(np.ones(6), deterministic=False)[0] for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
