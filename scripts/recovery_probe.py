"""Where do IR failures happen under the gate: missed by C_H, or with the recovery policy running?

For each task of a finished pipeline: the offline task policy, exploring (stochastic, as online),
under ``--method``'s gate (FARM's by default) at ``--eps-scales`` x its threshold (the calibrated
C_H eps_safe; recrl: Q-risk's; 0 = no gate), for ``--episodes``
episodes from the same reset seeds. For every IR failure: whether the recovery ran on the
failure step or in the ``--window`` steps before it ("with recovery": the gate saw it coming and
the recovery did not save it; "during recovery" if the failing step itself was the recovery's,
else the gate had handed back to the task policy) or not ("missed": the gate never fired in time). A lower eps_safe
(farm-pid's) only helps where failures are missed; where they happen with the recovery running,
more recovery is no cure. ``--recovery scripted`` runs the task's scripted recovery rule (the one
that made the recovery demonstrations) wherever the gate replaces an action: if it saves the
failures the learned recovery does not, the recovery's learning is the bottleneck; if not, the
demonstrations start too late; ``hold`` (zeros) tells whether the state was lost already when
the gate fired (a failure even when the arm stops). The task policy's exploration noise is seeded
per episode, so the variants differ only where their actions do. Each row also has the mean
episode return and success rate (what the gate costs the exploring policy's task, before any
learning). Writes results/recovery_probe/<experiment>_s<seed>.csv (rows of tasks
not probed this time are kept).
    python scripts/recovery_probe.py --experiment paper_tables --seed 2 --tasks BoundedSoccer-v0
    python scripts/recovery_probe.py --seed 1 --recovery scripted --eps-scales 1.0
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from failurebench_sim.atomic import write_csv
from failurebench_sim.episodes import episode_success, run_episode
from failurebench_sim.make import make_env
from failurebench_sim.policies import get as scripted_policy
from farm_policies.checkpoint import load_policy
from farm_trainer.experiments import task_contexts
from farm_trainer.experiments.layout import task_name


def probe(ctx, method: str, scale: float, episodes: int, window: int, seed0: int,
          recovery: str) -> dict:  # fmt: skip
    policy = load_policy(ctx.task_actor_path)
    rule = {"scripted": scripted_policy(ctx.env_id, "recovery"), "hold": _Hold()}.get(recovery)
    gate = ctx.gate(method) if scale > 0 else None
    eps0 = ctx.eps_safe(method) if gate is None else gate.eps_safe  # recrl: Q-risk's threshold
    if gate is not None:
        gate.decider.eps_safe = eps0 * scale  # every member's threshold alike (farm-qrisk)
    env = make_env(ctx.env_id)
    failed = with_recovery = during = replaced_steps = steps = successes = 0
    ret = 0.0
    try:
        for ep in range(episodes):
            flags: list[bool] = []

            def act(obs: np.ndarray, flags: list[bool] = flags) -> np.ndarray:
                a = policy.act(np.asarray(obs, dtype=np.float32), deterministic=False)
                if gate is None:
                    flags.append(False)
                    return a
                d = gate(obs[None].astype(np.float32), a[None])
                replaced = bool(d.replaced[0])
                if rule is None or not replaced:
                    flags.append(replaced)
                    return d.actions[0]
                if not (flags and flags[-1]):
                    rule.reset()  # a new recovery spell
                flags.append(True)
                return rule.act(obs)

            torch.manual_seed(seed0 + ep)  # the same exploration noise for every variant
            r = run_episode(env, act, seed0 + ep)
            steps, replaced_steps = steps + r.steps, replaced_steps + sum(flags)
            ret, successes = (
                ret + r.ret,
                successes + episode_success(r.reached_success, r.ir_failure),
            )
            if r.ir_failure:
                failed += 1
                with_recovery += int(any(flags[-(window + 1) :]))
                during += int(flags[-1])  # the failing step's action was the recovery's
    finally:
        env.close()
    return {"task": task_name(ctx.task), "method": method, "recovery": recovery, "eps_scale": scale, "eps_safe": eps0 * scale,
            "episodes": episodes, "ir_failure_episodes": failed,
            "failures_with_recovery": with_recovery, "failures_during_recovery": during,
            "failures_missed": failed - with_recovery,
            "replaced_frac": round(replaced_steps / max(steps, 1), 4),
            "return_mean": round(ret / max(episodes, 1), 2),
            "success_frac": round(successes / max(episodes, 1), 3)}  # fmt: skip


class _Hold:
    """The ``hold`` variant's recovery: zeros (hold still), as farm-hold's."""

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(4, dtype=np.float32)


def _key(row: dict) -> tuple:
    return row["task"], row["method"], row["recovery"], float(row["eps_scale"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="paper_tables")
    ap.add_argument("--seed", type=int, default=2, help="pipeline seed (pipeline_seeds configs)")
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--method", default="farm", help="the registry's gate (farm, farm-qrisk, ...)")
    ap.add_argument("--eps-scales", type=float, nargs="+", default=[0.0, 1.0, 0.3])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--reset-seed", type=int, default=50_000, help="first reset seed")
    ap.add_argument(
        "--recovery",
        choices=("learned", "scripted", "hold"),
        default="learned",
        help="the action run where the gate fires (scripted: the demonstrator's rule; hold: zeros)",
    )
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    rows = []
    for ctx in task_contexts(args.experiment, args.seed, args.tasks, args.runs_dir):
        for scale in args.eps_scales:
            rows.append(probe(ctx, args.method, scale, args.episodes, args.window, args.reset_seed,
                              args.recovery))  # fmt: skip
            print(rows[-1], flush=True)
    path = Path("results/recovery_probe") / f"{args.experiment}_s{args.seed}.csv"
    if path.exists():  # keep the rows of the tasks not probed this time
        with path.open() as f:
            done = {_key(r) for r in rows}
            blank = dict.fromkeys(rows[0], "")  # columns older files lack stay empty
            old = [
                {**blank, "method": "farm", "recovery": "learned", **r} for r in csv.DictReader(f)
            ]
            rows = [r for r in old if _key(r) not in done] + rows
    write_csv(path, rows)
    print(f"[recovery_probe] wrote {path}")


if __name__ == "__main__":
    main()
