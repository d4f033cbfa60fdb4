"""Online FARM through the ROS graph vs the in-process loop, same task, checkpoints and seeds.

Reads the trainers' progress.csv of ``farm-graph-bench finetune`` (runs/graph_finetune/seed*/
trainer/) and of ``scripts/bench_inprocess_finetune.sh`` (runs/inprocess_finetune/seed*/),
copies them to results/graph_finetune/ and writes comparison.csv: IR-failure episodes, episodes,
return over the last 10 updates (the return after fine-tuning) and steps per seed.

    python scripts/report_graph_finetune.py
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from failurebench_sim.atomic import write_csv

RUNS, OUT = Path("runs"), Path("results/graph_finetune")
SOURCES = {"graph": "graph_finetune/seed{s}/trainer", "in_process": "inprocess_finetune/seed{s}"}


def summary(progress: Path, max_steps: int | None = None) -> dict:
    """Totals at the last update (or the last one within ``max_steps``)."""
    with open(progress) as f:
        rows = list(csv.DictReader(f))
    if max_steps is not None:
        rows = [r for r in rows if float(r["env_steps"]) <= max_steps] or rows[:1]
    last = rows[-1]
    tail = [float(r["ep_return"]) for r in rows[-10:] if r["ep_return"] not in ("", "nan")]
    return {"updates": len(rows), "steps": int(float(last["env_steps"])),
            "episodes": int(float(last["episodes"])),
            "ir_failure_episodes": int(float(last["ir_failure_episodes"])),
            "return_last10_updates": float(np.mean(tail)) if tail else float("nan")}  # fmt: skip


def main() -> None:
    rows = []
    for kind, pattern in SOURCES.items():
        for s in (0, 1, 2):
            src = RUNS / pattern.format(s=s) / "progress.csv"
            if not src.exists():
                continue
            dst = OUT / f"{kind}_seed{s}_progress.csv"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            row = {"path": kind, "seed": s, **summary(src)}
            wall = OUT / f"finetune_seed{s}.json"
            if kind == "graph" and wall.exists():
                w = json.loads(wall.read_text())
                row["wall_s"], row["steps_per_s"] = w["wall_s"], w["steps_per_s"]
            rows.append(row)
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k)
                  if k in rows[0] else 99)  # fmt: skip
    write_csv(OUT / "comparison.csv", [{k: r.get(k, "") for k in keys} for r in rows])
    for r in rows:
        print(r)
    # both paths at the same number of steps (a run stopped early is compared where it stopped)
    paired = []
    for s in (0, 1, 2):
        src = {k: RUNS / p.format(s=s) / "progress.csv" for k, p in SOURCES.items()}
        if not all(v.exists() for v in src.values()):
            continue
        common = min(summary(v)["steps"] for v in src.values())
        for kind, v in src.items():
            paired.append({"seed": s, "at_steps": common, "path": kind, **summary(v, common)})
    if paired:
        write_csv(OUT / "paired.csv", paired)
        for r in paired:
            print("paired", r)


if __name__ == "__main__":
    main()
