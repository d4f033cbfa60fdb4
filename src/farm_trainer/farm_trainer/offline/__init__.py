"""Uni-O4 offline stage: BC ensemble, IQL Q/V, Monte-Carlo V, OPE, multi-step offline PPO."""

from .bc_ensemble import build_ensemble, diversity_bc_loss, fit_bc_ensemble
from .data import OfflineDataError, Transitions, to_transitions
from .offline_ppo import OfflinePPO, OfflinePPOConfig, ppo_clip_objective, weighted_advantage
from .ope import OPE, DynamicsEnsemble, fit_dynamics, rollout_q_score
from .pipeline import OfflineConfig, OfflinePipeline, run_offline
from .q_fitting import DoubleQ, IQLCritic, expectile_loss, fit_iql
from .value_fitting import fit_value_mc, mc_returns

__all__ = [
    "OPE",
    "DoubleQ",
    "DynamicsEnsemble",
    "IQLCritic",
    "OfflineConfig",
    "OfflineDataError",
    "OfflinePPO",
    "OfflinePPOConfig",
    "OfflinePipeline",
    "Transitions",
    "build_ensemble",
    "diversity_bc_loss",
    "expectile_loss",
    "fit_bc_ensemble",
    "fit_dynamics",
    "fit_iql",
    "fit_value_mc",
    "mc_returns",
    "ppo_clip_objective",
    "rollout_q_score",
    "run_offline",
    "to_transitions",
    "weighted_advantage",
]
