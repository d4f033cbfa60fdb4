"""How the any-of gate (farm-qrisk) ranks held-out IR failures against C_H alone and Q-risk alone.

For each task of a finished pipeline: the offline task policy's C_H gate, Recovery RL's Q-risk
gate and their any-of gate (``gate.AnyOfGate``, in its first member's units) score the held-out
noisy roll-outs' logged actions. For labels "IR failure within L steps" (L = the gate's H and longer
look-aheads): ROC-AUC, and precision / recall / firing rate at the thresholds used online (the
calibrated C_H eps_safe; Q-risk's ``gate.qrisk_eps_safe``). A detector that fires earlier shows as
recall that holds up at longer L. Writes results/anyof_probe/<experiment>_s<seed>.csv.

With ``--calibrated`` (an experiment whose calibration chose farm-qrisk-cal's two thresholds,
``gate.anyof_rule``) it adds that gate at its chosen pair, and, for it and for C_H under
``gate.eps_rule``, precision / recall out of sample: the thresholds chosen on the held-out
episodes of one parity and scored on the other, both ways, counts pooled ("2-fold").
``--eps-scales K ...`` adds that gate with both thresholds times K (where the steered gate,
farm-qrisk-cal-hold-steer, ended a run: its final eps_safe over the calibrated one).
    python scripts/anyof_probe.py --experiment paper_tables --seed 1
    python scripts/anyof_probe.py --experiment farm_qrisk_cal --seed 0 --calibrated
    python scripts/anyof_probe.py --experiment farm_obstructed_new --seed 10 --calibrated \
        --tasks ObstructedPush-v0 --eps-scales 1.67 2.48
"""

from __future__ import annotations

import argparse
from pathlib import Path

from failurebench_sim.atomic import write_csv
from farm_safety_critic import calibration as cal
from farm_trainer.experiments import task_contexts
from farm_trainer.experiments.layout import task_name

CAL = "any-of calibrated (farm-qrisk-cal)"


def probe(
    ctx, lookaheads: list[int], calibrated: bool = False, eps_scales: tuple[float, ...] = ()
) -> list[dict]:
    heldout = ctx.dataset("heldout")
    union = ctx.gate("farm-qrisk")
    c_h, qrisk = union.members
    scorers = {"C_H (farm)": (c_h.scores, c_h.eps_safe), "Q-risk (recrl)": (qrisk.scores,
               qrisk.eps_safe), "any-of (farm-qrisk)": (union.scores, union.eps_safe)}  # fmt: skip
    if calibrated:
        chosen = ctx.gate("farm-qrisk-cal")
        scorers[CAL] = (chosen.scores, chosen.eps_safe)
        for k in eps_scales:
            scorers[f"{CAL} x{k:g}"] = (chosen.scores, chosen.eps_safe * k)
    scores = {name: cal.score_dataset(f, heldout) for name, (f, _) in scorers.items()}
    rows = []
    for horizon in lookaheads:
        labels = cal.failure_within(heldout, horizon)
        for name, (_, eps) in scorers.items():
            s = scores[name]
            precision, recall = cal.precision_recall(s, labels, eps)
            threshold = eps
            if name.startswith(CAL):
                k = eps / scorers[CAL][1]
                threshold = _pair({n: v * k for n, v in ctx.thresholds("farm-qrisk-cal").items()})
            rows.append({"task": task_name(ctx.task), "label_within": horizon, "score": name,
                         "positives": int(labels.sum()), "roc_auc": round(cal.roc_auc(s, labels), 4),
                         "threshold": threshold, "precision": round(precision, 3),
                         "recall": round(recall, 3),
                         "firing_rate": round(cal.firing_rate(s, eps), 4)})  # fmt: skip
    if calibrated:
        expert = ctx.dataset("expert")
        c = (scores["C_H (farm)"], cal.score_dataset(c_h.scores, expert))
        q = (scores["Q-risk (recrl)"], cal.score_dataset(qrisk.scores, expert))
        rows += two_fold(ctx, heldout, c, q)
    return rows


