"""results/offline_handover/: does the policy handed to online fine-tuning ever lose to BC?

For each pipeline seed and task of an experiment whose offline stage ran with
``offline.handover: guarded`` (config/experiments/offline_handover.yaml), evaluates every BC
member, the offline-PPO output (``improved.safetensors``: what Uni-O4's rule hands over) and the
handed-over ``actor.safetensors`` on the experiment's evaluation reset seeds (deterministic,
normalised return). "Within noise" compares the handed-over policy with the best BC member on
the same reset seeds: handed >= best - 2 standard errors of the paired per-episode difference.
Evaluations are cached per policy next to the checkpoints (eval_members.json), so a re-run only
evaluates what is new.
    python scripts/offline_handover.py [--experiment offline_handover] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from failurebench_sim.atomic import write_csv, write_json, write_text
from failurebench_sim.make import resolve_env_id
from failurebench_sim.normalize import normalized_return_or_none
from farm_policies import load_policy
from farm_trainer.experiments.config import load_config
from farm_trainer.online import evaluate_policy


def evaluate_members(offline: Path, env_id: str, episodes: int, seed0: int) -> dict[str, list]:
    """Per-episode normalised returns of bc_*, improved and actor, cached in eval_members.json."""
    cache_path = offline / "eval_members.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    key = f"{episodes}@{seed0}"
    done = cache.setdefault(key, {})
    names = sorted(p.stem for p in offline.glob("bc_*.safetensors")) + ["improved", "actor"]
    for name in names:
        if name in done:
            continue
        res = evaluate_policy(load_policy(offline / f"{name}.safetensors"), env_id, episodes, seed0)
        norm = normalized_return_or_none(env_id, np.asarray(res["returns"]))
        done[name] = [float(x) for x in (norm if norm is not None else res["returns"])]
        write_json(cache_path, cache)
    return done


def row(seed: int, task: str, offline: Path, evals: dict[str, list]) -> dict:
    report = json.loads((offline / "offline_report.json").read_text())
    h = report["stages"]["handover"]
    bc = {k: np.asarray(v) for k, v in evals.items() if k.startswith("bc_")}
    best = max(bc, key=lambda k: bc[k].mean())
    handed, improved = np.asarray(evals["actor"]), np.asarray(evals["improved"])
    diff = handed - bc[best]
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
    handed_name = "improved" if h["policy"] == "improved" else f"bc_{h['bc_member']}"
    return {
        "seed": seed, "task": task, "episodes": len(handed),
        **{f"{k}_normalized": round(float(v.mean()), 2) for k, v in sorted(bc.items())},
        "best_bc": best, "improved_normalized": round(float(improved.mean()), 2),
        "handed_over": handed_name, "handed_normalized": round(float(handed.mean()), 2),
        "handed_minus_best_bc": round(float(diff.mean()), 2), "paired_se": round(se, 2),
        "within_noise": bool(diff.mean() >= -2 * se),
        "improved_minus_best_bc": round(float((improved - bc[best]).mean()), 2),
        **rule_columns(h, evals, bc[best]),
        "model_margin_lower_bound": round(h["margin_lower_bound"], 5),
        "model_margin_mean": round(h["margin_mean"], 5),
        "handover_seconds": round(h["seconds"] + report["stages"].get("reward", {}).get(
            "seconds", 0.0), 1),
        "offline_seconds": round(report.get("wall_time_total_s", math.nan), 1),
    }  # fmt: skip


def rule_columns(h: dict, evals: dict[str, list], best_bc: np.ndarray) -> dict:
    """What each tolerance rule (offline.handover_tolerance) hands over on this run: the same
    lower bound against the replay error or the replay bias (both in the report), so one run
    answers for both rules."""
    out = {}
    for rule in ("replay", "bias"):
        tol = h.get(f"replay_{'error' if rule == 'replay' else 'bias'}", h["tolerance"])
        if tol is None or (rule == "bias" and "replay_bias" not in h):
            continue
        name = "improved" if h["margin_lower_bound"] > tol else f"bc_{h['bc_member']}"
        got = np.asarray(evals[name])
        diff = got - best_bc
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
        out.update({
            f"{rule}_tolerance": round(float(tol), 5), f"{rule}_hands": name,
            f"{rule}_normalized": round(float(got.mean()), 2),
            f"{rule}_minus_best_bc": round(float(diff.mean()), 2),
            f"{rule}_within_noise": bool(diff.mean() >= -2 * se),
        })  # fmt: skip
    return out


def kept_rows(path: Path, new: list[dict]) -> list[dict]:
    """Rows of an earlier handover.csv for (seed, task) pairs not evaluated now (their runs may
    be gone: nothing recorded is lost)."""
    if not path.exists():
        return []
    import csv

    done = {(int(r["seed"]), r["task"]) for r in new}
    with path.open() as f:
        old = [r for r in csv.DictReader(f) if (int(r["seed"]), r["task"]) not in done]
    return [{**r, "within_noise": r["within_noise"] == "True"} for r in old]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="offline_handover")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    cfg = load_config(Path("config/experiments") / f"{args.experiment}.yaml")
    e = cfg.evaluation
    rows = []
    for seed in args.seeds:
        for task in cfg.tasks:
            offline = Path(args.runs_dir, args.experiment, f"s{seed}", task, "offline_task")
            if not (offline / "actor.safetensors").exists():
                print(f"[offline_handover] s{seed} {task}: no hand-over yet, skipped")
                continue
            evals = evaluate_members(offline, resolve_env_id(task), e.episodes, e.seed0)
            rows.append(row(seed, task, offline, evals))
            print(f"[offline_handover] {rows[-1]}")
    out = Path("results", args.experiment)
    rows = kept_rows(out / "handover.csv", rows) + rows
    rows.sort(key=lambda r: (int(r["seed"]), str(r["task"])))
    fields = dict.fromkeys(k for r in rows for k in r)  # older rows lack the newer columns
    write_csv(out / "handover.csv", [{k: r.get(k, "") for k in fields} for r in rows])
    lines = ["| seed | task | best BC | improved (Uni-O4 rule) | handed over | handed - best BC |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        best = r[f"{r['best_bc']}_normalized"]
        lines.append(
            f"| {r['seed']} | {r['task']} | {best} ({r['best_bc']}) | {r['improved_normalized']} |"
            f" {r['handed_normalized']} ({r['handed_over']}) | {r['handed_minus_best_bc']} ±"
            f" {r['paired_se']}{'' if r['within_noise'] else ' (worse)'} |"
        )
    write_text(out / "handover.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
