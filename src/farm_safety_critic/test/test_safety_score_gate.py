"""C_H (Eq. 10) on a hand-built model and the Eq. 11 gate decision."""

import numpy as np
import pytest
import torch

from farm_safety_critic.gate import GateInputError, SafetyGate, ScoreGate
from farm_safety_critic.safety_score import c_h, c_h_terms, discount_sum
from farm_safety_critic.world_model import WorldModel, WorldModelConfig

torch.set_num_threads(1)
OBS_DIM, ACT_DIM = 3, 2


class StepCounterModel(WorldModel):
    """Latent z[0] counts rollout steps; C(z, a) = 1 exactly at step ``fire_at``.

    At step 0 it also fires when the proposed action a_0[0] > 0.5 (checks a_0 = proposed).
    """

    def __init__(self, fire_at: int = 2) -> None:
        super().__init__(WorldModelConfig(OBS_DIM, ACT_DIM, latent_dim=8, mlp_dim=8, enc_dim=8))
        self.fire_at = fire_at

    def encode(self, obs):
        return torch.zeros(obs.shape[0], 8)

    def next(self, z, a):
        return z + torch.nn.functional.one_hot(torch.tensor(0), 8).float()

    def constraint(self, z, a):
        step = z[:, 0]
        return ((step == self.fire_at) | ((step == 0) & (a[:, 0] > 0.5))).float()

    def decode_raw(self, z):
        return z[:, :OBS_DIM] + 100.0


class RecordingPolicy:
    def __init__(self, value=0.0):
        self.calls, self.value = [], value

    def __call__(self, obs):
        self.calls.append(obs.clone())
        return torch.full((obs.shape[0], ACT_DIM), self.value)


def test_c_h_fires_at_step_two_discounted():
    model, pi = StepCounterModel(fire_at=2), RecordingPolicy()
    obs, a0 = torch.zeros(4, OBS_DIM), torch.zeros(4, ACT_DIM)
    terms = c_h_terms(model, pi, obs, a0, horizon=3)
    assert terms.shape == (4, 4) and terms[:, 0].tolist() == [0, 0, 1, 0]
    # the task policy runs on decoded observations S(z_i), i = 1..H (H calls)
    assert len(pi.calls) == 3 and [c[0, 0].item() for c in pi.calls] == [101.0, 102.0, 103.0]
    assert torch.allclose(
        c_h(model, pi, obs, a0, horizon=3, gamma_risk=0.5), torch.full((4,), 0.25)
    )
    # a horizon too short to reach step 2 sees nothing; gamma_risk = 1 sums undiscounted
    assert c_h(model, pi, obs, a0, horizon=1, gamma_risk=0.5).tolist() == [0, 0, 0, 0]
    assert c_h(model, pi, obs, a0, horizon=3, gamma_risk=1.0)[0].item() == 1.0


def test_c_h_uses_proposed_action_at_step_zero():
    model, pi = StepCounterModel(fire_at=99), RecordingPolicy()
    a0 = torch.tensor([[0.9, 0.0], [0.1, 0.0]])
    assert c_h(model, pi, torch.zeros(2, OBS_DIM), a0, 3, 0.5).tolist() == [1.0, 0.0]


def test_discount_sum():
    terms = torch.tensor([[1.0], [1.0], [1.0]])
    assert discount_sum(terms, 0.5).item() == pytest.approx(1.75)


def _gate(eps, fire_at=2):
    rec = lambda obs: torch.full((obs.shape[0], ACT_DIM), -0.5)  # noqa: E731
    return SafetyGate(
        StepCounterModel(fire_at), RecordingPolicy(), rec, horizon=3, gamma_risk=0.5, eps_safe=eps
    )


