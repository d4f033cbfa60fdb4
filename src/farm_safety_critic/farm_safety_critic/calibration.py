"""Calibration of a safety score against "an IR failure happens within H steps" (pure numpy).

Label of dataset row t: some cost > 0 among rows t, t+1, ..., t+H of the same episode segment
(the H + 1 steps of Eq. 10). A scorer maps (obs (n, obs_dim), actions (n, act_dim)) to scores
(n,); ``SafetyGate.scores`` / ``QRiskGate.scores`` are scorers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from farm_safety_critic.safety_score import discount_sum
from farm_safety_critic.sequence_sampler import (
    TransitionDataset,
    concat_datasets,
    episode_stop,
    slice_indices,
)
from farm_safety_critic.world_model import WorldModel

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


class CalibrationError(ValueError):
    """Inputs for which a metric is undefined (e.g. AUC with a single class)."""


def failure_within(
    dataset: TransitionDataset | Sequence[TransitionDataset], horizon: int
) -> np.ndarray:
    """Bool (N,): an IR failure (cost > 0) happens within rows t .. t+H of t's episode."""
    tr = concat_datasets(dataset)
    rows, mask = slice_indices(episode_stop(tr), np.arange(len(tr)), horizon)
    return ((tr.costs[rows] > 0) & mask).any(0)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney U)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=bool).reshape(-1)
    if s.shape != y.shape:
        raise CalibrationError(f"scores {s.shape} and labels {y.shape} differ in length")
    if np.isnan(s).any():
        raise CalibrationError("scores contain NaN")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise CalibrationError(
            f"ROC-AUC needs both classes (got {n_pos} positive, {n_neg} negative)"
        )
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks (1-based) over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_recall(
    scores: np.ndarray, labels: np.ndarray, eps_safe: float
) -> tuple[float, float]:
    """Precision and recall of the alarm ``score > eps_safe`` (0.0 where undefined)."""
    alarm = np.asarray(scores).reshape(-1) > eps_safe
    y = np.asarray(labels, dtype=bool).reshape(-1)
    tp = int((alarm & y).sum())
    precision = tp / int(alarm.sum()) if alarm.any() else 0.0
    recall = tp / int(y.sum()) if y.any() else 0.0
    return float(precision), float(recall)


def firing_rate(scores: np.ndarray, eps_safe: float) -> float:
    """Fraction of rows on which the gate would fire (score > eps_safe)."""
    s = np.asarray(scores).reshape(-1)
    if s.size == 0:
        raise CalibrationError("firing rate of an empty score array")
    return float((s > eps_safe).mean())


def gate_firing_rate(
    scorer: Scorer, observations: np.ndarray, actions: np.ndarray, eps_safe: float
) -> float:
    """How often the gate would fire on (obs, action) pairs, e.g. false alarms on the expert."""
    return firing_rate(scorer(np.asarray(observations), np.asarray(actions)), eps_safe)


@dataclass
class CalibrationReport:
    """Metrics of one scorer on one held-out dataset."""

    roc_auc: float
    precision: float
    recall: float
    firing_rate: float
    eps_safe: float
    horizon: int
    n: int
    n_positive: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score_dataset(
    scorer: Scorer, dataset: TransitionDataset | Sequence[TransitionDataset], batch: int = 4096
) -> np.ndarray:
    """scorer(observations, logged actions) over a dataset, in batches."""
    tr = concat_datasets(dataset)
    out = [
        np.asarray(
            scorer(tr.observations[i : i + batch], tr.actions[i : i + batch]), dtype=np.float64
        )
        for i in range(0, len(tr), batch)
    ]
    return np.concatenate(out)


