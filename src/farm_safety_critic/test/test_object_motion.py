"""ObjectMotion: the object's next displacement from state and action, and the gate that scores
the push before it runs."""

import numpy as np
import pytest
import torch

from failurebench_sim.observation import FRAME_DIM, OBS_DIM
from farm_safety_critic.object_motion import (
    ObjectMotion,
    ObjectMotionConfig,
    train_object_motion,
)
from farm_safety_critic.runout import RunoutGate, RunoutModel


def pushes(n=3000, seed=0):
    """The hand at the object; the object then moves by 1 cm x the action's xy."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((n, OBS_DIM), np.float32)
    obs[:, 4:6] = rng.uniform(0.3, 0.7, (n, 2))
    obs[:, 0:2] = obs[:, 4:6]
    obs[:, 4 + FRAME_DIM : 6 + FRAME_DIM] = obs[:, 4:6]  # at rest
    obs[:, FRAME_DIM : FRAME_DIM + 2] = obs[:, 0:2]
    act = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    nxt = obs.copy()
    nxt[:, 4:6] += 0.01 * act[:, :2]
    return obs, act, nxt


def test_it_learns_the_push_and_round_trips(tmp_path):
    obs, act, nxt = pushes()
    cfg = ObjectMotionConfig(act_dim=4, hidden=64, steps=1500)
    model, fit = train_object_motion(obs, act, nxt, cfg, seed=0)
    assert fit["r2"] > 0.95 and fit["near_rows"] == len(obs)
    test_obs, test_act, test_nxt = pushes(200, seed=1)
    np.testing.assert_allclose(model.displacement(test_obs, test_act),
                               test_nxt[:, 4:6] - test_obs[:, 4:6], atol=1.5e-3)  # fmt: skip
    loaded = ObjectMotion.load(model.save(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(loaded.displacement(test_obs, test_act),
                                  model.displacement(test_obs, test_act))  # fmt: skip


def test_the_gate_declines_the_push_that_would_send_the_object_out():
    obs, act, nxt = pushes()
    model, _ = train_object_motion(obs, act, nxt, ObjectMotionConfig(4, hidden=64, steps=1500))
    runout = RunoutModel(decay=0.9, low=(0.0, 0.0), high=(1.0, 1.0))  # a push rolls 9x further
    hold = lambda o: torch.zeros(o.shape[0], 4)  # noqa: E731
    gate = RunoutGate(runout, hold, OBS_DIM, 4, eps_safe=1.0, motion=model)
    o = np.repeat(pushes(1)[0], 2, axis=0)
    o[:, 4:6] = o[:, 0:2] = o[:, 4 + FRAME_DIM : 6 + FRAME_DIM] = [0.95, 0.5]  # 5 cm from x+
    o[:, FRAME_DIM : FRAME_DIM + 2] = o[:, 0:2]
    d = gate(o, np.array([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]], np.float32))  # out / back in
    assert d.replaced.tolist() == [True, False]  # 9 cm of roll against 4 cm of room
    assert d.score[0] == pytest.approx(9 * 0.01 / 0.04, rel=0.2)


def test_a_wrong_checkpoint_and_no_usable_rows_are_clear_errors(tmp_path):
    from farm_policies.checkpoint import CheckpointError, save_checkpoint

    save_checkpoint(tmp_path / "q.safetensors", {"qrisk": torch.nn.Linear(2, 1)}, {"kind": "x"})
    with pytest.raises(CheckpointError, match="object-motion"):
        ObjectMotion.load(tmp_path / "q.safetensors")
    obs, act, nxt = pushes(4)
    obs[:] = np.nan
    with pytest.raises(ValueError, match="finite training rows"):
        train_object_motion(obs, act, nxt, ObjectMotionConfig(4, hidden=8, steps=1))
