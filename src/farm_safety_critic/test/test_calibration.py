"""Calibration metrics on hand cases."""

from types import SimpleNamespace

import numpy as np
import pytest

from farm_safety_critic.calibration import (
    CalibrationError,
    calibrate,
    evaluate,
    failure_within,
    firing_rate,
    gate_firing_rate,
    precision_recall,
    roc_auc,
)


def test_roc_auc_hand_cases():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5], [0, 1, 0]) == 0.5  # all tied
    # pos {0.4, 0.8} vs neg {0.1, 0.4, 0.6}: pairs won 1 + 0.5 + 0 + 1 + 1 + 1 = 4.5 of 6
    assert roc_auc([0.1, 0.4, 0.6, 0.4, 0.8], [0, 0, 0, 1, 1]) == pytest.approx(0.75)
    with pytest.raises(CalibrationError):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(CalibrationError):
        roc_auc([np.nan, 0.2], [0, 1])


def test_precision_recall_and_firing_rate():
    scores, labels = np.array([0.1, 0.4, 0.6, 0.9, 0.7]), np.array([0, 1, 0, 1, 1])
    # alarms at 0.6, 0.9, 0.7 -> tp 2 of 3 alarms, 2 of 3 positives found
    assert precision_recall(scores, labels, 0.5) == pytest.approx((2 / 3, 2 / 3))
    assert precision_recall(scores, labels, 0.95) == (0.0, 0.0)
    assert firing_rate(scores, 0.5) == pytest.approx(0.6)
    assert firing_rate(scores, 0.7) == pytest.approx(0.2)  # strict: score == eps does not fire
    rep = calibrate(scores, labels, 0.5, horizon=3)
    assert rep.n == 5 and rep.n_positive == 3 and rep.as_dict()["eps_safe"] == 0.5


def _dataset():
    # episode 0: 6 steps, failure on its last step (row 5); episode 1: 4 steps, no failure
    costs = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 0], np.float32)
    term = costs > 0
    trunc = np.zeros(10, bool)
    trunc[9] = True
    obs = np.arange(10, dtype=np.float32)[:, None]
    return SimpleNamespace(
        observations=obs,
        actions=np.zeros((10, 1), np.float32),
        rewards=np.zeros(10, np.float32),
        costs=costs,
        terminated=term,
        truncated=trunc,
        episode_ids=np.array([0] * 6 + [1] * 4),
        next_observations=obs + 1,
    )


def test_failure_within_horizon_labels():
    assert failure_within(_dataset(), 2).tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert failure_within(_dataset(), 0).tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_evaluate_with_oracle_scorer():
    oracle = lambda obs, act: (obs[:, 0] >= 3) & (obs[:, 0] <= 5)  # noqa: E731
    rep = evaluate(oracle, _dataset(), horizon=2, eps_safe=0.5)
    assert rep.roc_auc == 1.0 and rep.precision == 1.0 and rep.recall == 1.0
    assert rep.firing_rate == pytest.approx(0.3) and rep.n_positive == 3


def test_gate_firing_rate_on_expert_pairs():
    scorer = lambda obs, act: obs[:, 0] + act[:, 0]  # noqa: E731
    obs, act = np.array([[0.1], [0.5], [0.2], [0.0]]), np.array([[0.0], [0.0], [0.2], [0.0]])
    assert gate_firing_rate(scorer, obs, act, eps_safe=0.3) == pytest.approx(0.5)
