"""Stage bookkeeping: a changed hyper-parameter re-runs exactly the units that read it and
everything downstream; inputs by reference; --no-rebuild; resume of an interrupted run; a
rebuilt input makes everything made from it stale, so methods never mix offline checkpoints.

Heavy stages are stubbed (each writes empty outputs); hashes, records and decisions are real.
"""

import copy

import pytest

from farm_trainer.experiments import PipelineError, TaskPipeline, config_from_dict
from farm_trainer.experiments.cli import main as pipeline_main
from farm_trainer.experiments.ledger import save_ledger

BASE = {"name": "a", "tasks": ["BoundedPush-v0"], "methods": ["unio4", "farm"], "seeds": [0, 1],
        "data": {"near_failure_transitions": 10}, "gate": {"eps_rule": {"max_firing": 0.1,
        "max_expert_firing": 0.03}}}  # fmt: skip


def cfg_with(**changes):
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        d = raw
        for p in path:
            d = d.setdefault(p, {})
        d[key] = value
    return config_from_dict(raw)


def stubbed(cfg, runs, calls=None, **kw):
    pipe = TaskPipeline(cfg, "BoundedPush-v0", runs, log=lambda s: None, **kw)
    for unit in pipe.units.values():

        def fake(unit=unit):
            if calls is not None:
                calls.append(unit.id)
            for rel in unit.outputs:
                (pipe.root / rel).parent.mkdir(parents=True, exist_ok=True)
                (pipe.root / rel).write_text("x")

        unit.run = fake
    return pipe


def ran(cfg, runs, **kw):
    pipe = stubbed(cfg, runs, **kw)
    pipe.run()
    return {
        r["stage"] + ("/" + r["item"] if r["item"] else ""): r["status"] for r in pipe.log_file.rows
    }


def reran(rows):
    return sorted(k for k, s in rows.items() if s == "ran")


def test_a_changed_hyper_parameter_reruns_exactly_its_dependents(tmp_path):
    first = ran(cfg_with(), tmp_path)
    assert set(first.values()) == {"ran"} and len(first) == 22
    assert set(ran(cfg_with(), tmp_path).values()) == {"skipped"}

    rows = ran(cfg_with(online__ppo__lr_actor=1e-5), tmp_path)
    assert reran(rows) == sorted(f"{s}/{m}_s{i}" for s in ("online", "evaluate")
                                 for m in ("unio4", "farm") for i in (0, 1))  # fmt: skip

    rows = ran(cfg_with(online__ppo__lr_actor=1e-5, world_model__steps=7), tmp_path)
    assert reran(rows) == sorted(
        ["world_model", "calibration/eps_safe", "calibration/scores", "calibration/latency",
         "online/farm_s0", "online/farm_s1", "evaluate/farm_s0", "evaluate/farm_s1"]
    )  # fmt: skip
    plan = dict((u.id, d.reason) for u, d in stubbed(cfg_with(), tmp_path).plan())
    assert plan["world_model"] == "config changed: world_model.steps"

    rows = ran(cfg_with(online__ppo__lr_actor=1e-5, world_model__steps=7, data__heldout_transitions=99),
               tmp_path)  # fmt: skip
    assert "failures/heldout" in reran(rows) and "world_model" in reran(rows)
    assert rows["data/task_demos"] == rows["offline_task"] == rows["failures/failures"] == "skipped"
    assert rows["online/unio4_s0"] == "skipped"  # the baseline reads no safety critic


def test_plan_names_the_reason_and_no_rebuild_stops_before_any_work(tmp_path):
    ran(cfg_with(), tmp_path)
    changed = cfg_with(gate__eps_rule={"max_firing": 0.2, "max_expert_firing": 0.03})
    plan = {u.id: d for u, d in stubbed(changed, tmp_path).plan()}
    assert plan["calibration/eps_safe"].reason == "config changed: gate.eps_rule.max_firing"
    assert plan["online/farm_s0"].reason == "upstream changed: calibration/eps_safe"
    assert plan["online/unio4_s0"].action == "skip" and plan["world_model"].action == "skip"
    calls = []
    with pytest.raises(PipelineError, match="rebuilt inputs: calibration/eps_safe"):
        stubbed(changed, tmp_path, calls, rebuild=False).run()
    assert calls == []


