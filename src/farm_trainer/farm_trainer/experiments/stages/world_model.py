"""Stage ``world_model``: the FARM world model on task demos + failure data (Eq. 4-9)."""

from __future__ import annotations

import dataclasses

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.layout import WORLD_MODEL
from farm_trainer.experiments.records import Unit


def safety_needs(ctx: TaskContext) -> tuple[str, ...]:
    """The datasets a safety critic trains (and is evaluated) on."""
    near = ("failures/failures_near",) if ctx.cfg.data.near_failure_transitions > 0 else ()
    return ("data/task_demos", "failures/failures", *near, "failures/heldout")


def units(ctx: TaskContext) -> list[Unit]:
    wm, g = ctx.cfg.world_model, ctx.cfg.gate
    defaults = {"gamma_risk": g.gamma_risk, "eps_safe": g.eps_safe, "horizon": g.horizon}

    def run() -> None:
        from farm_safety_critic.losses import LossConfig
        from farm_trainer.safety.train_world_model import WorldModelTrainConfig, train_world_model

        overrides = dict(wm.train)
        if "loss" in overrides:
            overrides["loss"] = LossConfig(**overrides["loss"])
        tcfg = WorldModelTrainConfig(**{**defaults, **overrides})
        train_world_model(
            ctx.safety_data(), wm.steps, wm.batch, wm.seed, ctx.out(WORLD_MODEL), tcfg,
            eval_dataset=ctx.dataset("heldout"), progress=ctx.progress,
            header={"task": ctx.env_id, "experiment": ctx.cfg.name},
        )  # fmt: skip

    metrics = WORLD_MODEL.replace(".safetensors", ".metrics.json")
    config = {"world_model": dataclasses.asdict(wm), "gate": defaults}
    return [Unit("world_model", "", config, safety_needs(ctx), (WORLD_MODEL, metrics), run)]
