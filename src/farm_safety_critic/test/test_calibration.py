"""Calibration metrics on hand cases."""

import json
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


def test_choose_eps_safe_takes_most_recall_within_both_alarm_budgets():
    from farm_safety_critic.calibration import choose_eps_safe

    held = np.array([0.01, 0.03, 0.06, 0.15, 0.5, 0.02, 0.005, 0.0, 0.0, 0.0])
    labels = np.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    expert = np.array([0.0, 0.03, 0.0, 0.0])  # one expert step scores 0.03
    # eps 0.02: held-out fires on 0.03, 0.06, 0.15, 0.5 (4/10) and on 1/4 expert steps
    res = choose_eps_safe(held, labels, expert, max_firing=0.5, max_expert_firing=0.25,
                          grid=(0.05, 0.02, 0.1))  # fmt: skip
    assert res["eps_safe"] == 0.02 and res["budgets_met"]
    assert [c["eps_safe"] for c in res["curve"]] == [0.02, 0.05, 0.1]
    assert res["curve"][0]["recall"] == 1.0 and res["curve"][0]["firing_rate"] == 0.4
    # no expert false alarms allowed -> 0.05 (recall 3/4)
    res = choose_eps_safe(held, labels, expert, 0.5, 0.0, grid=(0.02, 0.05, 0.1))
    assert res["eps_safe"] == 0.05 and res["curve"][1]["recall"] == 0.75
    # budgets nobody meets -> the most conservative threshold, flagged
    res = choose_eps_safe(held, labels, expert, 0.0, 0.0, grid=(0.02, 0.05, 0.1))
    assert res["eps_safe"] == 0.1 and not res["budgets_met"]
    with pytest.raises(CalibrationError):
        choose_eps_safe(held, labels, expert, 0.1, 0.1, grid=())


def test_choose_anyof_eps_takes_most_recall_at_the_precision_floor(tmp_path):
    """Both any-of thresholds: a member may be left out (OFF) where the other alone is more
    precise; without a precise pair the most recall in budget wins, flagged."""
    import json

    from farm_safety_critic.calibration import OFF, choose_anyof_eps, read_anyof_eps

    labels = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)
    c_h = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0])  # fires on 3 safe rows too
    q = np.array([0.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # fires on the 2 failures
    expert = np.zeros(4)
    res = choose_anyof_eps((c_h, expert), (q, expert), labels, max_firing=0.5,
                           max_expert_firing=0.0, min_precision=0.5, grid=(0.5,),
                           qrisk_grid=(0.5,))  # fmt: skip
    assert (res["eps_safe"], res["qrisk_eps_safe"]) == (None, 0.5)  # C_H left out
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["precision_met"]
    assert len(res["curve"]) == 3  # (0.5, 0.5), (0.5, off), (off, 0.5)
    # no precision floor: the most recall, ties to the most precision -> still Q-risk alone
    res = choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 0.0, (0.5,), (0.5,))
    assert res["qrisk_eps_safe"] == 0.5 and res["eps_safe"] is None
    # an unreachable floor: the most recall in budget, flagged
    res = choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 1.1, (0.5,), (0.7,))
    assert not res["precision_met"] and res["budgets_met"] and res["recall"] == 1.0
    # nothing in budget: the least-firing pair, flagged
    res = choose_anyof_eps((c_h, expert), (q, expert), labels, 0.0, 0.0, 0.2, (0.5,), (0.5,))
    assert not res["budgets_met"] and res["firing_rate"] == 0.2

    path = tmp_path / "anyof.json"
    path.write_text(json.dumps({"eps_safe": None, "qrisk_eps_safe": 0.4}))
    assert read_anyof_eps(str(path)) == (OFF, 0.4)
    for bad in ({"eps_safe": None, "qrisk_eps_safe": None}, {"eps_safe": -1, "qrisk_eps_safe": 1},
                {"eps_safe": 0.1}):  # fmt: skip
        path.write_text(json.dumps(bad))
        with pytest.raises(CalibrationError):
            read_anyof_eps(str(path))
    with pytest.raises(CalibrationError):
        choose_anyof_eps((c_h, expert), (q[:5], expert), labels, 0.5, 0.0, 0.2)


