"""PushSequence: the next few pushes of the task policy predicted and scored; HandMotion's fit;
FirstFired's precedence between a pi_rec gate and a holding one."""

import numpy as np
import pytest

from failurebench_sim.observation import FRAME_DIM, OBS_DIM
from farm_safety_critic.filter import FilterDecision, FirstFired
from farm_safety_critic.push_sequence import (
    HandMotion,
    HandMotionError,
    PushSequence,
    fit_hand_motion,
)
from farm_safety_critic.runout import RunoutGate, RunoutModel


def arm_rows(n=500, seed=0):
    """Hand displacement = 0.9 x the last one + 1 mm x the action (a lagging arm)."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((n, OBS_DIM))
    obs[:, 0:3] = rng.uniform(-0.1, 0.1, (n, 3))
    obs[:, FRAME_DIM : FRAME_DIM + 3] = obs[:, 0:3] - rng.uniform(-0.01, 0.01, (n, 3))
    act = rng.uniform(-1, 1, (n, 4))
    nxt = obs.copy()
    nxt[:, 0:3] += 0.9 * (obs[:, 0:3] - obs[:, FRAME_DIM : FRAME_DIM + 3]) + 1e-3 * act[:, :3]
    return obs, act, nxt


def test_hand_motion_recovers_the_arm_and_round_trips(tmp_path):
    obs, act, nxt = arm_rows()
    model = fit_hand_motion(obs, act, nxt)
    assert model.r2 > 0.999 and model.rows == len(obs)
    np.testing.assert_allclose(np.asarray(model.coef)[:6], np.r_[1e-3 * np.eye(3), 0.9 * np.eye(3)],
                               atol=1e-9)  # fmt: skip
    assert HandMotion.load(model.save(tmp_path / "hand.json")) == model
    (tmp_path / "bad.json").write_text('{"kind": "other"}')
    with pytest.raises(HandMotionError, match="not a hand-motion model"):
        HandMotion.load(tmp_path / "bad.json")
    with pytest.raises(HandMotionError, match="need"):
        fit_hand_motion(obs[:5], act[:5], nxt[:5])
    with pytest.raises(HandMotionError, match="7 x 3"):
        HandMotion(((0.0,) * 3,) * 6)


class Kick:
    """ObjectMotion stand-in: the object moves 1 cm per step along the action's x."""

    def next_observation(self, obs, actions):
        nxt = np.array(obs, dtype=np.float64, copy=True)
        nxt[:, 4 + FRAME_DIM : 7 + FRAME_DIM] = nxt[:, 4:7]
        nxt[:, 4] += 0.01 * np.asarray(actions)[:, 0]
        return nxt


STILL = HandMotion(((0.0,) * 3,) * 7)
MODEL = RunoutModel(1.0, (-0.1, -0.1), (0.1, 0.1), horizon=1)


def ball_at(x):
    obs = np.zeros((1, OBS_DIM), np.float32)
    obs[:, 4] = obs[:, 4 + FRAME_DIM] = x  # at rest
    return obs


def test_a_losing_sequence_of_pushes_is_seen_before_its_first_push_runs():
    """Harmless alone (the first push leaves the ball 2.5 cm from the border), the policy's next
    pushes carry it out: one step scores under 1, three steps over it."""
    push = np.array([[1.0, 0, 0, 0]], np.float32)
    policy = lambda x: np.tile(push, (len(x), 1))  # noqa: E731
    one = PushSequence(Kick(), STILL, policy, lookahead=1)
    three = PushSequence(Kick(), STILL, policy, lookahead=3)
    obs = ball_at(0.065)
    assert one.max_score(MODEL.scores, obs, push)[0] < 1.0
    assert three.max_score(MODEL.scores, obs, push)[0] > 1.0
    gate = RunoutGate(MODEL, None, OBS_DIM, 4, sequence=three)
    assert gate.scores(obs, push)[0] > 1.0 and gate.scores(obs, -push)[0] < 1.0
    with pytest.raises(ValueError, match="look-ahead"):
        PushSequence(Kick(), STILL, policy, lookahead=0)


class Fixed:
    def __init__(self, fire, action, score):
        self.fire, self.action, self.score = np.asarray(fire), action, np.asarray(score, float)
        self.eps_safe = 1.0

    def __call__(self, obs, proposed):
        acts = np.where(self.fire[:, None], self.action, proposed).astype(np.float32)
        return FilterDecision(acts, self.fire.copy(), self.score, 1.0)


def test_first_fired_takes_the_first_members_replacement_and_counts_who_decided():
    proposed = np.full((3, 4), 0.5, np.float32)
    rec = Fixed([True, False, False], -1.0, [2.0, 0.1, 0.1])
    hold = Fixed([True, True, False], 0.0, [3.0, 1.5, 0.2])
    d = FirstFired([rec, hold])(np.zeros((3, OBS_DIM)), proposed)
    np.testing.assert_array_equal(d.actions[:, 0], [-1.0, 0.0, 0.5])
    np.testing.assert_array_equal(d.replaced, [True, True, False])
    np.testing.assert_array_equal(d.score, [3.0, 1.5, 0.2])
    f = FirstFired([rec, hold])
    f(np.zeros((3, OBS_DIM)), proposed)
    assert f.last_stats == {"member0_fraction": pytest.approx(1 / 3),
                            "member1_fraction": pytest.approx(1 / 3)}  # fmt: skip
