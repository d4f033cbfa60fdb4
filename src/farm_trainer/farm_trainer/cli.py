"""``farm-train``: offline pre-training (dispatch), online fine-tuning, and evaluation.

    farm-train online --task BoundedPush-v0 --method unio4 --init CKPT --steps 200000 \\
        --seed 0 --out runs/x [--resume] [--n-envs 4]
    farm-train online ... --method farm --world-model WM --recovery REC [--eps-safe E]
    farm-train online ... --method recrl --qrisk Q --recovery REC   (Table II ablations)
    farm-train online ... --method mppi --world-model WM
    farm-train offline ...            (farm_trainer.offline.cli)
    farm-train world-model ...        (farm_trainer.safety.train_world_model)
    farm-train qrisk ...              (farm_trainer.safety.train_qrisk)
    farm-train pipeline ...           (farm_trainer.experiments.cli)
    farm-train evaluate --policy PATH --task BoundedPush-v0 [--episodes 10]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from farm_trainer.methods import (
    METHOD_NAMES,
    Artifacts,
    MethodParams,
    attach_cost_hook,
    filter_factory,
    get_method,
)

# Subcommands implemented by their own module's ``main(argv)``.
DELEGATED = {
    "offline": "farm_trainer.offline.cli",
    "pipeline": "farm_trainer.experiments.cli",
    "world-model": "farm_trainer.safety.train_world_model",
    "qrisk": "farm_trainer.safety.train_qrisk",
}


class CLIError(RuntimeError):
    """A user-facing error of ``farm-train`` (bad arguments, missing optional component)."""


def _online_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("online", help="online PPO fine-tuning (Uni-O4 online stage / FARM)")
    p.add_argument("--task", required=True, help="env id, e.g. BoundedPush-v0, metaworld/push-v3")
    p.add_argument("--method", choices=METHOD_NAMES, default="unio4")
    p.add_argument("--init", help="offline policy checkpoint file or directory (fresh if omitted)")
    p.add_argument("--steps", type=int, default=200_000, help="total env steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last")
    p.add_argument("--n-envs", type=int, default=4)
    p.add_argument("--vectorization", choices=("sync", "async"), default="sync")
    p.add_argument("--checkpoint-every", type=int, default=10, help="updates between checkpoints")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("PPO (defaults: Uni-O4)")
    for flag, typ in (("batch-size", int), ("minibatch-size", int), ("epochs", int),
                      ("lr-actor", float), ("lr-critic", float), ("clip", float),
                      ("entropy-coef", float), ("reward-scale", float), ("gamma", float),
                      ("gae-lambda", float)):  # fmt: skip
        g.add_argument(f"--{flag}", type=typ)
    f = p.add_argument_group(
        "safety gate (--method farm | farm-pid | farm-hold | farm-refresh | farm-ens | farm-ens-pid"
        " | farm-qrisk | farm-qrisk-pid | farm-runout[-hold|-ahead|-seq] | recrl | mppi)"
    )
    f.add_argument("--world-model", help="world-model checkpoint (farm, mppi)")
    f.add_argument("--qrisk", help="Recovery-RL Q-risk checkpoint (recrl, farm-qrisk)")
    f.add_argument("--recovery", help="recovery-policy checkpoint (farm, recrl)")
    f.add_argument("--safety-data", nargs="+",
                   help="farm-refresh: the world model's training datasets (.npz)")  # fmt: skip
    f.add_argument("--heldout", help="farm-refresh: held-out roll-outs (.npz) it is guarded on")
    f.add_argument("--expert", help="farm-refresh-cal: scripted-expert roll-outs (.npz)")
    f.add_argument("--members", nargs="+",
                   help="farm-ens(-pid): the ensemble's world models besides --world-model")  # fmt: skip
    f.add_argument(
        "--runout", help="farm-runout: the task's run-out model (calibration/runout.json)"
    )
    f.add_argument("--object-motion",
                   help="farm-runout-ahead: the object-motion model (calibration/object_motion.safetensors)")  # fmt: skip
    f.add_argument("--hand-motion",
                   help="farm-runout-seq: the hand-motion model (calibration/hand_motion.json)")  # fmt: skip
    f.add_argument("--runout-lookahead", type=int,
                   help="farm-runout-seq: predicted steps of the task policy scored"
                        f" (default {MethodParams().runout_lookahead})")  # fmt: skip
    f.add_argument("--runout-hold-eps", type=float,
                   help="farm-runout-seq: hold where a predicted state's run-out score exceeds"
                        f" this (default {MethodParams().runout_hold_eps})")  # fmt: skip
    f.add_argument("--runout-eps", type=float,
                   help="farm-runout: pi_rec where the object's predicted roll over the room left"
                        f" to the border exceeds this (default {MethodParams().runout_eps})")  # fmt: skip
    f.add_argument("--runout-horizon", type=int,
                   help="farm-runout*: control steps the object's roll is predicted over"
                        f" (default {MethodParams().runout_horizon})")  # fmt: skip
    f.add_argument("--eps-safe", type=float, help="the gate's threshold (recrl: Q-risk's)")
    f.add_argument("--qrisk-eps-safe", type=float,
                   help="farm-qrisk(-pid): Q-risk's own threshold (default: --eps-safe for recrl,"
                        f" else {MethodParams().qrisk_eps_safe})")  # fmt: skip
    f.add_argument("--horizon", type=int)
    f.add_argument("--gamma-risk", type=float)
    f.add_argument("--eps-target-rate", type=float,
                   help="farm-pid, farm-ens-pid: steer eps_safe to this IR-failure rate per episode")  # fmt: skip
    f.add_argument("--replaced-target-rate", type=float,
                   help="farm-qrisk-cal-hold-steer: raise the thresholds while the gate replaces"
                        " more than this fraction of an update's actions"
                        f" (default {MethodParams().replaced_target_rate})")  # fmt: skip
    d = MethodParams()
    c = p.add_argument_group("constrained baselines (--method ppo-lag | p3o | cpo)")
    c.add_argument("--cost-limit", type=float,
                   help=f"episode cost budget d (default {d.cost_limit})")  # fmt: skip
    c.add_argument("--lr-lambda", type=float,
                   help=f"ppo-lag: Lagrange multiplier step (default {d.lr_lambda})")  # fmt: skip
    c.add_argument("--p3o-kappa", type=float,
                   help=f"p3o: penalty weight (default {d.p3o_kappa})")  # fmt: skip
    c.add_argument("--cpo-target-kl", type=float,
                   help=f"cpo: trust region (default {d.cpo_target_kl})")  # fmt: skip


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a policy checkpoint")
    p.add_argument("--policy", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="first reset seed")
    p.add_argument("--stochastic", action="store_true")
    p.add_argument("--json", help="also write the result to this file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="farm-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "offline", help="offline stage (BC ensemble + offline PPO); see farm-train offline -h"
    )
    _online_parser(sub)
    _evaluate_parser(sub)
    sub.add_parser("pipeline", help="whole experiment: data -> offline -> online -> results")
    sub.add_parser("world-model", help="train the FARM world model; see farm-train world-model -h")
    sub.add_parser("qrisk", help="train the Recovery-RL Q-risk critic (ablation)")
    return parser


FLAGS = {"world_model": "--world-model", "recovery": "--recovery", "qrisk": "--qrisk",
         "safety_data": "--safety-data", "heldout": "--heldout", "members": "--members",
         "expert": "--expert", "runout": "--runout", "object_motion": "--object-motion",
         "hand_motion": "--hand-motion"}  # fmt: skip


def method_params(args: argparse.Namespace) -> MethodParams:
    """The registry's hyper-parameters, with the flags given on the command line."""
    flags = {"eps_safe": "eps_safe", "horizon": "horizon", "gamma_risk": "gamma_risk",
             "qrisk_eps_safe": "eps_safe", "cost_limit": "cost_limit", "lr_lambda": "lr_lambda",
             "p3o_kappa": "p3o_kappa", "cpo_target_kl": "cpo_target_kl",
             "eps_target_rate": "eps_target_rate", "runout_eps": "runout_eps",
             "replaced_target_rate": "replaced_target_rate",
             "runout_horizon": "runout_horizon", "runout_lookahead": "runout_lookahead",
             "runout_hold_eps": "runout_hold_eps"}  # fmt: skip
    if getattr(args, "method", None) != "recrl":
        flags["qrisk_eps_safe"] = "qrisk_eps_safe"  # farm-qrisk: its own threshold
    hp = {k: getattr(args, flag, None) for k, flag in flags.items()}
    hp = {k: v for k, v in hp.items() if v is not None}
    if getattr(args, "members", None):
        hp["ensemble_members"] = 1 + len(args.members)
    return MethodParams(**hp)


