"""Does an ensemble of world models, whose disagreement counts as risk, score IR failures better?

For each task of a finished experiment pipeline: the experiment's world model plus ``--members``
- 1 more trained on the same data and config with other seeds (saved under
runs/ensemble_probe/<experiment>/s<seed>/<task>/, reused when present). Each member's gate C_H
(the offline task policy, as calibration scores it) on the held-out noisy roll-outs, then the
scores of: member 0 alone (FARM), the members' mean, mean + kappa * std (disagreement as risk)
and the max. For each: ROC-AUC for "IR failure within H", and eps_safe chosen by the config's
gate.eps_rule with its precision, recall and firing rates. Writes
results/ensemble_probe/<experiment>_s<seed>.csv.
    python scripts/ensemble_probe.py --experiment paper_tables --seed 1 --members 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from failurebench_sim.atomic import write_csv
from farm_safety_critic import calibration as cal
from farm_safety_critic.gate import build_gate
from farm_trainer.experiments import task_contexts
from farm_trainer.experiments.layout import WORLD_MODEL, task_name
from farm_trainer.safety.train_world_model import train_config_of, train_world_model

KAPPAS = (0.5, 1.0, 2.0)


def members(ctx, n: int, out: Path) -> list[Path]:
    """The experiment's world model and n - 1 more (other seeds, same data and config)."""
    first = ctx.path("world_model", WORLD_MODEL)
    paths = [first]
    tcfg, wm = train_config_of(first), ctx.cfg.world_model
    for k in range(1, n):
        path = out / f"member{k}.safetensors"
        if not path.exists():
            print(f"[ensemble_probe] {task_name(ctx.task)}: training member {k}", flush=True)
            train_world_model(ctx.safety_data(), wm.steps, wm.batch, wm.seed + 1000 * k, path,
                              tcfg, progress=False)  # fmt: skip
        paths.append(path)
    return paths


def report(name: str, scores, labels, expert_scores, rule) -> dict:
    chosen = cal.choose_eps_safe(scores, labels, expert_scores, **rule)
    at = next(c for c in chosen["curve"] if c["eps_safe"] == chosen["eps_safe"])
    return {
        "score": name, "roc_auc": round(cal.roc_auc(scores, labels), 4),
        "eps_safe": chosen["eps_safe"], "budgets_met": chosen["budgets_met"],
        "precision": round(at["precision"], 3), "recall": round(at["recall"], 3),
        "firing_rate": round(at["firing_rate"], 4),
        "expert_firing_rate": round(at["expert_firing_rate"], 4),
        "best_precision_on_grid": round(max(c["precision"] for c in chosen["curve"]), 3),
    }  # fmt: skip


def probe(ctx, n: int, out: Path) -> list[dict]:
    g = ctx.cfg.gate
    heldout, expert = ctx.dataset("heldout"), ctx.dataset("expert")
    actor = ctx.task_actor()
    hp = {"horizon": g.horizon, "gamma_risk": g.gamma_risk, "eps_safe": 0.01}
    held, exp = [], []
    for path in members(ctx, n, out):
        gate = build_gate(path, actor, None, **hp)
        held.append(cal.score_dataset(gate.scores, heldout))
        exp.append(cal.score_dataset(gate.scores, expert))
    held, exp = np.stack(held), np.stack(exp)
    labels = cal.failure_within(heldout, g.horizon)
    rule = g.eps_rule or {"max_firing": 0.1, "max_expert_firing": 0.03}
    variants = {"member 0 (FARM)": (held[0], exp[0]), "mean": (held.mean(0), exp.mean(0)),
                "max": (held.max(0), exp.max(0))}  # fmt: skip
    for k in KAPPAS:
        variants[f"mean + {k} std"] = (held.mean(0) + k * held.std(0), exp.mean(0) + k * exp.std(0))
    return [{"task": task_name(ctx.task), "members": n, "positives": int(labels.sum()),
             **report(name, s, labels, e, rule)} for name, (s, e) in variants.items()]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="paper_tables")
    ap.add_argument("--seed", type=int, default=1, help="pipeline seed (pipeline_seeds configs)")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    rows = []
    for ctx in task_contexts(args.experiment, args.seed, args.tasks, args.runs_dir):
        out = Path(args.runs_dir, "ensemble_probe", ctx.cfg.name, task_name(ctx.task))
        for row in probe(ctx, args.members, out):
            rows.append(row)
            print(row, flush=True)
    path = Path("results/ensemble_probe") / f"{args.experiment}_s{args.seed}.csv"
    write_csv(path, rows)
    print(f"[ensemble_probe] wrote {path}")


if __name__ == "__main__":
    main()
