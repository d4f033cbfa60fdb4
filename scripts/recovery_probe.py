"""Where do IR failures happen under the gate: missed by C_H, or with the recovery policy running?

For each task of a finished pipeline: the offline task policy, exploring (stochastic, as online),
under FARM's gate at ``--eps-scales`` x the calibrated eps_safe (0 = no gate), for ``--episodes``
episodes from the same reset seeds. For every IR failure: whether the recovery ran on the
failure step or in the ``--window`` steps before it ("with recovery": the gate saw it coming and
the recovery did not save it) or not ("missed": the gate never fired in time). A lower eps_safe
(farm-pid's) only helps where failures are missed; where they happen with the recovery running,
more recovery is no cure. Writes results/recovery_probe/<experiment>_s<seed>.csv (rows of tasks
not probed this time are kept).
    python scripts/recovery_probe.py --experiment paper_tables --seed 2 --tasks BoundedSoccer-v0
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from failurebench_sim.atomic import write_csv
from failurebench_sim.episodes import run_episode
from failurebench_sim.make import make_env
from farm_policies.checkpoint import load_policy
from farm_trainer.experiments import load_config
from farm_trainer.experiments.config import pipeline_of
from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.pipeline import TaskPipeline


def probe(ctx, scale: float, episodes: int, window: int, seed0: int) -> dict:
    policy = load_policy(ctx.task_actor_path)
    eps0 = ctx.eps_safe("farm")
    gate = ctx.gate("farm", eps_safe=eps0 * scale) if scale > 0 else None
    env = make_env(ctx.env_id)
    failed = with_recovery = replaced_steps = steps = 0
    try:
        for ep in range(episodes):
            flags: list[bool] = []

            def act(obs: np.ndarray, flags: list[bool] = flags) -> np.ndarray:
                a = policy.act(np.asarray(obs, dtype=np.float32), deterministic=False)
                if gate is None:
                    flags.append(False)
                    return a
                d = gate(obs[None].astype(np.float32), a[None])
                flags.append(bool(d.replaced[0]))
                return d.actions[0]

            r = run_episode(env, act, seed0 + ep)
            steps, replaced_steps = steps + r.steps, replaced_steps + sum(flags)
            if r.ir_failure:
                failed += 1
                with_recovery += int(any(flags[-(window + 1) :]))
    finally:
        env.close()
    return {"task": task_name(ctx.task), "eps_scale": scale, "eps_safe": eps0 * scale,
            "episodes": episodes, "ir_failure_episodes": failed,
            "failures_with_recovery": with_recovery, "failures_missed": failed - with_recovery,
            "replaced_frac": round(replaced_steps / max(steps, 1), 4)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="paper_tables")
    ap.add_argument("--seed", type=int, default=2, help="pipeline seed (pipeline_seeds configs)")
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--eps-scales", type=float, nargs="+", default=[0.0, 1.0, 0.3])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--reset-seed", type=int, default=50_000, help="first reset seed")
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    cfg = pipeline_of(load_config(Path("config/experiments") / f"{args.experiment}.yaml"),
                      args.seed)  # fmt: skip
    rows = []
    for task in args.tasks or cfg.tasks:
        ctx = TaskPipeline(cfg, task, args.runs_dir).ctx
        for scale in args.eps_scales:
            rows.append(probe(ctx, scale, args.episodes, args.window, args.reset_seed))
            print(rows[-1], flush=True)
    path = Path("results/recovery_probe") / f"{args.experiment}_s{args.seed}.csv"
    if path.exists():  # keep the rows of the tasks not probed this time
        with path.open() as f:
            done = {r["task"] for r in rows}
            rows = [r for r in csv.DictReader(f) if r["task"] not in done] + rows
    write_csv(path, rows)
    print(f"[recovery_probe] wrote {path}")


if __name__ == "__main__":
    main()
