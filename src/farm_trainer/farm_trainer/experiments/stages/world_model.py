"""Stages ``world_model`` (the FARM world model on task demos + failure data, Eq. 4-9) and
``ensemble`` (more of them with other seeds, for the ensemble gates: farm-ens, farm-ens-pid)."""

from __future__ import annotations

import dataclasses

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.layout import WORLD_MODEL, ensemble_member, ensemble_member_units
from farm_trainer.experiments.records import Unit
from farm_trainer.methods import uses_ensemble


def safety_needs(ctx: TaskContext) -> tuple[str, ...]:
    """The datasets a safety critic trains (and is evaluated) on."""
    near = ("failures/failures_near",) if ctx.cfg.data.near_failure_transitions > 0 else ()
    return ("data/task_demos", "failures/failures", *near, "failures/heldout")


def _world_model_unit(ctx: TaskContext, stage: str, item: str, out: str, seed_offset: int,
                      extra: dict) -> Unit:  # fmt: skip
    """Train one world model on the safety data into ``out`` (seed: world_model.seed + offset)."""
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
            ctx.safety_data(), wm.steps, wm.batch, wm.seed + seed_offset, ctx.out(out), tcfg,
            eval_dataset=ctx.dataset("heldout"), progress=ctx.progress,
            header={"task": ctx.env_id, "experiment": ctx.cfg.name},
        )  # fmt: skip

    metrics = out.replace(".safetensors", ".metrics.json")
    config = {"world_model": dataclasses.asdict(wm), "gate": defaults, **extra}
    return Unit(stage, item, config, safety_needs(ctx), (out, metrics), run)


def units(ctx: TaskContext) -> list[Unit]:
    return [_world_model_unit(ctx, "world_model", "", WORLD_MODEL, 0, {})]


ENSEMBLE_SEED_STRIDE = 1000
"""member k trains with world_model.seed + k * this (pipeline seeds shift it by 1)"""


def ensemble_units(ctx: TaskContext) -> list[Unit]:
    """Stage ``ensemble``: world models 1 .. ensemble_members - 1 of the ensemble gates (same
    data and config as ``world_model``, other seeds); none unless a method gates on them."""
    if not any(uses_ensemble(m) for m in ctx.cfg.run_methods):
        return []
    units = ensemble_member_units(ctx.cfg.gate.ensemble_members)
    return [_world_model_unit(ctx, "ensemble", uid.split("/")[1], ensemble_member(k),
                              k * ENSEMBLE_SEED_STRIDE, {"member": k})
            for k, uid in enumerate(units, 1)]  # fmt: skip
