"""FailureBench: MetaWorld manipulation tasks with intervention-requiring failures, scripted experts, datasets, and the MuJoCo twin node."""

from __future__ import annotations

import gymnasium as gym

from failurebench_sim.core import MAX_EPISODE_STEPS, FailureBenchEnv, FailureBenchError

TASK_IDS: list[str] = [
    "FailureBench/BoundedPush-v0",
    "FailureBench/BoundedSoccer-v0",
    "FailureBench/FragilePushWall-v0",
    "FailureBench/ObstructedPush-v0",
]
# twins of the paper's real-robot tasks that FailureBench's four do not cover (not benchmarked)
EXTRA_TASK_IDS: list[str] = ["FailureBench/DisturbedPush-v0"]
_ENTRY_POINTS = {
    "FailureBench/BoundedPush-v0": "failurebench_sim.tasks:BoundedPushEnv",
    "FailureBench/BoundedSoccer-v0": "failurebench_sim.tasks:BoundedSoccerEnv",
    "FailureBench/FragilePushWall-v0": "failurebench_sim.tasks:FragilePushWallEnv",
    "FailureBench/ObstructedPush-v0": "failurebench_sim.tasks:ObstructedPushEnv",
    "FailureBench/DisturbedPush-v0": "failurebench_sim.tasks:DisturbedPushEnv",
}

for _id in TASK_IDS + EXTRA_TASK_IDS:
    if _id not in gym.registry:
        # The env truncates at its own ``time_limit`` (default MAX_EPISODE_STEPS); the spec
        # states the same number so wrappers and callers can read it.
        gym.register(
            id=_id,
            entry_point=_ENTRY_POINTS[_id],
            max_episode_steps=MAX_EPISODE_STEPS,
            disable_env_checker=True,
        )

__all__ = [
    "TASK_IDS",
    "EXTRA_TASK_IDS",
    "MAX_EPISODE_STEPS",
    "FailureBenchEnv",
    "FailureBenchError",
]
