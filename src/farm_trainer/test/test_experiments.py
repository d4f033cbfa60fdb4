"""Experiment pipeline: smoke config end to end, stage-level resume, report math, config errors."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from failurebench_sim.datasets import load_dataset
from farm_safety_critic.world_model import WorldModel
from farm_trainer.experiments import (
    ExperimentConfigError,
    PipelineError,
    TaskPipeline,
    config_from_dict,
    load_config,
    run_experiment,
    write_report,
)
from farm_trainer.experiments.cli import main as pipeline_main
from farm_trainer.experiments.config import pipeline_of

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "config" / "experiments" / "smoke.yaml"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def stage_log(root):
    return [json.loads(line) for line in (root / "stage_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_smoke_pipeline_end_to_end_then_resume_skips_everything(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--config", str(SMOKE), "--runs-dir", str(runs), "--results-dir", str(results)]
    assert pipeline_main(argv) == 0

    task_root = runs / "smoke" / "BoundedPush-v0"
    first = stage_log(task_root)
    assert {r["status"] for r in first} == {"ran"}
    ran = {(r["stage"], r["item"]) for r in first}
    for expected in [("data", "task_demos"), ("offline_task", ""), ("offline_recovery", ""),
                     ("failures", "failures"), ("failures", "failures_near"), ("world_model", ""),
                     ("calibration", "eps_safe"), ("calibration", "scores"), ("online", "unio4_s0"), ("online", "farm_s0"),
                     ("evaluate", "bc"), ("evaluate", "farm_s0")]:  # fmt: skip
        assert expected in ran
    for sub in ("data", "offline_task", "offline_recovery", "world_model", "calibration",
                "online/unio4_s0", "online/farm_s0"):  # fmt: skip
        assert (task_root / sub).is_dir(), sub

    # the per-task threshold (gate.eps_rule) is the one the calibration report (and the gate) use
    eps = json.loads((task_root / "calibration" / "eps_safe.json").read_text())
    assert eps["eps_safe"] in [c["eps_safe"] for c in eps["curve"]]
    calib = json.loads((task_root / "calibration" / "calibration.json").read_text())
    assert calib["world_model_c_h"].get("eps_safe", eps["eps_safe"]) == eps["eps_safe"]
    near = load_dataset(task_root / "data" / "failures_near.npz")
    assert near.metadata["start"] == "near_failure" and len(near) >= 200

    out = results / "smoke"
    rows = read_csv(out / "summary.csv")
    assert [(r["task"], r["method"]) for r in rows] == [
        ("BoundedPush-v0", "unio4"),
        ("BoundedPush-v0", "farm"),
    ]
    for r in rows:
        assert r["seeds_complete"] == "1" and float(r["env_steps_mean"]) == 128
        assert r["return_before"] != "" and r["return_after_mean"] != ""
    farm = next(r for r in rows if r["method"] == "farm")
    assert 0.0 <= float(farm["replaced_frac_mean"]) <= 1.0
    table = (out / "table.md").read_text()
    assert "FARM / Uni-O4" in table and "| BoundedPush-v0 |" in table
    for png in ("fig4_failures.png", "fig5_returns.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    latency = read_csv(out / "latency.csv")
    assert [r["batch"] for r in latency] == ["1", "16"]
    assert all(float(r["p99_ms"]) >= float(r["p50_ms"]) > 0 for r in latency)

    watched = [task_root / "data" / "failures.npz", task_root / "world_model" / "world_model.safetensors",
               task_root / "online" / "farm_s0" / "policy_final.safetensors"]  # fmt: skip
    mtimes = [p.stat().st_mtime_ns for p in watched]
    assert pipeline_main(argv) == 0
    second = stage_log(task_root)[len(first) :]
    assert len(second) == len(first)
    assert {r["status"] for r in second} == {"skipped"}
    assert [p.stat().st_mtime_ns for p in watched] == mtimes

    # An online run that lost its final policy (interrupted after its last checkpoint) resumes
    # from checkpoints/last.safetensors instead of training again from the offline init.
    run = task_root / "online" / "farm_s0"
    (run / "policy_final.safetensors").unlink()
    rows_before = read_csv(run / "progress.csv")
    assert pipeline_main([*argv, "--stages", "online", "--no-report"]) == 0
    assert (run / "policy_final.safetensors").exists()
    assert read_csv(run / "progress.csv") == rows_before
    third = stage_log(task_root)[2 * len(first) :]
    assert [(r["item"], r["status"]) for r in third] == [
        ("unio4_s0", "skipped"),
        ("farm_s0", "ran"),
    ]


def _fake_run(root, method, seed, ir_curve, episodes, after, replaced=0.0, raw=None):
    run = root / "online" / f"{method}_s{seed}"
    run.mkdir(parents=True)
    with open(run / "progress.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["update", "env_steps", "episodes", "ir_failure_episodes", "steps_per_s",
                    "replaced_frac_total", "success_rate"])  # fmt: skip
        for i, irf in enumerate(ir_curve):
            w.writerow([i + 1, 100 * (i + 1), episodes, irf, 50.0, replaced, ""])
    (run / "policy_final.safetensors").write_bytes(b"x")
    (run / "eval_final.json").write_text(
        json.dumps(
            {
                "normalized_return_mean": after,
                "success_rate": 0.5,
                "failure_rate": 0.0,
                "return_mean": 10.0 * after if raw is None else raw,
            }
        )  # fmt: skip
    )


def test_paper_tables_over_pipeline_seeds(tmp_path):
    cfg = config_from_dict({"name": "fake", "tasks": ["BoundedPush-v0"], "seeds": [0, 1],
                            "methods": ["unio4", "farm", "cpo", "recrl"],
                            "pipeline_seeds": True})  # fmt: skip
    for seed, before in ((0, 40.0), (1, 60.0)):
        root = tmp_path / "runs" / "fake" / f"s{seed}" / "BoundedPush-v0"
        _fake_run(root, "unio4", seed, [4, 8, 10], 20, after=80.0)
        _fake_run(root, "farm", seed, [1, 2, 4 + 2 * seed], 20, after=90.0)
        _fake_run(root, "cpo", seed, [5, 9, 12], 20, after=before - 30.0)  # collapses
        _fake_run(root, "recrl", seed, [2, 4, 8], 20, after=85.0)
        (root / "offline_task").mkdir()
        (root / "offline_task" / "eval_init.json").write_text(
            json.dumps({"normalized_return_mean": before, "return_mean": 10 * before})
        )
    out = write_report(cfg, tmp_path / "runs", tmp_path / "results")
    rows = {r["method"]: r for r in read_csv(out / "summary.csv")}
    assert float(rows["farm"]["return_before"]) == 50.0  # mean over the two pipelines
    assert float(rows["farm"]["return_before_std"]) == 10.0
    assert float(rows["farm"]["ir_failure_episodes_mean"]) == 5.0
    per_run = {(r["method"], r["seed"]): r for r in read_csv(out / "runs.csv")}  # seed by seed
    assert float(per_run[("farm", "0")]["ir_failure_episodes"]) == 4.0
    assert float(per_run[("farm", "1")]["ir_failure_episodes"]) == 6.0
    assert float(per_run[("cpo", "1")]["return_after"]) == 30.0
    tables = (out / "paper_tables.md").read_text()
    assert "| FARM | 900.0 ± 0.0 [90.0 ± 0.0] |" in tables
    assert "| CPO | 200.0 ± 100.0 [20.0 ± 10.0] |" in tables
    assert "| Rec-RL | 8.0 ± 0.0 |" in tables
    assert "| BoundedPush-v0 | CPO | 2 / 2 | -30.0 |" in tables
    cmp = {(r["table"], r["method"]): r for r in read_csv(out / "paper_comparison.csv")
           if r["task"] == "BoundedPush-v0"}  # fmt: skip
    assert float(cmp[("I", "cpo")]["ours_ratio_to_farm"]) == pytest.approx(200 / 900)
    assert float(cmp[("I", "cpo")]["paper_ratio_to_farm"]) == pytest.approx(156.28 / 4593.96)
    assert float(cmp[("II", "recrl")]["ours_ratio_to_farm"]) == pytest.approx(8 / 5)
    assert cmp[("II", "mppi")]["ours_value"] == ""  # not run here
    assert (out / "fig6_ablation_returns.png").stat().st_size > 0


def test_report_aggregates_hand_made_runs(tmp_path):
    cfg = config_from_dict(
        {"name": "fake", "tasks": ["BoundedPush-v0"], "methods": ["unio4", "farm"], "seeds": [0, 1]}
    )
    root = tmp_path / "runs" / "fake" / "BoundedPush-v0"
    _fake_run(root, "unio4", 0, [1, 4, 10], 20, after=60.0)
    _fake_run(root, "unio4", 1, [2, 5, 6], 20, after=80.0)
    _fake_run(root, "farm", 0, [0, 1, 3], 20, after=70.0, replaced=0.1)
    _fake_run(root, "farm", 1, [0, 2, 5], 20, after=70.0, replaced=0.3)
    (root / "offline_task").mkdir()
    (root / "offline_task" / "eval_init.json").write_text(
        json.dumps({"normalized_return_mean": 50.0, "success_rate": 0.25})
    )
    out = write_report(cfg, tmp_path / "runs", tmp_path / "results")
    rows = {r["method"]: r for r in read_csv(out / "summary.csv")}
    # unio4: final IR-failure episodes 10 and 6 -> mean 8, std 2; farm: 3 and 5 -> 4 +- 1
    assert float(rows["unio4"]["ir_failure_episodes_mean"]) == 8.0
    assert float(rows["unio4"]["ir_failure_episodes_std"]) == 2.0
    assert float(rows["farm"]["ir_failure_episodes_mean"]) == 4.0
    assert float(rows["farm"]["ir_failure_episodes_std"]) == 1.0
    assert float(rows["unio4"]["return_after_mean"]) == 70.0
    assert float(rows["unio4"]["return_after_std"]) == 10.0
    assert float(rows["farm"]["return_before"]) == 50.0
    assert float(rows["farm"]["replaced_frac_mean"]) == pytest.approx(0.2)
    assert float(rows["farm"]["failure_episode_frac_mean"]) == pytest.approx(0.2)
    table = (out / "table.md").read_text()
    assert "| BoundedPush-v0 | 8.0 ± 2.0 | 4.0 ± 1.0 | 0.50 |" in table
    assert (out / "fig4_failures.png").stat().st_size > 0


def test_config_rejects_bad_input(tmp_path):
    with pytest.raises(ExperimentConfigError, match="unknown key"):
        config_from_dict({"onlne": {"steps": 5}})
    with pytest.raises(ExperimentConfigError, match="unknown key"):
        config_from_dict({"online": {"stepz": 5}})
    with pytest.raises(ExperimentConfigError, match="unknown method"):
        config_from_dict({"methods": ["farm", "sac"]})
    with pytest.raises(ExperimentConfigError, match="online.steps"):
        config_from_dict({"online": {"steps": 0}})
    with pytest.raises(ExperimentConfigError, match="eps_rule"):
        config_from_dict({"gate": {"eps_rule": {"max_firing": 0.1}}})
    with pytest.raises(ExperimentConfigError, match="eps_rule"):
        config_from_dict({"gate": {"eps_rule": {"max_firing": 2.0, "max_expert_firing": 0.1}}})
    with pytest.raises(ExperimentConfigError, match="anyof_rule.*min_precision"):
        config_from_dict({"gate": {"anyof_rule": {"max_firing": 0.1, "max_expert_firing": 0.1}}})
    with pytest.raises(ExperimentConfigError, match="unknown key .*gate.anyof_rule.recal"):
        config_from_dict({"gate": {"anyof_rule": {"recal": 0.1}}})
    recall = {"min_recall": 0.9, "recall_within": 10, "max_expert_firing": 0.05}
    assert config_from_dict({"gate": {"anyof_rule": recall}}).gate.anyof_rule == recall
    with pytest.raises(ExperimentConfigError, match="recall_within"):
        config_from_dict({"gate": {"anyof_rule": {**recall, "recall_within": 0.5}}})
    with pytest.raises(ExperimentConfigError, match="max_expert_firing"):
        config_from_dict({"gate": {"anyof_rule": {"min_recall": 0.9}}})
    with pytest.raises(ExperimentConfigError, match="failure_policy"):
        config_from_dict({"data": {"failure_policy": "human"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed\n")
    with pytest.raises(ExperimentConfigError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(ExperimentConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    assert pipeline_main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_shipped_configs_load():
    for name in (
        "headline",
        "demo",
        "smoke",
        "quick4",
        "farm_data120k",
        "headline_2e5",
        "offline_budget",
        "farm_lookahead",
    ):
        cfg = load_config(ROOT / "config" / "experiments" / f"{name}.yaml")
        assert cfg.name == name
    headline = load_config(ROOT / "config" / "experiments" / "headline.yaml")
    assert len(headline.tasks) == 4 and headline.seeds == [0, 1, 2]
    assert headline.online.steps >= 100_000
    assert {"unio4", "farm"} <= set(headline.methods)
    assert headline.data.near_failure_transitions > 0


def test_negative_near_failure_data_is_rejected():
    with pytest.raises(ExperimentConfigError, match="near_failure_transitions"):
        config_from_dict({"name": "bad", "data": {"near_failure_transitions": -1}})


def test_later_stage_without_inputs_fails_clearly(tmp_path):
    cfg = config_from_dict({"name": "empty"})
    with pytest.raises(PipelineError, match="missing input"):
        run_experiment(cfg, tmp_path, stages=["world_model"], log=lambda s: None)
    with pytest.raises(PipelineError, match="unknown stage"):
        TaskPipeline(cfg, "BoundedPush-v0", tmp_path).run(["nonsense"])


def test_the_report_reads_runs_whose_files_are_gone_from_the_ledger(tmp_path):
    cfg = config_from_dict(
        {"name": "fake", "tasks": ["BoundedPush-v0"], "methods": ["unio4", "farm"], "seeds": [0]}
    )
    root = tmp_path / "runs" / "fake" / "BoundedPush-v0"
    _fake_run(root, "unio4", 0, [1, 4, 10], 20, after=60.0)
    _fake_run(root, "farm", 0, [0, 1, 3], 20, after=70.0)
    (root / "records").mkdir()
    for unit in ("online.unio4_s0", "online.farm_s0", "evaluate.unio4_s0", "evaluate.farm_s0"):
        (root / "records" / f"{unit}.json").write_text(json.dumps({"state": "done"}))
    first = (write_report(cfg, tmp_path / "runs", tmp_path / "results") / "summary.csv").read_text()
    shutil.rmtree(tmp_path / "runs")
    out = write_report(cfg, tmp_path / "runs", tmp_path / "results")
    assert (out / "summary.csv").read_text() == first
    rows = {r["method"]: r for r in read_csv(out / "summary.csv")}
    assert rows["farm"]["seeds_complete"] == "1" and float(rows["farm"]["return_after_mean"]) == 70


def test_farm_ens_trains_its_members_and_calibrates_its_own_threshold(tmp_path):
    """The ensemble stage trains members 1 .. K-1 (other seeds), farm-ens gets eps_safe chosen on
    the ensemble's own scores, and its run needs both; FARM's units are untouched."""
    cfg = load_config(SMOKE).replace(name="ens", methods=["farm", "farm-ens"])
    cfg.gate.ensemble_members = 3
    pipe = TaskPipeline(cfg, "BoundedPush-v0", tmp_path, log=lambda s: None)
    assert {"ensemble/member1", "ensemble/member2", "calibration/eps_safe_ensemble"} <= set(
        pipe.units
    )
    needs = pipe.units["online/farm-ens_s0"].needs
    assert {"ensemble/member1", "ensemble/member2", "calibration/eps_safe_ensemble"} <= set(needs)
    assert "ensemble/member1" not in pipe.units["online/farm_s0"].needs
    plain = TaskPipeline(cfg.replace(methods=["farm"]), "BoundedPush-v0", tmp_path)
    assert plain.hashes["online/farm_s0"] == pipe.hashes["online/farm_s0"]
    assert not any(u.startswith("ensemble/") for u in plain.units)

    run_experiment(cfg, tmp_path, log=lambda s: None)
    root = tmp_path / "ens" / "BoundedPush-v0"
    w0 = WorldModel.load(root / "world_model" / "world_model.safetensors")
    w1 = WorldModel.load(root / "world_model" / "member1.safetensors")
    assert any(not torch.equal(a, b) for a, b in zip(w0.state_dict().values(),
                                                     w1.state_dict().values(), strict=True))  # fmt: skip
    eps = json.loads((root / "calibration" / "eps_safe_ensemble.json").read_text())["eps_safe"]
    assert eps > 0 and (root / "online" / "farm-ens_s0" / "policy_final.safetensors").exists()


def test_farm_ens_pid_alone_plans_the_ensemble_and_its_threshold(tmp_path):
    """Any ensemble gate (not only farm-ens) brings the ensemble stage and the ensemble's own
    eps_safe; farm-ens-pid's run needs both."""
    cfg = load_config(SMOKE).replace(name="enspid", methods=["farm-ens-pid"])
    cfg.gate.ensemble_members = 2
    pipe = TaskPipeline(cfg, "BoundedPush-v0", tmp_path, log=lambda s: None)
    needs = set(pipe.units["online/farm-ens-pid_s0"].needs)
    assert {"ensemble/member1", "calibration/eps_safe_ensemble"} <= needs
    assert "calibration/eps_safe" not in needs


