"""Which gate horizon H sees IR failures best? C_H on held-out roll-outs for a grid of H.

For each task of a finished experiment pipeline: the gate's C_H (world model, offline task
policy, gamma_risk of the config) for every H in --horizons, against "IR failure within H" on
the held-out noisy roll-outs; ROC-AUC, and eps_safe chosen by the config's gate.eps_rule with
its precision, recall and firing rates. No training: the world model and policy are the
experiment's. Writes results/horizon_probe/<experiment>.csv.
    python scripts/horizon_probe.py --experiment paper_tables --seed 0 --horizons 3 5 8 12 16
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from failurebench_sim.atomic import write_csv
from farm_safety_critic import calibration as cal
from farm_trainer.experiments import task_contexts
from farm_trainer.experiments.context import TaskContext


def probe(ctx: TaskContext, horizon: int) -> dict:
    cfg = dataclasses.replace(ctx.cfg, gate=dataclasses.replace(ctx.cfg.gate, horizon=horizon))
    ctx = dataclasses.replace(ctx, cfg=cfg)
    heldout, expert = ctx.dataset("heldout"), ctx.dataset("expert")
    gate = ctx.gate("farm", eps_safe=0.01)  # scores do not depend on the threshold
    scores = cal.score_dataset(gate.scores, heldout)
    labels = cal.failure_within(heldout, horizon)
    rule = cfg.gate.eps_rule or {"max_firing": 0.1, "max_expert_firing": 0.03}
    chosen = cal.choose_eps_safe(scores, labels, cal.score_dataset(gate.scores, expert), **rule)
    at = next(c for c in chosen["curve"] if c["eps_safe"] == chosen["eps_safe"])
    best_precision = max(c["precision"] for c in chosen["curve"])
    return {
        "horizon": horizon, "positives": int(labels.sum()), "roc_auc": round(cal.roc_auc(scores, labels), 4),
        "eps_safe": chosen["eps_safe"], "budgets_met": chosen["budgets_met"],
        "precision": round(at["precision"], 3), "recall": round(at["recall"], 3),
        "firing_rate": round(at["firing_rate"], 4),
        "expert_firing_rate": round(at["expert_firing_rate"], 4),
        "best_precision_on_grid": round(best_precision, 3),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="paper_tables")
    ap.add_argument("--seed", type=int, default=0, help="pipeline seed (pipeline_seeds configs)")
    ap.add_argument("--horizons", type=int, nargs="+", default=[3, 5, 8, 12, 16])
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    rows = []
    for ctx in task_contexts(args.experiment, args.seed, args.tasks, args.runs_dir):
        for h in args.horizons:
            rows.append({"task": ctx.task, **probe(ctx, h)})
            print(rows[-1], flush=True)
    write_csv(Path("results/horizon_probe") / f"{args.experiment}_s{args.seed}.csv", rows)


if __name__ == "__main__":
    main()
