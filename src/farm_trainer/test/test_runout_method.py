"""farm-runout: the run-out model is fitted in the pipeline's calibration and gates its runs; the
CLI builds the same gate from the same registry entry."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import farm_safety_critic.runout as runout
from failurebench_sim.geometry import SOCCER_BOUNDARY
from farm_policies.checkpoint import load_actor_value
from farm_safety_critic.push_sequence import HandMotion
from farm_trainer.experiments import load_config, run_experiment
from farm_trainer.experiments.stages import calibration

SMOKE = Path(__file__).resolve().parents[3] / "config" / "experiments" / "smoke.yaml"


def test_farm_runout_fits_its_model_in_calibration_and_gates_the_online_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runout, "MIN_FIT_ROWS", 10)  # the smoke data rolls the ball a few times
    small = {**calibration.MOTION_TRAINING, "hidden": 32, "steps": 50}
    monkeypatch.setattr(calibration, "MOTION_TRAINING", small)
    cfg = load_config(SMOKE).replace(name="runout", tasks=["BoundedSoccer-v0"],
                                     methods=["farm-runout", "farm-runout-hold", "farm-runout-ahead",
                                              "farm-runout-seq"])  # fmt: skip
    run_experiment(cfg, tmp_path, log=lambda s: None)
    task = tmp_path / "runout" / "BoundedSoccer-v0"
    fitted = json.loads((task / "calibration" / "runout.json").read_text())
    model = runout.RunoutModel.load(task / "calibration" / "runout.json")
    assert model.decay == pytest.approx(1.0, abs=1e-3) and fitted["fit_rows"] >= 10  # it rolls on
    np.testing.assert_allclose([model.low, model.high], SOCCER_BOUNDARY)  # bounded_soccer.xml
    assert model.exits == (0, 1, 2)  # the y+ border is the wall behind the goal
    assert (task / "calibration" / "object_motion.safetensors").exists()
    assert HandMotion.load(task / "calibration" / "hand_motion.json").rows > 0
    for method in ("farm-runout", "farm-runout-hold", "farm-runout-ahead", "farm-runout-seq"):
        rows = list(csv.DictReader(open(task / "online" / f"{method}_s0" / "progress.csv")))
        assert rows and float(rows[-1]["score_mean"]) >= 0  # the run-out score of every step
    seq = list(csv.DictReader(open(task / "online" / "farm-runout-seq_s0" / "progress.csv")))
    assert "filter/member1_fraction" in seq[-1]  # who decided: pi_rec (0) or the hold (1)

    from farm_trainer.cli import _gate_factory, build_parser

    args = build_parser().parse_args([
        "online", "--task", "BoundedSoccer-v0", "--out", str(tmp_path / "cli"), "--method",
        "farm-runout", "--recovery", str(task / "offline_recovery" / "actor.safetensors"),
        "--runout", str(task / "calibration" / "runout.json"), "--runout-eps", "0.7"])  # fmt: skip
    gate = _gate_factory(args)(None)
    assert gate.model == dataclasses.replace(model, horizon=40) and gate.eps_safe == 0.7
    args = build_parser().parse_args([
        "online", "--task", "BoundedSoccer-v0", "--out", str(tmp_path / "cli"), "--method",
        "farm-runout-seq", "--recovery", str(task / "offline_recovery" / "actor.safetensors"),
        "--runout", str(task / "calibration" / "runout.json"),
        "--object-motion", str(task / "calibration" / "object_motion.safetensors"),
        "--hand-motion", str(task / "calibration" / "hand_motion.json"),
        "--runout-lookahead", "3", "--runout-hold-eps", "0.5"])  # fmt: skip
    actor = load_actor_value(task / "offline_task" / "actor.safetensors")[0]
    seq = _gate_factory(args)(actor)
    assert seq.members[1].sequence.lookahead == 3 and seq.eps_safe == 1.0
    assert seq.members[1].eps_safe == 0.5
    obs = np.zeros((2, actor.obs_dim), np.float32)
    d = seq(obs, np.zeros((2, actor.act_dim), np.float32))
    assert d.actions.shape == (2, actor.act_dim) and np.isfinite(d.actions).all()


def test_bad_run_out_settings_are_refused_on_every_path():
    from farm_trainer.cli import build_parser, method_params
    from farm_trainer.experiments import config_from_dict
    from farm_trainer.experiments.schema import ExperimentConfigError
    from farm_trainer.methods import MethodError, MethodParams

    with pytest.raises(MethodError, match="runout_lookahead"):
        MethodParams(runout_lookahead=0)
    with pytest.raises(MethodError, match="runout_hold_eps"):
        MethodParams(runout_hold_eps=float("nan"))
    with pytest.raises(ExperimentConfigError, match="gate.runout_lookahead"):
        config_from_dict({"gate": {"runout_lookahead": 1.5}})
    for eps, horizon in ((0.0, 40), (float("inf"), 40), (True, 40), (1.0, 0), (1.0, 2.5)):
        with pytest.raises(MethodError):
            MethodParams(runout_eps=eps, runout_horizon=horizon)
        with pytest.raises(ExperimentConfigError, match="gate.runout"):
            config_from_dict({"gate": {"runout_eps": eps, "runout_horizon": horizon}})
    args = build_parser().parse_args(["online", "--task", "BoundedSoccer-v0", "--out", "x",
                                      "--runout-eps", "-1"])  # fmt: skip
    with pytest.raises(MethodError, match="runout_eps"):
        method_params(args)


def test_the_boundary_of_a_task_names_its_exits():
    from failurebench_sim.geometry import boundary_of_task

    low, high, exits = boundary_of_task("FailureBench/BoundedSoccer-v0")
    np.testing.assert_allclose([low, high], SOCCER_BOUNDARY)
    assert exits == (0, 1, 2) and boundary_of_task("BoundedPush-v0")[2] == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="no boundary"):
        boundary_of_task("FragilePushWall-v0")
