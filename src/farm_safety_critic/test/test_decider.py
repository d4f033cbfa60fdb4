"""RecoveryDecider: Eq. 11 on given scores, recovery policy held by the decider, safe fallbacks."""

import numpy as np
import pytest
import torch

from farm_safety_critic.decider import DeciderInputError, RecoveryDecider


def _recovery(obs: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.ones(obs.shape[0], 2)


def test_recovery_exactly_where_score_exceeds_eps():
    d = RecoveryDecider(_recovery, eps_safe=0.3, act_dim=2)
    obs, prop = np.zeros((4, 3)), np.full((4, 2), 0.2)
    out = d.decide(obs, prop, np.array([0.1, 0.3, 0.31, 5.0]))
    assert out.replaced.tolist() == [False, False, True, True]
    np.testing.assert_allclose(out.actions, [[0.2, 0.2], [0.2, 0.2], [-0.5, -0.5], [-0.5, -0.5]])


def test_unknown_score_or_nonfinite_input_is_unsafe_and_holds_still():
    d = RecoveryDecider(_recovery, eps_safe=0.3, act_dim=2)
    obs = np.array([[0.0, 0, 0], [np.nan, 0, 0], [0, 0, 0]])
    prop = np.array([[0.2, 0.2], [0.2, 0.2], [np.inf, 0]])
    out = d.decide(obs, prop, np.array([np.nan, 0.0, 0.0]))
    assert out.replaced.tolist() == [True, True, True]
    np.testing.assert_allclose(out.actions, [[-0.5, -0.5], [0, 0], [0, 0]])
    assert np.isfinite(out.actions).all()


def test_nonfinite_recovery_action_falls_back():
    d = RecoveryDecider(lambda o: torch.full((o.shape[0], 2), float("nan")), 0.3, 2)
    out = d.decide(np.zeros((1, 3)), np.zeros((1, 2)), np.array([1.0]))
    assert out.actions.tolist() == [[0.0, 0.0]]


def test_bad_shapes_and_threshold_raise():
    with pytest.raises(DeciderInputError):
        RecoveryDecider(_recovery, float("nan"), 2)
    d = RecoveryDecider(_recovery, 0.3, 2)
    with pytest.raises(DeciderInputError):
        d.decide(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(3))
