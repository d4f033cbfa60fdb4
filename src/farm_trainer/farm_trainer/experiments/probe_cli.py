"""The command line shared by the probe scripts (``scripts/*_probe.py``): a finished pipeline
seed's tasks in, one CSV of rows out."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failurebench_sim.atomic import write_csv
from farm_trainer.experiments.pipeline import task_contexts


def probe_parser(doc: str, tasks: list[str] | None = None) -> argparse.ArgumentParser:
    """``--experiment``, ``--seed`` (pipeline seed), ``--tasks`` (default ``tasks``, else the
    config's) and ``--runs-dir``; the description is ``doc``'s first line."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--experiment", default="farm_qrisk_g09_chosen")
    ap.add_argument("--seed", type=int, default=5, help="pipeline seed")
    ap.add_argument("--tasks", nargs="*", default=tasks)
    ap.add_argument("--runs-dir", default="runs")
    return ap


def run_probe(
    args: argparse.Namespace, probe: Callable[[Any], list[dict]], out_dir: str, tag: str = ""
) -> Path:
    """``probe(ctx)``'s rows for every task of ``args``' pipeline, written to
    ``<out_dir>/<experiment>_s<seed><tag>.csv``."""
    rows: list[dict] = []
    for ctx in task_contexts(args.experiment, args.seed, args.tasks, args.runs_dir):
        rows += probe(ctx)
    path = Path(out_dir) / f"{args.experiment}_s{args.seed}{tag}.csv"
    write_csv(path, rows)
    print(f"[{Path(out_dir).name}] wrote {path}")
    return path