def _gate_factory(args: argparse.Namespace):
    """``make_filter(actor)`` of ``--method`` from the method registry (None: no gate)."""
    method = get_method(args.method)
    missing = [FLAGS[n] for n in method.needs if not getattr(args, n, None)]
    if missing:
        raise CLIError(f"--method {args.method} needs {' and '.join(missing)}")
    data, members = getattr(args, "safety_data", None), getattr(args, "members", None)
    artifacts = Artifacts(args.world_model, args.recovery, args.qrisk,
                          tuple(data) if data else None, getattr(args, "heldout", None),
                          tuple(members) if members else None, getattr(args, "expert", None),
                          getattr(args, "runout", None), getattr(args, "object_motion", None),
                          getattr(args, "hand_motion", None))  # fmt: skip
    try:
        return filter_factory(args.method, artifacts, method_params(args), args.seed)
    except ImportError as e:
        raise CLIError(f"--method {args.method} needs farm_safety_critic ({e})") from e


def run_online(args: argparse.Namespace) -> dict[str, Any]:
    from farm_trainer.online import OnlineConfig, OnlineTrainer, PPOConfig
    from farm_trainer.online.envs import resolve_env_id

    overrides = {k: getattr(args, k) for k in ("batch_size", "minibatch_size", "epochs", "lr_actor",
                 "lr_critic", "clip", "entropy_coef", "reward_scale", "gamma", "gae_lambda")
                 if getattr(args, k) is not None}  # fmt: skip
    if args.steps < 1 or args.n_envs < 1:
        raise CLIError("--steps and --n-envs must be positive")
    cfg = OnlineConfig(
        env_id=resolve_env_id(args.task), total_steps=args.steps, n_envs=args.n_envs,
        seed=args.seed, out_dir=args.out, init=args.init, checkpoint_every=args.checkpoint_every,
        vectorization=args.vectorization, method=args.method, progress=not args.no_progress,
        tensorboard=not args.no_tensorboard, ppo=PPOConfig(**overrides),
    )  # fmt: skip
    trainer = OnlineTrainer(cfg, make_filter=_gate_factory(args))
    attach_cost_hook(args.method, trainer, method_params(args))
    try:
        if args.resume and not trainer.resume():
            print(f"farm-train: no checkpoint in {args.out}; starting fresh", file=sys.stderr)
        return trainer.train()
    finally:
        trainer.close()


def run_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from farm_policies import load_policy
    from farm_trainer.online import evaluate_policy
    from farm_trainer.online.envs import resolve_env_id

    policy = load_policy(args.policy)
    res = evaluate_policy(policy, resolve_env_id(args.task), args.episodes, args.seed,
                          deterministic=not args.stochastic)  # fmt: skip
    if args.json:
        from failurebench_sim.atomic import write_json

        write_json(args.json, res)
    return res


def _finite_or_none(v: Any) -> Any:
    """Strict JSON: NaN/inf (e.g. a missing normalised return) become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        try:
            module = importlib.import_module(DELEGATED[argv[0]])
        except ImportError as e:
            print(f"farm-train: error: {argv[0]} unavailable ({e})", file=sys.stderr)
            return 2
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    from gymnasium.error import Error as GymError

    from farm_policies import CheckpointError

    try:
        result = run_online(args) if args.command == "online" else run_evaluate(args)
    except (CLIError, CheckpointError, GymError, ValueError, FileNotFoundError) as e:
        print(f"farm-train: error: {e}", file=sys.stderr)
        return 2
    summary = {k: _finite_or_none(v) for k, v in result.items() if not isinstance(v, list)}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
