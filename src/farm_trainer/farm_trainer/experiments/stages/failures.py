"""Stage ``failures``: noisy roll-outs of the offline task policy (failures, near-F starts, held-out)."""

from __future__ import annotations

from typing import Any

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.layout import data_file
from farm_trainer.experiments.records import Unit


def units(ctx: TaskContext) -> list[Unit]:
    d = ctx.cfg.data
    needs = ("offline_task",) if d.failure_policy == "offline" else ()

    def policy() -> tuple[Any, str]:
        if d.failure_policy != "offline":
            return "expert", "expert"
        from farm_policies import load_policy

        return load_policy(ctx.task_actor_path), f"offline:{ctx.task_actor_path}"

    def unit(name: str, key: str, seed: int, start: str = "reset") -> Unit:
        n = getattr(d, key)

        def run() -> None:
            from failurebench_sim import datasets as ds

            noise = ds.failure_noise(ctx.env_id) if d.failure_noise is None else d.failure_noise
            pol, pol_name = policy()
            data = ds.collect(ctx.env_id, pol, n_transitions=n, noise_std=noise, seed=seed,
                              start=start, kind="failure", policy_name=pol_name,
                              progress=ctx.progress)  # fmt: skip
            ds.save_dataset(ctx.out(data_file(name)), data)

        keys = {key: n, "failure_noise": d.failure_noise, "failure_policy": d.failure_policy,
                "seed": d.seed}  # fmt: skip
        return Unit("failures", name, {"task": ctx.env_id, "data": keys}, needs,
                    (data_file(name),), run)  # fmt: skip

    out = [unit("failures", "failure_transitions", d.seed + 20_000)]
    if d.near_failure_transitions > 0:
        out.append(
            unit("failures_near", "near_failure_transitions", d.seed + 30_000, "near_failure")
        )
    out.append(unit("heldout", "heldout_transitions", d.seed + 500_000))
    return out
