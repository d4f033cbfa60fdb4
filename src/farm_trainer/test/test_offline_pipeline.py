"""End-to-end offline pipeline on a tiny point-reaching task: outputs, report, resume, CLI."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from farm_policies.checkpoint import load_checkpoint, load_policy
from farm_trainer.offline.cli import main
from farm_trainer.offline.pipeline import OfflineConfig, run_offline

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


class PointReach(gym.Env):
    """2-D point, obs (pos, goal), a in [-1,1]^2, pos += 0.1 a; r = -|pos - goal|; success < 0.05."""

    observation_space = spaces.Box(-2, 2, (4,), np.float32)
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def __init__(self, horizon: int = 30) -> None:
        self.horizon = horizon

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.concatenate([self.pos, self.goal]).astype(np.float32)

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1, 1), -2, 2).astype(np.float32)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.goal))
        success = dist < 0.05
        info = {"success": success, "cost": 0.0}
        return self._obs(), -dist + 10.0 * success, success, self.t >= self.horizon, info


def demos(episodes: int = 20, noise: float = 0.3, seed: int = 0):
    from failurebench_sim.datasets import Dataset

    env, rng = PointReach(), np.random.default_rng(seed)
    cols = {
        k: []
        for k in (
            "observations",
            "actions",
            "rewards",
            "costs",
            "terminated",
            "truncated",
            "episode_ids",
            "next_observations",
        )
    }
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done = False
        while not done:
            a = np.clip(3.0 * (obs[2:] - obs[:2]) + noise * rng.standard_normal(2), -1, 1).astype(
                np.float32
            )
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(cols, (obs, a, r, 0.0, term, trunc, ep, nxt), strict=True):
                cols[k].append(v)
            obs, done = nxt, term or trunc
    dtypes = dict(
        rewards=np.float32, costs=np.float32, terminated=bool, truncated=bool, episode_ids=np.int64
    )
    arrays = {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in cols.items()}
    return Dataset(**arrays, metadata={"env_id": "PointReach", "kind": "task", "format_version": 1})


def tiny_config(**kw) -> OfflineConfig:
    base = dict(
        num_policies=2, bc_steps=300, bc_hidden=64, bc_depth=2, bc_lr=1e-3,
        critic_steps=200, critic_hidden=64, critic_depth=2, critic_lr=1e-3,
        value_steps=100, value_hidden=64, value_depth=2,
        dyn_steps=100, dyn_hidden=64, dyn_depth=2, dyn_members=3,
        ppo_steps=40, eval_step=10, ope_states=128, ope_horizon=5,
        bc_batch_size=128, critic_batch_size=128, ppo_batch_size=128,
        eval_episodes=3, progress=False,
    )  # fmt: skip
    return OfflineConfig(**{**base, **kw})


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
