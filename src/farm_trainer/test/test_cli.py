"""farm-train CLI: online run + resume on the toy env, evaluate, clear errors."""

import json

import pytest
import torch

from farm_policies import load_checkpoint
from farm_trainer.cli import main

torch.set_num_threads(1)
FAST = ["--task", "FARMToy/Reach1D-v0", "--n-envs", "2", "--batch-size", "64",
        "--minibatch-size", "32", "--epochs", "2", "--no-tensorboard", "--no-progress",
        "--checkpoint-every", "1"]  # fmt: skip


def test_online_then_resume_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["online", *FAST, "--steps", "128", "--out", str(out), "--seed", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["update"] == 2 and summary["env_steps"] == 128
    assert (out / "policy_final.safetensors").exists() and (out / "config.json").exists()
    assert main(["online", *FAST, "--steps", "256", "--out", str(out), "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["update"] == 4 and summary["env_steps"] == 256
    _, header = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert header["counters"]["update"] == 4
    res_path = tmp_path / "eval.json"
    args = ["evaluate", "--policy", str(out / "policy_final.safetensors"),
            "--task", "FARMToy/Reach1D-v0", "--episodes", "2", "--json", str(res_path)]  # fmt: skip
    assert main(args) == 0
    assert json.loads(res_path.read_text())["episodes"] == 2


def test_ppo_lagrangian_method_runs(tmp_path, capsys):
    args = ["online", *FAST, "--steps", "64", "--out", str(tmp_path), "--method", "ppo-lag"]
    assert main(args) == 0
    assert "cost_hook/lagrange" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "farm"], "--world-model"),
        (["--method", "recrl"], "needs --qrisk and --recovery"),
        (["--method", "mppi"], "needs --world-model"),
        (["--init", "/nonexistent/ckpt"], "neither a file nor a directory"),
        (["--task", "NoSuchEnv-v9"], "NoSuchEnv"),
    ],
)
def test_online_errors_are_clear(tmp_path, capsys, extra, message):
    args = ["online", *FAST, "--steps", "64", "--out", str(tmp_path), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_evaluate_rejects_garbage_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    assert main(["evaluate", "--policy", str(bad), "--task", "FARMToy/Reach1D-v0"]) == 2
    assert "safetensors" in capsys.readouterr().err


def test_offline_is_dispatched(capsys):
    try:
        rc = main(["offline", "--help"])
    except SystemExit as e:  # argparse --help of the offline CLI
        rc = e.code
    assert rc in (0, 2)


def test_farm_method_builds_gate_with_live_actor(tmp_path, capsys, monkeypatch):
    import numpy as np

    from farm_safety_critic import gate
    from farm_trainer.online import FilterDecision

    calls = {}

    def fake_build_gate(world_model_path, task_actor, recovery_actor_path, **hp):
        calls.update(wm=world_model_path, rec=recovery_actor_path, actor=task_actor, hp=hp)

        def replace_all(obs, proposed):
            n = len(proposed)
            return FilterDecision(np.zeros_like(proposed), np.ones(n, bool), np.zeros(n), 0.1)

        return replace_all

    monkeypatch.setattr(gate, "build_gate", fake_build_gate)
    args = ["online", *FAST, "--steps", "64", "--out", str(tmp_path), "--method", "farm",
            "--world-model", "wm.safetensors", "--recovery", "rec.safetensors", "--eps-safe", "0.1"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["replaced_frac"] == 1.0 and summary["replaced_actions"] == 64
    # the registry's one set of gate hyper-parameters, with the flag given
    assert calls["wm"] == "wm.safetensors"
    assert calls["hp"] == {"eps_safe": 0.1, "horizon": 3, "gamma_risk": 0.9}
    assert calls["actor"].__class__.__name__ == "TanhGaussianActor"


def test_cli_and_pipeline_build_mppi_from_the_same_registry_entry(monkeypatch):
    """One method registry: the CLI's --method mppi and the pipeline's get the same MPPIConfig."""
    import argparse

    from farm_safety_critic import mppi
    from farm_trainer.cli import _gate_factory, build_parser
    from farm_trainer.experiments import config_from_dict
    from farm_trainer.experiments.config import METHODS as PIPELINE_METHODS
    from farm_trainer.methods import METHOD_NAMES, Artifacts, filter_factory

    seen = []
    monkeypatch.setattr(
        mppi, "build_mppi_gate", lambda wm, actor, cfg, seed, **hp: seen.append(cfg)
    )
    args = argparse.Namespace(method="mppi", world_model="wm", recovery=None, qrisk=None, seed=0,
                              eps_safe=None, horizon=None, gamma_risk=None, cost_limit=None,
                              lr_lambda=None)  # fmt: skip
    _gate_factory(args)(None)
    params = config_from_dict({}).gate.method_params()
    filter_factory("mppi", Artifacts(world_model="wm"), params)(None)
    assert seen[0] == seen[1] and (seen[0].num_samples, seen[0].iterations) == (128, 3)
    assert PIPELINE_METHODS == METHOD_NAMES
    online = build_parser()._subparsers._group_actions[0].choices["online"]
    method_flag = next(a for a in online._actions if a.dest == "method")
    assert tuple(method_flag.choices) == METHOD_NAMES


def test_q_risk_keeps_its_own_threshold_under_farm_qrisk():
    """--eps-safe is Q-risk's threshold for recrl only; farm-qrisk reads --qrisk-eps-safe."""
    from farm_trainer.cli import build_parser, method_params

    def params(*flags):
        required = ["--task", "FailureBench/BoundedPush-v0", "--out", "unused"]
        return method_params(build_parser().parse_args(["online", *required, *flags]))

    assert params("--method", "recrl", "--eps-safe", "0.2").qrisk_eps_safe == 0.2
    p = params("--method", "farm-qrisk", "--eps-safe", "0.02")
    assert (p.eps_safe, p.qrisk_eps_safe) == (0.02, 0.3)
    p = params("--method", "farm-qrisk", "--eps-safe", "0.02", "--qrisk-eps-safe", "0.4")
    assert (p.eps_safe, p.qrisk_eps_safe) == (0.02, 0.4)
