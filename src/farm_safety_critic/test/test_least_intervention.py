"""LeastInterventionFilter: a fired action is shrunk to the largest part the gate accepts."""

import numpy as np
import pytest
import torch

from farm_safety_critic.gate import GateInputError, ScoreGate
from farm_safety_critic.least_intervention import LeastInterventionFilter


class MotionNormScore(ScoreGate):
    """Risk = the obs's first entry times the norm of the motion part (first 2 of 3 dims)."""

    def score(self, obs, proposed):
        return obs[:, 0] * proposed[:, :2].norm(dim=1)


def _filter(eps=1.0):
    hold = lambda obs: torch.zeros(obs.shape[0], 3)  # noqa: E731
    gate = MotionNormScore(hold, eps_safe=eps, obs_dim=2, act_dim=3)
    return LeastInterventionFilter(gate, fractions=(0.25, 0.75, 0.5), motion_dims=2)


def test_fired_rows_get_the_largest_accepted_fraction_and_keep_the_gripper():
    f = _filter(eps=1.0)
    obs = np.array([[0.5, 0], [1.6, 0], [3.0, 0], [10.0, 0]], np.float32)
    prop = np.array([[1.0, 0.0, 0.7]] * 4, np.float32)
    d = f(obs, prop)
    # scores 0.5 (kept), 1.6 (0.75 -> 1.2 > 1, 0.5 -> 0.8 ok), 3.0 (0.25 -> 0.75 ok), 10 (none)
    assert d.replaced.tolist() == [False, True, True, True]
    np.testing.assert_allclose(d.score, [0.5, 1.6, 3.0, 10.0], rtol=1e-6)
    np.testing.assert_allclose(
        d.actions, [[1.0, 0, 0.7], [0.5, 0, 0.7], [0.25, 0, 0.7], [0, 0, 0]], rtol=1e-6
    )
    assert f.last_stats["shrunk_fraction"] == pytest.approx(2 / 3)


def test_the_stats_exist_before_anything_fires():
    f = _filter(eps=1.0)
    assert f.last_stats == {"shrunk_fraction": 0.0}  # the loop logs the same columns every update
    f(np.array([[0.1, 0]], np.float32), np.array([[1.0, 0, 0]], np.float32))
    assert f.last_stats == {"shrunk_fraction": 0.0}


def test_unscorable_rows_keep_the_gates_fallback_and_nothing_fired_is_unchanged():
    f = _filter(eps=1.0)
    obs = np.array([[np.nan, 0], [0.1, 0]], np.float32)
    prop = np.array([[1.0, 0, 0.5], [1.0, 0, 0.5]], np.float32)
    d = f(obs, prop)
    assert d.replaced.tolist() == [True, False]
    np.testing.assert_array_equal(d.actions, [[0, 0, 0], [1.0, 0, 0.5]])
    assert np.isfinite(d.actions).all()


def test_bad_fractions_are_refused():
    gate = MotionNormScore(None, eps_safe=1.0, obs_dim=2, act_dim=3)
    for bad in ((), (1.0,), (0.0, 0.5), (-0.5,)):
        with pytest.raises(GateInputError, match="fractions"):
            LeastInterventionFilter(gate, bad)
    with pytest.raises(GateInputError, match="motion_dims"):
        LeastInterventionFilter(gate, (0.5,), motion_dims=4)


def test_the_registry_method_wraps_the_holding_any_of_gate(tmp_path):
    from farm_safety_critic.gate import AnyOfGate
    from farm_safety_critic.qrisk import QRisk, QRiskConfig
    from farm_safety_critic.world_model import WorldModel, WorldModelConfig
    from farm_trainer.methods import Artifacts, MethodParams, calibrates_anyof, filter_factory

    wm = WorldModel(WorldModelConfig(4, 4, latent_dim=8, mlp_dim=8, enc_dim=8))
    wm.save(tmp_path / "wm.safetensors")
    QRisk(QRiskConfig(4, 4, hidden=8)).save(tmp_path / "q.safetensors")
    art = Artifacts(world_model=tmp_path / "wm.safetensors", qrisk=tmp_path / "q.safetensors")
    policy = lambda obs: torch.zeros(obs.shape[0], 4)  # noqa: E731
    f = filter_factory("farm-qrisk-cal-least", art,
                       MethodParams(eps_safe=1e-9, qrisk_eps_safe=1e-9))(policy)  # fmt: skip
    assert calibrates_anyof("farm-qrisk-cal-least")
    assert isinstance(f, LeastInterventionFilter) and isinstance(f.gate, AnyOfGate)
    obs, prop = np.zeros((3, 4), np.float32), np.full((3, 4), 0.7, np.float32)
    d = f(obs, prop)  # C_H and Q-risk >= 0 > eps: every row fires, no part is accepted: hold
    assert d.replaced.all() and np.array_equal(d.actions, np.zeros((3, 4), np.float32))
