"""End-to-end offline pipeline on a tiny point-reaching task: outputs, report, resume, CLI."""

import json

import numpy as np
import pytest
import torch
from point_reach import PointReach, demos, tiny_config

from farm_policies.checkpoint import load_checkpoint, load_policy
from farm_trainer.offline.cli import main
from farm_trainer.offline.pipeline import run_offline

torch.set_num_threads(1)
OUTPUTS = [
    "q.safetensors",
    "value.safetensors",
    "dynamics.safetensors",
    "bc_0.safetensors",
    "bc_1.safetensors",
    "actor.safetensors",
    "offline_report.json",
]


def test_pipeline_end_to_end_and_resume(tmp_path):
    ds = demos()
    report = run_offline(ds, tmp_path, tiny_config(), task="PointReach", env_fn=PointReach)
    for name in OUTPUTS:
        assert (tmp_path / name).is_file(), name
    assert report["resumed_stages"] == []
    ppo = report["stages"]["ppo"]
    assert len(ppo["ope_history"]["step"]) == 4 and ppo["chosen_member"] in (0, 1)
    assert ppo["ope_best"][ppo["chosen_member"]] == max(ppo["ope_best"])
    assert all(b >= i for b, i in zip(ppo["ope_best"], ppo["ope_initial"], strict=True))
    ev = report["evaluation"]
    assert set(ev) >= {"bc", "improved", "demo_return_mean"} and np.isfinite(
        ev["improved"]["return_mean"]
    )
    on_disk = json.loads((tmp_path / "offline_report.json").read_text())
    assert on_disk["stages"].keys() == report["stages"].keys()

    policy = load_policy(tmp_path / "actor.safetensors", obs_dim=4, act_dim=2)
    assert policy.value is not None
    assert policy.act(np.zeros(4, np.float32)).shape == (2,)
    assert policy.header["meta"]["reward_scale"] == pytest.approx(0.1)
    _, header = load_checkpoint(tmp_path / "value.safetensors")
    assert header["gamma"] == pytest.approx(0.99) and header["stage"] == "value"

    mtimes = {n: (tmp_path / n).stat().st_mtime_ns for n in OUTPUTS[:-1]}
    again = run_offline(ds, tmp_path, tiny_config(), task="PointReach", env_fn=PointReach)
    assert again["resumed_stages"] == ["critics", "value", "dynamics", "bc", "ppo"]
    assert mtimes == {n: (tmp_path / n).stat().st_mtime_ns for n in OUTPUTS[:-1]}


def test_recovery_kind_and_bad_config():
    assert tiny_config(kind="recovery").kind == "recovery"
    with pytest.raises(ValueError, match="kind"):
        tiny_config(kind="failure")
    with pytest.raises(ValueError, match="ppo_steps"):
        tiny_config(ppo_steps=0)


def test_cli_writes_outputs(tmp_path, capsys):
    from failurebench_sim.datasets import save_dataset

    path = tmp_path / "demos.npz"
    save_dataset(path, demos(episodes=4))
    out = tmp_path / "run"
    steps = [
        "--bc-steps",
        "5",
        "--critic-steps",
        "5",
        "--value-steps",
        "5",
        "--dyn-steps",
        "5",
        "--ppo-steps",
        "5",
    ]
    rc = main(
        [
            "offline",
            "--task",
            "PointReach-v0",
            "--demos",
            str(path),
            "--out",
            str(out),
            "--kind",
            "recovery",
            "--num-policies",
            "2",
            "--no-progress",
            *steps,
        ]
    )
    assert rc == 0
    assert (out / "actor.safetensors").is_file() and (out / "bc_1.safetensors").is_file()
    report = json.loads((out / "offline_report.json").read_text())
    assert report["kind"] == "recovery" and report["evaluation"] is None  # no such env
    assert '"chosen_member"' in capsys.readouterr().out


def test_corrupted_stage_output_is_rejected_on_resume(tmp_path):
    from farm_policies.checkpoint import CheckpointError

    (tmp_path / "q.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="q.safetensors"):
        run_offline(demos(episodes=2), tmp_path, tiny_config(), task=None)
