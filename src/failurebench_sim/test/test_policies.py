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
    # 5 consecutive seeds that include a known noisy failure (seed 16 / 21, see README table)
    seed0 = {"FailureBench/FragilePushWall-v0": 12, "FailureBench/ObstructedPush-v0": 17}
    noisy = evaluate(tid, "expert", NOISE, episodes=5, seed0=seed0.get(tid, 0))
    assert noisy["failure_rate"] > 0.0


def test_push_wall_expert_passes_the_end_face_at_its_gap():
    """The expert's path runs ``WALL_GAP`` (8 mm) beside the wall's free end face, within 2 mm."""
    tid = "FailureBench/FragilePushWall-v0"
    env, pol = gym.make(tid), policies.get(tid, "expert")
    obs, _ = env.reset(seed=3)
    pol.reset()
    closest, success = np.inf, False
    for _ in range(200):
        obs, _, term, trunc, info = env.step(pol.act(obs))
        closest, success = min(closest, info["failure_distance"]), success or info["success"]
        if term or trunc:
            break
    env.close()
    assert success and not term
    assert policies.WALL_GAP - 0.002 < closest < policies.WALL_GAP + 0.002


@pytest.mark.parametrize("tid", failurebench_sim.TASK_IDS)
def test_recovery_keeps_near_failure_start_safe(tid):
    res = evaluate(tid, "recovery", 0.0, episodes=3, seed0=0, start="near_failure")
    # a ball already rolling out is not always catchable (about 30 % over 50 seeds, README)
    assert res["failure_rate"] <= (0.34 if "Soccer" in tid else 0.0)


class _Saboteur:
    """Lowers the open hand 5 cm to the puck's -x side, with one finger in line with the puck,
    and sweeps +x: pushes the puck out of the boundary."""

    def reset(self):
        pass

    def act(self, obs):
        hand, puck = obs[:3], obs[4:7]
        if hand[0] > puck[0] - 0.03 and hand[2] > 0.07:  # still above: go to the -x side
            target = np.r_[puck[0] - 0.05, puck[1] - 0.045, 0.15]
        elif hand[2] > 0.07:
            target = np.r_[puck[0] - 0.05, puck[1] - 0.045, 0.05]
        else:
            target = np.r_[hand[0] + 0.1, puck[1] - 0.045, 0.05]
        return np.clip(np.r_[10.0 * (target - hand), -1.0], -1, 1).astype(np.float32)


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
