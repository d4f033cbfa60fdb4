"""World-model C_H vs Recovery RL's Q-risk on the planted-failure point mass (Study 1 in miniature).

    python -m farm_trainer.safety.toy_benchmark --steps 1000 --seed 0

Trains both critics on the same random-drift data, then reports on held-out data (labels:
"failure within H steps"): ROC-AUC / precision / recall at eps_safe of the open-loop C_H and
of Q_risk along logged actions, ROC-AUC of C_H under a constant +x push policy, and the gate's
firing rate along a safe expert (a P-controller holding x = 0.5: every alarm is false).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np
import torch

from farm_safety_critic.calibration import firing_rate, roc_auc
from farm_safety_critic.safety_score import c_h
from farm_safety_critic.toy import STEP, point_mass_dataset, steps_to_failure
from farm_trainer.safety.train_qrisk import QRiskTrainConfig, train_qrisk
from farm_trainer.safety.train_world_model import WorldModelTrainConfig, train_world_model


def _push(obs: torch.Tensor) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0]]).expand(obs.shape[0], 2)


def _expert(obs: torch.Tensor) -> torch.Tensor:
    return torch.stack([(5.0 * (0.5 - obs[:, 0])).clamp(-1, 1), torch.zeros(len(obs))], 1)


def expert_states(n_episodes: int = 50, steps: int = 25, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    s = torch.tensor(
        np.stack([rng.uniform(-1, 0.8, n_episodes), rng.uniform(-1, 1, n_episodes)], 1)
    )
    out = []
    for _ in range(steps):
        out.append(s.clone())
        s = s + STEP * _expert(s)
    return torch.cat(out).float()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="toy_benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--horizon", type=int, default=3)
    p.add_argument("--gamma-risk", type=float, default=0.9)
    p.add_argument("--eps-safe", type=float, default=0.3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    train, heldout = (
        point_mass_dataset(300, seed=args.seed),
        point_mass_dataset(100, seed=args.seed + 1000),
    )
    wm_cfg = WorldModelTrainConfig(
        horizon=args.horizon,
        gamma_risk=args.gamma_risk,
        eps_safe=args.eps_safe,
        lr=1e-3,
        model={"latent_dim": 32, "mlp_dim": 64, "enc_dim": 64},
    )
    wm, wm_metrics = train_world_model(
        [train],
        args.steps,
        args.batch,
        args.seed,
        config=wm_cfg,
        eval_dataset=heldout,
        progress=False,
    )
    q_cfg = QRiskTrainConfig(
        hidden=64, lr=1e-3, tau=0.02, eps_safe=args.eps_safe, label_horizon=args.horizon
    )
    qr, q_metrics = train_qrisk(
        [train],
        args.steps,
        args.batch,
        args.seed,
        config=q_cfg,
        eval_dataset=heldout,
        progress=False,
    )
    x = np.linspace(-1.0, 0.99, 400)
    probe = torch.tensor(np.stack([x, np.zeros_like(x)], 1), dtype=torch.float32)
    label = steps_to_failure(x) <= args.horizon + 1
    expert = expert_states(seed=args.seed)
    with torch.no_grad():
        push_ch = c_h(wm, _push, probe, _push(probe), args.horizon, args.gamma_risk).numpy()
        push_q = qr.risk(probe, _push(probe)).numpy()
        exp_ch = c_h(wm, _expert, expert, _expert(expert), args.horizon, args.gamma_risk).numpy()
        exp_q = qr.risk(expert, _expert(expert)).numpy()
    keys = ("roc_auc", "precision", "recall", "firing_rate")
    report = {
        "args": vars(args),
        "world_model": {
            "heldout_logged_actions": {k: wm_metrics["heldout_eval"][k] for k in keys},
            "push_policy_roc_auc": roc_auc(push_ch, label),
            "expert_false_alarm_rate": firing_rate(exp_ch, args.eps_safe),
            "train_wall_time_s": wm_metrics["wall_time_s"],
        },
        "qrisk": {
            "heldout_logged_actions": {k: q_metrics["heldout_eval"][k] for k in keys},
            "push_policy_roc_auc": roc_auc(push_q, label),
            "expert_false_alarm_rate": firing_rate(exp_q, args.eps_safe),
            "train_wall_time_s": q_metrics["wall_time_s"],
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
