"""``farm-train world-model``: pre-train FARL's world model on task + failure data (Eq. 4-9).

Example::

    farm-train world-model --task BoundedPush-v0 --data data/bp_demos.npz data/bp_failures.npz \\
        --out runs/bp_wm/world_model.safetensors --steps 20000 --seed 0

Writes the checkpoint (``farm_policies.checkpoint``: safetensors + JSON header, atomic) and
``<out stem>.metrics.json`` next to it. Optimisation follows TD-MPC2: Adam lr 3e-4 with the
encoder at 0.3x, grad-norm clip 20, target-Q Polyak tau 0.01, a separate Adam for the
policy prior on detached latents.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from failurebench_sim.atomic import write_json
from farm_safety_critic.calibration import (
    calibration_summary,
    failure_within,
    logged_action_c_h,
)
from farm_safety_critic.losses import LossConfig, RunningScale, pi_loss, world_model_loss
from farm_safety_critic.sequence_sampler import SequenceSampler, SliceBatch, TransitionDataset
from farm_safety_critic.world_model import WorldModel, WorldModelConfig


@dataclass
class WorldModelTrainConfig:
    """Optimisation settings (model sizes go in ``model``, loss weights in ``loss``)."""

    horizon: int = 3  # H: slices of H + 1 transitions
    failure_fraction: float = 0.25  # share of each batch drawn from slices containing a cost
    lr: float = 3e-4
    enc_lr_scale: float = 0.3
    grad_clip: float = 20.0
    tau: float = 0.01
    gamma_risk: float = 0.9  # only for the evaluation metrics
    eps_safe: float = 0.3  # only for the evaluation metrics
    log_every: int = 100
    obs_noise: float = 0.0
    """Gaussian input-noise augmentation, in units of the observation std (0: off). With a few
    dozen failure transitions the constraint head can memorise them; noisy copies of the
    inputs ask it for a smooth boundary instead."""
    cost_lookahead: int = 0
    """> 0: train the constraint head on ``lookahead_costs`` (soft targets up to this many steps
    before a failure, discounted by ``cost_discount``) instead of the binary failure-step cost"""
    cost_discount: float = 0.9
    cost_touch_radius: float = 0.0
    """> 0: train the constraint head on ``last_touch_costs`` (cost 1 from the hand's last
    approach within this radius of the object to the failure that follows, at most
    ``cost_touch_window`` steps back)"""
    cost_touch_window: int = 60
    model: dict[str, Any] = field(default_factory=dict)  # WorldModelConfig overrides
    loss: LossConfig = field(default_factory=LossConfig)


def cost_targets(cfg: Any) -> dict[str, Any]:
    """The ``SequenceSampler`` cost-target options of a world-model or Q-risk train config."""
    return {k: getattr(cfg, k) for k in
            ("cost_lookahead", "cost_discount", "cost_touch_radius", "cost_touch_window")}  # fmt: skip


class WorldModelUpdater:
    """One gradient step of the world model and of its policy prior."""

    def __init__(self, model: WorldModel, cfg: WorldModelTrainConfig) -> None:
        self.model, self.cfg = model, cfg
        self.optim = torch.optim.Adam(
            [
                {"params": list(model.encoder_parameters()), "lr": cfg.lr * cfg.enc_lr_scale},
                {"params": model.model_parameters()},
            ],
            lr=cfg.lr,
            foreach=True,
        )
        self.pi_optim = torch.optim.Adam(model.pi_parameters(), lr=cfg.lr, eps=1e-5, foreach=True)
        self.scale = RunningScale()

    def step(self, batch) -> dict[str, float]:
        self.model.train()
        if self.cfg.obs_noise > 0:
            batch = with_obs_noise(batch, self.cfg.obs_noise * self.model.obs_std)
        loss, z, metrics = world_model_loss(self.model, batch, self.cfg.loss)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(
            [p for g in self.optim.param_groups for p in g["params"]], self.cfg.grad_clip
        )
        self.optim.step()
        p_loss, p_metrics = pi_loss(self.model, z, batch.mask, self.cfg.loss, self.scale)
        self.pi_optim.zero_grad(set_to_none=True)
        p_loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.model.pi_parameters()), self.cfg.grad_clip)
        self.pi_optim.step()
        self.model.soft_update_target_Q(self.cfg.tau)
        return {**metrics, **p_metrics, "grad_norm": float(gn)}


def with_obs_noise(batch: SliceBatch, std: torch.Tensor) -> SliceBatch:
    """The batch with independent N(0, std^2) noise on obs and next_obs (per feature)."""
    noisy = dict(batch.__dict__)
    noisy["obs"] = batch.obs + torch.randn_like(batch.obs) * std
    noisy["next_obs"] = batch.next_obs + torch.randn_like(batch.next_obs) * std
    return SliceBatch(**noisy)


def evaluate_world_model(
    model: WorldModel,
    dataset: TransitionDataset | Sequence[TransitionDataset],
    horizon: int,
    gamma_risk: float,
    eps_safe: float,
) -> dict[str, Any]:
    """Open-loop C_H along logged actions vs "failure within H steps" (see ``calibration``)."""
    model.eval()
    scores = logged_action_c_h(model, dataset, horizon, gamma_risk)
    labels = failure_within(dataset, horizon)
    return calibration_summary(scores, labels, eps_safe, horizon)


def train_world_model(
    datasets: Sequence[TransitionDataset],
    steps: int,
    batch: int = 256,
    seed: int = 0,
    out_path: str | Path | None = None,
    config: WorldModelTrainConfig | None = None,
    eval_dataset: TransitionDataset | Sequence[TransitionDataset] | None = None,
    device: str = "cpu",
    progress: bool = True,
    header: dict[str, Any] | None = None,
) -> tuple[WorldModel, dict[str, Any]]:
    """Train a world model on ``datasets``; save it (and metrics JSON) if ``out_path`` is given."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps}, {batch}")
    cfg = config or WorldModelTrainConfig()
    torch.manual_seed(seed)
    sampler = SequenceSampler(
        datasets, cfg.horizon, cfg.failure_fraction, seed, **cost_targets(cfg)
    )
    mean, std = sampler.obs_stats()
    model_cfg = WorldModelConfig(obs_dim=sampler.obs_dim, act_dim=sampler.act_dim, **cfg.model)
    model = WorldModel(model_cfg, obs_mean=mean, obs_std=std).to(device)
    updater = WorldModelUpdater(model, cfg)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    t0 = time.time()
    bar = tqdm(range(steps), desc="world model", disable=not progress, leave=False)
    for step in bar:
        m = updater.step(sampler.sample(batch).to(device))
        if not math.isfinite(m["loss/total"]):
            raise FloatingPointError(f"world-model loss became non-finite at step {step}: {m}")
        window.append(m)
        if (step + 1) % cfg.log_every == 0 or step + 1 == steps:
            avg = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            history.append({"step": step + 1, **avg})
            bar.set_postfix(total=f"{avg['loss/total']:.3f}", c=f"{avg['loss/constraint']:.3f}")
            window = []
    model.eval()
    metrics: dict[str, Any] = {
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "wall_time_s": round(time.time() - t0, 2),
        "n_transitions": len(sampler.data),
        "n_failure_transitions": int((sampler.data.costs >= 1.0).sum()),
        "n_positive_cost_targets": int((sampler.data.costs > 0).sum()),
        "n_failure_slices": int(len(sampler.failure_starts)),
        "final": history[-1],
        "history": history,
        "config": {**asdict(cfg), "model": asdict(model_cfg)},
        "train_eval": evaluate_world_model(
            model, datasets, cfg.horizon, cfg.gamma_risk, cfg.eps_safe
        ),
    }
    if eval_dataset is not None:
        metrics["heldout_eval"] = evaluate_world_model(
            model, eval_dataset, cfg.horizon, cfg.gamma_risk, cfg.eps_safe
        )
    if out_path is not None:
        out_path = Path(out_path)
        model.save(
            out_path,
            {
                **(header or {}),
                "obs_dim": model_cfg.obs_dim,
                "act_dim": model_cfg.act_dim,
                "seed": seed,
                "train": {"steps": steps, "batch": batch, **asdict(cfg)},
            },
        )
        write_json(metrics_path(out_path), metrics)
    return model, metrics


