"""Disturbed Push: the vase moves during the episode, the observation shows it, the expert copes."""

import gymnasium as gym
import numpy as np

import failurebench_sim  # noqa: F401
from failurebench_sim import policies
from failurebench_sim.datasets import DEMO_NOISE
from failurebench_sim.normalize import reference

TASK = "FailureBench/DisturbedPush-v0"


def _episode(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    policy.reset()
    vases, failed, success = [obs[11:13].copy()], False, False
    while True:
        obs, _, term, trunc, info = env.step(policy.act(obs))
        vases.append(obs[11:13].copy())
        failed |= term
        success |= info["success"]
        if term or trunc:
            return np.array(vases), failed, success, env.unwrapped


def test_the_vase_moves_away_from_puck_and_hand_and_the_expert_still_succeeds():
    env = gym.make(TASK)
    policy = policies.get(TASK, "expert")
    moved = successes = 0
    for seed in range(12):
        vases, failed, success, base = _episode(env, policy, seed)
        jumps = np.flatnonzero(np.linalg.norm(np.diff(vases, axis=0), axis=1) > 1e-9)
        assert len(jumps) == base.disturbances <= 2  # only the scheduled moves, each one step
        moved += bool(len(jumps))
        successes += success and not failed
    assert moved >= 6 and successes >= 11
    env.close()


def test_seeded_episodes_repeat_and_the_task_has_its_tables():
    env = gym.make(TASK)
    policy = policies.get(TASK, "expert")
    a, *_ = _episode(env, policy, 3)
    b, *_ = _episode(env, policy, 3)
    np.testing.assert_array_equal(a, b)
    assert TASK in DEMO_NOISE and reference(TASK).expert > 100
    assert policies.get(TASK, "recovery") is not None
    env.close()