def test_inputs_reuse_another_experiments_units_by_reference_when_hashes_match(tmp_path):
    ran(cfg_with(), tmp_path)
    raw = {**copy.deepcopy(BASE), "name": "b", "inputs": {"data": "a", "offline_task": "a",
           "failures": "a", "online": "a"}}  # fmt: skip
    raw["data"]["failure_transitions"] = 123
    calls = []
    rows = ran(config_from_dict(raw), tmp_path, calls=calls)
    assert rows["data/task_demos"] == rows["offline_task"] == rows["failures/heldout"] == "reused"
    assert rows["online/unio4_s0"] == "reused"
    assert rows["failures/failures"] == "ran" and "failures/failures" in calls
    assert rows["offline_recovery"] == "ran"  # not in inputs: built here
    assert rows["online/farm_s0"] == "ran"  # its world model saw other failure data
    assert not (tmp_path / "b" / "BoundedPush-v0" / "offline_task" / "actor.safetensors").exists()
    pipe = stubbed(config_from_dict(raw), tmp_path)
    assert (
        pipe.ctx.task_actor_path
        == tmp_path / "a" / "BoundedPush-v0" / "offline_task" / "actor.safetensors"
    )
    assert set(ran(config_from_dict(raw), tmp_path).values()) == {"skipped"}


def test_interrupted_unit_resumes_under_the_same_config_and_restarts_under_another(tmp_path):
    ran(cfg_with(), tmp_path)
    pipe = stubbed(cfg_with(online__steps=256), tmp_path)
    run = pipe.root / "online" / "farm_s0"
    unit = pipe.units["online/farm_s0"]

    def interrupted():
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.safetensors").write_text("ckpt")
        raise KeyboardInterrupt

    unit.run = interrupted
    with pytest.raises(KeyboardInterrupt):
        pipe.run(["online"])
    seen = []
    pipe = stubbed(cfg_with(online__steps=256), tmp_path)
    pipe.units["online/farm_s0"].run = lambda: seen.append((run / "checkpoints").exists())
    assert pipe.decide("online/farm_s0").reason == "interrupted: resuming"
    pipe.run_unit("online/farm_s0")
    assert seen == [True]  # same config: the checkpoint is kept and the run continues
    pipe = stubbed(cfg_with(online__steps=512), tmp_path)
    pipe.units["online/farm_s0"].run = lambda: seen.append((run / "checkpoints").exists())
    pipe.run_unit("online/farm_s0")
    assert seen == [True, False]  # another config: a fresh start


def test_missing_input_of_an_unselected_stage_fails_clearly(tmp_path):
    with pytest.raises(PipelineError, match="missing input.*data/task_demos \\(output missing\\)"):
        stubbed(cfg_with(), tmp_path).run(["offline_task"])