@pytest.mark.slow
def test_farm_qrisk_cal_runs_at_the_thresholds_its_calibration_chose(tmp_path):
    """farm-qrisk-cal needs gate.anyof_rule; its run needs the any-of calibration unit and reads
    both thresholds from it (a member left out there is left out of the run's gate)."""
    cfg = load_config(SMOKE).replace(name="qcal", methods=["farm-qrisk-cal"])
    with pytest.raises(PipelineError, match="anyof_rule"):
        TaskPipeline(cfg, "BoundedPush-v0", tmp_path, log=lambda s: None)
    cfg.gate.anyof_rule = {"max_firing": 0.1, "max_expert_firing": 0.03, "min_precision": 0.2,
                           "firing_vs_c_h": 1.0}  # fmt: skip
    pipe = TaskPipeline(cfg, "BoundedPush-v0", tmp_path, log=lambda s: None)
    needs = set(pipe.units["online/farm-qrisk-cal_s0"].needs)
    assert {"calibration/anyof_eps", "qrisk", "world_model"} <= needs
    assert "calibration/eps_safe" not in needs
    # at FARM's budget: the rule reads FARM's own threshold
    assert "calibration/eps_safe" in pipe.units["calibration/anyof_eps"].needs
    farm = TaskPipeline(cfg.replace(methods=["farm"]), "BoundedPush-v0", tmp_path)
    assert "calibration/anyof_eps" not in farm.units  # other methods' plans are untouched

    run_experiment(cfg, tmp_path, log=lambda s: None)
    root = tmp_path / "qcal" / "BoundedPush-v0"
    chosen = json.loads((root / "calibration" / "anyof_eps.json").read_text())
    assert (chosen["eps_safe"], chosen["qrisk_eps_safe"]) != (None, None)
    assert {"recall", "precision", "budgets_met", "precision_met", "curve"} <= set(chosen)
    farm_eps = json.loads((root / "calibration" / "eps_safe.json").read_text())["eps_safe"]
    assert chosen["c_h_eps_safe"] == farm_eps
    assert chosen["firing_rate"] <= chosen["max_firing"] or not chosen["budgets_met"]
    ctx = pipe.ctx
    want = {k: float("inf") if chosen[k] is None else chosen[k]
            for k in ("eps_safe", "qrisk_eps_safe")}  # fmt: skip
    assert ctx.thresholds("farm-qrisk-cal") == want
    gate = ctx.gate("farm-qrisk-cal")
    assert len(gate.members) == sum(v is not None for v in
                                    (chosen["eps_safe"], chosen["qrisk_eps_safe"]))  # fmt: skip
    assert (root / "online" / "farm-qrisk-cal_s0" / "policy_final.safetensors").exists()

    # the recall rule: C_H at FARM's threshold, Q-risk's lowered from gate.qrisk_eps_safe
    from farm_trainer.experiments.stages.calibration import choose_anyof_eps

    rule = {"min_recall": 0.9, "recall_within": 10, "max_expert_firing": 0.05}
    recall_cfg = cfg.replace(gate=dataclasses.replace(cfg.gate, anyof_rule=rule))
    recall = TaskPipeline(recall_cfg, "BoundedPush-v0", tmp_path, log=lambda s: None)
    unit = recall.units["calibration/anyof_eps"]
    assert unit.config["gate"]["qrisk_eps_safe"] == cfg.gate.qrisk_eps_safe  # in its hash
    chosen = choose_anyof_eps(recall.ctx)
    assert chosen["eps_safe"] == farm_eps and chosen["qrisk_eps_safe"] <= chosen["ceiling"]
    assert chosen["recall_met"] == (chosen["recall"] >= 0.9)

    # with c_h_grid both thresholds are searched (farm_qrisk_g09_fewest): the fewest alarms
    joint = {**rule, "c_h_grid": [0.01, 0.1, 1.0], "qrisk_grid": [0.1, 0.3, 0.9]}
    joint_cfg = cfg.replace(gate=dataclasses.replace(cfg.gate, anyof_rule=joint))
    fewest = choose_anyof_eps(TaskPipeline(joint_cfg, "BoundedPush-v0", tmp_path).ctx)
    assert fewest["eps_safe"] in (None, 0.01, 0.1, 1.0)
    assert fewest["qrisk_eps_safe"] in (None, 0.1, 0.3, 0.9)
    if fewest["recall_met"]:
        met = [c for c in fewest["curve"]
               if c["recall"] >= 0.9 and c["expert_firing_rate"] <= 0.05]  # fmt: skip
        assert fewest["firing_rate"] == min(c["firing_rate"] for c in met)


