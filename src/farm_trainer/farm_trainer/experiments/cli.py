"""``farm-train pipeline``: run (or resume) an experiment and write its results.

    farm-train pipeline --config config/experiments/demo.yaml
    farm-train pipeline --config config/experiments/headline.yaml --tasks BoundedPush-v0 \\
        --seeds 0 1 --methods unio4 farm --stages online evaluate
    farm-train pipeline --config config/experiments/headline.yaml --report-only
    farm-train pipeline --config config/experiments/headline_2e5.yaml --plan
    farm-train pipeline --config config/experiments/paper_tables.yaml --ray --workers 2

A stage whose recorded config differs from the current one is re-run with everything downstream
(``--no-rebuild``: stop instead); ``--plan`` prints what would run and why, and runs nothing.
A unit done in ``<results-dir>/ledger`` (the committed copy of the runs' small files) is not
run again when nothing left to run needs its weights; every finished job is saved there.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from farm_trainer.experiments.config import (
    METHODS,
    STAGES,
    ExperimentConfigError,
    load_config,
    seed_configs,
)
from farm_trainer.experiments.context import PipelineError
from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.ledger import LEDGER, save_experiment_ledger
from farm_trainer.experiments.pipeline import TaskPipeline, format_plan, run_experiment


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="farm-train pipeline",
        description="FailureBench data -> offline -> world model -> online FARM vs Uni-O4 -> report.",
    )
    p.add_argument("--config", required=True, help="YAML file, e.g. config/experiments/demo.yaml")
    p.add_argument("--tasks", nargs="+", help="override the config's tasks")
    p.add_argument("--seeds", nargs="+", type=int, help="override the config's seeds")
    p.add_argument("--methods", nargs="+", metavar="METHOD",
                   help=f"override the config's methods: {', '.join(METHODS)}, or a label of"
                   " the config's method_for")  # fmt: skip
    p.add_argument("--stages", nargs="+", metavar="STAGE",
                   help=f"run only these stages (or stage/item units): {', '.join(STAGES)}")  # fmt: skip
    p.add_argument("--online-steps", type=int, help="override online.steps")
    p.add_argument("--name", help="override the experiment name (runs/<name>, results/<name>)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--report-only", action="store_true", help="only aggregate existing runs")
    p.add_argument("--no-report", action="store_true", help="skip writing results/")
    p.add_argument("--save-ledger", action="store_true",
                   help="only copy the runs' small files to <results-dir>/ledger (e.g. while"
                        " a sweep runs), then exit")  # fmt: skip
    p.add_argument("--progress", action="store_true", help="tqdm bars for every stage")
    p.add_argument("--plan", action="store_true",
                   help="print which stages would run and why (config changed / output missing /"
                        " up to date / reused), then exit")  # fmt: skip
    p.add_argument("--ray", action="store_true",
                   help="run every (task, method, seed) job as a task on a local Ray bound to"
                        " 127.0.0.1 (a job that dies is retried from its checkpoint)")  # fmt: skip
    p.add_argument("--address", help="an existing Ray cluster's address (implies --ray)")
    p.add_argument("--workers", type=int, help="local Ray: CPUs (= jobs at once); default all")
    p.add_argument("--no-rebuild", action="store_true",
                   help="stop with an error instead of re-running outputs of a different config"
                   " or made from rebuilt inputs")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; ``argv`` excludes the program name (a leading 'pipeline' is accepted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pipeline"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        changes = {k: getattr(args, k) for k in ("tasks", "seeds", "methods", "name")
                   if getattr(args, k)}  # fmt: skip
        if args.tasks:  # the other tasks' overrides go with them
            keep = {task_name(t) for t in args.tasks}
            changes["task_overrides"] = {t: o for t, o in cfg.task_overrides.items()
                                         if task_name(t) in keep}  # fmt: skip
        cfg = cfg.replace(**changes) if changes else cfg
        if args.online_steps:
            cfg.online.steps = args.online_steps
            cfg.__post_init__()
        for unit_id in args.stages or ():
            cfg.check_unit_id(unit_id, f"--stages {unit_id}")
        ledger = Path(args.results_dir) / LEDGER
        if args.save_ledger:
            n = save_experiment_ledger(cfg, args.runs_dir, ledger)
            print(f"[pipeline] {n} file(s) saved to {ledger}")
            return 0
        if args.plan:
            pipes = [TaskPipeline(sub, t, args.runs_dir, ledger=ledger)
                     for sub in seed_configs(cfg) for t in sub.tasks]  # fmt: skip
            print(format_plan(pipes, args.stages or STAGES))
            return 0
        t0 = time.perf_counter()

        def report() -> None:
            from farm_trainer.experiments.report import write_report

            out = write_report(cfg, args.runs_dir, args.results_dir)
            print(
                f"[pipeline] wrote {out}/summary.csv, table.md, latency.csv, fig4/fig5 PNGs",
                flush=True,
            )

        if not args.report_only:
            after = None if args.no_report or len(cfg.seeds) < 2 else report
            run_experiment(cfg, args.runs_dir, args.stages or STAGES, args.progress,
                           after_round=after, rebuild=not args.no_rebuild, ray=args.ray,
                           ray_address=args.address, workers=args.workers, ledger=ledger)  # fmt: skip
        if not args.no_report:
            report()
        print(f"[pipeline] wall time {time.perf_counter() - t0:.1f} s")
    except (ExperimentConfigError, PipelineError) as e:
        print(f"farm-train pipeline: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