def test_choose_anyof_eps_can_spend_no_more_alarms_than_c_h_alone():
    """firing_vs_c_h 1.0: the held-out budget is C_H's own firing rate at its threshold."""
    from farm_safety_critic.calibration import choose_anyof_eps

    labels = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)
    c_h = np.array([0.9, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # fires on 2 rows, 1 right
    q = np.array([0.8, 0.6, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    expert = np.zeros(4)
    free = choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 0.0, (0.5,),
                            (0.5, 0.7))  # fmt: skip
    assert free["recall"] == 1.0 and free["firing_rate"] == 0.4
    capped = choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 0.0, (0.5,),
                              (0.5, 0.7), firing_vs_c_h=1.0, c_h_eps_safe=0.5)  # fmt: skip
    assert capped["max_firing"] == 0.2 and capped["firing_rate"] <= 0.2
    assert (capped["eps_safe"], capped["qrisk_eps_safe"]) == (None, 0.7)  # Q-risk alone: 1 of 1
    with pytest.raises(CalibrationError, match="c_h_eps_safe"):
        choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 0.0, firing_vs_c_h=1.0)
    # farm-qrisk's budget: C_H at 0.5 or Q-risk at 0.5 fire on rows 0-3
    matched = choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 0.0, (0.5,),
                               (0.5, 0.7), firing_vs_c_h=1.0, c_h_eps_safe=0.5,
                               budget_qrisk_eps_safe=0.5)  # fmt: skip
    assert matched["max_firing"] == 0.4 and matched["recall"] == 1.0
    with pytest.raises(CalibrationError, match="set both"):
        choose_anyof_eps((c_h, expert), (q, expert), labels, 0.5, 0.0, 0.0,
                         budget_qrisk_eps_safe=0.5)  # fmt: skip


