"""Online steps/s of Uni-O4 vs FARM on a quiet machine, one run at a time (no other job).

The headline's steps/s come from runs that shared the 2 cores with other runs, so their ratio
mixes in the load. This re-runs a short fine-tuning of each method from the same checkpoints
(``runs/<experiment>/<task>``, one torch thread, the experiment's n_envs) back to back and writes
results/<experiment>/throughput_quiet.csv: collection steps/s (the gate's cost is in there) and
total steps/s including the PPO updates.

    python scripts/online_throughput.py --experiment headline_2e5 --steps 20480
"""

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch

from failurebench_sim.atomic import write_csv
from farm_trainer.experiments import TaskPipeline, load_config
from farm_trainer.online import OnlineConfig, OnlineTrainer, PPOConfig


def measure(pipe: TaskPipeline, method: str, steps: int, out: Path) -> dict:
    o = pipe.cfg.online
    cfg = OnlineConfig(env_id=pipe.env_id, total_steps=steps, n_envs=o.n_envs, seed=0,
                       out_dir=str(out), init=str(pipe.task_actor_path), checkpoint_every=10**6,
                       method=method, progress=False, ppo=PPOConfig(**o.ppo))  # fmt: skip
    trainer = OnlineTrainer(cfg, make_filter=pipe.make_filter(method, 0))
    try:
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    finally:
        trainer.close()
    with open(out / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    collect = sum(float(r["steps_per_s"]) for r in rows) / len(rows)
    return {"collect_steps_per_s": round(collect, 1), "total_steps_per_s": round(steps / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="headline_2e5")
    ap.add_argument("--steps", type=int, default=20480)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(Path("config/experiments") / f"{args.experiment}.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in cfg.tasks:
            pipe = TaskPipeline(cfg, task)
            res = {
                m: measure(pipe, m, args.steps, Path(tmp) / f"{task}_{m}")
                for m in ("unio4", "farm")
            }
            rows.append({
                "task": task, "steps": args.steps,
                **{f"{m}_{k}": v for m, r in res.items() for k, v in r.items()},
                "farm_over_unio4_collect": round(res["farm"]["collect_steps_per_s"] / res["unio4"]["collect_steps_per_s"], 3),
                "farm_over_unio4_total": round(res["farm"]["total_steps_per_s"] / res["unio4"]["total_steps_per_s"], 3),
            })  # fmt: skip
            print(rows[-1], flush=True)
    out = Path("results", args.experiment, "throughput_quiet.csv")
    write_csv(out, rows)


if __name__ == "__main__":
    main()
