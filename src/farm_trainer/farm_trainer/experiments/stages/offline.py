"""Stages ``offline_task`` / ``offline_recovery``: Uni-O4 offline pipeline on task / recovery demos."""

from __future__ import annotations

from typing import Any

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.records import Unit

OUTPUTS = ("actor.safetensors", "offline_report.json")


def _unit(ctx: TaskContext, kind: str, demos: str, overrides: dict[str, Any]) -> Unit:
    out = f"offline_{kind}"

    def run() -> None:
        from farm_trainer.offline.pipeline import OfflineConfig, run_offline

        cfg = OfflineConfig(kind=kind, progress=ctx.progress, **overrides)
        run_offline(ctx.dataset(demos), ctx.out(out), cfg, task=ctx.env_id)

    return Unit(out, "", {"offline": overrides}, (f"data/{demos}",),
                tuple(f"{out}/{f}" for f in OUTPUTS), run, clean=(out,))  # fmt: skip


def task_units(ctx: TaskContext) -> list[Unit]:
    return [_unit(ctx, "task", "task_demos", dict(ctx.cfg.offline))]


def recovery_units(ctx: TaskContext) -> list[Unit]:
    overrides = {**ctx.cfg.offline, **ctx.cfg.offline_recovery}
    return [_unit(ctx, "recovery", "recovery_demos", overrides)]