def test_a_per_task_experiment_reuses_each_tasks_units_by_hash():
    """farm_qrisk_g09_pertask: Push's units hash as farm_qrisk_g09_hold's, Soccer's (run-out
    constraint targets) as farm_qrisk_g09_touch's, so both productions are reused as they are."""
    configs = ROOT / "config" / "experiments"
    pertask, hold, touch = (load_config(configs / f"farm_qrisk_g09{n}.yaml")
                            for n in ("_pertask", "_hold", "_touch"))  # fmt: skip
    for task, other in (("BoundedPush-v0", hold), ("BoundedSoccer-v0", touch)):
        a = TaskPipeline(pipeline_of(pertask, 1), task, "/nonexistent", log=lambda s: None)
        b = TaskPipeline(pipeline_of(other, 1), task, "/nonexistent", log=lambda s: None)
        assert a.hashes == {u: b.hashes[u] for u in a.hashes}
    soccer = TaskPipeline(pipeline_of(pertask, 1), "BoundedSoccer-v0", "/nonexistent")
    assert soccer.units["world_model"].config["world_model"]["train"]["cost_touch_window"] == 60
    assert soccer.inputs(soccer.units["qrisk"]) == ["farm_qrisk_g09_touch/s1"]


def test_the_chosen_setting_runs_pi_rec_on_wall_and_reuses_every_unit_by_hash():
    """farm_qrisk_g09_chosen: its farm-chosen column runs farm-qrisk-cal (pi_rec) on Fragile
    Push Wall and farm-qrisk-cal-hold elsewhere; every task's units hash as those of the
    experiment that made them (Wall: farm_qrisk_g09_hold, which runs both recoveries)."""
    configs = ROOT / "config" / "experiments"
    chosen, pertask, hold = (load_config(configs / f"farm_qrisk_g09{n}.yaml")
                             for n in ("_chosen", "_pertask", "_hold"))  # fmt: skip
    for task, other in (("BoundedPush-v0", pertask), ("BoundedSoccer-v0", pertask),
                        ("FragilePushWall-v0", hold), ("ObstructedPush-v0", pertask)):  # fmt: skip
        a = TaskPipeline(pipeline_of(chosen, 4), task, "/nonexistent", log=lambda s: None)
        b = TaskPipeline(pipeline_of(other, 4), task, "/nonexistent", log=lambda s: None)
        assert a.hashes == {u: b.hashes[u] for u in a.hashes}
        pi_rec = task == "FragilePushWall-v0"
        assert ("online/farm-qrisk-cal_s4" in a.units) == pi_rec
        assert ("online/farm-qrisk-cal-hold_s4" in a.units) != pi_rec
    push = TaskPipeline(pipeline_of(chosen, 4), "BoundedPush-v0", "/nonexistent")
    assert push.inputs(push.units["online/unio4_s4"]) == [
        "farm_qrisk_g09_hold/s4",
        "farm_qrisk_g09_pertask/s4",
        "farm_qrisk_g09_holdrec/s4",
    ]
    # pipeline seed 6 was built by farm_qrisk_g09_holdrec, which runs the chosen column too
    holdrec = load_config(configs / "farm_qrisk_g09_holdrec.yaml")
    for task in chosen.tasks:
        a = TaskPipeline(pipeline_of(chosen, 6), task, "/nonexistent", log=lambda s: None)
        b = TaskPipeline(pipeline_of(holdrec, 6), task, "/nonexistent", log=lambda s: None)
        assert a.hashes == {u: b.hashes[u] for u in a.hashes}
        assert "farm_qrisk_g09_holdrec/s6" in a.inputs(a.units["offline_task"])