def _pair(thresholds: dict) -> str:
    return "/".join("off" if v == cal.OFF else f"{v:g}" for v in thresholds.values())


def two_fold(ctx, heldout, c: tuple, q: tuple) -> list[dict]:
    """Out-of-sample precision / recall for "failure within H": thresholds chosen on the
    held-out episodes of one parity (FARM's eps_rule for C_H; anyof_rule for the pair), scored
    on the other; counts pooled over both ways."""
    g = ctx.cfg.gate
    labels = cal.failure_within(heldout, g.horizon)
    odd = (heldout.episode_ids % 2).astype(bool)
    counts = {"C_H (farm) 2-fold": [0, 0, 0, 0], f"{CAL} 2-fold": [0, 0, 0, 0]}
    chosen = {k: [] for k in counts}
    for fit in (odd, ~odd):
        test = ~fit
        eps = cal.choose_eps_safe(c[0][fit], labels[fit], c[1], **g.eps_rule)["eps_safe"]
        pair = cal.choose_by_anyof_rule(  # C_H at FARM's threshold of this fold
            (c[0][fit], c[1]), (q[0][fit], q[1]),
            lambda n, fit=fit: cal.failure_within(heldout, n)[fit],
            g.anyof_rule, g.horizon, eps, g.qrisk_eps_safe)  # fmt: skip
        ec, eq = (cal.OFF if pair[k] is None else pair[k] for k in ("eps_safe", "qrisk_eps_safe"))
        alarms = {"C_H (farm) 2-fold": c[0][test] > eps,
                  f"{CAL} 2-fold": (c[0][test] > ec) | (q[0][test] > eq)}  # fmt: skip
        chosen["C_H (farm) 2-fold"].append(f"{eps:g}")
        chosen[f"{CAL} 2-fold"].append(_pair({"c": ec, "q": eq}))
        for k, alarm in alarms.items():
            y = labels[test]
            counts[k] = [a + b for a, b in zip(counts[k], (int((alarm & y).sum()),
                         int(alarm.sum()), int(y.sum()), len(y)), strict=True)]  # fmt: skip
    rows = []
    for k, (tp, fired, pos, n) in counts.items():
        rows.append({"task": task_name(ctx.task), "label_within": g.horizon, "score": k,
                     "positives": pos, "roc_auc": "", "threshold": " | ".join(chosen[k]),
                     "precision": round(tp / fired, 3) if fired else 0.0,
                     "recall": round(tp / pos, 3) if pos else 0.0,
                     "firing_rate": round(fired / n, 4)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="paper_tables")
    ap.add_argument("--seed", type=int, default=1, help="pipeline seed (pipeline_seeds configs)")
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--lookaheads", type=int, nargs="+", default=None,
                    help="label horizons L (default: the gate's H, 10, 25)")  # fmt: skip
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--calibrated", action="store_true",
                    help="add farm-qrisk-cal at its chosen thresholds and the 2-fold rows")  # fmt: skip
    ap.add_argument("--eps-scales", type=float, nargs="+", default=(),
                    help="with --calibrated: also both thresholds times each of these")  # fmt: skip
    args = ap.parse_args()
    if args.eps_scales and not args.calibrated:
        ap.error("--eps-scales scales the calibrated pair: give --calibrated")
    rows = []
    for ctx in task_contexts(args.experiment, args.seed, args.tasks, args.runs_dir):
        horizons = args.lookaheads or [ctx.cfg.gate.horizon, 10, 25]
        for row in probe(ctx, horizons, args.calibrated, tuple(args.eps_scales)):
            rows.append(row)
            print(row, flush=True)
    path = Path("results/anyof_probe") / f"{args.experiment}_s{args.seed}.csv"
    write_csv(path, rows)
    print(f"[anyof_probe] wrote {path}")


if __name__ == "__main__":
    main()
