"""The sweep: pipeline seeds, the job plan, and the same jobs on a local Ray (loopback only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from farm_trainer.experiments import config_from_dict, load_config, run_experiment
from farm_trainer.experiments.config import seed_configs
from farm_trainer.experiments.report import write_report
from farm_trainer.experiments.sweep import CRASH_ENV, Job, Progress, plan_jobs, runnable

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "config" / "experiments" / "smoke.yaml"


def test_pipeline_seeds_give_each_seed_its_own_data_offline_stage_and_world_model():
    cfg = config_from_dict({"name": "x", "seeds": [0, 2], "pipeline_seeds": True,
                            "inputs": {"data": "other"}, "offline": {"bc_steps": 5}})  # fmt: skip
    subs = seed_configs(cfg)
    assert [s.name for s in subs] == ["x/s0", "x/s2"]
    assert [s.seeds for s in subs] == [[0], [2]]
    assert [s.data.seed for s in subs] == [0, 2]
    assert [s.offline["seed"] for s in subs] == [0, 2]
    assert [s.world_model.seed for s in subs] == [0, 2] and [s.qrisk.seed for s in subs] == [0, 2]
    assert subs[1].inputs == {"data": "other/s2"} and subs[1].offline["bc_steps"] == 5
    assert subs[1].evaluation == cfg.evaluation  # every pipeline is scored on the same resets
    assert seed_configs(cfg.replace(pipeline_seeds=False)) == [cfg.replace(pipeline_seeds=False)]


def test_jobs_go_seed_major_and_each_run_names_its_offline_job():
    cfg = config_from_dict({"name": "x", "tasks": ["BoundedPush-v0", "BoundedSoccer-v0"],
                            "methods": ["unio4", "cpo"], "seeds": [0, 1],
                            "pipeline_seeds": True})  # fmt: skip
    jobs = plan_jobs(cfg)
    assert len(jobs) == 2 * (2 + 2 * 2)
    assert jobs[0] == Job("x/s0", "BoundedPush-v0") and jobs[1] == Job("x/s0", "BoundedSoccer-v0")
    assert all(j.pipeline == "x/s0" for j in jobs[:6]) and jobs[6].pipeline == "x/s1"
    run = jobs[2]
    assert run.run == "unio4_s0" and run.offline == jobs[0]
    assert (jobs[3].task, jobs[3].method) == ("BoundedSoccer-v0", "unio4")  # method-major
    assert all(j.method is not None for j in plan_jobs(cfg, ["online", "evaluate"]))


def test_run_jobs_waiting_on_their_offline_job_leave_the_cpu_window_to_the_next_seed():
    cfg = config_from_dict({"name": "x", "tasks": ["BoundedSoccer-v0"], "methods": ["unio4", "cpo"],
                            "seeds": [0, 1], "pipeline_seeds": True})  # fmt: skip
    jobs = plan_jobs(cfg)  # s0 offline, s0 unio4, s0 cpo, s1 offline, ...
    admitted, finished = set(jobs[:3]), set()
    assert runnable(jobs[:3], admitted, finished) == 1  # the two runs wait on s0's offline job
    assert runnable(jobs[:4], admitted | {jobs[3]}, finished) == 2  # so s1's offline job enters
    finished.add(jobs[0])
    assert runnable(jobs[1:4], admitted | {jobs[3]}, finished) == 3
    online_only = plan_jobs(cfg, ["online"])  # no offline job admitted: every run can start
    assert runnable(online_only, set(online_only), set()) == len(online_only)


def _smoke(tmp_path: Path, name: str):
    cfg = load_config(SMOKE).replace(
        name=name, methods=["unio4", "cpo"], seeds=[0, 1], pipeline_seeds=True
    )
    cfg.online.steps = 384  # 3 PPO updates of 128 steps
    return cfg


def _run_results(runs: Path, name: str) -> dict[str, dict]:
    out = {}
    for final in sorted(runs.glob(f"{name}/s*/BoundedPush-v0/online/*/eval_final.json")):
        run = final.parent
        rows = (run / "progress.csv").read_text().splitlines()
        out[f"{run.parents[2].name}/{run.name}"] = {
            "eval": json.loads(final.read_text())["returns"],
            "last": dict(zip(rows[0].split(","), rows[-1].split(","), strict=True)),
        }
    return out


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        np.testing.assert_allclose(a[k]["eval"], b[k]["eval"], rtol=1e-4, atol=1e-4)
        for col in ("env_steps", "episodes", "ir_failure_episodes", "update"):
            assert a[k]["last"][col] == b[k]["last"][col], (k, col)


def listening_addresses() -> set[str]:
    """Local addresses of every listening TCP socket on this machine (/proc/net/tcp{,6})."""
    out = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                out.add(local.split(":")[0])
    return out


LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000",
                "0000000000000000FFFF00000100007F"}  # fmt: skip
"""127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp{,6} write them"""


def test_progress_estimates_time_left_from_jobs_that_did_work():
    jobs = [Job("x", "T"), *(Job("x", "T", "farm", s) for s in range(4))]
    lines: list[str] = []
    bar = Progress(jobs, lines.append, parallel=2)
    bar(jobs[0], 0.1)  # offline job found up to date
    bar(jobs[1], 0.2)  # a finished run, skipped
    bar(jobs[2], 600.0)
    assert lines[-1].endswith(
        "3/5 jobs done (x/T farm_s1, 600 s); elapsed 0.0 min, about 10 min left"
    )


def test_ray_sweep_equals_the_sequential_path_and_retries_a_killed_run(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    logs: list[str] = []
    seq = _smoke(tmp_path, "sweep")
    run_experiment(seq, tmp_path / "seq", log=logs.append)
    before = listening_addresses()
    during: set[str] = set()

    def log(line: str) -> None:
        logs.append(line)
        during.update(listening_addresses())

    book = tmp_path / "results" / "ledger"
    run_experiment(seq, tmp_path / "ray", log=log, ray=True, workers=2, ledger=book)
    assert during - before <= LOOPBACK_HEX, "a Ray server listens beyond this machine"
    expected = _run_results(tmp_path / "seq", "sweep")
    assert len(expected) == 4  # 2 pipeline seeds x 2 methods
    _close(_run_results(tmp_path / "ray", "sweep"), expected)
    assert sum("[sweep]" in line for line in logs) == 2 * 6  # one progress line per job

    # the Ray driver saved every finished job to the ledger: a new checkout runs nothing again
    run_experiment(seq, tmp_path / "fresh", log=logs.append, ledger=book)
    fresh = [json.loads(line) for f in (tmp_path / "fresh").rglob("stage_log.jsonl")
             for line in f.read_text().splitlines()]  # fmt: skip
    assert fresh and {r["status"] for r in fresh} == {"skipped"}

    # every run's first attempt dies after one update (with its checkpoint): Ray retries it
    # and the retry resumes from that checkpoint
    monkeypatch.setenv(CRASH_ENV, "1")
    run_experiment(seq, tmp_path / "crash", log=logs.append, ray=True, workers=2)
    crashed = _run_results(tmp_path / "crash", "sweep")
    assert crashed.keys() == expected.keys()
    for k, r in crashed.items():
        assert r["last"]["update"] == "3" and r["last"]["env_steps"] == "384", k
    markers = list((tmp_path / "crash").glob("sweep/s*/BoundedPush-v0/records/*.crashed"))
    assert len(markers) == 4
    stage_log = tmp_path / "crash" / "sweep" / "s0" / "BoundedPush-v0" / "stage_log.jsonl"
    reasons = [json.loads(line)["reason"] for line in stage_log.read_text().splitlines()]
    assert reasons.count("interrupted: resuming") == 2

    out = write_report(seq, tmp_path / "seq", tmp_path / "results")
    table = (out / "table.md").read_text()
    assert "BoundedPush-v0 (s1)" in table  # calibration per pipeline seed
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 2 and all(",2,2," in row for row in summary[1:])


def test_a_later_method_subset_adds_to_the_recorded_config_without_erasing_it(tmp_path):
    from farm_trainer.experiments.sweep import _record_config

    path = tmp_path / "experiment_config.json"
    _record_config(path, {"methods": ["unio4", "farm"], "seeds": [0]})
    _record_config(path, {"methods": ["recrl"], "seeds": [0]})
    assert json.loads(path.read_text())["methods"] == ["unio4", "farm", "recrl"]
    path.write_text("{not json")
    _record_config(path, {"methods": ["farm"], "seeds": [0]})
    assert json.loads(path.read_text())["methods"] == ["farm"]
