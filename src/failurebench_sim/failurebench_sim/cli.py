"""``failurebench`` command line: collect datasets, evaluate policies, run the benchmark table.

failurebench collect demos    --task BoundedPush-v0 --episodes 20 --out data/bp_demos.npz
failurebench collect recovery --task BoundedPush-v0 --episodes 120 --out data/bp_rec.npz
failurebench collect failures --task BoundedPush-v0 --transitions 20000 --out data/bp_fail.npz
failurebench evaluate --task BoundedPush-v0 --policy expert --episodes 50
failurebench bench [--references]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from failurebench_sim import datasets as ds

DEFAULT_RESULTS = Path("results/failurebench")


class CheckpointPolicy:
    """Deterministic actions of a policy checkpoint, loaded by the installed loader plug-in.

    failurebench_sim sits at the bottom of FARM's package DAG and imports no FARM package:
    loaders register under the entry-point group ``failurebench.policies`` by file suffix
    (``farm_policies`` registers ``safetensors``).
    """

    def __init__(self, path: str | Path) -> None:
        from importlib.metadata import entry_points

        suffix = Path(path).suffix.lstrip(".")
        loaders = entry_points(group="failurebench.policies", name=suffix)
        if not loaders:
            raise SystemExit(
                f"--policy {path}: no policy loader for '.{suffix}' files is installed "
                "(install farm_policies for .safetensors checkpoints)"
            )
        self.path = str(path)
        self.policy = next(iter(loaders)).load()(path)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.policy.act(obs, deterministic=True), dtype=np.float32)

    def reset(self) -> None:
        if hasattr(self.policy, "reset"):
            self.policy.reset()


def _failure_policy(spec: str) -> tuple[str | ds.Policy, str]:
    if spec == "scripted":
        return "expert", "expert"
    if not Path(spec).exists():
        raise SystemExit(
            f"--policy must be 'scripted' or an existing checkpoint path, got {spec!r}"
        )
    return CheckpointPolicy(spec), f"checkpoint:{spec}"


def cmd_collect(args: argparse.Namespace) -> int:
    env_id = ds.resolve_env_id(args.task)
    if args.what == "demos":
        policy, name, kind, start = "expert", "expert", "task", "reset"
        noise = ds.demo_noise(env_id) if args.noise is None else args.noise
    elif args.what == "recovery":
        policy, name, kind, start = "recovery", "recovery", "recovery", "near_failure"
        noise = 0.0 if args.noise is None else args.noise
    else:
        policy, name = _failure_policy(args.policy)
        kind, start = "failure", "reset"
        noise = ds.failure_noise(env_id) if args.noise is None else args.noise
    size = (
        {"n_transitions": args.transitions}
        if getattr(args, "transitions", None) is not None
        else {"n_episodes": args.episodes}
    )
    data = ds.collect(
        env_id, policy, noise_std=noise, seed=args.seed, start=start, kind=kind,
        policy_name=name, progress=not args.quiet, **size,
    )  # fmt: skip
    ds.save_dataset(args.out, data)
    m = data.metadata
    print(
        f"wrote {args.out}: {len(data)} transitions, {m['n_episodes']} episodes "
        f"({m['n_failure_episodes']} with failures, {m['n_success_episodes']} successful), "
        f"kind={kind} policy={name} noise_std={noise}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from failurebench_sim import benchmark

    env_id = ds.resolve_env_id(args.task)
    policy, noise, start = args.policy, args.noise, args.start
    if policy == "noisy":
        policy, noise = "expert", ds.failure_noise(env_id) if noise is None else noise
    row = benchmark.evaluate_policy(
        env_id, policy, args.episodes, args.seed, noise or 0.0, start, progress=not args.quiet
    )
    row["policy"] = args.policy
    if args.json:
        print(json.dumps(row))
    else:
        for k, v in row.items():
            print(f"{k:>18}: {v:.4f}" if isinstance(v, float) else f"{k:>18}: {v}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from failurebench_sim import benchmark

    if args.references:
        refs = benchmark.run_references(args.out, args.episodes, progress=not args.quiet)
        print("REFERENCE_RETURNS: dict[str, Reference] = {")
        for env_id, r in refs.items():
            print(f'    "{env_id}": Reference(random={r.random}, expert={r.expert}),')
        print("}")
        print(f"(also written to {Path(args.out) / 'references.csv'})")
        return 0
    if args.throughput:
        for row in benchmark.run_throughput(args.out):
            print("  " + ", ".join(_fmt(k, v) for k, v in row.items()))
        print(f"(written to {Path(args.out) / 'throughput.csv'})")
        return 0
    tables = benchmark.run_bench(args.out, args.episodes, progress=not args.quiet)
    stale = tables.pop("stale")
    for name, rows in tables.items():
        print(f"== {name}")
        for row in rows:
            print("  " + ", ".join(_fmt(k, v) for k, v in row.items()))
    print(f"wrote CSVs to {args.out}")
    if stale:
        print(
            f"WARNING: stored reference returns are stale for {stale}; normalised returns above "
            f"use them. Update normalize.REFERENCE_RETURNS from {Path(args.out) / 'references.csv'}"
            " and re-run.",
            file=sys.stderr,
        )
    return 0


def _fmt(key: str, value: object) -> str:
    return f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="failurebench", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    collect = sub.add_parser("collect", help="roll out a policy into a dataset .npz")
    what = collect.add_subparsers(dest="what", required=True)
    demos = what.add_parser(
        "demos", help="medium-expert task demos: scripted expert + noise", parents=[common]
    )
    demos.add_argument("--episodes", type=int, default=20)
    recovery = what.add_parser(
        "recovery", help="scripted recovery from near-failure starts", parents=[common]
    )
    recovery.add_argument("--episodes", type=int, default=120)
    failures = what.add_parser(
        "failures", help="noisy roll-outs containing IR failures", parents=[common]
    )
    failures.add_argument("--transitions", type=int, default=20000)
    failures.add_argument(
        "--policy", default="scripted", help="'scripted' or a farm_policies checkpoint path"
    )
    for p in (demos, recovery, failures):
        p.add_argument(
            "--task", required=True, help="e.g. BoundedPush-v0 or FailureBench/BoundedPush-v0"
        )
        p.add_argument(
            "--noise", type=float, default=None, help="action-noise std (default: per task)"
        )
        p.add_argument("--seed", type=int, default=0, help="episode i resets with seed + i")
        p.add_argument("--out", required=True, type=Path)
    collect.set_defaults(func=cmd_collect)

    ev = sub.add_parser("evaluate", help="success / failure rates of a policy", parents=[common])
    ev.add_argument("--task", required=True)
    ev.add_argument("--policy", choices=["expert", "noisy", "random", "recovery"], default="expert")
    ev.add_argument("--episodes", type=int, default=50)
    ev.add_argument(
        "--noise", type=float, default=None, help="std for --policy noisy (default: per task)"
    )
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--start", choices=list(ds.STARTS), default="reset")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser(
        "bench", help="measure the FailureBench numbers table into CSVs", parents=[common]
    )
    bench.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    bench.add_argument("--episodes", type=int, default=50)
    bench.add_argument(
        "--references", action="store_true", help="only measure the normaliser's reference returns"
    )
    bench.add_argument(
        "--throughput", action="store_true", help="only measure env steps/s against push-v3"
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
