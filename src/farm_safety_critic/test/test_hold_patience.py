"""HoldPatience: a holding gate hands over to an escape action after `patience` holds in a row."""

import numpy as np
import pytest
import torch

from farm_safety_critic.decider import RecoveryDecider
from farm_safety_critic.gate import GateInputError, ScoreGate
from farm_safety_critic.hold_patience import HoldPatience


class FirstObsScore(ScoreGate):
    def score(self, obs, proposed):
        return obs[:, 0]


def _hold_gate():
    return FirstObsScore(lambda o: torch.zeros(o.shape[0], 2), eps_safe=0.5, obs_dim=2, act_dim=2)


def _escape():
    return RecoveryDecider(lambda o: torch.full((o.shape[0], 2), -1.0), eps_safe=0.5, act_dim=2)


def test_the_recovery_takes_over_after_patience_holds_then_the_arm_holds_again():
    f = HoldPatience(_hold_gate(), patience=2, escape_steps=2, escape=_escape())
    risky, safe = np.array([[1.0, 0]], np.float32), np.array([[0.0, 0]], np.float32)
    prop = np.array([[0.3, 0.3]], np.float32)
    got = [f(risky, prop).actions[0, 0] for _ in range(7)]
    assert got == [0, 0, -1, -1, 0, 0, -1]  # hold, hold, escape x2, hold x2, escape
    d = f(safe, prop)
    assert not d.replaced[0] and d.actions[0, 0] == pytest.approx(0.3)
    assert [f(risky, prop).actions[0, 0] for _ in range(3)] == [0, 0, -1]  # a safe step resets
    assert f.last_stats["escaped_fraction"] == pytest.approx(4 / 10)


def test_a_safe_step_cancels_an_escape_and_a_new_row_count_or_reset_starts_over():
    f = HoldPatience(_hold_gate(), patience=1, escape_steps=3, escape=_escape())
    risky, safe = np.array([[1.0, 0]], np.float32), np.array([[0.0, 0]], np.float32)
    prop = np.array([[0.3, 0.3]], np.float32)
    assert [f(risky, prop).actions[0, 0] for _ in range(3)] == [0, -1, -1]  # hold, escape x2
    f(safe, prop)  # the escape's third step is cancelled
    assert [f(risky, prop).actions[0, 0] for _ in range(2)] == [0, -1]
    two = np.repeat(risky, 2, axis=0)
    assert f(two, np.repeat(prop, 2, axis=0)).actions[:, 0].tolist() == [0, 0]  # 2 rows: anew
    f.reset()
    assert f(risky, prop).actions[0, 0] == 0 and f.held.tolist() == [1]
    assert np.isnan(HoldPatience(None).eps_safe)
    with pytest.raises(GateInputError, match="adjust"):
        HoldPatience(None)(risky, prop)


def test_rows_count_separately_and_the_task_escape_is_not_a_replacement():
    f = HoldPatience(_hold_gate(), patience=1, escape_steps=1)  # escape: the task's own action
    obs = np.array([[1.0, 0], [0.0, 0]], np.float32)
    prop = np.array([[0.3, 0.3], [0.2, 0.2]], np.float32)
    d1, d2 = f(obs, prop), f(obs, prop)
    assert d1.replaced.tolist() == [True, False] and d1.actions[0].tolist() == [0, 0]
    assert d2.replaced.tolist() == [False, False]
    np.testing.assert_allclose(d2.actions, prop)
    assert np.isfinite(d2.score).all() and d2.threshold == 0.5


def test_unscorable_rows_keep_the_fallback_and_bad_settings_are_refused():
    f = HoldPatience(_hold_gate(), patience=1, escape_steps=3, escape=_escape())
    nan = np.array([[np.nan, 0]], np.float32)
    for _ in range(4):
        d = f(nan, np.array([[0.3, 0.3]], np.float32))
        assert d.replaced[0] and d.actions[0].tolist() == [0, 0]
    with pytest.raises(GateInputError):
        HoldPatience(_hold_gate(), patience=0)
    with pytest.raises(GateInputError):
        HoldPatience(_hold_gate(), escape_steps=0)


def test_the_registry_method_wraps_the_holding_any_of_gate_with_pi_rec(tmp_path):
    from farm_policies import TanhGaussianActor, save_policy
    from farm_safety_critic.gate import AnyOfGate
    from farm_safety_critic.qrisk import QRisk, QRiskConfig
    from farm_safety_critic.world_model import WorldModel, WorldModelConfig
    from farm_trainer.methods import Artifacts, MethodParams, calibrates_anyof, filter_factory

    WorldModel(WorldModelConfig(4, 4, latent_dim=8, mlp_dim=8, enc_dim=8)).save(tmp_path / "wm.st")
    QRisk(QRiskConfig(4, 4, hidden=8)).save(tmp_path / "q.st")
    rec = TanhGaussianActor(4, 4)
    with torch.no_grad():  # a fresh actor's mean is 0 (holding still): make pi_rec move
        for w in rec.parameters():
            w.normal_()
    save_policy(tmp_path / "rec.st", rec)
    art = Artifacts(world_model=tmp_path / "wm.st", qrisk=tmp_path / "q.st",
                    recovery=tmp_path / "rec.st")  # fmt: skip
    params = MethodParams(eps_safe=1e-9, qrisk_eps_safe=1e-9, hold_patience=1, escape_steps=1)
    f = filter_factory("farm-qrisk-cal-hold-rec", art, params)(lambda o: torch.zeros(len(o), 4))
    assert calibrates_anyof("farm-qrisk-cal-hold-rec")
    assert isinstance(f, HoldPatience) and isinstance(f.gate, AnyOfGate)
    obs, prop = np.zeros((2, 4), np.float32), np.full((2, 4), 0.7, np.float32)
    first, second = f(obs, prop), f(obs, prop)  # every row fires: hold, then pi_rec
    assert first.replaced.all() and not first.actions.any()
    assert second.replaced.all() and second.actions.any() and np.abs(second.actions).max() <= 1