def test_soccer_only_levers_share_the_chosen_settings_soccer_units():
    """farm_qrisk_g09_soccer hashes as the chosen setting's Soccer; the Soccer levers of session
    23 change only their own units: fewest the any-of calibration (and the gated run after it),
    soccer_proposed the gated run (learn_actions)."""
    configs = ROOT / "config" / "experiments"
    chosen, soccer, fewest, proposed = (
        load_config(configs / f"farm_qrisk_g09{n}.yaml")
        for n in ("_chosen", "_soccer", "_fewest", "_soccer_proposed")
    )
    task = "BoundedSoccer-v0"

    def hashes(cfg):
        return TaskPipeline(pipeline_of(cfg, 5), task, "/nonexistent", log=lambda s: None).hashes

    base = hashes(chosen)
    assert hashes(soccer) == {u: base[u] for u in hashes(soccer)}
    gated = {"online/farm-qrisk-cal-hold_s5", "evaluate/farm-qrisk-cal-hold_s5"}
    for cfg, changed in ((fewest, gated | {"calibration/anyof_eps"}), (proposed, gated)):
        h = hashes(cfg)
        assert {u for u in h if h[u] != base[u]} == changed


def test_the_report_shows_a_method_label_and_what_it_ran_on_each_task(tmp_path):
    cfg = config_from_dict(
        {"name": "fake", "tasks": ["BoundedPush-v0", "FragilePushWall-v0"], "seeds": [0],
         "methods": ["unio4", "farm-chosen"], "method_for": {"farm-chosen": "farm-hold"},
         "task_overrides": {"FragilePushWall-v0": {"method_for": {"farm-chosen": "farm"}}}}
    )  # fmt: skip
    for task, method in (("BoundedPush-v0", "farm-hold"), ("FragilePushWall-v0", "farm")):
        root = tmp_path / "runs" / "fake" / task
        _fake_run(root, "unio4", 0, [1, 4, 10], 20, after=60.0)
        _fake_run(root, method, 0, [0, 1, 3], 20, after=70.0)
    out = write_report(cfg, tmp_path / "runs", tmp_path / "results")
    rows = {(r["task"], r["method"]): r for r in read_csv(out / "summary.csv")}
    for task in ("BoundedPush-v0", "FragilePushWall-v0"):
        assert float(rows[(task, "farm-chosen")]["ir_failure_episodes_mean"]) == 3.0
    table = (out / "table.md").read_text()
    assert "`farm-chosen` runs farm-hold on BoundedPush-v0, farm on FragilePushWall-v0." in table


