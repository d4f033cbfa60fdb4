"""Stage ``calibration``: per-task eps_safe (``gate.eps_rule``), C_H / Q-risk vs "IR failure
within H" on held-out roll-outs, the gate's firing rate on the expert, and gate latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from failurebench_sim.atomic import write_json
from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.layout import (
    ANYOF_EPS,
    EPS_SAFE,
    EPS_SAFE_ENSEMBLE,
    HAND_MOTION,
    OBJECT_MOTION,
    RUNOUT,
    ensemble_member_units,
)
from farm_trainer.experiments.records import Unit
from farm_trainer.methods import (
    calibrates_anyof,
    get_method,
    uses_ensemble,
    uses_qrisk,
    uses_runout,
)

GATE_NEEDS = ("world_model", "offline_task", "offline_recovery", "failures/heldout", "data/expert")


def units(ctx: TaskContext) -> list[Unit]:
    g, cfg = ctx.cfg.gate, ctx.cfg
    rule = g.eps_rule is not None
    eps = {"eps_rule": g.eps_rule} if rule else {"eps_safe": g.eps_safe}
    scored = {"gate": {"horizon": g.horizon, "gamma_risk": g.gamma_risk, **eps}}
    eps_need = ("calibration/eps_safe",) if rule else ()

    def unit(item: str, out: str, config: dict, needs: tuple[str, ...], fn: Callable) -> Unit:
        return Unit(
            "calibration", item, config, needs, (out,), lambda: write_json(ctx.out(out), fn())
        )

    out = []
    if rule:
        config = {
            "gate": {"horizon": g.horizon, "gamma_risk": g.gamma_risk, "eps_rule": g.eps_rule}
        }
        out.append(unit("eps_safe", EPS_SAFE, config, GATE_NEEDS, lambda: choose_eps_safe(ctx)))
    out.append(unit("scores", "calibration/calibration.json", scored, GATE_NEEDS + eps_need,
                    lambda: calibrate(ctx)))  # fmt: skip
    if any(uses_qrisk(m) for m in cfg.run_methods):
        config = {"gate": {"horizon": g.horizon, "qrisk_eps_safe": g.qrisk_eps_safe}}
        needs = ("qrisk", "offline_recovery", "failures/heldout", "data/expert")
        out.append(
            unit("qrisk", "calibration/qrisk.json", config, needs, lambda: calibrate_qrisk(ctx))
        )
    if rule and any(uses_ensemble(m) for m in cfg.run_methods):
        config = {"gate": {"horizon": g.horizon, "gamma_risk": g.gamma_risk,
                           "eps_rule": g.eps_rule, "ensemble_members": g.ensemble_members}}  # fmt: skip
        members = ensemble_member_units(g.ensemble_members)
        out.append(unit("eps_safe_ensemble", EPS_SAFE_ENSEMBLE, config, GATE_NEEDS + members,
                        lambda: choose_eps_safe(ctx, "farm-ens")))  # fmt: skip
    if g.anyof_rule is not None and any(calibrates_anyof(m) for m in cfg.run_methods):
        config = {"gate": {"horizon": g.horizon, "gamma_risk": g.gamma_risk,
                           "anyof_rule": g.anyof_rule}}  # fmt: skip
        if "min_recall" in g.anyof_rule:  # Q-risk's candidates start at the shared threshold
            config["gate"]["qrisk_eps_safe"] = g.qrisk_eps_safe
        out.append(unit("anyof_eps", ANYOF_EPS, config, (*GATE_NEEDS, "qrisk", *eps_need),
                        lambda: choose_anyof_eps(ctx)))  # fmt: skip
    if any(uses_runout(m) for m in cfg.run_methods):
        config = {"task": ctx.env_id, "runout": {"exits": True, "fit": "median"}}
        out.append(unit("runout", RUNOUT, config, ctx.safety_units(), lambda: fit_runout(ctx)))
    if any("object_motion" in get_method(m).needs for m in cfg.run_methods):
        config = {
            "task": ctx.env_id,
            "object_motion": MOTION_TRAINING,
            "seed": cfg.world_model.seed,
        }
        out.append(Unit("calibration", "object_motion", config, ctx.safety_units(), (OBJECT_MOTION,),
                        lambda: train_motion(ctx)))  # fmt: skip
    if any("hand_motion" in get_method(m).needs for m in cfg.run_methods):
        config = {"task": ctx.env_id, "hand_motion": "least squares"}
        out.append(unit("hand_motion", HAND_MOTION, config, ctx.safety_units(),
                        lambda: fit_hand(ctx)))  # fmt: skip
    latency_cfg = {**scored, "latency_calls": cfg.latency_calls}
    out.append(unit("latency", "calibration/latency.json", latency_cfg, GATE_NEEDS + eps_need,
                    lambda: gate_latency(ctx)))  # fmt: skip
    return out


def fit_runout(ctx: TaskContext) -> dict[str, Any]:
    """``runout.RunoutModel`` of the task: the object's rolling decay fitted on the task demos
    and failure data, and the task's allowed rectangle (``failurebench_sim.geometry``)."""
    from failurebench_sim.geometry import boundary_of_task
    from farm_safety_critic.runout import RunoutModel, fit_decay

    decay, rows = fit_decay(*ctx.safety_rows("observations", "next_observations"))
    low, high, exits = boundary_of_task(ctx.env_id)
    model = RunoutModel(decay, tuple(map(float, low)), tuple(map(float, high)), rows, exits)
    return model.as_dict()


