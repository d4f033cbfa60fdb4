"""Online stage: PPO fine-tuning on executed (safety-filtered) transitions."""

import farm_trainer.online.toy_env  # noqa: F401  (registers FARMToy/* for make_env)
from farm_safety_critic.filter import ActionFilter, FilterDecision, FilterError, PassThrough
from farm_trainer.online.cost import CostHook, CPOCostHook, LagrangianCostHook, P3OCostHook
from farm_trainer.online.evaluate import evaluate_policy
from farm_trainer.online.gae import compute_gae
from farm_trainer.online.loop import OnlineConfig, OnlineTrainer, resolve_init
from farm_trainer.online.ppo import PPOBatch, PPOConfig, PPOUpdater, ppo_clip_loss, value_loss

__all__ = [
    "ActionFilter",
    "CostHook",
    "FilterDecision",
    "FilterError",
    "CPOCostHook",
    "LagrangianCostHook",
    "P3OCostHook",
    "OnlineConfig",
    "OnlineTrainer",
    "PPOBatch",
    "PPOConfig",
    "PPOUpdater",
    "PassThrough",
    "compute_gae",
    "evaluate_policy",
    "ppo_clip_loss",
    "resolve_init",
    "value_loss",
]