def test_gate_recovery_below_eps_task_above():
    obs, prop = np.zeros((2, OBS_DIM), np.float32), np.full((2, ACT_DIM), 0.3, np.float32)
    d = _gate(eps=0.2)(obs, prop)  # C_H = 0.25 > 0.2 -> recovery
    assert d.replaced.tolist() == [True, True] and np.allclose(d.actions, -0.5)
    assert np.allclose(d.score, 0.25) and d.threshold == 0.2
    d = _gate(eps=0.3)(obs, prop)  # C_H = 0.25 <= 0.3 -> task
    assert d.replaced.tolist() == [False, False] and np.allclose(d.actions, 0.3)
    d = _gate(eps=0.25)(obs, prop)  # equality keeps the task action (Eq. 11: <= eps_safe)
    assert not d.replaced.any()


class FirstObsScore(ScoreGate):
    def score(self, obs, proposed):
        return obs[:, 0]


def test_score_gate_mixed_batch_and_nan_obs():
    rec = lambda obs: torch.full((obs.shape[0], 2), -1.0)  # noqa: E731
    gate = FirstObsScore(
        rec, eps_safe=0.5, obs_dim=2, act_dim=2, fallback_action=np.array([0.0, 0.1])
    )
    obs = np.array([[0.2, 0], [0.9, 0], [np.nan, 0], [0.1, 0]], np.float32)
    prop = np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [np.inf, 0]], np.float32)
    d = gate(obs, prop)
    assert d.replaced.tolist() == [False, True, True, True]
    assert d.score[0] == pytest.approx(0.2) and np.isinf(d.score[2:]).all()
    assert np.allclose(d.actions, [[0.1, 0.1], [-1, -1], [0, 0.1], [0, 0.1]])
    assert np.isfinite(d.actions).all() and d.actions.dtype == np.float32


def test_score_gate_nan_recovery_output_falls_back():
    rec = lambda obs: torch.full((obs.shape[0], 2), float("nan"))  # noqa: E731
    d = FirstObsScore(rec, 0.5, 2, 2)(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))
    assert d.replaced.tolist() == [True] and d.actions.tolist() == [[0.0, 0.0]]


def test_gate_rejects_bad_shapes():
    gate = _gate(eps=0.3)
    with pytest.raises(GateInputError):
        gate(np.zeros((2, OBS_DIM + 1)), np.zeros((2, ACT_DIM)))
    with pytest.raises(GateInputError):
        gate(np.zeros((2, OBS_DIM)), np.zeros((3, ACT_DIM)))
    with pytest.raises(GateInputError):
        gate(np.zeros(OBS_DIM), np.zeros(ACT_DIM))
    with pytest.raises(GateInputError):
        FirstObsScore(lambda o: o, float("nan"), 2, 2)


def test_gate_satisfies_action_filter_contract():
    from farm_safety_critic.filter import ActionFilter, FilterDecision

    gate = _gate(eps=0.2)
    d = gate(np.zeros((3, OBS_DIM)), np.zeros((3, ACT_DIM)))
    assert isinstance(d, FilterDecision) and isinstance(gate, ActionFilter)
    if hasattr(d, "validate"):
        d.validate(3, ACT_DIM)


