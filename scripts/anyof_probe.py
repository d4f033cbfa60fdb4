"""How the any-of gate (farm-qrisk) ranks held-out IR failures against C_H alone and Q-risk alone.

For each task of a finished pipeline: the offline task policy's C_H gate, Recovery RL's Q-risk
gate and their any-of gate (``gate.AnyOfGate``, in C_H's units) score the held-out noisy
roll-outs' logged actions. For labels "IR failure within L steps" (L = the gate's H and longer
look-aheads): ROC-AUC, and precision / recall / firing rate at the thresholds used online (the
calibrated C_H eps_safe; Q-risk's ``gate.qrisk_eps_safe``). A detector that fires earlier shows as
recall that holds up at longer L. Writes results/anyof_probe/<experiment>_s<seed>.csv.
    python scripts/anyof_probe.py --experiment paper_tables --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from failurebench_sim.atomic import write_csv
from farm_safety_critic import calibration as cal
from farm_trainer.experiments import task_contexts
from farm_trainer.experiments.layout import task_name


def probe(ctx, lookaheads: list[int]) -> list[dict]:
    heldout = ctx.dataset("heldout")
    union = ctx.gate("farm-qrisk")
    c_h, qrisk = union.members
    scorers = {"C_H (farm)": (c_h.scores, c_h.eps_safe), "Q-risk (recrl)": (qrisk.scores,
               qrisk.eps_safe), "any-of (farm-qrisk)": (union.scores, union.eps_safe)}  # fmt: skip
    scores = {name: cal.score_dataset(f, heldout) for name, (f, _) in scorers.items()}
    rows = []
    for horizon in lookaheads:
        labels = cal.failure_within(heldout, horizon)
        for name, (_, eps) in scorers.items():
            s = scores[name]
            precision, recall = cal.precision_recall(s, labels, eps)
            rows.append({"task": task_name(ctx.task), "label_within": horizon, "score": name,
                         "positives": int(labels.sum()), "roc_auc": round(cal.roc_auc(s, labels), 4),
                         "threshold": eps, "precision": round(precision, 3),
                         "recall": round(recall, 3),
                         "firing_rate": round(cal.firing_rate(s, eps), 4)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="paper_tables")
    ap.add_argument("--seed", type=int, default=1, help="pipeline seed (pipeline_seeds configs)")
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--lookaheads", type=int, nargs="+", default=None,
                    help="label horizons L (default: the gate's H, 10, 25)")  # fmt: skip
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    rows = []
    for ctx in task_contexts(args.experiment, args.seed, args.tasks, args.runs_dir):
        for row in probe(ctx, args.lookaheads or [ctx.cfg.gate.horizon, 10, 25]):
            rows.append(row)
            print(row, flush=True)
    path = Path("results/anyof_probe") / f"{args.experiment}_s{args.seed}.csv"
    write_csv(path, rows)
    print(f"[anyof_probe] wrote {path}")


if __name__ == "__main__":
    main()
