"""Which committed comparisons ran every method from the same offline checkpoints.

A pipeline seed compares methods only if each online run started from the same production of
the offline task policy. Before records named their inputs' productions (``records.py``), the
ledger could skip a finished Uni-O4 run while the offline stage it was made from was rebuilt
(another CPU, other weights) for a method that still had to run, and the two ended up side by
side in one table. This audit reads only the ledger (``results/ledger``), so it runs on a fresh
clone: for every online run of an experiment's config it finds the run's record (its own
ledger, else the ledgers its ``inputs`` name), the offline policy it started from (``init`` in
its ``config.json``) and whether that directory's offline stage was rebuilt after the run
(``records.finished_after``). A run and Uni-O4's are

- ``same``: the same directory's production, both made after its last rebuild;
- ``different``: another directory (a production of its own), or one of the two made before a
  rebuild and the other after;
- ``unknown``: both made before the last rebuild of the same directory (the ledger keeps only
  the last record, so which earlier production each used cannot be told).

Writes results/provenance/audit.csv (one row per run) and summary.csv (per experiment and
method: task-seeds same / different / unknown), and prints the summary.
    python scripts/provenance_audit.py [--experiments farm_qrisk_g09 paper_tables]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from failurebench_sim.atomic import write_csv
from farm_trainer.experiments.config import load_config, seed_configs
from farm_trainer.experiments.layout import TASK_ACTOR, TaskLayout, run_dir, run_name, task_name
from farm_trainer.experiments.ledger import ledger_sources
from farm_trainer.experiments.records import finished_after, resolve

LEDGER = Path("results/ledger")
CONFIGS = Path("config/experiments")
BASELINE = "unio4"


def init_layout(init: str, task: str) -> TaskLayout | None:
    """The ledger layout of the experiment directory an ``init`` path points into
    (``.../<runs>/<experiment...>/<task>/offline_task/actor.safetensors``)."""
    parts = Path(init).parts
    name = task_name(task)
    if name not in parts or not init.endswith(TASK_ACTOR):
        return None
    i = len(parts) - 1 - parts[::-1].index(name)
    runs = next((k for k in range(i - 1, -1, -1) if parts[k] == "runs"), None)
    if runs is None:
        return None
    return TaskLayout(LEDGER, "/".join(parts[runs + 1 : i]), task)


def run_origin(book: TaskLayout, cfg, uid: str) -> tuple[TaskLayout, dict] | None:
    """The ledger layout and record an online run's results come from (as the report reads
    them), or None if the ledger has none."""
    for source in ledger_sources(cfg, book, uid):
        where, rec = resolve(source, uid)
        if rec is not None and rec.get("state") == "done":
            return where, rec
    return None


def audit_run(book: TaskLayout, cfg, method: str, seed: int) -> dict | None:
    uid = run_dir(method, seed)
    found = run_origin(book, cfg, uid)
    if found is None:
        return None
    where, rec = found
    config = where.root / uid / "config.json"
    try:
        init = json.loads(config.read_text())["init"]
    except (OSError, ValueError, KeyError):
        return {"init_dir": "", "rebuilt_since": ""}
    at = init_layout(init, book.task)
    if at is None:
        return {"init_dir": init, "rebuilt_since": ""}
    return {"init_dir": at.experiment, "rebuilt_since": finished_after(at, "offline_task", rec)}


def verdict(run: dict, base: dict) -> str:
    if not run["init_dir"] or not base["init_dir"] or "" in (run["rebuilt_since"],
                                                              base["rebuilt_since"]):  # fmt: skip
        return "unknown"
    if run["init_dir"] != base["init_dir"] or run["rebuilt_since"] != base["rebuilt_since"]:
        return "different"
    return "unknown" if run["rebuilt_since"] else "same"


def audit(experiment: str) -> list[dict]:
    cfg = load_config(CONFIGS / f"{experiment}.yaml")
    rows = []
    for sub in seed_configs(cfg):
        for task in sub.tasks:
            book, mine = TaskLayout(LEDGER, sub.name, task), sub.for_task(task)  # its inputs
            for seed in sub.seeds:
                base = audit_run(book, mine, BASELINE, seed)
                for method in sub.methods:  # a label runs its task's registry method
                    runs_as = mine.method_of(method)
                    run = audit_run(book, mine, runs_as, seed)
                    if run is None or base is None:
                        continue
                    rows.append({"experiment": experiment, "pipeline": sub.name,
                                 "task": task_name(task), "run": run_name(runs_as, seed),
                                 "method": method, **run,
                                 "vs_unio4": "—" if method == BASELINE else verdict(run, base)})  # fmt: skip
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    counts: dict[tuple[str, str], Counter] = {}
    for r in rows:
        if r["method"] != BASELINE:
            counts.setdefault((r["experiment"], r["method"]), Counter())[r["vs_unio4"]] += 1
    return [{"experiment": e, "method": m, "same": c["same"], "different": c["different"],
             "unknown": c["unknown"]} for (e, m), c in counts.items()]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", nargs="*",
                   help="default: every config in config/experiments (its runs are found in"
                        " its own ledger or its inputs'; a config with none gives no rows)")  # fmt: skip
    args = p.parse_args()
    names = args.experiments or sorted(c.stem for c in CONFIGS.glob("*.yaml"))
    rows = [r for name in names for r in audit(name)]
    summary = summarize(rows)
    out = Path("results/provenance")
    write_csv(out / "audit.csv", rows)
    write_csv(out / "summary.csv", summary)
    print(f"{'experiment':<26} {'method':<18} same different unknown")
    for s in summary:
        print(f"{s['experiment']:<26} {s['method']:<18} {s['same']:>4} {s['different']:>9}"
              f" {s['unknown']:>7}")  # fmt: skip


if __name__ == "__main__":
    main()