def test_gate_without_a_recovery_checkpoint_holds_still(tmp_path):
    """``build_gate(..., None)`` (method farm-hold) and farm-qrisk-cal-hold (the any-of gate,
    calibrated as farm-qrisk-cal): where the gate fires, the arm holds still."""
    from farm_safety_critic.gate import build_gate
    from farm_safety_critic.qrisk import QRisk, QRiskConfig
    from farm_trainer.methods import Artifacts, MethodParams, calibrates_anyof, filter_factory

    wm = WorldModel(WorldModelConfig(OBS_DIM, ACT_DIM, latent_dim=8, mlp_dim=8, enc_dim=8))
    wm.save(tmp_path / "wm.safetensors")
    mean, std = np.zeros(OBS_DIM, np.float32), np.ones(OBS_DIM, np.float32)
    QRisk(QRiskConfig(OBS_DIM, ACT_DIM, 8), mean, std).save(tmp_path / "q.safetensors")
    assert calibrates_anyof("farm-qrisk-cal-hold")
    obs, prop = np.zeros((3, OBS_DIM), np.float32), np.full((3, ACT_DIM), 0.7, np.float32)
    for gate in (
        build_gate(tmp_path / "wm.safetensors", RecordingPolicy(0.7), None, eps_safe=-1.0),
        filter_factory(
            "farm-hold",
            Artifacts(world_model=tmp_path / "wm.safetensors"),
            MethodParams(eps_safe=-1.0),
        )(RecordingPolicy(0.7)),  # fmt: skip
        filter_factory(
            "farm-qrisk-cal-hold",
            Artifacts(world_model=tmp_path / "wm.safetensors", qrisk=tmp_path / "q.safetensors"),
            MethodParams(eps_safe=1e-9, qrisk_eps_safe=1e-9),  # any-of: thresholds > 0
        )(RecordingPolicy(0.7)),  # fmt: skip
    ):
        d = gate(obs, prop)  # C_H >= 0 > eps: every row is replaced
        assert d.replaced.all() and np.array_equal(d.actions, np.zeros((3, ACT_DIM), np.float32))


def test_the_ensemble_gate_scores_the_members_mean_and_gates_on_it():
    """farm-ens: C_H averaged over world models (two firing at step 2, one never firing)."""
    from farm_safety_critic.gate import EnsembleSafetyGate

    obs, a0 = np.zeros((4, OBS_DIM), np.float32), np.zeros((4, ACT_DIM), np.float32)
    pi = RecordingPolicy()
    members = [StepCounterModel(fire_at=2), StepCounterModel(fire_at=2), StepCounterModel(9)]
    single = SafetyGate(members[0], pi, None, horizon=3, gamma_risk=0.5).scores(obs, a0)
    hold = lambda o: torch.zeros(o.shape[0], ACT_DIM)  # noqa: E731
    gate = EnsembleSafetyGate(members, pi, hold, horizon=3, gamma_risk=0.5, eps_safe=0.1)
    np.testing.assert_allclose(gate.scores(obs, a0), single * 2 / 3)
    assert gate(obs, a0).replaced.all()  # 0.25 * 2/3 > 0.1
    assert not EnsembleSafetyGate(members, pi, hold, 3, 0.5, eps_safe=0.2)(obs, a0).replaced.any()
    with pytest.raises(GateInputError):
        EnsembleSafetyGate([], pi, hold)


def test_farm_ens_pid_steers_the_ensemble_gates_threshold(tmp_path):
    """farm-ens-pid: the registry wraps the ensemble gate in farm-pid's PI rule, so failures
    lower the threshold the mean C_H is compared with."""
    from farm_policies import TanhGaussianActor, save_policy
    from farm_safety_critic.eps_control import AdaptiveEpsSafe
    from farm_safety_critic.gate import EnsembleSafetyGate
    from farm_trainer.methods import Artifacts, MethodParams, filter_factory

    paths = []
    for k in range(3):
        torch.manual_seed(k)
        wm = WorldModel(WorldModelConfig(OBS_DIM, ACT_DIM, latent_dim=8, mlp_dim=8, enc_dim=8))
        wm.save(tmp_path / f"wm{k}.safetensors")
        paths.append(tmp_path / f"wm{k}.safetensors")
    recovery = tmp_path / "rec.safetensors"
    save_policy(recovery, TanhGaussianActor(OBS_DIM, ACT_DIM))
    gate = filter_factory(
        "farm-ens-pid",
        Artifacts(world_model=paths[0], members=tuple(paths[1:]), recovery=recovery),
        MethodParams(eps_safe=0.3, eps_target_rate=0.05),
    )(RecordingPolicy())
    assert isinstance(gate, AdaptiveEpsSafe) and isinstance(gate.gate, EnsembleSafetyGate)
    gate.observe_episodes([1.0] * 10)  # every episode failed: eps_safe goes down
    assert gate.eps_safe < 0.3


