"""Labels from the estimated state (the robot's) agree with the sim's on true states."""

from __future__ import annotations

import numpy as np
import pytest

from failurebench_sim.datasets import make_policy, noisy_action
from failurebench_sim.labels import StateLabeler
from failurebench_sim.make import make_env


@pytest.mark.parametrize("task", ["FailureBench/BoundedPush-v0", "FailureBench/FragilePushWall-v0"])
def test_estimated_labels_match_the_sims_on_true_states(task):
    env, lab = make_env(task), StateLabeler(task)
    policy, rng = make_policy(task, "expert", 0), np.random.default_rng(0)
    cost_ok, success_ok, reward_err, failures = [], [], [], 0
    for ep in range(8):  # near-failure starts and heavy noise: failures happen
        obs, _ = env.reset(seed=ep, options={"start": "near_failure"})
        lab.begin(obs)
        for _ in range(120):
            a = noisy_action(policy.act(obs), 1.0, rng)
            obs, r, term, trunc, info = env.step(a)
            reward, cost, success = lab.label(a, obs)
            cost_ok.append(cost == info["cost"])
            success_ok.append(success == info["success"])
            reward_err.append(abs(reward - r))
            failures += info["cost"] > 0
            if term or trunc:
                break
    env.close()
    lab.close()
    assert failures >= 1  # the predicate was exercised
    assert np.mean(cost_ok) >= 0.99 and np.mean(success_ok) >= 0.99
    assert np.median(reward_err) < 0.05  # the shaping terms depend on the settled fingers