def test_plan_flag_on_a_fresh_runs_dir_plans_to_build_everything(tmp_path, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[3] / "config" / "experiments" / "headline_2e5.yaml"
    assert pipeline_main(["--config", str(config), "--plan", "--runs-dir", str(tmp_path)]) == 0
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")]
    assert len(lines) == 4 * 26 and {ln[0] for ln in lines} == {"run"}
    assert {" ".join(ln[2:]) for ln in lines} == {"output missing"}
    assert not any(tmp_path.iterdir())


def _with_ledger_files(pipe):
    """The stub also writes the small files a unit leaves in the ledger (progress.csv)."""
    for unit in pipe.units.values():

        def fake(unit=unit, inner=unit.run):
            inner()
            for rel in unit.ledger:
                (pipe.root / rel).write_text("update,env_steps\n1,100\n")

        unit.run = fake
    return pipe


def ran_with_ledger(cfg, runs, book, calls):
    pipe = _with_ledger_files(stubbed(cfg, runs, calls, ledger=book))
    pipe.run()
    save_ledger(pipe.layout, book)
    return {r["stage"] + ("/" + r["item"] if r["item"] else ""): r["status"]
            for r in pipe.log_file.rows}  # fmt: skip


def test_a_fresh_checkout_skips_every_unit_done_in_the_ledger(tmp_path):
    book, calls = tmp_path / "results" / "ledger", []
    ran_with_ledger(cfg_with(), tmp_path / "runs_a", book, calls)
    assert len(calls) == 22
    assert (book / "a" / "BoundedPush-v0" / "online" / "farm_s1" / "progress.csv").exists()
    assert not list(book.rglob("*.npz")) and not list(book.rglob("*.safetensors"))

    # a local record is the local truth: an output deleted under runs/ is made again
    (tmp_path / "runs_a" / "a" / "BoundedPush-v0" / "online" / "farm_s1" /
     "policy_final.safetensors").unlink()  # fmt: skip
    calls.clear()
    ran_with_ledger(cfg_with(), tmp_path / "runs_a", book, calls)
    assert calls == ["online/farm_s1", "evaluate/farm_s1"]  # the new policy is evaluated

    calls.clear()  # runs/ is gone (a new machine): nothing runs again
    rows = ran_with_ledger(cfg_with(), tmp_path / "runs_b", book, calls)
    assert calls == [] and set(rows.values()) == {"skipped"}

    # one evaluation is missing: its run is re-trained, so every unit with weights it needs is
    # rebuilt, and a rebuild (other weights on another CPU) makes everything made from the old
    # weights stale: the seed's other runs and calibration are made again from the new ones
    (book / "a" / "BoundedPush-v0" / "records" / "evaluate.farm_s1.json").unlink()
    calls.clear()
    ran_with_ledger(cfg_with(), tmp_path / "runs_c", book, calls)
    assert "online/farm_s1" in calls and "evaluate/farm_s1" in calls
    assert {"data/task_demos", "offline_task", "offline_recovery", "world_model"} <= set(calls)
    assert {"online/farm_s0", "online/unio4_s1", "calibration/eps_safe"} <= set(calls)
    assert len(calls) == 22

    calls.clear()  # a changed hyper-parameter is not hidden by the ledger
    ran_with_ledger(cfg_with(online__ppo__lr_actor=1e-5), tmp_path / "runs_d", book, calls)
    assert {f"online/{m}_s{i}" for m in ("unio4", "farm") for i in (0, 1)} <= set(calls)


def test_inputs_are_also_found_in_the_other_experiments_ledger(tmp_path):
    """A fresh checkout: experiment b's inputs from a are skipped from a's ledger (a's runs/ is
    gone) while nothing needs to be rebuilt; a new method needs the weights, they are rebuilt
    under b, and then a's runs (made from a's weights) are run again under b too."""
    book, calls = tmp_path / "results" / "ledger", []
    ran_with_ledger(cfg_with(), tmp_path / "runs_a", book, calls)
    raw = {**copy.deepcopy(BASE), "name": "b", "methods": ["unio4", "farm", "farm-hold"],
           "inputs": {"data": "a", "offline_task": "a", "offline_recovery": "a",
                      "failures": "a", "world_model": "a", "calibration": "a", "online": "a",
                      "evaluate": "a"}}  # fmt: skip
    calls.clear()
    pipe = _with_ledger_files(stubbed(config_from_dict(raw), tmp_path / "runs_b", calls,
                                      ledger=book))  # fmt: skip
    plan = {u.id: d for u, d in pipe.plan()}
    assert plan["online/farm-hold_s0"].action == "run"
    assert plan["offline_task"].action == "run"
    assert plan["online/farm_s0"].action == "run"
    assert plan["online/farm_s0"].reason.startswith("input ")
    assert plan["online/farm_s0"].reason.endswith(" is to be rebuilt")
    pipe.run()
    assert {"online/farm-hold_s0", "offline_task", "world_model"} <= set(calls)
    assert {"online/farm_s0", "online/unio4_s1", "calibration/eps_safe"} <= set(calls)
    assert (tmp_path / "runs_b" / "b" / "BoundedPush-v0" / "world_model").is_dir()

    raw["methods"] = ["unio4", "farm"]  # without the new method: all of it from a's ledger
    calls.clear()
    pipe = _with_ledger_files(stubbed(config_from_dict(raw), tmp_path / "runs_e", calls,
                                      ledger=book))  # fmt: skip
    plan = {u.id: d for u, d in pipe.plan()}
    assert plan["online/farm_s0"].reason == f"done in the ledger of a ({book})"
    pipe.run()
    assert calls == []


def test_a_rebuilt_offline_stage_reruns_every_run_made_from_it(tmp_path):
    """Same config, same hashes, but the offline stage was made again (its outputs lost):
    every run of the old weights is stale, and none of it survives as a mixed comparison."""
    ran(cfg_with(), tmp_path)
    (tmp_path / "a" / "BoundedPush-v0" / "offline_task" / "actor.safetensors").unlink()
    plan = {u.id: d for u, d in stubbed(cfg_with(), tmp_path).plan()}
    assert plan["offline_task"].action == "run"
    assert plan["online/unio4_s0"].reason == "input offline_task is to be rebuilt"
    assert plan["data/task_demos"].action == "skip"
    rows = ran(cfg_with(), tmp_path)
    assert rows["data/task_demos"] == "skipped"
    made_again = {"offline_task", "failures/failures", "world_model", "calibration/eps_safe",
                  *(f"{s}/{m}_s{i}" for s in ("online", "evaluate") for m in ("unio4", "farm")
                    for i in (0, 1))}  # fmt: skip
    assert made_again <= set(reran(rows))
    assert set(ran(cfg_with(), tmp_path).values()) == {"skipped"}


def test_records_of_before_run_ids_are_judged_by_time(tmp_path):
    """A record without ``inputs`` (written before productions were recorded) is stale when
    an input it reads finished after it; otherwise it stands."""
    import json

    ran(cfg_with(), tmp_path)
    records = tmp_path / "a" / "BoundedPush-v0" / "records"
    for path in records.glob("*.json"):
        rec = json.loads(path.read_text())
        rec.pop("inputs", None), rec.pop("run_id", None)
        rec["time"] = "2026-12-01T10:00:00+00:00"
        path.write_text(json.dumps(rec))
    assert set(ran(cfg_with(), tmp_path).values()) == {"skipped"}
    path = records / "offline_task.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "time": "2026-12-01T11:00:00+00:00"})
    )
    plan = {u.id: d for u, d in stubbed(cfg_with(), tmp_path).plan()}
    assert plan["online/unio4_s0"].reason == "input offline_task was rebuilt after it ran"
    assert plan["data/task_demos"].action == plan["offline_task"].action == "skip"