def test_the_any_of_gate_fires_where_any_member_exceeds_its_own_threshold():
    """farm-qrisk's composition: scores in the first member's units (or eps_safe's), the
    largest of them."""
    from farm_safety_critic.gate import AnyOfGate

    obs = np.array([[0.05, 0, 0], [0.5, 0, 0], [0.05, 0, 0]], np.float32)
    prop = np.array([[0.3, 0], [0.3, 0], [0.3, 0]], np.float32)
    c_h = SafetyGate(StepCounterModel(fire_at=2), RecordingPolicy(), None, 3, 0.5, eps_safe=0.5)
    first = FirstObsScore(None, eps_safe=0.1, obs_dim=OBS_DIM, act_dim=ACT_DIM)
    hold = lambda o: torch.zeros(o.shape[0], ACT_DIM)  # noqa: E731
    gate = AnyOfGate([c_h, first], hold)
    # C_H = 0.25 on every row (half its threshold 0.5); obs[0] = 0.05, 0.5, 0.05 against 0.1,
    # i.e. 0.25, 2.5, 0.25 in C_H's units
    np.testing.assert_allclose(gate.scores(obs, prop), [0.25, 2.5, 0.25])
    d = gate(obs, prop)
    assert d.replaced.tolist() == [False, True, False] and d.threshold == 0.5
    assert np.allclose(d.actions[1], 0) and np.array_equal(d.actions[[0, 2]], prop[[0, 2]])
    # an eps_safe given is the scores' unit: each member keeps its own threshold (the safety
    # node scores in the arbiter's eps_safe, farm-qrisk-cal's C_H may sit elsewhere)
    unit = AnyOfGate([c_h, first], hold, eps_safe=0.2)
    np.testing.assert_allclose(unit.scores(obs, prop), [0.1, 1.0, 0.1])
    assert unit(obs, prop).replaced.tolist() == [False, True, False]
    # moving the threshold afterwards (farm-pid's steering) moves every member's alike
    gate.decider.eps_safe = 0.2
    assert gate(obs, prop).replaced.all()
    # a member's non-finite score is unknown risk: unsafe, whatever the other members say
    bad = FirstObsScore(None, eps_safe=0.1, obs_dim=OBS_DIM, act_dim=ACT_DIM)
    bad.score = lambda o, a: torch.tensor([-np.inf, np.nan, 0.0])  # noqa: E731
    bad.score_numpy = lambda o, a: np.array([-np.inf, np.nan, 0.0])  # noqa: E731
    mixed = AnyOfGate([c_h, bad], hold)
    np.testing.assert_array_equal(mixed.scores(obs, prop), [np.inf, np.inf, 0.25])
    t = mixed.score(torch.as_tensor(obs), torch.as_tensor(prop))
    np.testing.assert_array_equal(t.numpy(), [np.inf, np.inf, 0.25])
    with pytest.raises(GateInputError):
        AnyOfGate([], hold)
    with pytest.raises(GateInputError):
        AnyOfGate([FirstObsScore(None, eps_safe=0.0, obs_dim=OBS_DIM, act_dim=ACT_DIM)], hold)


