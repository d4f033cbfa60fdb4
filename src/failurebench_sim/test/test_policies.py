"""Scripted expert / recovery policies and the reward rules they expose (few seeds: fast)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import failurebench_sim
from failurebench_sim import FailureBenchError, policies
from failurebench_sim.evaluate import evaluate, run_episode

torch.set_num_threads(1)
NOISE = 0.5  # the documented noisy-expert sigma (README)


def test_get_validates_arguments():
    with pytest.raises(FailureBenchError, match="unknown env id"):
        policies.get("push-v3", "expert")
    with pytest.raises(FailureBenchError, match="kind"):
        policies.get(failurebench_sim.TASK_IDS[0], "teleop")
    pol = policies.get(failurebench_sim.TASK_IDS[0], "expert")
    with pytest.raises(FailureBenchError, match="shape"):
        pol.act(np.zeros(18))
    a = pol.act(np.zeros(39))
    assert a.shape == (4,) and np.all(np.abs(a) <= 1.0)


@pytest.mark.parametrize("tid", failurebench_sim.TASK_IDS)
def test_expert_succeeds_safely_and_noise_causes_failures(tid):
    expert = evaluate(tid, "expert", 0.0, episodes=4, seed0=100)
    assert expert["success_rate"] >= 0.75 and expert["failure_rate"] == 0.0
    noisy = evaluate(tid, "expert", NOISE, episodes=10, seed0=100)
    assert noisy["failure_rate"] > 0.0


@pytest.mark.parametrize("tid", failurebench_sim.TASK_IDS)
def test_recovery_keeps_near_failure_start_safe(tid):
    res = evaluate(tid, "recovery", 0.0, episodes=3, seed0=0, start="near_failure")
    assert res["failure_rate"] == 0.0


class _Saboteur:
    """Push expert aimed at a point outside the boundary: drives the puck into the failure set."""

    def reset(self):
        pass

    def act(self, obs):
        return policies.drag_to(obs, np.array([0.4, obs[5]])).astype(np.float32)


class _Idle:
    def reset(self):
        pass

    def act(self, obs):
        return np.zeros(4, dtype=np.float32)


def test_success_outscores_idling_and_failure_never_pays():
    tid = failurebench_sim.TASK_IDS[0]
    env = gym.make(tid)
    expert = policies.get(tid, "expert")
    for seed in (0, 1):
        good = run_episode(env, expert, 0.0, seed)
        idle = run_episode(env, _Idle(), 0.0, seed)
        bad = run_episode(env, _Saboteur(), 0.0, seed)
        assert good["success"] == 1.0 and idle["success"] == 0.0
        assert bad["failure"] == 1.0 and bad["steps"] < 200
        assert good["return"] > idle["return"] and good["return"] > bad["return"]
    obs, _ = env.reset(seed=0)
    rewards, saboteur = [], _Saboteur()
    while True:
        obs, r, term, trunc, info = env.step(saboteur.act(obs))
        rewards.append(r)
        if term or trunc:
            break
    assert term and rewards[-1] == 0.0 and all(0.0 <= r <= 1.0 for r in rewards)
    env.close()
