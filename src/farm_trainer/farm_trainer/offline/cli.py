"""``farm-train offline``: train (or resume) the Uni-O4 offline stage from a demonstration file.

Example::

    farm-train offline --task BoundedPush-v0 --demos data/bp_demos.npz --out runs/bp_offline --seed 0
    farm-train offline --task BoundedPush-v0 --kind recovery --demos data/bp_recovery.npz --out runs/bp_rec
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch

from .pipeline import HANDOVERS, TOLERANCES, OfflineConfig, run_offline

# CLI flag -> OfflineConfig field for the step counts and the most-tuned knobs.
FLAGS = {
    "bc_steps": "--bc-steps",
    "critic_steps": "--critic-steps",
    "value_steps": "--value-steps",
    "dyn_steps": "--dyn-steps",
    "ppo_steps": "--ppo-steps",
    "num_policies": "--num-policies",
    "ope_horizon": "--ope-horizon",
    "reward_scale": "--reward-scale",
    "eval_episodes": "--eval-episodes",
    "alpha_bc": "--alpha-bc",
    "clip": "--clip",
    "bc_lr": "--bc-lr",
    "critic_lr": "--critic-lr",
    "value_lr": "--value-lr",
    "ppo_lr": "--ppo-lr",
    "eval_step": "--eval-step",
    "handover": "--handover",
    "handover_tolerance": "--handover-tolerance",
    "reward_steps": "--reward-steps",
}
CHOICES = {"handover": HANDOVERS, "handover_tolerance": TOLERANCES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="farm-train offline",
        description="BC ensemble -> IQL Q/V + Monte-Carlo V -> offline PPO with OPE (Uni-O4).",
    )
    parser.add_argument(
        "--task", required=True, help="e.g. BoundedPush-v0 (used for evaluation/metadata)"
    )
    parser.add_argument("--demos", required=True, help="FailureBench .npz dataset")
    parser.add_argument(
        "--out", required=True, help="output directory (existing outputs are resumed)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", choices=("task", "recovery"), default="task")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-progress", action="store_true", help="disable tqdm bars")
    defaults = OfflineConfig()
    for field, flag in FLAGS.items():
        default = getattr(defaults, field)
        parser.add_argument(flag, dest=field, type=type(default), default=default,
                            choices=CHOICES.get(field), help=f"default {default}")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; ``argv`` excludes the program name (a leading 'offline' is accepted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["offline"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    from failurebench_sim.datasets import load_dataset

    torch.set_num_threads(args.threads)
    overrides = {field: getattr(args, field) for field in FLAGS}
    config = OfflineConfig(
        kind=args.kind, seed=args.seed, progress=not args.no_progress, **overrides
    )
    report = run_offline(load_dataset(args.demos), args.out, config, task=args.task)
    summary = {
        "out": args.out,
        "chosen_member": report["stages"].get("ppo", {}).get("chosen_member"),
        "handover": report["stages"].get("handover"),
        "evaluation": report.get("evaluation"),
        "wall_time_s": report.get("wall_time_s"),
        "resumed_stages": report.get("resumed_stages"),
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