def test_farm_qrisk_gates_on_c_h_or_q_risk(tmp_path):
    """farm-qrisk from the registry: FARM's C_H and Recovery RL's Q-risk, each at its threshold."""
    from farm_policies import TanhGaussianActor, save_policy
    from farm_safety_critic.gate import AnyOfGate
    from farm_safety_critic.qrisk import QRisk, QRiskConfig
    from farm_trainer.methods import Artifacts, MethodParams, calibrates_anyof, filter_factory

    torch.manual_seed(0)
    wm = WorldModel(WorldModelConfig(OBS_DIM, ACT_DIM, latent_dim=8, mlp_dim=8, enc_dim=8))
    wm.save(tmp_path / "wm.safetensors")
    QRisk(QRiskConfig(OBS_DIM, ACT_DIM, hidden=8)).save(tmp_path / "qrisk.safetensors")
    save_policy(tmp_path / "rec.safetensors", TanhGaussianActor(OBS_DIM, ACT_DIM))
    art = Artifacts(world_model=tmp_path / "wm.safetensors", qrisk=tmp_path / "qrisk.safetensors",
                    recovery=tmp_path / "rec.safetensors")  # fmt: skip
    gate = filter_factory("farm-qrisk", art, MethodParams(eps_safe=0.3, qrisk_eps_safe=0.2))(
        RecordingPolicy()
    )
    assert isinstance(gate, AnyOfGate)
    c_h, q = gate.members
    obs = np.random.default_rng(0).normal(size=(16, OBS_DIM)).astype(np.float32)
    prop = np.zeros((16, ACT_DIM), np.float32)
    want = np.maximum(c_h.scores(obs, prop), q.scores(obs, prop) * 0.3 / 0.2)
    np.testing.assert_allclose(gate.scores(obs, prop), want, rtol=1e-5)
    assert (gate(obs, prop).replaced == (want > 0.3)).all() and gate.eps_safe == 0.3

    # farm-qrisk-pid: the PI rule moves the shared threshold, so both members fire earlier
    from farm_safety_critic.eps_control import AdaptiveEpsSafe

    params = MethodParams(eps_safe=0.3, qrisk_eps_safe=0.2, eps_target_rate=0.05)
    steered = filter_factory("farm-qrisk-pid", art, params)(RecordingPolicy())
    assert isinstance(steered, AdaptiveEpsSafe) and isinstance(steered.gate, AnyOfGate)
    steered.observe_episodes([1.0] * 10)
    assert steered.eps_safe < 0.3
    np.testing.assert_allclose(steered.gate.scores(obs, prop), want, rtol=1e-5)
    assert (steered(obs, prop).replaced == (want > steered.eps_safe)).all()

    # farm-qrisk-cal-hold-steer: the holding gate's threshold rises while it replaces too much
    from types import SimpleNamespace

    loose = filter_factory("farm-qrisk-cal-hold-steer", art,
                           MethodParams(eps_safe=0.3, qrisk_eps_safe=0.2))(RecordingPolicy())  # fmt: skip
    assert isinstance(loose, AdaptiveEpsSafe) and isinstance(loose.gate, AnyOfGate)
    assert calibrates_anyof("farm-qrisk-cal-hold-steer")
    loose.observe_rollout(SimpleNamespace(replaced=np.ones((4, 2), bool)))
    assert loose.eps_safe > 0.3
    d = loose(obs, prop)
    assert (d.replaced == (want > loose.eps_safe)).all() and not d.actions[d.replaced].any()

    # farm-qrisk-cal: a threshold of inf (chosen by calibration) leaves that member out
    from farm_trainer.methods import MethodError

    q_only = filter_factory("farm-qrisk-cal", art, MethodParams(eps_safe=np.inf,
                                                                qrisk_eps_safe=0.2))(None)  # fmt: skip
    assert len(q_only.members) == 1 and q_only.eps_safe == 0.2
    np.testing.assert_allclose(q_only.scores(obs, prop), q.scores(obs, prop), rtol=1e-6)
    c_only = filter_factory("farm-qrisk-cal", art, MethodParams(eps_safe=0.3,
                                                                qrisk_eps_safe=np.inf))(RecordingPolicy())  # fmt: skip
    np.testing.assert_allclose(c_only.scores(obs, prop), c_h.scores(obs, prop), rtol=1e-5)
    with pytest.raises(MethodError, match="finite"):
        filter_factory("farm-qrisk-cal", art, MethodParams(eps_safe=np.inf, qrisk_eps_safe=np.inf))
