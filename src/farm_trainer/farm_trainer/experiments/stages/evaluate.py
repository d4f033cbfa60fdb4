"""Stage ``evaluate``: deterministic evaluation of the offline init, its BC member, and every
fine-tuned policy on ``evaluation.episodes`` fixed reset seeds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from failurebench_sim.atomic import write_json
from farm_trainer.experiments.context import TaskContext, read_json
from farm_trainer.experiments.layout import TASK_ACTOR, run_dir, run_name
from farm_trainer.experiments.records import Unit

EVAL_INIT = "offline_task/eval_init.json"
EVAL_BC = "offline_task/eval_bc.json"


def units(ctx: TaskContext) -> list[Unit]:
    config = {"evaluation": dataclasses.asdict(ctx.cfg.evaluation)}
    out = [
        Unit("evaluate", "init", config, ("offline_task",), (EVAL_INIT,),
             lambda: evaluate(ctx, ctx.task_actor_path, ctx.out(EVAL_INIT))),
        Unit("evaluate", "bc", config, ("offline_task",), (EVAL_BC,),
             lambda: evaluate(ctx, bc_actor_path(ctx), ctx.out(EVAL_BC))),
    ]  # fmt: skip
    for seed in ctx.cfg.seeds:
        for method in ctx.cfg.run_methods:
            name, rd = run_name(method, seed), run_dir(method, seed)

            def run(name: str = name, rd: str = rd) -> None:
                policy = ctx.path(f"online/{name}", f"{rd}/policy_final.safetensors")
                evaluate(ctx, policy, ctx.out(f"{rd}/eval_final.json"))

            out.append(Unit("evaluate", name, config, (f"online/{name}",),
                            (f"{rd}/eval_final.json",), run, seed=seed))  # fmt: skip
    return out


def bc_actor_path(ctx: TaskContext) -> Path:
    """The BC member that offline PPO improved into ``actor.safetensors`` (same seeds)."""
    report = read_json(ctx.path("offline_task", "offline_task/offline_report.json"))
    member = int(((report.get("stages") or {}).get("ppo") or {}).get("chosen_member", 0))
    return ctx.path("offline_task", TASK_ACTOR).with_name(f"bc_{member}.safetensors")


def evaluate(ctx: TaskContext, policy_path: Path, out: Path) -> None:
    """Deterministic evaluation over ``evaluation.episodes`` fixed reset seeds."""
    from farm_policies import load_policy
    from farm_trainer.online import evaluate_policy

    e = ctx.cfg.evaluation
    res = evaluate_policy(load_policy(policy_path), ctx.env_id, e.episodes, e.seed0,
                          max_steps=e.max_steps or 100_000)  # fmt: skip
    write_json(out, {"policy": str(policy_path), "seed0": e.seed0, **res})
