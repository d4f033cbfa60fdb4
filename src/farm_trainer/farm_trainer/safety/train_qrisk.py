"""``farm-train qrisk``: pre-train Recovery RL's Q-risk critic (ablation ``recrl``) offline.

Example::

    farm-train qrisk --task BoundedPush-v0 --data data/bp_demos.npz data/bp_failures.npz \\
        --out runs/bp_qrisk/qrisk.safetensors --steps 20000 --task-actor runs/bp_offline/actor.safetensors

Without ``--task-actor`` the target uses the logged next action (SARSA; see
``farm_safety_critic.qrisk.next_actions``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from failurebench_sim.atomic import write_json
from farm_safety_critic.calibration import calibration_summary, failure_within
from farm_safety_critic.gate import Policy
from farm_safety_critic.qrisk import QRisk, QRiskConfig, qrisk_loss
from farm_safety_critic.sequence_sampler import SequenceSampler, TransitionDataset, concat_datasets
from farm_trainer.safety.train_world_model import cost_targets, metrics_path


@dataclass
class QRiskTrainConfig:
    """Recovery RL defaults except tau (faster for short offline runs, see ``qrisk``)."""

    gamma_safe: float = 0.8
    tau: float = 5e-3
    lr: float = 3e-4
    hidden: int = 256
    failure_fraction: float = 0.25  # Recovery RL's pos_fraction
    eps_safe: float = 0.3  # only for the evaluation metrics
    label_horizon: int = 3  # "failure within H steps" for the evaluation metrics
    cost_lookahead: int = 0  # the cost targets, as in ``WorldModelTrainConfig``
    cost_discount: float = 0.9
    cost_touch_radius: float = 0.0
    cost_touch_window: int = 60
    log_every: int = 100


@torch.no_grad()
def evaluate_qrisk(
    model: QRisk,
    dataset: TransitionDataset | Sequence[TransitionDataset],
    horizon: int,
    eps_safe: float,
) -> dict[str, Any]:
    """Q_risk(s, logged a) vs "failure within H steps"."""
    tr = concat_datasets(dataset)
    model.eval()
    dev = model.obs_mean.device
    scores = model.risk(
        torch.as_tensor(tr.observations, device=dev), torch.as_tensor(tr.actions, device=dev)
    )
    labels = failure_within(dataset, horizon)
    return calibration_summary(scores.cpu().numpy(), labels, eps_safe, horizon)


def train_qrisk(
    datasets: Sequence[TransitionDataset],
    steps: int,
    batch: int = 256,
    seed: int = 0,
    out_path: str | Path | None = None,
    config: QRiskTrainConfig | None = None,
    policy: Policy | None = None,
    eval_dataset: TransitionDataset | Sequence[TransitionDataset] | None = None,
    device: str = "cpu",
    progress: bool = True,
    header: dict[str, Any] | None = None,
) -> tuple[QRisk, dict[str, Any]]:
    """Fit Q-risk by TD (Eq. 16 with max over twins); save checkpoint + metrics if ``out_path``."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps}, {batch}")
    cfg = config or QRiskTrainConfig()
    torch.manual_seed(seed)
    sampler = SequenceSampler(datasets, 1, cfg.failure_fraction, seed, **cost_targets(cfg))
    mean, std = sampler.obs_stats()
    model = QRisk(QRiskConfig(sampler.obs_dim, sampler.act_dim, cfg.hidden), mean, std).to(device)
    optim = torch.optim.Adam(model.online_parameters(), lr=cfg.lr, foreach=True)
    history, window = [], []
    t0 = time.time()
    for step in tqdm(range(steps), desc="Q-risk", disable=not progress, leave=False):
        model.train()
        loss, m = qrisk_loss(model, sampler.sample(batch).to(device), cfg.gamma_safe, policy)
        if not math.isfinite(m["loss/qrisk"]):
            raise FloatingPointError(f"Q-risk loss became non-finite at step {step}")
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        model.soft_update(cfg.tau)
        window.append(m)
        if (step + 1) % cfg.log_every == 0 or step + 1 == steps:
            history.append(
                {"step": step + 1, **{k: float(np.mean([w[k] for w in window])) for k in window[0]}}
            )
            window = []
    model.eval()
    metrics: dict[str, Any] = {
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "wall_time_s": round(time.time() - t0, 2),
        "n_transitions": len(sampler.data),
        "final": history[-1],
        "history": history,
        "config": asdict(cfg),
        "target_action": "policy" if policy is not None else "logged next action (SARSA)",
        "train_eval": evaluate_qrisk(model, datasets, cfg.label_horizon, cfg.eps_safe),
    }
    if eval_dataset is not None:
        metrics["heldout_eval"] = evaluate_qrisk(
            model, eval_dataset, cfg.label_horizon, cfg.eps_safe
        )
    if out_path is not None:
        header = {
            **(header or {}),
            "obs_dim": sampler.obs_dim,
            "act_dim": sampler.act_dim,
            "seed": seed,
        }
        model.save(out_path, {**header, "train": {"steps": steps, "batch": batch, **asdict(cfg)}})
        write_json(metrics_path(out_path), metrics)
    return model, metrics


def build_parser() -> argparse.ArgumentParser:
    d = QRiskTrainConfig()
    p = argparse.ArgumentParser(
        prog="farm-train qrisk", description="Pre-train Recovery RL's Q-risk critic."
    )
    p.add_argument("--task", required=True)
    p.add_argument("--data", nargs="+", required=True, help="FailureBench .npz datasets")
    p.add_argument("--eval-data", nargs="*", default=None)
    p.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    p.add_argument("--task-actor", default=None, help="policy checkpoint for a' = pi(s')")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gamma-safe", type=float, default=d.gamma_safe)
    p.add_argument("--tau", type=float, default=d.tau)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--failure-fraction", type=float, default=d.failure_fraction)
    p.add_argument("--eps-safe", type=float, default=d.eps_safe)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; ``argv`` excludes the program name (a leading 'qrisk' is accepted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["qrisk"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    from failurebench_sim.datasets import load_dataset

    torch.set_num_threads(args.threads)
    policy = None
    if args.task_actor:
        from farm_policies.checkpoint import load_actor_value

        actor = load_actor_value(args.task_actor)[0].to(args.device).eval()
        policy = lambda obs: actor.act(obs, deterministic=True)  # noqa: E731
    cfg = QRiskTrainConfig(
        gamma_safe=args.gamma_safe,
        tau=args.tau,
        lr=args.lr,
        failure_fraction=args.failure_fraction,
        eps_safe=args.eps_safe,
    )
    data = [load_dataset(p) for p in args.data]
    eval_data = [load_dataset(p) for p in args.eval_data] if args.eval_data else None
    _, metrics = train_qrisk(
        data,
        args.steps,
        args.batch,
        args.seed,
        args.out,
        cfg,
        policy,
        eval_data,
        device=args.device,
        progress=not args.no_progress,
        header={"task": args.task, "data": [str(p) for p in args.data]},
    )
    summary = {k: metrics[k] for k in ("steps", "wall_time_s", "final", "train_eval")}
    summary["heldout_eval"] = metrics.get("heldout_eval")
    print(json.dumps({"out": args.out, **summary}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