def calibrate(
    scores: np.ndarray, labels: np.ndarray, eps_safe: float, horizon: int
) -> CalibrationReport:
    """ROC-AUC, precision/recall at eps_safe and firing rate for precomputed scores."""
    labels = np.asarray(labels, dtype=bool)
    precision, recall = precision_recall(scores, labels, eps_safe)
    return CalibrationReport(
        roc_auc=roc_auc(scores, labels),
        precision=precision,
        recall=recall,
        firing_rate=firing_rate(scores, eps_safe),
        eps_safe=float(eps_safe),
        horizon=int(horizon),
        n=int(labels.size),
        n_positive=int(labels.sum()),
    )


def calibration_summary(
    scores: np.ndarray, labels: np.ndarray, eps_safe: float, horizon: int
) -> dict:
    """``calibrate(...).as_dict()``, or the error and label counts when the labels are one-class."""
    try:
        return calibrate(scores, labels, eps_safe, horizon).as_dict()
    except CalibrationError as e:
        return {"error": str(e), "n": int(labels.size), "n_positive": int(labels.sum())}


def evaluate(
    scorer: Scorer,
    dataset: TransitionDataset | Sequence[TransitionDataset],
    horizon: int,
    eps_safe: float,
) -> CalibrationReport:
    """Calibrate ``scorer`` (on logged obs/actions) against failure-within-H labels."""
    return calibrate(
        score_dataset(scorer, dataset), failure_within(dataset, horizon), eps_safe, horizon
    )


@torch.no_grad()
def logged_action_c_h(
    world_model: WorldModel,
    dataset: TransitionDataset | Sequence[TransitionDataset],
    horizon: int,
    gamma_risk: float,
    batch: int = 4096,
) -> np.ndarray:
    """Open-loop C_H along the *logged* actions a_t .. a_{t+H} (no task policy needed).

    Like Eq. 10 but with the dataset's actions in place of pi_task(S(z_i)); steps past the end
    of the episode contribute 0. Measures the world model itself, independent of any policy.
    """
    tr = concat_datasets(dataset)
    rows, mask = slice_indices(episode_stop(tr), np.arange(len(tr)), horizon)
    device = world_model.obs_mean.device
    out = []
    for i in range(0, len(tr), batch):
        r, m = rows[:, i : i + batch], torch.as_tensor(mask[:, i : i + batch], dtype=torch.float32)
        acts = torch.as_tensor(tr.actions[r], device=device)
        z = world_model.encode(torch.as_tensor(tr.observations[r[0]], device=device))
        terms = []
        for k in range(horizon + 1):
            terms.append(world_model.constraint(z, acts[k]))
            z = world_model.next(z, acts[k])
        out.append(discount_sum(torch.stack(terms).cpu() * m, gamma_risk).numpy())
    return np.concatenate(out).astype(np.float64)


EPS_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def choose_eps_safe(
    heldout_scores: np.ndarray,
    labels: np.ndarray,
    expert_scores: np.ndarray,
    max_firing: float,
    max_expert_firing: float,
    grid: Sequence[float] = EPS_GRID,
) -> dict:
    """The per-task threshold: the highest recall on held-out data within two alarm budgets.

    Recall falls as eps_safe rises, so the answer is the smallest grid value whose firing rate is
    at most ``max_firing`` on the held-out noisy roll-outs (how often recovery would take over
    from a noisy policy) and at most ``max_expert_firing`` on the scripted expert (false alarms
    that cost return). When no value meets both budgets the largest grid value is returned with
    ``budgets_met`` False. The dict also holds the whole curve, for the report.
    """
    grid = sorted(float(e) for e in grid)
    if not grid or grid[0] < 0:
        raise CalibrationError(f"eps grid must be non-empty and non-negative, got {grid}")
    labels = np.asarray(labels, dtype=bool)
    curve = []
    for eps in grid:
        precision, recall = precision_recall(heldout_scores, labels, eps)
        curve.append({"eps_safe": eps, "recall": recall, "precision": precision,
                      "firing_rate": firing_rate(heldout_scores, eps),
                      "expert_firing_rate": firing_rate(expert_scores, eps)})  # fmt: skip
    ok = [c for c in curve
          if c["firing_rate"] <= max_firing and c["expert_firing_rate"] <= max_expert_firing]  # fmt: skip
    chosen = ok[0] if ok else curve[-1]
    return {"eps_safe": chosen["eps_safe"], "budgets_met": bool(ok), "max_firing": max_firing,
            "max_expert_firing": max_expert_firing, "curve": curve}  # fmt: skip