MOTION_TRAINING = {"hidden": 256, "steps": 8000, "batch": 512, "lr": 1e-3, "near": 0.10}
"""``ObjectMotionConfig`` of the pipeline (its defaults)"""


def train_motion(ctx: TaskContext) -> None:
    """``object_motion.ObjectMotion`` on the task demos and failure data, saved beside the
    run-out model; its fit goes to the log."""
    from farm_safety_critic.object_motion import ObjectMotionConfig, train_object_motion

    obs, act, nxt = ctx.safety_rows("observations", "actions", "next_observations")
    cfg = ObjectMotionConfig(act_dim=act.shape[1], **MOTION_TRAINING)
    model, fit = train_object_motion(obs, act, nxt, cfg, seed=ctx.cfg.world_model.seed)
    model.save(ctx.out(OBJECT_MOTION))
    ctx.log(f"[pipeline] {ctx.env_id} object motion: {fit}")


def fit_hand(ctx: TaskContext) -> dict[str, Any]:
    """``push_sequence.HandMotion`` of the task: the hand's closed loop under its delta-position
    command, least squares on the task demos and failure data."""
    from farm_safety_critic.push_sequence import fit_hand_motion

    model = fit_hand_motion(*ctx.safety_rows("observations", "actions", "next_observations"))
    ctx.log(f"[pipeline] {ctx.env_id} hand motion: r2 {model.r2:.3f} on {model.rows} rows")
    return model.as_dict()


