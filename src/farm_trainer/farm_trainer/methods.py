"""The one method registry: method name -> its action filter (gate) and cost hook for the online loop.

``farm-train online --method M`` and the experiment pipeline both build a method's gate here,
with ONE set of hyper-parameters (``MethodParams``). The gates themselves come from
``farm_safety_critic`` (``build_gate``, ``build_qrisk_gate``, ``build_mppi_gate``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

MPPI_OVERRIDES: Mapping[str, Any] = MappingProxyType(
    {"num_samples": 128, "iterations": 3, "num_elites": 16, "num_pi_trajs": 8}
)
"""``MPPIConfig`` overrides for the ``mppi`` method (horizon / gamma_risk / eps_safe follow the
gate). The experiment configs ran with these (CPU-sized: ~10x cheaper per gate call than
MPPIConfig's TD-MPC2 defaults, 512 samples x 6 iterations)."""


class MethodError(ValueError):
    """A method that cannot be built (unknown name, missing checkpoint)."""


@dataclass(frozen=True)
class MethodParams:
    """The hyper-parameters of every method's gate / cost hook (defaults: the gate's own)."""

    eps_safe: float = 0.3
    """C_H threshold (farm, mppi; farm-qrisk*: inf leaves C_H out of the any-of gate)"""
    horizon: int = 3
    gamma_risk: float = 0.9
    qrisk_eps_safe: float = 0.3
    """Q_risk threshold (recrl, farm-qrisk*; inf leaves Q-risk out of the any-of gate)"""
    mppi: Mapping[str, Any] = field(default_factory=lambda: dict(MPPI_OVERRIDES))
    cost_limit: float = 0.05
    """episode cost budget d of the constrained baselines (ppo-lag, p3o, cpo). FailureBench's
    cost ends the episode, so J_c is the fraction of episodes with an IR failure: 0.05 asks for
    at most one in 20 episodes, below what FARM reaches on every task (0.06-0.19 in
    headline_2e5), so the constraint binds from the pre-trained start (d = 0 would leave CPO
    in its infeasible case for good and grow the Lagrange multiplier without bound)"""
    lr_lambda: float = 0.05
    """PPO-Lagrangian multiplier step (ppo-lag)"""
    p3o_kappa: float = 20.0
    """P3O's exact-penalty weight (OmniSafe / Safe-Policy-Optimization default)"""
    cpo_target_kl: float = 0.01
    """CPO's trust region delta (OmniSafe default)"""
    eps_target_rate: float = 0.05
    """farm-pid: the IR-failure rate per episode that eps_safe is steered to (the same budget
    as the constrained baselines' ``cost_limit``)"""
    eps_kp: float = 2.0
    eps_ki: float = 0.2
    replaced_target_rate: float = 0.2
    """farm-qrisk-cal-hold-steer: the fraction of actions per PPO update the gate may replace;
    above it eps_safe rises (both thresholds alike), never below the calibrated value"""
    replaced_kp: float = 2.0
    replaced_ki: float = 0.5
    replaced_window: int = 4
    """PPO updates whose replaced fractions are averaged"""
    replaced_max_factor: float = 10.0
    """eps_safe stays within [1, replaced_max_factor] x the calibrated value"""
    refresh_every: int = 5
    """farm-refresh: PPO updates between world-model refreshes (``RefreshConfig``)"""
    refresh_steps: int = 200
    refresh_online_fraction: float = 0.5
    refresh_guard_drop: float = 0.01
    ensemble_members: int = 3
    """farm-ens: world models in the ensemble (``Artifacts.members`` + the world model)"""
    shrink_fractions: tuple[float, ...] = (0.75, 0.5, 0.25)
    """farm-qrisk-cal-least: the parts of the proposed motion tried, largest first, where the
    gate fires (``LeastInterventionFilter``)"""
    hold_patience: int = 5
    """farm-qrisk-cal-hold-rec: holds in a row before pi_rec takes over (``HoldPatience``)"""
    escape_steps: int = 5
    """farm-qrisk-cal-hold-rec: fired steps pi_rec then runs before the arm holds again"""
    runout_eps: float = 1.0
    """farm-runout*: the gate fires where the object's predicted roll over the room left to an
    exit exceeds this (``RunoutGate``; 1: it would leave within the horizon)"""
    runout_horizon: int = 40
    """farm-runout*: the roll is predicted over this many control steps (a free Soccer ball
    keeps its speed; its IR failures come 14-38 steps after the push)"""
    runout_lookahead: int = 5
    """farm-runout-seq: predicted steps of the task policy whose states are scored (the
    proposed action, then the policy's own)"""
    runout_hold_eps: float | None = None
    """farm-runout-seq: the arm holds where a predicted state's run-out score exceeds this
    (None: ``runout_eps``, which pi_rec on the current state keeps)"""
    eps_rule: Mapping[str, float] | None = None
    """the pipeline's per-task eps_safe rule (``GateConfig.eps_rule``), for farm-refresh-cal to
    choose eps_safe again after each refresh"""

    def __post_init__(self) -> None:
        if problem := runout_problem(self.runout_eps, self.runout_horizon, self.runout_lookahead,
                                     self.runout_hold_eps):  # fmt: skip
            raise MethodError(problem)
        if problem := replaced_problem(self.replaced_target_rate, self.replaced_window,
                                       self.replaced_max_factor):  # fmt: skip
            raise MethodError(problem)


def replaced_problem(target: Any, window: Any, max_factor: Any) -> str:
    """What is wrong with farm-qrisk-cal-hold-steer's target, window and bound ("" when
    nothing is)."""
    number = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
    if not number(target) or not 0 < target < 1:
        return f"replaced_target_rate must be in (0, 1), got {target!r}"
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        return f"replaced_window must be a whole number of updates >= 1, got {window!r}"
    if not number(max_factor) or not 1 <= max_factor < math.inf:
        return f"replaced_max_factor must be a finite number >= 1, got {max_factor!r}"
    return ""


def runout_problem(eps: Any, horizon: Any, lookahead: Any = 1, hold_eps: Any = None) -> str:
    """What is wrong with the run-out thresholds, horizon and look-ahead ("" when nothing is)."""
    for name, value in (
        ("runout_eps", eps),
        ("runout_hold_eps", eps if hold_eps is None else hold_eps),
    ):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0 < value < math.inf:
            return f"{name} must be a finite number > 0, got {value!r}"
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        return f"runout_horizon must be a whole number of steps >= 1, got {horizon!r}"
    if isinstance(lookahead, bool) or not isinstance(lookahead, int) or lookahead < 1:
        return f"runout_lookahead must be a whole number of steps >= 1, got {lookahead!r}"
    return ""


@dataclass(frozen=True)
class Artifacts:
    """Checkpoints a method may need (``Method.needs`` names the fields)."""

    world_model: str | Path | None = None
    recovery: str | Path | None = None
    qrisk: str | Path | None = None
    safety_data: tuple[str | Path, ...] | None = None
    """the world model's training datasets (task demos + failures), for farm-refresh"""
    heldout: str | Path | None = None
    """held-out roll-outs the refresh is guarded on (farm-refresh)"""
    members: tuple[str | Path, ...] | None = None
    """farm-ens: the ensemble's world models besides ``world_model``"""
    expert: str | Path | None = None
    """scripted-expert roll-outs (farm-refresh-cal's eps_safe rule)"""
    runout: str | Path | None = None
    """farm-runout: the object's rolling decay and the allowed rectangle (``RunoutModel``)"""
    object_motion: str | Path | None = None
    """farm-runout-ahead: the object's next displacement from state and action (``ObjectMotion``)"""
    hand_motion: str | Path | None = None
    """farm-runout-seq: the hand's next displacement from its command (``HandMotion``)"""


FilterFactory = Callable[[Any], Any]
"""``make_filter(actor)`` for ``OnlineTrainer``: the gate sees the LIVE task actor."""


def _farm(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    from farm_safety_critic.gate import build_gate

    hp = {"eps_safe": p.eps_safe, "horizon": p.horizon, "gamma_risk": p.gamma_risk}
    return lambda actor: build_gate(a.world_model, actor, a.recovery, **hp)


def _farm_hold(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    from farm_safety_critic.gate import build_gate

    hp = {"eps_safe": p.eps_safe, "horizon": p.horizon, "gamma_risk": p.gamma_risk}
    return lambda actor: build_gate(a.world_model, actor, None, **hp)


def _recrl(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    from farm_safety_critic.qrisk import build_qrisk_gate

    return lambda actor: build_qrisk_gate(a.qrisk, a.recovery, eps_safe=p.qrisk_eps_safe)


def _farm_qrisk(a: Artifacts, p: MethodParams, seed: int, hold: bool = False) -> FilterFactory:
    """The any-of gate (C_H or Q-risk); ``hold``: its recovery holds still instead of pi_rec."""
    from farm_safety_critic.gate import AnyOfGate, SafetyGate, load_recovery
    from farm_safety_critic.qrisk import QRisk, QRiskGate
    from farm_safety_critic.world_model import WorldModel

    world_model, qrisk = WorldModel.load(a.world_model), QRisk.load(a.qrisk)
    recovery = load_recovery(None if hold else a.recovery, world_model.cfg, "cpu")

    if math.isinf(p.eps_safe) and math.isinf(p.qrisk_eps_safe):
        raise MethodError("an any-of gate needs C_H's or Q-risk's threshold finite")

    def make(actor: Any) -> Any:
        members = []  # a member whose threshold is inf never fires: left out
        if not math.isinf(p.eps_safe):
            members.append(SafetyGate(world_model, actor, None, p.horizon, p.gamma_risk,
                                      p.eps_safe))  # fmt: skip
        if not math.isinf(p.qrisk_eps_safe):
            members.append(QRiskGate(qrisk, None, p.qrisk_eps_safe))
        return AnyOfGate(members, recovery)

    return make


def _farm_qrisk_least(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    """farm-qrisk-cal-hold's gate, a fired action shrunk before it is declined."""
    from farm_safety_critic.least_intervention import LeastInterventionFilter

    gate = _farm_qrisk(a, p, seed, hold=True)
    return lambda actor: LeastInterventionFilter(gate(actor), p.shrink_fractions)


def _farm_qrisk_hold_rec(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    """farm-qrisk-cal-hold's gate, pi_rec taking over after ``hold_patience`` holds in a row."""
    from farm_safety_critic.decider import RecoveryDecider
    from farm_safety_critic.gate import load_recovery
    from farm_safety_critic.hold_patience import HoldPatience

    gate = _farm_qrisk(a, p, seed, hold=True)

    def make(actor: Any) -> Any:
        g = gate(actor)
        escape = RecoveryDecider(load_recovery(a.recovery, g, "cpu"), g.eps_safe, g.act_dim)
        return HoldPatience(g, p.hold_patience, p.escape_steps, escape)

    return make


def _farm_runout(
    a: Artifacts, p: MethodParams, seed: int, hold: bool = False, ahead: bool = False
) -> FilterFactory:
    """pi_rec (``hold``: holding still) where the object is predicted to roll past the border:
    from its last displacement, or (``ahead``) from the one the proposed action gives it."""
    from farm_policies.checkpoint import load_actor_value
    from farm_safety_critic.decider import hold_still
    from farm_safety_critic.object_motion import ObjectMotion
    from farm_safety_critic.runout import RunoutGate, RunoutModel

    model = dataclasses.replace(RunoutModel.load(a.runout), horizon=p.runout_horizon)
    motion = ObjectMotion.load(a.object_motion) if ahead else None
    recovery = None if hold else load_actor_value(a.recovery)[0].eval()

    def make(actor: Any) -> Any:
        dims = recovery if actor is None else actor  # obs_dim, act_dim
        rec = hold_still(dims.act_dim) if hold else recovery
        return RunoutGate(model, rec, dims.obs_dim, dims.act_dim, eps_safe=p.runout_eps,
                          motion=motion)  # fmt: skip

    return make


def _farm_runout_seq(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    """pi_rec where the object's roll from its last displacement leaves (``runout_eps``); else
    holding still where a predicted state of the next ``runout_lookahead`` steps
    (``PushSequence``) scores over ``runout_hold_eps``."""
    from farm_safety_critic.filter import FirstFired
    from farm_safety_critic.object_motion import ObjectMotion
    from farm_safety_critic.push_sequence import HandMotion, sequence_gate

    state = _farm_runout(a, p, seed)
    motion, hand = ObjectMotion.load(a.object_motion), HandMotion.load(a.hand_motion)
    hold_eps = p.runout_eps if p.runout_hold_eps is None else p.runout_hold_eps

    def make(actor: Any) -> Any:
        if actor is None:
            raise MethodError("farm-runout-seq predicts the task policy's next steps: give it")
        first = state(actor)
        hold = sequence_gate(first.model, motion, hand, actor, p.runout_lookahead, hold_eps,
                             first.obs_dim, first.act_dim)  # fmt: skip
        return FirstFired([first, hold])

    return make


def _with_pid(gate: FilterFactory, p: MethodParams) -> FilterFactory:
    """``gate`` under farm-pid's PI rule on eps_safe (``AdaptiveEpsSafe``)."""
    from farm_safety_critic.eps_control import AdaptiveEpsSafe

    return lambda actor: AdaptiveEpsSafe(gate(actor), p.eps_target_rate, p.eps_kp, p.eps_ki)


def _farm_qrisk_hold_steer(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    """farm-qrisk-cal-hold with eps_safe raised while the gate replaces more than
    ``replaced_target_rate`` of an update's actions (``AdaptiveEpsSafe``, signal "replaced")."""
    from farm_safety_critic.eps_control import AdaptiveEpsSafe

    gate = _farm_qrisk(a, p, seed, hold=True)
    hp = {
        "target_rate": p.replaced_target_rate,
        "kp": p.replaced_kp,
        "ki": p.replaced_ki,
        "window": p.replaced_window,
        "min_factor": 1.0,
        "max_factor": p.replaced_max_factor,
    }
    return lambda actor: AdaptiveEpsSafe(gate(actor), signal="replaced", **hp)  # fmt: skip


def _farm_pid(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    return _with_pid(_farm(a, p, seed), p)


def _farm_qrisk_pid(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    return _with_pid(_farm_qrisk(a, p, seed), p)


def _farm_ens(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    from farm_safety_critic.gate import build_ensemble_gate

    paths = [a.world_model, *(a.members or ())]
    if len(paths) != p.ensemble_members:
        raise MethodError(
            f"an ensemble gate of {p.ensemble_members} world models got "
            f"{len(paths)} (--world-model + --members)"
        )
    hp = {"eps_safe": p.eps_safe, "horizon": p.horizon, "gamma_risk": p.gamma_risk}
    return lambda actor: build_ensemble_gate(paths, actor, a.recovery, **hp)


def _farm_ens_pid(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    return _with_pid(_farm_ens(a, p, seed), p)


def _farm_refresh_cal(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    if p.eps_rule is None:
        raise MethodError("farm-refresh-cal needs an eps_rule (gate.eps_rule) to re-choose eps")
    return _farm_refresh(a, p, seed, rechoose=True)


def _farm_refresh(
    a: Artifacts, p: MethodParams, seed: int, rechoose: bool = False
) -> FilterFactory:
    from failurebench_sim.datasets import load_dataset
    from farm_trainer.online.constraint_refresh import ConstraintRefresh, RefreshConfig
    from farm_trainer.safety.train_world_model import train_config_of

    gate = _farm(a, p, seed)
    cfg = RefreshConfig(every=p.refresh_every, steps=p.refresh_steps,
                        online_fraction=p.refresh_online_fraction,
                        guard_drop=p.refresh_guard_drop)  # fmt: skip

    def make(actor: Any) -> Any:
        offline = [load_dataset(path) for path in a.safety_data or ()]
        rule = dict(p.eps_rule or {}) if rechoose else None
        expert = load_dataset(a.expert) if rechoose else None
        return ConstraintRefresh(gate(actor), offline, load_dataset(a.heldout),
                                 train_config_of(a.world_model), cfg, seed, rule, expert)  # fmt: skip

    return make


def _mppi(a: Artifacts, p: MethodParams, seed: int) -> FilterFactory:
    from farm_safety_critic.mppi import MPPIConfig, build_mppi_gate

    hp = {"eps_safe": p.eps_safe, "horizon": p.horizon, "gamma_risk": p.gamma_risk}
    mcfg = MPPIConfig(**{**hp, **p.mppi})
    return lambda actor: build_mppi_gate(a.world_model, actor, mcfg, seed, **hp)


def _cost_critic(trainer: Any) -> Any:
    """A fresh V_c shaped like the task critic, with the actor's (offline) normalisation."""
    from farm_policies import ValueNet

    norm = trainer.actor.normalizer
    return ValueNet(trainer.obs_dim, trainer.actor.hidden, trainer.actor.depth,
                    obs_mean=norm.obs_mean, obs_std=norm.obs_std)  # fmt: skip


def _lagrangian(trainer: Any, p: MethodParams) -> Any:
    from farm_trainer.online import LagrangianCostHook

    ppo = trainer.cfg.ppo
    return LagrangianCostHook(_cost_critic(trainer), p.cost_limit, p.lr_lambda,
                              gamma=ppo.gamma, lam=ppo.gae_lambda)  # fmt: skip


def _p3o(trainer: Any, p: MethodParams) -> Any:
    from farm_trainer.online import P3OCostHook

    ppo = trainer.cfg.ppo
    return P3OCostHook(_cost_critic(trainer), p.cost_limit, p.p3o_kappa,
                       gamma=ppo.gamma, lam=ppo.gae_lambda)  # fmt: skip


def _cpo(trainer: Any, p: MethodParams) -> Any:
    from farm_trainer.online import CPOCostHook

    ppo = trainer.cfg.ppo
    return CPOCostHook(_cost_critic(trainer), p.cost_limit, p.cpo_target_kl,
                       gamma=ppo.gamma, lam=ppo.gae_lambda)  # fmt: skip


@dataclass(frozen=True)
class Method:
    """One online method: what it needs and how its filter / cost hook is built."""

    name: str
    doc: str
    needs: tuple[str, ...] = ()
    """``Artifacts`` fields it loads"""
    params: tuple[str, ...] = ()
    """``MethodParams`` fields it reads (a change to any of them changes its runs)"""
    make_filter: Callable[[Artifacts, MethodParams, int], FilterFactory] | None = None
    make_cost_hook: Callable[[Any, MethodParams], Any] | None = None


_GATE = ("eps_safe", "horizon", "gamma_risk")
_PID = ("eps_target_rate", "eps_kp", "eps_ki")
_RUNOUT = ("runout_eps", "runout_horizon")
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("unio4", "plain PPO (no gate): the paper's Uni-O4 baseline"),
        Method("farm", "world-model C_H gate + recovery policy (Eq. 10-11)",
               ("world_model", "recovery"), _GATE, _farm),
        Method("farm-pid", "FARM with eps_safe steered online to a target IR-failure rate (PI)",
               ("world_model", "recovery"), (*_GATE, *_PID), _farm_pid),
        Method("farm-hold", "FARM's C_H gate whose recovery holds still (declines the action)",
               ("world_model",), _GATE, _farm_hold),
        Method("farm-ens", "FARM's gate on the mean C_H of an ensemble of world models",
               ("world_model", "members", "recovery"), (*_GATE, "ensemble_members"), _farm_ens),
        Method("farm-ens-pid", "farm-ens with eps_safe steered online to a target IR-failure"
               " rate (farm-pid's PI rule)", ("world_model", "members", "recovery"),
               (*_GATE, "ensemble_members", *_PID), _farm_ens_pid),
        Method("farm-refresh", "FARM whose world model is refreshed online on the IR failures"
               " of fine-tuning (undone if its held-out ROC-AUC drops)",
               ("world_model", "recovery", "safety_data", "heldout"),
               (*_GATE, "refresh_every", "refresh_steps", "refresh_online_fraction",
                "refresh_guard_drop"), _farm_refresh),
        Method("farm-refresh-cal", "farm-refresh that re-chooses eps_safe by the pipeline's"
               " rule after each kept refresh (a refresh moves the scores' scale)",
               ("world_model", "recovery", "safety_data", "heldout", "expert"),
               (*_GATE, "refresh_every", "refresh_steps", "refresh_online_fraction",
                "refresh_guard_drop", "eps_rule"), _farm_refresh_cal),
        Method("farm-qrisk", "recovery where FARM's C_H or Recovery RL's Q-risk fires (each at"
               " its own threshold)", ("world_model", "qrisk", "recovery"),
               (*_GATE, "qrisk_eps_safe"), _farm_qrisk),
        Method("farm-qrisk-cal", "farm-qrisk with both thresholds chosen per task on held-out"
               " data (gate.anyof_rule: the most recall at a precision floor; a member may be"
               " left out)", ("world_model", "qrisk", "recovery"), (*_GATE, "qrisk_eps_safe"),
               _farm_qrisk),
        Method("farm-qrisk-cal-hold", "farm-qrisk-cal whose recovery holds still (declines the"
               " action, as farm-hold)", ("world_model", "qrisk"), (*_GATE, "qrisk_eps_safe"),
               functools.partial(_farm_qrisk, hold=True)),
        Method("farm-qrisk-cal-least", "farm-qrisk-cal-hold that first tries parts of the"
               " proposed motion where the gate fires (shrink_fractions, default 3/4, 1/2, 1/4),"
               " executing the largest the gate accepts (least intervention)", ("world_model", "qrisk"),
               (*_GATE, "qrisk_eps_safe", "shrink_fractions"), _farm_qrisk_least),
        Method("farm-qrisk-cal-hold-rec", "farm-qrisk-cal-hold that hands over to pi_rec after"
               " hold_patience holds in a row (for escape_steps fired steps): the gate scores"
               " states, so holding alone can freeze the arm for the rest of an episode",
               ("world_model", "qrisk", "recovery"),
               (*_GATE, "qrisk_eps_safe", "hold_patience", "escape_steps"), _farm_qrisk_hold_rec),
        Method("farm-qrisk-cal-hold-steer", "farm-qrisk-cal-hold whose thresholds rise (both"
               " alike, never below the calibrated ones) while the gate replaces more than"
               " replaced_target_rate of a PPO update's actions: the task policy keeps a share"
               " of the steps it learns from", ("world_model", "qrisk"),
               (*_GATE, "qrisk_eps_safe", "replaced_target_rate", "replaced_kp", "replaced_ki",
                "replaced_window", "replaced_max_factor"), _farm_qrisk_hold_steer),
        Method("farm-qrisk-pid", "farm-qrisk with eps_safe steered online to a target IR-failure"
               " rate (farm-pid's PI rule; it scales both thresholds)",
               ("world_model", "qrisk", "recovery"), (*_GATE, "qrisk_eps_safe", *_PID),
               _farm_qrisk_pid),
        Method("farm-runout", "pi_rec where the object's roll, extrapolated from its last"
               " displacement, would carry it past the border (a state test, no learned critic)",
               ("runout", "recovery"), _RUNOUT, _farm_runout),
        Method("farm-runout-hold", "farm-runout whose recovery holds still: no push while the"
               " object's predicted roll reaches past runout_eps of the room to the border",
               ("runout",), _RUNOUT, functools.partial(_farm_runout, hold=True)),
        Method("farm-runout-ahead", "farm-runout-hold on the roll the proposed action would give"
               " the object (its next displacement predicted by ObjectMotion): the push is"
               " declined before it runs", ("runout", "object_motion"), _RUNOUT,
               functools.partial(_farm_runout, hold=True, ahead=True)),
        Method("farm-runout-seq", "pi_rec where the object's roll from its last displacement"
               " leaves (farm-runout); else the arm holds still where a state of the next"
               " runout_lookahead steps predicted for the task policy (ObjectMotion, HandMotion)"
               " scores over runout_hold_eps: a losing sequence of pushes declined before it runs",
               ("runout", "object_motion", "hand_motion", "recovery"),
               (*_RUNOUT, "runout_lookahead", "runout_hold_eps"), _farm_runout_seq),
        Method("recrl", "Recovery RL's Q-risk gate + the same recovery policy (Table II)",
               ("qrisk", "recovery"), ("qrisk_eps_safe",), _recrl),
        Method("mppi", "C_H gate with MPPI over the world model instead of pi_rec (Table II)",
               ("world_model",), (*_GATE, "mppi"), _mppi),
        Method("ppo-lag", "PPO-Lagrangian on the IR-failure cost (no gate)",
               (), ("cost_limit", "lr_lambda"), make_cost_hook=_lagrangian),
        Method("p3o", "P3O: PPO with the exact ReLU penalty on the cost surrogate (no gate)",
               (), ("cost_limit", "p3o_kappa"), make_cost_hook=_p3o),
        Method("cpo", "CPO: trust-region step under the linearised cost constraint (no gate)",
               (), ("cost_limit", "cpo_target_kl"), make_cost_hook=_cpo),
    )
}  # fmt: skip
METHOD_NAMES = tuple(METHODS)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r}; choose from {METHOD_NAMES}") from None


ANYOF_CALIBRATED = frozenset(
    (
        "farm-qrisk-cal",
        "farm-qrisk-cal-hold",
        "farm-qrisk-cal-least",
        "farm-qrisk-cal-hold-rec",
        "farm-qrisk-cal-hold-steer",
    )
)
"""farm-qrisk-cal and its variants: both any-of thresholds chosen per task on held-out data"""


def uses_qrisk(name: str) -> bool:
    """Whether method ``name`` gates on Recovery RL's Q-risk critic (recrl, farm-qrisk)."""
    return "qrisk" in get_method(name).needs


def calibrates_anyof(name: str) -> bool:
    """Whether method ``name``'s two thresholds are chosen together on held-out data
    (``calibration.choose_anyof_eps``) rather than C_H's alone."""
    return name in ANYOF_CALIBRATED


def uses_runout(name: str) -> bool:
    """Whether method ``name`` gates on the object's predicted run-out (farm-runout)."""
    return "runout" in get_method(name).needs


def uses_ensemble(name: str) -> bool:
    """Whether method ``name`` gates on an ensemble of world models (its own eps_safe)."""
    return "members" in get_method(name).needs


def filter_factory(
    name: str, artifacts: Artifacts, params: MethodParams, seed: int = 0
) -> FilterFactory | None:
    """``make_filter(actor)`` of method ``name`` (None: no gate); checks ``needs`` first."""
    method = get_method(name)
    missing = [n for n in method.needs if getattr(artifacts, n) is None]
    if missing:
        raise MethodError(f"method {name} needs {' and '.join(missing)}")
    return None if method.make_filter is None else method.make_filter(artifacts, params, seed)


def attach_cost_hook(name: str, trainer: Any, params: MethodParams) -> None:
    """Give ``trainer`` the method's cost hook (PPO-Lagrangian, P3O, CPO), if it has one."""
    method = get_method(name)
    if method.make_cost_hook is not None:
        trainer.cost_hook = method.make_cost_hook(trainer, params)


UNHASHED_WHEN_NONE = frozenset(("runout_hold_eps",))
"""parameters whose None (the behaviour before they existed) stays out of the stage hashes"""


def params_used(name: str, params: MethodParams) -> dict[str, Any]:
    """The hyper-parameters method ``name`` reads (for the experiment's stage hashes)."""
    values = dataclasses.asdict(params)
    return {k: values[k] for k in get_method(name).params
            if not (k in UNHASHED_WHEN_NONE and values[k] is None)}  # fmt: skip
