"""Stage ``data``: task demos, recovery demos (near-failure starts), noise-free expert episodes."""

from __future__ import annotations

from typing import Any

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.layout import data_file
from farm_trainer.experiments.records import Unit


def units(ctx: TaskContext) -> list[Unit]:
    d = ctx.cfg.data

    def collect(name: str, policy: str, seed: int, **kw: Any) -> None:
        from failurebench_sim import datasets as ds

        data = ds.collect(ctx.env_id, policy, seed=seed, progress=ctx.progress, **kw)
        ds.save_dataset(ctx.out(data_file(name)), data)

    def demos() -> None:
        from failurebench_sim.datasets import demo_noise

        noise = demo_noise(ctx.env_id) if d.demo_noise is None else d.demo_noise
        collect(
            "task_demos", "expert", d.seed, n_episodes=d.task_demos, noise_std=noise, kind="task"
        )

    def unit(name: str, keys: dict[str, Any], run: Any) -> Unit:
        cfg = {"task": ctx.env_id, "data": {**keys, "seed": d.seed}}
        return Unit("data", name, cfg, (), (data_file(name),), run)

    return [
        unit("task_demos", {"task_demos": d.task_demos, "demo_noise": d.demo_noise}, demos),
        unit("recovery_demos", {"recovery_demos": d.recovery_demos},
             lambda: collect("recovery_demos", "recovery", d.seed + 10_000,
                             n_episodes=d.recovery_demos, start="near_failure", kind="recovery")),
        unit("expert", {"expert_episodes": d.expert_episodes},
             lambda: collect("expert", "expert", d.seed + 900_000, n_episodes=d.expert_episodes,
                             kind="task")),
    ]  # fmt: skip