QRISK_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
"""Q-risk thresholds ``choose_anyof_eps`` tries (Q-risk is a probability of failure)"""
OFF = float("inf")
"""a member threshold that never fires (``score > inf`` is false): the member is left out"""


def _anyof_inputs(
    c_h: tuple[np.ndarray, np.ndarray],
    qrisk: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    rule: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(labels, C_H held-out, C_H expert, Q-risk held-out, Q-risk expert) as flat arrays, checked
    to score the same rows; ``rule`` names the caller in the error."""
    labels = np.asarray(labels, dtype=bool).reshape(-1)
    (c_held, c_exp), (q_held, q_exp) = ((np.asarray(a).reshape(-1) for a in pair)
                                        for pair in (c_h, qrisk))  # fmt: skip
    if not (len(c_held) == len(q_held) == len(labels)) or len(c_exp) != len(q_exp):
        raise CalibrationError("C_H, Q-risk and labels must score the same rows")
    if len(labels) == 0 or len(c_exp) == 0:
        raise CalibrationError(f"{rule} needs held-out and expert rows")
    return labels, c_held, c_exp, q_held, q_exp


def _anyof_point(
    inputs: tuple[np.ndarray, ...], eps_safe: float, qrisk_eps_safe: float
) -> dict[str, float]:
    """Recall, precision and firing rate (held-out, expert) of the alarm C_H > ``eps_safe`` or
    Q-risk > ``qrisk_eps_safe`` (recall 0.0 without positives)."""
    labels, c_held, c_exp, q_held, q_exp = inputs
    alarm = (c_held > eps_safe) | (q_held > qrisk_eps_safe)
    tp = int((alarm & labels).sum())
    return {"recall": tp / max(int(labels.sum()), 1),
            "precision": tp / int(alarm.sum()) if alarm.any() else 0.0,
            "firing_rate": float(alarm.mean()),
            "expert_firing_rate": float(((c_exp > eps_safe) | (q_exp > qrisk_eps_safe)).mean())}  # fmt: skip


def _pair_curve(
    inputs: tuple[np.ndarray, ...], grid: Sequence[float], qrisk_grid: Sequence[float]
) -> list[dict]:
    """``_anyof_point`` of every (C_H, Q-risk) pair of the two grids, each with ``OFF`` (that
    member left out; ``None`` in the dict), less the pair with both out."""
    curve = []
    for ec in (*sorted({float(e) for e in grid}), OFF):
        for eq in (*sorted({float(e) for e in qrisk_grid}), OFF):
            if ec == OFF and eq == OFF:
                continue
            curve.append({"eps_safe": None if ec == OFF else ec,
                          "qrisk_eps_safe": None if eq == OFF else eq,
                          **_anyof_point(inputs, ec, eq)})  # fmt: skip
    return curve


def choose_anyof_eps(
    c_h: tuple[np.ndarray, np.ndarray],
    qrisk: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    max_firing: float,
    max_expert_firing: float,
    min_precision: float,
    grid: Sequence[float] = EPS_GRID,
    qrisk_grid: Sequence[float] = QRISK_GRID,
    firing_vs_c_h: float | None = None,
    c_h_eps_safe: float | None = None,
    budget_qrisk_eps_safe: float | None = None,
) -> dict:
    """Both thresholds of the any-of gate (recovery where C_H > eps_safe or Q-risk >
    qrisk_eps_safe), per task, on held-out data.

    ``c_h`` and ``qrisk`` are (held-out scores, expert scores). Every pair of the two grids, each
    with ``OFF`` (that member left out), is scored like ``choose_eps_safe``'s thresholds: recall
    and precision of the union alarm for ``labels``, its firing rate on the held-out roll-outs
    and on the expert. Among pairs within both alarm budgets, those with precision >=
    ``min_precision`` are preferred; the most recall wins (ties: the most precision). When no
    pair in budget is that precise, the most recall in budget wins (``precision_met`` False), as
    ``choose_eps_safe`` does; when none is in budget, the least-firing pair (``budgets_met``
    False). Thresholds are ``None`` in the dict where a member is left out.

    ``firing_vs_c_h`` with ``c_h_eps_safe`` (FARM's own calibrated threshold) caps the held-out
    budget further at that multiple of C_H's firing rate alone at ``c_h_eps_safe``: at 1.0 the
    pair spends no more interventions on held-out roll-outs than FARM's gate does, and the rule
    only chooses how to spend them. With ``budget_qrisk_eps_safe`` the reference is farm-qrisk's
    gate instead: C_H > ``c_h_eps_safe`` or Q-risk > ``budget_qrisk_eps_safe``.
    """
    inputs = _anyof_inputs(c_h, qrisk, labels, "choose_anyof_eps")
    _, c_held, _, q_held, _ = inputs
    if any(e < 0 for e in (*grid, *qrisk_grid)):
        raise CalibrationError("threshold grids must be non-negative")
    if firing_vs_c_h is not None:
        if c_h_eps_safe is None:
            raise CalibrationError("firing_vs_c_h needs C_H's own threshold (c_h_eps_safe)")
        reference = c_held > c_h_eps_safe
        if budget_qrisk_eps_safe is not None:  # farm-qrisk's own pair
            reference = reference | (q_held > budget_qrisk_eps_safe)
        max_firing = min(max_firing, firing_vs_c_h * float(reference.mean()))
    elif budget_qrisk_eps_safe is not None:
        raise CalibrationError("budget_qrisk_eps_safe sets firing_vs_c_h's reference; set both")
    curve = _pair_curve(inputs, grid, qrisk_grid)
    ok = [c for c in curve
          if c["firing_rate"] <= max_firing and c["expert_firing_rate"] <= max_expert_firing]  # fmt: skip
    precise = [c for c in ok if c["precision"] >= min_precision]
    if precise or ok:
        chosen = max(precise or ok, key=lambda c: (c["recall"], c["precision"]))
    else:
        chosen = min(curve, key=lambda c: c["firing_rate"] + c["expert_firing_rate"])
    return {"eps_safe": chosen["eps_safe"], "qrisk_eps_safe": chosen["qrisk_eps_safe"],
            "recall": chosen["recall"], "precision": chosen["precision"],
            "firing_rate": chosen["firing_rate"],
            "expert_firing_rate": chosen["expert_firing_rate"], "budgets_met": bool(ok),
            "precision_met": bool(precise), "max_firing": max_firing,
            "firing_vs_c_h": firing_vs_c_h, "c_h_eps_safe": c_h_eps_safe,
            "budget_qrisk_eps_safe": budget_qrisk_eps_safe,
            "max_expert_firing": max_expert_firing, "min_precision": min_precision,
            "curve": curve}  # fmt: skip


def anyof_rule_uses_c_h_eps(rule: Mapping[str, Any]) -> bool:
    """Whether ``gate.anyof_rule`` reads FARM's own C_H threshold (the recall rule keeps it
    unless it searches ``c_h_grid`` too; ``firing_vs_c_h`` budgets alarms against it)."""
    if "min_recall" in rule:
        return "c_h_grid" not in rule
    return rule.get("firing_vs_c_h") is not None


def choose_by_anyof_rule(
    c_h: tuple[np.ndarray, np.ndarray],
    qrisk: tuple[np.ndarray, np.ndarray],
    labels_within: Callable[[int], np.ndarray],
    rule: Mapping[str, Any],
    horizon: int,
    c_h_eps_safe: float | None = None,
    qrisk_ceiling: float = 0.3,
) -> dict:
    """farm-qrisk-cal's pair by ``gate.anyof_rule``: ``choose_qrisk_for_recall`` when the rule
    has ``min_recall`` (labels "failure within ``recall_within``", Q-risk's candidates from
    ``qrisk_ceiling`` down), else ``choose_anyof_eps`` (labels "failure within ``horizon``").
    ``labels_within(L)``: the held-out rows' labels for a failure within L steps."""
    rule = dict(rule)
    within = rule.pop("recall_within", horizon)
    if anyof_rule_uses_c_h_eps(rule):
        rule["c_h_eps_safe"] = c_h_eps_safe
    if "c_h_grid" in rule:
        return choose_anyof_for_recall(c_h, qrisk, labels_within(within), **rule)
    if "min_recall" in rule:
        return choose_qrisk_for_recall(c_h, qrisk, labels_within(within), ceiling=qrisk_ceiling,
                                       **rule)  # fmt: skip
    return choose_anyof_eps(c_h, qrisk, labels_within(horizon), **rule)


def choose_qrisk_for_recall(
    c_h: tuple[np.ndarray, np.ndarray],
    qrisk: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    min_recall: float,
    max_expert_firing: float,
    c_h_eps_safe: float | None = None,
    ceiling: float = 0.3,
    qrisk_grid: Sequence[float] = QRISK_GRID,
) -> dict:
    """farm-qrisk's Q-risk threshold lowered per task until the any-of gate (C_H >
    ``c_h_eps_safe`` or Q-risk > threshold) catches ``min_recall`` of the positive held-out rows.

    ``c_h`` and ``qrisk`` are (held-out scores, expert scores); C_H keeps FARM's own threshold.
    Candidates are ``ceiling`` (the shared default) and the grid values below it, so no task
    alarms less than it would at the default. False alarms on the scripted expert may rise to
    ``max_expert_firing`` (or stay at the ceiling's rate, if that is higher). The largest
    candidate in that budget whose recall reaches ``min_recall`` wins (the fewest alarms that do
    the job); when none reaches it, the in-budget candidate with the most recall
    (``recall_met`` False; without held-out failures: the ceiling). The dict is in
    ``read_anyof_eps``' format, with the curve.
    """
    if c_h_eps_safe is None:
        raise CalibrationError("choose_qrisk_for_recall needs C_H's own threshold (c_h_eps_safe)")
    inputs = _anyof_inputs(c_h, qrisk, labels, "choose_qrisk_for_recall")
    candidates = sorted({float(ceiling), *(float(e) for e in qrisk_grid if e < ceiling)},
                        reverse=True)  # fmt: skip
    if candidates[-1] < 0:
        raise CalibrationError("threshold grids must be non-negative")
    curve = [{"qrisk_eps_safe": eq, **_anyof_point(inputs, c_h_eps_safe, eq)} for eq in candidates]
    budget = max(max_expert_firing, curve[0]["expert_firing_rate"])
    ok = [c for c in curve if c["expert_firing_rate"] <= budget]  # the ceiling always is
    met = [c for c in ok if c["recall"] >= min_recall]
    chosen = met[0] if met else max(ok, key=lambda c: c["recall"])
    return {"eps_safe": float(c_h_eps_safe), "qrisk_eps_safe": chosen["qrisk_eps_safe"],
            "recall": chosen["recall"], "precision": chosen["precision"],
            "firing_rate": chosen["firing_rate"],
            "expert_firing_rate": chosen["expert_firing_rate"], "recall_met": bool(met),
            "min_recall": min_recall, "max_expert_firing": max_expert_firing,
            "expert_budget": budget, "ceiling": float(ceiling), "curve": curve}  # fmt: skip


def choose_anyof_for_recall(
    c_h: tuple[np.ndarray, np.ndarray],
    qrisk: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    min_recall: float,
    max_expert_firing: float,
    c_h_grid: Sequence[float],
    qrisk_grid: Sequence[float],
) -> dict:
    """Both any-of thresholds searched for the fewest alarms that still catch ``min_recall``.

    ``choose_qrisk_for_recall`` only lowers Q-risk's threshold from a shared ceiling, so a task
    whose critics score high everywhere (Bounded Soccer's run-out targets: Q-risk ≈ 1 on a
    third of held-out steps) keeps a gate that fires on most steps. Here every pair of the two
    grids, each with ``OFF`` (that member left out), is scored on the held-out rows; among the
    pairs within the expert's false-alarm budget whose recall reaches ``min_recall``, the one
    that fires least on held-out roll-outs wins (ties: the more precise, then the higher
    thresholds). When no pair in budget reaches it: the most recall in budget (``recall_met``
    False); when none is in budget: the pair with the fewest expert alarms. The dict is in
    ``read_anyof_eps``' format (``None``: member left out), with the curve.
    """
    inputs = _anyof_inputs(c_h, qrisk, labels, "choose_anyof_for_recall")
    if not len(c_h_grid) or not len(qrisk_grid):
        raise CalibrationError("choose_anyof_for_recall needs non-empty c_h_grid and qrisk_grid")
    if any(e < 0 for e in (*c_h_grid, *qrisk_grid)):
        raise CalibrationError("threshold grids must be non-negative")
    curve = _pair_curve(inputs, c_h_grid, qrisk_grid)
    ok = [c for c in curve if c["expert_firing_rate"] <= max_expert_firing]
    met = [c for c in ok if c["recall"] >= min_recall]
    high = lambda c: tuple(OFF if c[k] is None else c[k] for k in ("eps_safe", "qrisk_eps_safe"))  # noqa: E731
    if met:
        chosen = min(met, key=lambda c: (c["firing_rate"], -c["precision"],
                                         tuple(-x for x in high(c))))  # fmt: skip
    elif ok:
        chosen = max(ok, key=lambda c: (c["recall"], -c["firing_rate"]))
    else:
        chosen = min(curve, key=lambda c: (c["expert_firing_rate"], c["firing_rate"]))
    return {"eps_safe": chosen["eps_safe"], "qrisk_eps_safe": chosen["qrisk_eps_safe"],
            "recall": chosen["recall"], "precision": chosen["precision"],
            "firing_rate": chosen["firing_rate"],
            "expert_firing_rate": chosen["expert_firing_rate"], "recall_met": bool(met),
            "budgets_met": bool(ok), "min_recall": min_recall,
            "max_expert_firing": max_expert_firing, "c_h_grid": sorted(map(float, c_h_grid)),
            "qrisk_grid": sorted(map(float, qrisk_grid)), "curve": curve}  # fmt: skip


def read_anyof_eps(path: str) -> tuple[float, float]:
    """(eps_safe, qrisk_eps_safe) that ``choose_anyof_eps`` wrote; ``OFF`` for a member left
    out."""
    import json
    from pathlib import Path

    try:
        d = json.loads(Path(path).read_text())
        pair = tuple(OFF if d[k] is None else float(d[k]) for k in ("eps_safe", "qrisk_eps_safe"))
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"{path}: no readable any-of thresholds ({e})") from e
    if any(np.isnan(e) or e <= 0 for e in pair) or pair == (OFF, OFF):
        raise CalibrationError(f"{path}: thresholds must be > 0 and not both off, got {pair}")
    return pair


def read_eps_safe(path: str) -> float:
    """The per-task eps_safe that ``choose_eps_safe`` wrote (``calibration/eps_safe.json``)."""
    import json
    from pathlib import Path

    try:
        eps = float(json.loads(Path(path).read_text())["eps_safe"])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"{path}: no readable eps_safe ({e})") from e
    if not np.isfinite(eps) or eps < 0:
        raise CalibrationError(f"{path}: eps_safe must be finite and >= 0, got {eps}")
    return eps
