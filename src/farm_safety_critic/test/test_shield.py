"""The hard shield: every limit acts when (and only when) it must, and counts it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from farm_safety_critic.shield import Shield, ShieldConfigError, ShieldLimits, load_limits

ROOT = Path(__file__).resolve().parents[3]
LIM = ShieldLimits(low=(-0.2, 0.4, 0.05), high=(0.2, 0.9, 0.3), max_step_m=0.02, max_speed_mps=1.0)
P = 33_333_333  # ns per 30 Hz tick


def test_targets_inside_every_limit_pass_unchanged():
    s = Shield(LIM)
    hand = np.array([0.0, 0.6, 0.1])
    t, g, rep = s.apply(hand + 0.01, 0.5, hand, P)
    np.testing.assert_array_equal(t, hand + 0.01)
    assert g == 0.5 and not rep.clipped and sum(s.counts.values()) == 0


def test_box_step_speed_and_gripper_limits_act_and_are_counted():
    s = Shield(LIM)
    hand = np.array([0.19, 0.6, 0.1])
    t, _, rep = s.apply(hand + [0.015, 0, 0], 0.0, hand, P)  # outside the box in x
    assert rep.acted == ("box",) and t[0] == pytest.approx(0.2)
    t, _, rep = s.apply(hand + [-0.1, 0, 0], 0.0, hand, 2 * P)  # 10 cm from the hand
    assert "step" in rep.acted and np.linalg.norm(t - hand) == pytest.approx(0.02)
    s2 = Shield(LIM)
    s2.apply(np.array([0.0, 0.6, 0.1]), 0.0, None, P)
    t, _, rep = s2.apply(np.array([0.0, 0.7, 0.1]), 0.0, None, 2 * P)  # 10 cm in one tick: 3 m/s
    assert rep.acted == ("speed",) and t[1] == pytest.approx(0.6 + 1.0 * P * 1e-9)
    _, g, rep = s2.apply(t, 7.0, None, 3 * P)
    assert g == 1.0 and rep.acted == ("gripper",)
    assert s.counts["box"] == 1 and s.counts["step"] == 1 and s2.counts["speed"] == 1


@pytest.mark.parametrize("bad", [[math.nan, 0.6, 0.1], [0.0, math.inf, 0.1], [0.0, 0.6]])
def test_non_finite_targets_hold_at_the_hand_or_the_last_target(bad):
    s = Shield(LIM)
    hand = np.array([0.0, 0.6, 0.1])
    t, g, rep = s.apply(bad, math.nan, hand, P)
    np.testing.assert_array_equal(t, hand)
    assert g == 0.0 and "nonfinite" in rep.acted and "gripper" in rep.acted
    t2, _, _ = s.apply(bad, 0.0, None, 2 * P)  # no hand either: the last target
    np.testing.assert_array_equal(t2, hand)
    t3, _, rep = Shield(LIM).apply(bad, 0.0, None, P)  # nothing known: nothing is sent
    assert t3 is None and rep.acted == ("nonfinite",)


def test_shield_yaml_has_the_twin_and_the_fr3_and_rejects_bad_boxes(tmp_path):
    twin = load_limits(ROOT / "config" / "shield.yaml", "twin", "FailureBench/BoundedPush-v0")
    fr3 = load_limits(ROOT / "config" / "shield.yaml", "fr3", "FailureBench/BoundedPush-v0")
    assert 0.0 <= twin.low[2] < twin.high[2] <= 0.5 and fr3.max_speed_mps < twin.max_speed_mps
    with pytest.raises(ShieldConfigError, match="no robot"):
        load_limits(ROOT / "config" / "shield.yaml", "ur5", "x")
    bad = tmp_path / "s.yaml"
    bad.write_text("twin:\n  default: {low: [0, 0, 0], high: [0, 1, 1]}\n")
    with pytest.raises(ShieldConfigError, match="below"):
        load_limits(bad, "twin", "x")
    bad.write_text("twin:\n  default: {low: [0, 0, 0], high: [1, 1, 1], max_step: 1}\n")
    with pytest.raises(ShieldConfigError, match="max_step"):
        load_limits(bad, "twin", "x")


def test_a_jump_of_the_arm_resets_the_speed_reference():
    """The twin's episode reset teleports the hand: the next target follows the hand (the step
    limit), not the last episode's target (the speed limit would drag it across the table)."""
    s = Shield(LIM)
    s.apply(np.array([0.1, 0.8, 0.1]), 0.0, np.array([0.1, 0.79, 0.1]), P)
    new_hand = np.array([-0.1, 0.5, 0.2])  # reset: 36 cm away
    t, _, rep = s.apply(new_hand + [0.01, 0, 0], 0.0, new_hand, 2 * P)
    np.testing.assert_allclose(t, new_hand + [0.01, 0, 0])
    assert not rep.clipped


def test_the_twins_shield_never_binds_the_benchmarks_own_actions():
    """Over episodes with resets and near-failure starts, a noisy expert's targets pass the
    twin's shield unchanged: the graph runs the benchmark's actions (a shield that binds there
    would change what PPO learns from)."""
    from failurebench_sim.command import action_to_target
    from failurebench_sim.datasets import make_policy, noisy_action
    from failurebench_sim.make import make_env

    task = "FailureBench/BoundedPush-v0"
    s = Shield(load_limits(ROOT / "config" / "shield.yaml", "twin", task))
    env, policy, rng = make_env(task), make_policy(task, "expert", 0), np.random.default_rng(0)
    k, n = 0, 0
    for ep in range(4):
        obs, _ = env.reset(seed=ep, options={"start": "near_failure" if ep % 2 else "default"})
        for _ in range(100):
            a = noisy_action(policy.act(obs), 1.0, rng)
            target, g = action_to_target(obs[:3], a)
            _, _, rep = s.apply(target, g, obs[:3], k * P)
            n += rep.clipped
            k += 1
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
    env.close()
    assert n == 0, f"the shield changed {n} of {k} benchmark commands"
