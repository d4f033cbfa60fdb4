"""Stage ``qrisk``: Recovery RL's Q-risk critic (only when a method gates on it: recrl,
farm-qrisk)."""

from __future__ import annotations

import dataclasses

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.layout import QRISK
from farm_trainer.experiments.records import Unit
from farm_trainer.experiments.stages.world_model import safety_needs
from farm_trainer.methods import uses_qrisk


def units(ctx: TaskContext) -> list[Unit]:
    if not any(uses_qrisk(m) for m in ctx.cfg.run_methods):
        return []
    q, g = ctx.cfg.qrisk, ctx.cfg.gate
    defaults = {"eps_safe": g.qrisk_eps_safe, "label_horizon": g.horizon}

    def run() -> None:
        from farm_trainer.safety.train_qrisk import QRiskTrainConfig, train_qrisk

        actor = ctx.task_actor()
        train_qrisk(
            ctx.safety_data(), q.steps, q.batch, q.seed, ctx.out(QRISK),
            QRiskTrainConfig(**{**defaults, **q.train}),
            policy=lambda obs: actor.act(obs, deterministic=True),
            eval_dataset=ctx.dataset("heldout"), progress=ctx.progress,
            header={"task": ctx.env_id, "experiment": ctx.cfg.name},
        )  # fmt: skip

    metrics = QRISK.replace(".safetensors", ".metrics.json")
    config = {"qrisk": dataclasses.asdict(q), "gate": defaults}
    needs = ("offline_task", *safety_needs(ctx))
    return [Unit("qrisk", "", config, needs, (QRISK, metrics), run)]
