"""Stage ``online``: PPO fine-tuning per method x seed, every run from the SAME offline checkpoints.

The method's gate comes from the registry (``farm_trainer.methods``); a run interrupted under the
same config continues from ``checkpoints/last.safetensors``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from farm_trainer.experiments.context import PipelineError, TaskContext, eps_unit
from farm_trainer.experiments.layout import ensemble_member_units, run_dir
from farm_trainer.experiments.records import Unit
from farm_trainer.methods import calibrates_anyof, get_method, params_used

NEEDS = {"world_model": ("world_model",), "recovery": ("offline_recovery",),
         "qrisk": ("qrisk",), "heldout": ("failures/heldout",), "expert": ("data/expert",),
         "runout": ("calibration/runout",), "object_motion": ("calibration/object_motion",),
         "hand_motion": ("calibration/hand_motion",)}  # fmt: skip
"""``Method.needs`` artifact -> the units that make it (``safety_data``: ``safety_needs``)"""


def _units_of(ctx: TaskContext, artifact: str) -> tuple[str, ...]:
    if artifact == "safety_data":
        return ctx.safety_units()
    if artifact == "members":
        return ensemble_member_units(ctx.cfg.gate.ensemble_members)
    return NEEDS[artifact]


def method_config(ctx: TaskContext, method: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The gate hyper-parameters method ``method`` reads, and the units it needs."""
    used = params_used(method, ctx.cfg.gate.method_params())
    needs = ["offline_task", *(u for n in get_method(method).needs for u in _units_of(ctx, n))]
    if calibrates_anyof(method):
        if ctx.cfg.gate.anyof_rule is None:
            raise PipelineError(f"{method} chooses its thresholds by gate.anyof_rule; set it")
        unit = eps_unit(method)[0]
        used["eps_safe"] = used["qrisk_eps_safe"] = unit
        needs.append(unit)
    elif "eps_safe" in used and ctx.cfg.gate.eps_rule is not None:
        unit = eps_unit(method)[0]
        used["eps_safe"] = unit
        needs.append(unit)
    return used, tuple(needs)


GATED_ONLY = ("learn_actions", "replaced_penalty", "dual_clip")
"""``online.ppo`` fields about replaced steps (``dual_clip`` binds on off-policy ratios only)"""


def ppo_overrides(ctx: TaskContext, method: str) -> dict[str, Any]:
    """``online.ppo`` as method ``method`` runs it: without ``GATED_ONLY`` for a method with no
    gate (nothing is replaced, so what PPO does where it is cannot matter), so a lever on it
    leaves the baselines' runs (and hashes) as they are."""
    if get_method(method).make_filter is not None:
        return dict(ctx.cfg.online.ppo)
    return {k: v for k, v in ctx.cfg.online.ppo.items() if k not in GATED_ONLY}


def units(ctx: TaskContext) -> list[Unit]:
    common = {k: v for k, v in dataclasses.asdict(ctx.cfg.online).items() if k != "tensorboard"}
    out = []
    for seed in ctx.cfg.seeds:
        for method in ctx.cfg.run_methods:
            online = {**common, "ppo": ppo_overrides(ctx, method)}
            params, needs = method_config(ctx, method)
            config = {"task": ctx.env_id, "method": method, "seed": seed, "online": online,
                      "method_params": params}  # fmt: skip
            rd = run_dir(method, seed)
            out.append(Unit("online", rd.split("/")[1], config, needs,
                            (f"{rd}/policy_final.safetensors",),
                            lambda m=method, s=seed: run(ctx, m, s), clean=(rd,), seed=seed,
                            ledger=(f"{rd}/progress.csv",)))  # fmt: skip
    return out


def run(ctx: TaskContext, method: str, seed: int, max_updates: int | None = None) -> dict[str, Any]:
    """One fine-tuning run; resumes from ``checkpoints/last.safetensors`` when present
    (``max_updates``: stop after that many updates, with a checkpoint)."""
    from farm_trainer.methods import attach_cost_hook, filter_factory
    from farm_trainer.online import OnlineConfig, OnlineTrainer, PPOConfig

    o = ctx.cfg.online
    out = ctx.out(run_dir(method, seed))
    cfg = OnlineConfig(
        env_id=ctx.env_id, total_steps=o.steps, n_envs=o.n_envs, seed=seed, out_dir=str(out),
        init=str(ctx.task_actor_path), checkpoint_every=o.checkpoint_every, method=method,
        progress=ctx.progress, tensorboard=o.tensorboard, ppo=PPOConfig(**ppo_overrides(ctx, method)),
    )  # fmt: skip
    calibrated = ctx.thresholds(method) if "eps_safe" in get_method(method).params else {}
    params = ctx.cfg.gate.method_params(**calibrated)
    make_filter = filter_factory(method, ctx.artifacts(), params, seed)
    trainer = OnlineTrainer(cfg, make_filter=make_filter)
    attach_cost_hook(method, trainer, params)
    try:
        if trainer.resume():
            ctx.log(f"[pipeline]   resumed {out} at {trainer.counters['env_steps']} steps")
        out = trainer.train(max_updates)
        if max_updates is not None:
            trainer.save()
        return out
    finally:
        trainer.close()
