"""Agreement of the robot's labels (``failurebench_sim.labels``, from the observed state) with the
sim's on true states: the scripted expert with action noise, 6 episodes per task (default and
near-failure starts). Writes results/labels/agreement.csv.

    python scripts/bench_labels.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from failurebench_sim.atomic import write_csv
from failurebench_sim.datasets import make_policy, noisy_action
from failurebench_sim.labels import StateLabeler
from failurebench_sim.make import make_env

TASKS = ("BoundedPush-v0", "BoundedSoccer-v0", "FragilePushWall-v0", "ObstructedPush-v0")


def main() -> None:
    rows = []
    for short in TASKS:
        task = f"FailureBench/{short}"
        env, lab = make_env(task), StateLabeler(task)
        policy, rng = make_policy(task, "expert", 0), np.random.default_rng(0)
        err, cost_ok, success_ok, failures, t = [], [], [], 0, 0.0
        for ep in range(6):
            obs, _ = env.reset(seed=ep, options={"start": "near_failure" if ep % 2 else "default"})
            lab.begin(obs)
            for _ in range(200):
                a = noisy_action(policy.act(obs), 0.5, rng)
                obs, r, term, trunc, info = env.step(a)
                t0 = time.perf_counter()
                reward, cost, success = lab.label(a, obs)
                t += time.perf_counter() - t0
                err.append(abs(reward - r))
                cost_ok.append(cost == info["cost"])
                success_ok.append(success == info["success"])
                failures += info["cost"] > 0
                if term or trunc:
                    break
        env.close()
        lab.close()
        row = {"task": short, "steps": len(err), "failure_steps": failures,
               "failure_agreement": float(np.mean(cost_ok)),
               "success_agreement": float(np.mean(success_ok)),
               "reward_abs_err_median": float(np.median(err)),
               "reward_abs_err_p95": float(np.percentile(err, 95)),
               "ms_per_label": 1e3 * t / len(err)}  # fmt: skip
        print(row)
        rows.append(row)
    write_csv(Path("results/labels/agreement.csv"), rows)


if __name__ == "__main__":
    main()