def test_learn_actions_changes_gated_runs_only():
    """``online.ppo.learn_actions`` is what PPO learns on where a gate replaced an action: the
    runs of methods without a gate keep their hashes (and run without it)."""
    cfg = load_config(SMOKE).replace(methods=["unio4", "farm", "ppo-lag"])
    ppo = {**cfg.online.ppo, "learn_actions": "own", "replaced_penalty": 1.0, "dual_clip": 3.0}
    own = cfg.replace(online=dataclasses.replace(cfg.online, ppo=ppo))
    a = TaskPipeline(cfg, "BoundedPush-v0", "/nonexistent", log=lambda s: None)
    b = TaskPipeline(own, "BoundedPush-v0", "/nonexistent", log=lambda s: None)
    for run, same in (("unio4_s0", True), ("ppo-lag_s0", True), ("farm_s0", False)):
        assert (a.hashes[f"online/{run}"] == b.hashes[f"online/{run}"]) is same
    assert b.units["online/farm_s0"].config["online"]["ppo"] == ppo


def test_every_method_of_a_figure_gets_its_own_colour():
    """Methods without a colour of their own (farm-qrisk-cal-hold, ...) never fall back to
    matplotlib's first colour, Uni-O4's."""
    from farm_trainer.experiments.report import method_colors

    methods = [
        "unio4",
        "farm-qrisk-cal",
        "farm",
        "farm-qrisk-cal-hold",
        *(f"m{i}" for i in range(9)),
    ]
    colors = method_colors(methods)
    assert colors["unio4"] == "tab:blue" and colors["farm"] == "tab:red"
    assert len(set(list(colors.values())[:10])) == 10


def test_tasks_on_the_command_line_drop_the_other_tasks_overrides(tmp_path, capsys):
    """``--tasks`` with a config whose task_overrides name other tasks plans just those tasks,
    each with its own override (Soccer's run-out targets) and hashes."""
    config = ROOT / "config" / "experiments" / "farm_qrisk_g09_chosen.yaml"
    argv = ["--config", str(config), "--seeds", "5", "--runs-dir", str(tmp_path), "--plan"]
    assert pipeline_main([*argv, "--tasks", "BoundedSoccer-v0"]) == 0
    plan = capsys.readouterr().out
    assert "BoundedSoccer-v0" in plan and "BoundedPush-v0" not in plan
    full = TaskPipeline(pipeline_of(load_config(config), 5), "BoundedSoccer-v0", tmp_path)
    cfg = load_config(config).replace(tasks=["BoundedSoccer-v0"], task_overrides={
        "BoundedSoccer-v0": load_config(config).task_overrides["BoundedSoccer-v0"]})  # fmt: skip
    assert TaskPipeline(pipeline_of(cfg, 5), "BoundedSoccer-v0", tmp_path).hashes == full.hashes