def train_config_of(path: str | Path) -> WorldModelTrainConfig:
    """The ``WorldModelTrainConfig`` a world-model checkpoint was trained with (its header)."""
    from farm_policies.checkpoint import load_checkpoint

    train = dict(load_checkpoint(Path(path))[1].get("train") or {})

    def known(cls: type, d: dict) -> dict:
        names = {f.name for f in fields(cls)}
        return {k: v for k, v in d.items() if k in names}

    loss = LossConfig(**known(LossConfig, train.pop("loss", None) or {}))
    return WorldModelTrainConfig(**known(WorldModelTrainConfig, train), loss=loss)


def metrics_path(out_path: str | Path) -> Path:
    """``runs/x/world_model.safetensors`` -> ``runs/x/world_model.metrics.json``."""
    p = Path(out_path)
    return p.with_name(p.stem + ".metrics.json")


def build_parser() -> argparse.ArgumentParser:
    d, dm = WorldModelTrainConfig(), WorldModelConfig(1, 1)
    p = argparse.ArgumentParser(
        prog="farm-train world-model",
        description="Pre-train FARL's world model (h, d, R, Q, C, S, pi) on task + failure data.",
    )
    p.add_argument("--task", required=True, help="e.g. BoundedPush-v0 (stored in the header)")
    p.add_argument("--data", nargs="+", required=True, help="FailureBench .npz datasets")
    p.add_argument("--eval-data", nargs="*", default=None, help="held-out .npz datasets")
    p.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--horizon", type=int, default=d.horizon)
    p.add_argument("--failure-fraction", type=float, default=d.failure_fraction)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--latent-dim", type=int, default=dm.latent_dim)
    p.add_argument("--mlp-dim", type=int, default=dm.mlp_dim)
    p.add_argument("--enc-dim", type=int, default=dm.enc_dim)
    p.add_argument("--constraint-loss", choices=("bce", "mse"), default="bce")
    p.add_argument("--constraint-coef", type=float, default=LossConfig().constraint_coef)
    p.add_argument("--pos-weight", type=float, default=LossConfig().pos_weight)
    p.add_argument("--gamma", type=float, default=LossConfig().gamma)
    p.add_argument("--gamma-risk", type=float, default=d.gamma_risk)
    p.add_argument("--eps-safe", type=float, default=d.eps_safe)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; ``argv`` excludes the program name (a leading 'world-model' is accepted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["world-model"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    from failurebench_sim.datasets import load_dataset

    torch.set_num_threads(args.threads)
    cfg = WorldModelTrainConfig(
        horizon=args.horizon,
        failure_fraction=args.failure_fraction,
        lr=args.lr,
        gamma_risk=args.gamma_risk,
        eps_safe=args.eps_safe,
        model={"latent_dim": args.latent_dim, "mlp_dim": args.mlp_dim, "enc_dim": args.enc_dim},
        loss=LossConfig(
            gamma=args.gamma,
            constraint_loss=args.constraint_loss,
            constraint_coef=args.constraint_coef,
            pos_weight=args.pos_weight,
        ),
    )
    data = [load_dataset(p) for p in args.data]
    eval_data = [load_dataset(p) for p in args.eval_data] if args.eval_data else None
    _, metrics = train_world_model(
        data,
        args.steps,
        args.batch,
        args.seed,
        args.out,
        cfg,
        eval_dataset=eval_data,
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