def test_a_method_label_reuses_the_registry_methods_runs_by_hash(tmp_path):
    """``method_for``: a label's units, jobs and hashes are the registry method's, so a per-task
    choice reuses the runs of the experiment that compared the methods, and nothing reruns."""
    from farm_trainer.experiments.sweep import plan_jobs

    ran(cfg_with(methods=["unio4", "farm", "farm-hold"]), tmp_path)
    stages = ("data", "offline_task", "offline_recovery", "failures", "world_model",
              "calibration", "online", "evaluate")  # fmt: skip
    raw = {**copy.deepcopy(BASE), "name": "b", "methods": ["unio4", "farm-chosen"],
           "method_for": {"farm-chosen": "farm-hold"}, "inputs": dict.fromkeys(stages, "a")}  # fmt: skip
    hold = stubbed(config_from_dict(raw), tmp_path)
    assert "online/farm-hold_s1" in hold.units and "online/farm-chosen_s1" not in hold.units
    a = stubbed(cfg_with(methods=["unio4", "farm", "farm-hold"]), tmp_path)
    assert hold.hashes["online/farm-hold_s1"] == a.hashes["online/farm-hold_s1"]
    assert set(ran(config_from_dict(raw), tmp_path).values()) == {"reused"}

    raw["task_overrides"] = {"BoundedPush-v0": {"method_for": {"farm-chosen": "farm"}}}
    cfg = config_from_dict(raw)
    rows = ran(cfg, tmp_path)
    assert rows["online/farm_s0"] == "reused" and "online/farm-hold_s0" not in rows
    assert {j.run for j in plan_jobs(cfg) if j.run} == {
        "unio4_s0",
        "unio4_s1",
        "farm_s0",
        "farm_s1",
    }


def test_a_list_of_inputs_finds_each_unit_in_the_first_ledger_that_has_it(tmp_path):
    """Pipeline seeds built in different experiments: ``inputs: {stage: [x, a]}`` skips from
    a's ledger what x's lacks, and the files are read where the record is."""
    book, calls = tmp_path / "results" / "ledger", []
    ran_with_ledger(cfg_with(), tmp_path / "runs_a", book, calls)
    stages = ("data", "offline_task", "offline_recovery", "failures", "world_model",
              "calibration", "online", "evaluate")  # fmt: skip
    raw = {**copy.deepcopy(BASE), "name": "b", "inputs": dict.fromkeys(stages, ["x", "a"])}
    calls.clear()
    pipe = _with_ledger_files(stubbed(config_from_dict(raw), tmp_path / "runs_b", calls,
                                      ledger=book))  # fmt: skip
    plan = {u.id: d for u, d in pipe.plan()}
    assert plan["online/farm_s1"].reason == f"done in the ledger of a ({book})"
    assert pipe.inputs(pipe.units["online/farm_s1"]) == ["x", "a"]
    pipe.run()
    assert calls == []


def test_stages_naming_a_method_label_are_refused(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(
        "name: c\nmethods: [unio4, farm-chosen]\nmethod_for: {farm-chosen: farm-hold}\n"
    )
    rc = pipeline_main(["--config", str(tmp_path / "c.yaml"), "--runs-dir", str(tmp_path),
                        "--stages", "online/farm-chosen_s0", "--plan"])  # fmt: skip
    assert rc == 2 and "is a method label" in capsys.readouterr().err
    rc = pipeline_main(["--config", str(tmp_path / "c.yaml"), "--runs-dir", str(tmp_path),
                        "--methods", "farm-chosn", "--plan"])  # fmt: skip
    assert rc == 2 and "unknown method(s) ['farm-chosn']" in capsys.readouterr().err