def test_choose_qrisk_for_recall_lowers_q_risk_only_as_far_as_the_recall_needs():
    """C_H keeps its threshold; Q-risk's falls from the ceiling to the largest value that
    catches min_recall of the failures, within the expert's false-alarm budget."""
    from farm_safety_critic.calibration import choose_qrisk_for_recall

    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    c_h = np.array([0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # catches 1 of 4
    q = np.array([0.0, 0.35, 0.25, 0.12, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0])
    c_exp, q_exp = np.zeros(4), np.array([0.0, 0.0, 0.0, 0.18])  # Q-risk < 0.18: an expert alarm

    def choose(min_recall, max_expert_firing, **kw):
        return choose_qrisk_for_recall((c_h, c_exp), (q, q_exp), labels, min_recall,
                                       max_expert_firing, c_h_eps_safe=0.5, **kw)  # fmt: skip

    at = choose(0.7, 0.0, ceiling=0.3, qrisk_grid=(0.1, 0.2, 0.3, 0.5))
    assert at["qrisk_eps_safe"] == 0.2 and at["recall"] == 0.75 and at["recall_met"]
    assert [c["qrisk_eps_safe"] for c in at["curve"]] == [0.3, 0.2, 0.1]  # none above the ceiling
    assert at["eps_safe"] == 0.5  # C_H's own threshold, unchanged
    # recall 1.0 needs 0.1, whose expert alarm is over budget: the most recall in budget, flagged
    short = choose(1.0, 0.0, ceiling=0.3, qrisk_grid=(0.1, 0.2))
    assert short["qrisk_eps_safe"] == 0.2 and not short["recall_met"]
    # a budget that allows the expert alarm reaches it
    full = choose(1.0, 0.25, ceiling=0.3, qrisk_grid=(0.1, 0.2))
    assert full["qrisk_eps_safe"] == 0.1 and full["recall"] == 1.0
    # already met at the ceiling: unchanged
    assert choose(0.25, 0.0, ceiling=0.3, qrisk_grid=(0.1, 0.2))["qrisk_eps_safe"] == 0.3
    with pytest.raises(CalibrationError, match="c_h_eps_safe"):
        choose_qrisk_for_recall((c_h, c_exp), (q, q_exp), labels, 0.5, 0.0)
    none = choose_qrisk_for_recall(
        (c_h, c_exp), (q, q_exp), np.zeros(10, bool), 0.5, 0.0, c_h_eps_safe=0.5
    )  # no failures to catch: the default stays
    assert none["qrisk_eps_safe"] == 0.3 and not none["recall_met"]
    with pytest.raises(CalibrationError, match="same rows"):
        choose_qrisk_for_recall((c_h, c_exp), (q[:5], q_exp), labels, 0.5, 0.0, c_h_eps_safe=0.5)


def test_choose_anyof_for_recall_takes_the_fewest_alarms_that_keep_the_recall(tmp_path):
    """Both thresholds searched, each member may be left out: where Q-risk scores high on safe
    rows (a saturated critic), raising it or dropping it fires less at the same recall."""
    from farm_safety_critic.calibration import (
        OFF,
        choose_anyof_for_recall,
        choose_by_anyof_rule,
        read_anyof_eps,
    )

    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    c_h = np.array([2.0, 1.5, 1.2, 0.2, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0])
    q = np.array([1.0, 1.0, 1.0, 0.99, 1.0, 1.0, 0.95, 0.9, 0.0, 0.0])  # high on safe rows too
    c_exp, q_exp = np.zeros(4), np.zeros(4)

    def choose(min_recall, **kw):
        kw = {"c_h_grid": (0.5, 1.0), "qrisk_grid": (0.3, 0.9, 0.98), **kw}
        return choose_anyof_for_recall((c_h, c_exp), (q, q_exp), labels, min_recall, 0.0, **kw)

    # recall 0.75: C_H > 1.0 alone catches 3 of 4 and fires on 3 rows, fewer than any Q-risk pair
    r = choose(0.75)
    assert (r["eps_safe"], r["qrisk_eps_safe"]) == (1.0, None) and r["firing_rate"] == 0.3
    assert r["recall_met"] and r["precision"] == 1.0
    path = tmp_path / "anyof_eps.json"  # the gate (and safety_node.anyof_eps_file) reads it
    path.write_text(json.dumps(r))
    assert read_anyof_eps(str(path)) == (1.0, OFF)
    # recall 1.0 needs Q-risk (row 3); 0.98 fires less than 0.9 or 0.3 and C_H adds no alarm
    full = choose(1.0)
    assert full["qrisk_eps_safe"] == 0.98 and full["recall"] == 1.0
    assert full["firing_rate"] == min(c["firing_rate"] for c in full["curve"] if c["recall"] == 1)
    assert full["eps_safe"] is None  # ties on alarms go to the higher thresholds, OFF highest
    assert not any(c["eps_safe"] is None and c["qrisk_eps_safe"] is None for c in full["curve"])
    # an expert alarm at every Q-risk threshold below 0.98 keeps those pairs out of the budget
    busy = choose_anyof_for_recall((c_h, c_exp), (q, np.array([0.95, 0, 0, 0])), labels, 1.0,
                                   0.0, c_h_grid=(0.5,), qrisk_grid=(0.9,))  # fmt: skip
    assert not busy["recall_met"] and busy["qrisk_eps_safe"] is None  # the most recall in budget
    # choose_by_anyof_rule dispatches on c_h_grid and needs no FARM threshold
    rule = {
        "min_recall": 0.75,
        "max_expert_firing": 0.0,
        "recall_within": 1,
        "c_h_grid": [0.5, 1.0],
        "qrisk_grid": [0.3, 0.9, 0.98],
    }
    via = choose_by_anyof_rule((c_h, c_exp), (q, q_exp), lambda n: labels, rule, 5)
    assert (via["eps_safe"], via["qrisk_eps_safe"]) == (1.0, None)
    with pytest.raises(CalibrationError, match="non-empty"):
        choose(0.5, c_h_grid=())
    with pytest.raises(CalibrationError, match="non-negative"):
        choose(0.5, qrisk_grid=(-0.1,))
