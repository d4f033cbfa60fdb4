"""``failurebench`` CLI smoke runs (argument parsing, collect into tmp_path)."""

import json

import numpy as np
import pytest

from failurebench_sim import cli
from failurebench_sim.datasets import load_dataset


def fb_task():
    import failurebench_sim

    ids = getattr(failurebench_sim, "TASK_IDS", None)
    if not ids:
        pytest.skip("FailureBench envs are not registered yet")
    return ids[0]


def test_parser_accepts_documented_commands(tmp_path):
    p = cli.build_parser()
    a = p.parse_args(["collect", "demos", "--task", "BoundedPush-v0", "--out", str(tmp_path / "d")])
    assert (a.what, a.episodes, a.noise, a.seed) == ("demos", 20, None, 0)
    a = p.parse_args(["collect", "recovery", "--task", "X", "--out", "r.npz", "-q"])
    assert a.episodes == 120 and a.quiet
    a = p.parse_args(["collect", "failures", "--task", "X", "--out", "f.npz", "--noise", "0.7"])
    assert (a.transitions, a.noise, a.policy) == (20000, 0.7, "scripted")
    a = p.parse_args(["evaluate", "--task", "FailureBench/X", "--policy", "random"])
    assert a.episodes == 50 and a.policy == "random"
    assert p.parse_args(["bench", "--references"]).references
    with pytest.raises(SystemExit):
        p.parse_args(["evaluate", "--task", "X", "--policy", "bogus"])


def test_failures_rejects_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="checkpoint"):
        cli.main(["collect", "failures", "--task", "X", "--policy", str(tmp_path / "no.st"),
                  "--transitions", "5", "--out", str(tmp_path / "f.npz")])  # fmt: skip


def test_collect_demos_smoke(tmp_path, capsys):
    task = fb_task()
    short = task.split("/")[-1]
    out = tmp_path / "demos.npz"
    assert (
        cli.main(["collect", "demos", "--task", short, "--episodes", "2", "--out", str(out), "-q"])
        == 0
    )
    d = load_dataset(out)
    assert d.n_episodes == 2 and d.metadata["env_id"] == task and d.metadata["kind"] == "task"
    assert d.observations.shape[1] == 39 and d.actions.shape[1] == 4
    assert d.metadata["noise_std"] > 0
    assert "wrote" in capsys.readouterr().out


def test_collect_recovery_and_failures_smoke(tmp_path):
    task = fb_task()
    rec, fail = tmp_path / "rec.npz", tmp_path / "fail.npz"
    cli.main(["collect", "recovery", "--task", task, "--episodes", "1", "--out", str(rec), "-q"])
    cli.main(
        ["collect", "failures", "--task", task, "--transitions", "60", "--out", str(fail), "-q"]
    )
    r, f = load_dataset(rec), load_dataset(fail)
    assert r.metadata["kind"] == "recovery" and r.metadata["start"] == "near_failure"
    assert len(f) == 60 and f.metadata["kind"] == "failure"
    assert f.terminated[-1] or f.truncated[-1]


def test_evaluate_json(capsys):
    task = fb_task()
    cli.main(["evaluate", "--task", task, "--policy", "random", "--episodes", "1", "--json", "-q"])
    row = json.loads(capsys.readouterr().out)
    assert row["task"] == task and row["episodes"] == 1 and 0 <= row["failure_rate"] <= 1


def test_collect_failures_with_checkpoint_policy(tmp_path):
    task = fb_task()
    pytest.importorskip("farm_policies.checkpoint")
    import torch

    from farm_policies.actor import TanhGaussianActor
    from farm_policies.checkpoint import save_policy

    torch.manual_seed(0)
    ckpt = tmp_path / "pi.safetensors"
    save_policy(ckpt, TanhGaussianActor(39, 4, hidden=16, depth=2))
    out = tmp_path / "f.npz"
    cli.main(["collect", "failures", "--task", task, "--policy", str(ckpt), "--transitions", "20",
              "--noise", "0.0", "--out", str(out), "-q"])  # fmt: skip
    d = load_dataset(out)
    assert d.metadata["policy"] == f"checkpoint:{ckpt}"
    assert np.all(np.abs(d.actions) < 1)


def test_write_csv_is_atomic_and_readable(tmp_path):
    import csv

    from failurebench_sim.atomic import write_csv

    write_csv(tmp_path / "t.csv", [{"task": "a", "x": 1.23456789}, {"task": "b", "x": 2.0}])
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert rows == [{"task": "a", "x": "1.2346"}, {"task": "b", "x": "2.0"}]
    with pytest.raises(ValueError):  # a row with an unknown key fails before the file is replaced
        write_csv(tmp_path / "t.csv", [{"task": "a"}, {"other": 1}])
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    assert len(list(csv.DictReader((tmp_path / "t.csv").open()))) == 2


def test_evaluate_policy_expert_row():
    from failurebench_sim.benchmark import evaluate_policy

    task = fb_task()
    row = evaluate_policy(task, "expert", episodes=1, seed0=0)
    assert row["episodes"] == 1 and row["mean_length"] >= 1
    assert row["success_rate"] in (0.0, 1.0) and row["failure_rate"] in (0.0, 1.0)
    assert np.isfinite(row["normalized_return"])


def test_throughput_only_bench_writes_every_env_against_push_v3(tmp_path):
    import csv

    from failurebench_sim.benchmark import BASELINE_ENV, run_throughput

    rows = run_throughput(tmp_path, steps=30)
    with open(tmp_path / "throughput.csv") as f:
        written = list(csv.DictReader(f))
    assert [r["env"] for r in written] == [r["env"] for r in rows]
    assert rows[0]["env"] == BASELINE_ENV and rows[0]["ratio_vs_push_v3"] == 1.0
    assert len(rows) == 5 and all(r["steps_per_s"] > 0 for r in rows)
    assert cli.build_parser().parse_args(["bench", "--throughput"]).throughput
