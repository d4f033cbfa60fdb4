"""Task and recovery policies (tanh-Gaussian actor, value), safetensors checkpoints, and the policy inference node."""

from farm_policies.actor import ObsNormalizer, TanhGaussianActor, ValueNet, build_module
from farm_policies.checkpoint import (
    CheckpointError,
    instantiate,
    load_actor_value,
    load_checkpoint,
    load_policy,
    save_checkpoint,
    save_policy,
)
from farm_policies.networks import mlp
from farm_policies.policy import Policy

__all__ = [
    "CheckpointError",
    "ObsNormalizer",
    "Policy",
    "TanhGaussianActor",
    "ValueNet",
    "build_module",
    "instantiate",
    "load_actor_value",
    "load_checkpoint",
    "load_policy",
    "mlp",
    "save_checkpoint",
    "save_policy",
]
