"""The run-out score: an object's remaining roll against the room left to the border."""

import numpy as np
import pytest
import torch

from failurebench_sim.observation import FRAME_DIM, OBS_DIM
from farm_safety_critic.runout import MAX_SCORE, RunoutError, RunoutGate, RunoutModel, fit_decay

MODEL = RunoutModel(decay=0.9, low=(0.0, 0.0), high=(1.0, 1.0))  # rolls 9 x its last step


def obs_of(pos, vel, hand=(5.0, 5.0, 0.0)):
    """Observations with the object at ``pos`` (xy) having moved ``vel`` over the last step."""
    o = np.zeros((len(pos), OBS_DIM), np.float32)
    o[:, 0:3] = hand
    o[:, 4:6] = pos
    o[:, 4 + FRAME_DIM : 6 + FRAME_DIM] = np.asarray(pos) - np.asarray(vel)
    return o


def test_the_score_is_the_roll_left_over_the_room_to_the_border_along_the_heading():
    pos = [[0.5, 0.5], [0.5, 0.5], [0.9, 0.5], [0.5, 0.5], [1.2, 0.5], [0.5, 0.9]]
    vel = [[0.01, 0.0], [0.1, 0.0], [0.01, 0.0], [0.0, 0.0], [0.0, 0.0], [0.02, 0.02]]
    s = MODEL.scores(obs_of(pos, vel))
    # roll 0.09 / room 0.5; 0.9 / 0.5; 0.09 / 0.1; at rest; already outside; diagonal: the
    # top border is 0.1 away in y, so 0.1 * sqrt(2) along the heading, roll 0.18 * sqrt(2)
    np.testing.assert_allclose(s[:4], [0.18, 1.8, 0.9, 0.0], rtol=1e-4)
    assert s[4] == MAX_SCORE
    assert s[5] == pytest.approx(1.8, rel=1e-4)


def test_the_gate_runs_recovery_only_where_the_object_would_leave():
    rec = lambda o: torch.full((o.shape[0], 4), 0.5)  # noqa: E731
    gate = RunoutGate(MODEL, rec, OBS_DIM, 4, eps_safe=1.0)
    o = obs_of([[0.5, 0.5], [0.5, 0.5]], [[0.01, 0.0], [0.1, 0.0]])
    proposed = np.zeros((2, 4), np.float32)
    d = gate(o, proposed)
    assert d.replaced.tolist() == [False, True]
    np.testing.assert_allclose(d.actions, [[0, 0, 0, 0], [0.5] * 4])
    o[0, 5] = np.nan  # an unreadable state is unsafe: recovery
    assert gate(o, proposed).replaced.tolist() == [True, True]


def test_fit_decay_recovers_the_factor_from_free_rolling_steps_only():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.2, 0.8, (400, 2))
    vel = rng.uniform(-0.02, 0.02, (400, 2))
    obs, nxt = obs_of(pos, vel), obs_of(pos + 0.95 * vel, 0.95 * vel)
    at = np.c_[pos[:50], np.zeros(50)]  # the hand at the object: a kick, left out of the fit
    kicked = obs_of(pos[:50], vel[:50], hand=at[0]), obs_of(pos[:50], 3 * vel[:50], hand=at[0])
    kicked[0][:, 0:3], kicked[1][:, 0:3] = at, at
    obs, nxt = np.r_[obs, kicked[0]], np.r_[nxt, kicked[1]]
    decay, rows = fit_decay(obs, nxt)
    assert decay == pytest.approx(0.95, abs=1e-5) and rows <= 400
    with pytest.raises(RunoutError, match="free-rolling"):
        fit_decay(obs[:10], nxt[:10])


def test_the_model_round_trips_and_refuses_other_files(tmp_path):
    path = MODEL.save(tmp_path / "runout.json")
    assert RunoutModel.load(path) == MODEL
    (tmp_path / "other.json").write_text('{"kind": "farm_qrisk"}')
    with pytest.raises(RunoutError, match="not a run-out model"):
        RunoutModel.load(tmp_path / "other.json")
    with pytest.raises(RunoutError, match="decay"):
        RunoutModel(decay=1.5, low=(0, 0), high=(1, 1))


