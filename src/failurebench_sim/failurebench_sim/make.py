"""The one env-id resolver and env factory (FailureBench ids, MetaWorld shorthand, any gym id)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

NAMESPACE = "FailureBench"
METAWORLD_PREFIX = "metaworld/"


def resolve_env_id(task: str) -> str:
    """``BoundedPush-v0`` -> ``FailureBench/BoundedPush-v0``; namespaced ids pass through."""
    return task if "/" in task else f"{NAMESPACE}/{task}"


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """One env. ``metaworld/push-v3`` is MetaWorld MT1; FailureBench ids are registered by
    importing ``failurebench_sim``; any other registered gym id (e.g. ``FARMToy/*`` from
    ``farm_trainer.online``) is made as it is."""
    import failurebench_sim  # noqa: F401  (registers the FailureBench ids)

    env_id = resolve_env_id(env_id)
    if env_id.lower().startswith(METAWORLD_PREFIX):
        return gym.make("Meta-World/MT1", env_name=env_id.split("/", 1)[1], **kwargs)
    return gym.make(env_id, **kwargs)
