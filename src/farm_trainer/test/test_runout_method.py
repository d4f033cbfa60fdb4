"""farm-runout: the run-out model is fitted in the pipeline's calibration and gates its runs; the
CLI builds the same gate from the same registry entry."""

import csv
import json
from pathlib import Path

import numpy as np

import farm_safety_critic.runout as runout
from failurebench_sim.geometry import SOCCER_BOUNDARY
from farm_trainer.experiments import load_config, run_experiment

SMOKE = Path(__file__).resolve().parents[3] / "config" / "experiments" / "smoke.yaml"


def test_farm_runout_fits_its_model_in_calibration_and_gates_the_online_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runout, "MIN_FIT_ROWS", 10)  # the smoke data rolls the ball a few times
    cfg = load_config(SMOKE).replace(name="runout", tasks=["BoundedSoccer-v0"],
                                     methods=["farm-runout", "farm-runout-hold"])  # fmt: skip
    run_experiment(cfg, tmp_path, log=lambda s: None)
    task = tmp_path / "runout" / "BoundedSoccer-v0"
    fitted = json.loads((task / "calibration" / "runout.json").read_text())
    model = runout.RunoutModel.load(task / "calibration" / "runout.json")
    assert 0 < model.decay < 1 and fitted["fit_rows"] >= 10
    np.testing.assert_allclose([model.low, model.high], SOCCER_BOUNDARY)  # bounded_soccer.xml
    assert model.exits == (0, 1, 2)  # the y+ border is the wall behind the goal
    for method in ("farm-runout", "farm-runout-hold"):
        rows = list(csv.DictReader(open(task / "online" / f"{method}_s0" / "progress.csv")))
        assert rows and float(rows[-1]["score_mean"]) >= 0  # the run-out score of every step

    from farm_trainer.cli import _gate_factory, build_parser

    args = build_parser().parse_args([
        "online", "--task", "BoundedSoccer-v0", "--out", str(tmp_path / "cli"), "--method",
        "farm-runout", "--recovery", str(task / "offline_recovery" / "actor.safetensors"),
        "--runout", str(task / "calibration" / "runout.json"), "--runout-eps", "0.7"])  # fmt: skip
    gate = _gate_factory(args)(None)
    assert gate.model == model and gate.eps_safe == 0.7