def test_a_border_that_is_no_exit_stops_the_object_instead():
    walled = RunoutModel(decay=0.9, low=(0.0, 0.0), high=(1.0, 1.0), exits=(0, 1, 2))  # y+ wall
    o = obs_of([[0.5, 0.9], [0.9, 0.5]], [[0.0, 0.1], [0.1, 0.0]])
    np.testing.assert_allclose(walled.scores(o), [0.0, 9.0], rtol=1e-4)
    with pytest.raises(RunoutError, match="exits"):
        RunoutModel(decay=0.5, low=(0, 0), high=(1, 1), exits=(4,))


def test_a_ball_that_keeps_its_speed_is_scored_over_the_horizon():
    rolling = RunoutModel(decay=1.0, low=(0.0, 0.0), high=(1.0, 1.0), horizon=30)
    o = obs_of([[0.5, 0.5]], [[0.003, 0.0]])  # 3 mm per step, 50 cm from x+
    assert rolling.scores(o)[0] == pytest.approx(0.09 / 0.5, rel=1e-4)
    assert RunoutModel(1.0, (0, 0), (1, 1), horizon=200).scores(o)[0] == pytest.approx(
        1.2, rel=1e-4
    )
    forever = RunoutModel(decay=1.0, low=(0.0, 0.0), high=(1.0, 1.0))  # no horizon: it leaves
    assert forever.scores(o)[0] == MAX_SCORE
    assert forever.scores(obs_of([[0.5, 0.5]], [[0.0, 0.0]]))[0] == 0.0  # at rest it stays


def test_bounces_do_not_pull_the_fitted_decay_down():
    rng = np.random.default_rng(1)
    pos, vel = rng.uniform(0.2, 0.8, (300, 2)), rng.uniform(0.002, 0.02, (300, 2))
    nxt_vel = vel.copy()
    nxt_vel[:20] *= -0.1  # 20 bounces off a wall
    decay, _ = fit_decay(obs_of(pos, vel), obs_of(pos + nxt_vel, nxt_vel))
    assert decay == pytest.approx(1.0)


def test_an_unreadable_position_in_either_frame_scores_unsafe():
    o = obs_of([[0.5, 0.5], [0.5, 0.5]], [[0.01, 0.0], [0.01, 0.0]])
    o[0, 4 + FRAME_DIM] = np.nan  # the previous frame
    o[1, 4] = np.inf  # the current one
    assert MODEL.scores(o).tolist() == [MAX_SCORE, MAX_SCORE]


def test_a_wall_turns_the_motion_back_and_the_other_axis_still_reaches_its_exit():
    walled = RunoutModel(decay=1.0, low=(0.0, 0.0), high=(1.0, 1.0), exits=(0, 1, 2), horizon=10)
    # heading for the y+ wall (0.02 away) and for the x+ exit (0.1 away, 2 steps at 0.05)
    o = obs_of([[0.9, 0.98], [0.5, 0.5]], [[0.05, 0.02], [0.0, -0.05]])
    room = walled.distance_to_border(o)
    np.testing.assert_allclose(room, [2 * np.hypot(0.05, 0.02), 0.5], rtol=1e-6)
    on_border = obs_of([[1.0, 0.5], [1.0, 0.5]], [[0.01, 0.0], [-0.01, 0.0]])
    assert walled.scores(on_border)[0] == MAX_SCORE and walled.scores(on_border)[1] < 1


def test_the_model_keeps_its_fields_canonical():
    m = RunoutModel(decay=0.5, low=(0, 0), high=(1, 1), exits=[0, 1], horizon=3.0)
    assert m.exits == (0, 1) and isinstance(m.horizon, int) and hash(m)
    with pytest.raises(RunoutError, match="whole number"):
        RunoutModel(decay=0.5, low=(0, 0), high=(1, 1), horizon=2.5)