def _or_error(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from farm_safety_critic.calibration import CalibrationError

    try:
        return fn()
    except CalibrationError as e:
        return {"error": str(e)}


def choose_eps_safe(ctx: TaskContext, method: str = "farm") -> dict[str, Any]:
    """``calibration.choose_eps_safe`` with ``method``'s C_H of the offline task policy (as the
    gate scores at the start of fine-tuning) on held-out noisy roll-outs and on the scripted
    expert."""
    from farm_safety_critic import calibration as cal

    g = ctx.cfg.gate
    heldout, expert = ctx.dataset("heldout"), ctx.dataset("expert")
    gate = ctx.gate(method, eps_safe=g.eps_safe)  # scores do not depend on the threshold
    return cal.choose_eps_safe(
        cal.score_dataset(gate.scores, heldout), cal.failure_within(heldout, g.horizon),
        cal.score_dataset(gate.scores, expert), **g.eps_rule,
    )  # fmt: skip


def choose_anyof_eps(ctx: TaskContext) -> dict[str, Any]:
    """``calibration.choose_anyof_eps``: farm-qrisk-cal's C_H and Q-risk thresholds, from FARM's
    C_H of the offline task policy and Recovery RL's Q-risk on held-out noisy roll-outs and on
    the scripted expert (``anyof_rule.firing_vs_c_h``: against C_H alone at FARM's own
    threshold). With ``anyof_rule.min_recall``: ``calibration.choose_qrisk_for_recall``, C_H
    at FARM's threshold and Q-risk's lowered from ``gate.qrisk_eps_safe`` until the pair catches
    that share of "IR failure within ``recall_within`` steps"."""
    from farm_safety_critic import calibration as cal

    g = ctx.cfg.gate
    c_h_eps = ctx.eps_safe("farm") if cal.anyof_rule_uses_c_h_eps(g.anyof_rule) else None
    c_h, qrisk, labels_within = anyof_scores(ctx)
    return cal.choose_by_anyof_rule(c_h, qrisk, labels_within, g.anyof_rule, g.horizon, c_h_eps,
                                    g.qrisk_eps_safe)  # fmt: skip


def anyof_scores(ctx: TaskContext) -> tuple[tuple, tuple, Callable[[int], np.ndarray]]:
    """The any-of gate's inputs on held-out data: (C_H held-out, expert), (Q-risk held-out,
    expert), both of the offline task policy, and ``labels_within(L)``: each held-out row's
    "IR failure within L steps" (what ``calibration.choose_by_anyof_rule`` takes)."""
    from farm_safety_critic import calibration as cal
    from farm_trainer.methods import filter_factory

    g = ctx.cfg.gate
    heldout, expert = ctx.dataset("heldout"), ctx.dataset("expert")
    c_h = ctx.gate("farm", eps_safe=g.eps_safe).scores  # scores do not depend on the threshold
    qrisk = filter_factory("recrl", ctx.artifacts(), g.method_params())(None).scores
    return ((cal.score_dataset(c_h, heldout), cal.score_dataset(c_h, expert)),
            (cal.score_dataset(qrisk, heldout), cal.score_dataset(qrisk, expert)),
            lambda n: cal.failure_within(heldout, n))  # fmt: skip


def score_report(ctx: TaskContext, scorer: Any, eps_safe: float) -> dict[str, Any]:
    """Scorer vs "IR failure within H" on held-out roll-outs + firing rate on the expert."""
    from farm_safety_critic import calibration as cal

    h = ctx.cfg.gate.horizon
    heldout, expert = ctx.dataset("heldout"), ctx.dataset("expert")
    res = _or_error(lambda: cal.evaluate(scorer, heldout, h, eps_safe).as_dict())
    res["expert_firing_rate"] = cal.gate_firing_rate(
        scorer, expert.observations, expert.actions, eps_safe
    )
    return res


def calibrate(ctx: TaskContext) -> dict[str, Any]:
    """World-model C_H through the task policy (as the gate scores) and open-loop along the
    logged actions (the model alone), on held-out noisy roll-outs."""
    from farm_safety_critic import calibration as cal

    g = ctx.cfg.gate
    heldout = ctx.dataset("heldout")
    gate = ctx.gate("farm")
    logged = cal.logged_action_c_h(gate.world_model, heldout, g.horizon, g.gamma_risk)
    labels = cal.failure_within(heldout, g.horizon)
    return {
        "horizon": g.horizon,
        "gamma_risk": g.gamma_risk,
        "heldout": {"n": len(heldout), "n_failure_episodes": int(heldout.episode_failures().sum())},
        "world_model_c_h": score_report(ctx, gate.scores, gate.eps_safe),
        "world_model_logged_actions": _or_error(
            lambda: cal.calibrate(logged, labels, gate.eps_safe, g.horizon).as_dict()
        ),
    }


def calibrate_qrisk(ctx: TaskContext) -> dict[str, Any]:
    """Recovery RL's Q_risk(s, logged a) against the same labels (ablation ``recrl``)."""
    from farm_trainer.methods import filter_factory

    params = ctx.cfg.gate.method_params()
    gate = filter_factory("recrl", ctx.artifacts(), params)(None)  # Q_risk ignores the actor
    return {"qrisk": score_report(ctx, gate.scores, ctx.cfg.gate.qrisk_eps_safe)}


def gate_latency(ctx: TaskContext, batches: tuple[int, ...] = (1, 16)) -> dict[str, Any]:
    """p50 / p99 wall time of one ``SafetyGate.__call__`` (torch.set_num_threads(1))."""
    import torch

    calls = ctx.cfg.latency_calls
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gate = ctx.gate("farm")
        obs_all = ctx.dataset("heldout").observations
        rng = np.random.default_rng(0)
        out: dict[str, Any] = {"threads": 1, "calls": calls}
        for b in batches:
            obs = obs_all[rng.integers(0, len(obs_all), b)]
            with torch.no_grad():
                proposed = gate.task_policy(torch.as_tensor(obs)).numpy()
            for _ in range(100):  # warm caches and the CPU clock before timing
                gate(obs, proposed)
            times, replaced = [], 0
            for _ in range(calls):
                t0 = time.perf_counter()
                d = gate(obs, proposed)
                times.append(time.perf_counter() - t0)
                replaced += int(d.replaced.sum())
            ms = 1e3 * np.asarray(times)
            out[f"batch{b}"] = {"batch": b, "p50_ms": float(np.percentile(ms, 50)),
                                "p99_ms": float(np.percentile(ms, 99)),
                                "replaced_frac": replaced / (b * calls)}  # fmt: skip
        return out
    finally:
        torch.set_num_threads(threads)
