"""The FailureBench numbers table: policy success/failure rates, demo quality, reference returns, env speed."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from failurebench_sim import datasets as ds
from failurebench_sim import normalize
from failurebench_sim.atomic import write_csv

BASELINE_ENV = "Meta-World/MT1:push-v3"


def task_ids() -> list[str]:
    import failurebench_sim

    return list(failurebench_sim.TASK_IDS)


def evaluate_policy(
    env_id: str,
    policy: str,
    episodes: int = 50,
    seed0: int = 0,
    noise_std: float = 0.0,
    start: str = "reset",
    progress: bool = False,
) -> dict:
    """Success / failure rates and returns of ``policy`` over reset seeds seed0..seed0+episodes-1."""
    env_id = ds.resolve_env_id(env_id)
    env = gym.make(env_id)
    pi = ds.make_policy(env_id, policy, seed=seed0)
    rng = np.random.default_rng(seed0)
    eps = []
    bar = ds._progress(episodes, f"eval {policy} {env_id}", "ep", progress)
    try:
        for i in range(episodes):
            eps.append(ds.rollout(env, pi, seed0 + i, noise_std, rng, start))
            bar.update(1)
    finally:
        bar.close()
        env.close()
    returns = np.array([ep.rewards.sum(dtype=np.float64) for ep in eps])
    row = {
        "task": env_id,
        "policy": policy,
        "noise_std": noise_std,
        "start": start,
        "episodes": episodes,
        "seed0": seed0,
        "success_rate": float(np.mean([ep.success for ep in eps])),
        "failure_rate": float(np.mean([ep.failure for ep in eps])),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "mean_length": float(np.mean([len(ep) for ep in eps])),
    }
    row["normalized_return"] = _normalized(env_id, row["mean_return"])
    return row


def measure_references(
    tasks: Sequence[str], episodes: int = 50, seed0: int = 0, progress: bool = False
) -> dict[str, normalize.Reference]:
    """Mean return of the uniform random policy (0) and the scripted expert (100) per task."""
    rows = []
    for env_id in tasks:
        rows.append(evaluate_policy(env_id, "expert", episodes, seed0, progress=progress))
        rows.append(evaluate_policy(env_id, "random", episodes, seed0, progress=progress))
    return references_from_rows(rows)


def references_from_rows(rows: Sequence[dict]) -> dict[str, normalize.Reference]:
    """Reference returns from the un-noised 'expert' and 'random' rows of :func:`evaluate_policy`."""
    mean = {(r["task"], r["policy"]): r["mean_return"] for r in rows if r["noise_std"] == 0}
    tasks = dict.fromkeys(r["task"] for r in rows)
    return {
        t: normalize.Reference(round(mean[t, "random"], 3), round(mean[t, "expert"], 3))
        for t in tasks
        if (t, "random") in mean and (t, "expert") in mean
    }


def stale_references(measured: dict[str, normalize.Reference], rtol: float = 0.01) -> list[str]:
    """Tasks whose stored reference returns differ from ``measured`` by more than ``rtol``."""
    stale = []
    for env_id, ref in measured.items():
        stored = normalize.REFERENCE_RETURNS.get(env_id)
        scale = max(abs(ref.expert - ref.random), 1e-9)
        if (
            stored is None
            or max(abs(stored.expert - ref.expert), abs(stored.random - ref.random)) > rtol * scale
        ):
            stale.append(env_id)
    return stale


def _make_env(env_id: str) -> gym.Env:
    if env_id == BASELINE_ENV:
        return gym.make("Meta-World/MT1", env_name="push-v3", seed=0, disable_env_checker=True)
    return gym.make(env_id, disable_env_checker=True)


def steps_per_second(
    env_ids: Sequence[str], n_steps: int = 2000, repeats: int = 3, seed: int = 0
) -> dict[str, float]:
    """Best-of-``repeats`` env.step() rate with uniform random actions, envs interleaved per repeat.

    Only ``step`` calls are timed (resets are excluded, so early failure terminations do not
    penalise a task). Run single-threaded for a one-core figure.
    """
    envs = {e: _make_env(e) for e in env_ids}
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (n_steps, 4)).astype(np.float32)
    best = dict.fromkeys(env_ids, 0.0)
    for _ in range(repeats):
        for env_id, env in envs.items():
            env.reset(seed=seed)
            elapsed = 0.0
            for a in actions:
                t0 = time.perf_counter()
                _, _, terminated, truncated, _ = env.step(a)
                elapsed += time.perf_counter() - t0
                if terminated or truncated:
                    env.reset()
            best[env_id] = max(best[env_id], n_steps / elapsed)
    for env in envs.values():
        env.close()
    return best


def _reference_rows(refs: dict[str, normalize.Reference]) -> list[dict]:
    return [
        {"task": t, "random_return": r.random, "expert_return": r.expert} for t, r in refs.items()
    ]


def run_references(out_dir: str | os.PathLike, episodes: int = 50, progress: bool = True) -> dict:
    """Measure reference returns, write ``references.csv`` and return them."""
    refs = measure_references(task_ids(), episodes, progress=progress)
    write_csv(Path(out_dir) / "references.csv", _reference_rows(refs))
    return refs


def run_bench(
    out_dir: str | os.PathLike,
    episodes: int = 50,
    demo_episodes: int = 20,
    throughput_steps: int = 2000,
    progress: bool = True,
) -> dict[str, list[dict]]:
    """Measure the FailureBench table; write policies, demos, references and throughput CSVs.

    Rows: scripted expert, noisy expert (sigma = ``failure_noise``), uniform random and the
    recovery policy from near-failure starts, all over reset seeds 0..episodes-1; the
    medium-expert demos exactly as ``failurebench collect demos`` makes them; steps/s.
    """
    out_dir = Path(out_dir)
    tasks = task_ids()
    policies, demos = [], []
    for env_id in tasks:
        sigma = ds.failure_noise(env_id)
        policies.append(evaluate_policy(env_id, "expert", episodes, progress=progress))
        noisy = evaluate_policy(env_id, "expert", episodes, noise_std=sigma, progress=progress)
        policies.append({**noisy, "policy": "noisy_expert"})
        policies.append(evaluate_policy(env_id, "random", episodes, progress=progress))
        policies.append(
            evaluate_policy(env_id, "recovery", episodes, start="near_failure", progress=progress)
        )
        demos.append(demo_row(env_id, demo_episodes, progress))
    refs = references_from_rows(policies)
    write_csv(out_dir / "policies.csv", policies)
    write_csv(out_dir / "demos.csv", demos)
    write_csv(out_dir / "references.csv", _reference_rows(refs))
    throughput = run_throughput(out_dir, throughput_steps)
    return {
        "policies": policies,
        "demos": demos,
        "throughput": throughput,
        "stale": stale_references(refs),
    }


def run_throughput(out_dir: str | os.PathLike, steps: int = 2000) -> list[dict]:
    """Steps/s of every task and of plain MetaWorld push-v3 in the same run -> throughput.csv."""
    rates = steps_per_second([BASELINE_ENV, *task_ids()], steps)
    rows = [
        {"env": e, "steps_per_s": r, "ratio_vs_push_v3": r / rates[BASELINE_ENV]}
        for e, r in rates.items()
    ]
    write_csv(Path(out_dir) / "throughput.csv", rows)
    return rows


def demo_row(env_id: str, episodes: int = 20, progress: bool = False) -> dict:
    """Quality of the medium-expert demos made by ``failurebench collect demos`` (seed 0)."""
    sigma = ds.demo_noise(env_id)
    demo = ds.collect(env_id, "expert", n_episodes=episodes, noise_std=sigma, progress=progress)
    mean_return = float(demo.episode_returns().mean())
    return {
        "task": ds.resolve_env_id(env_id),
        "noise_std": sigma,
        "episodes": episodes,
        "seed0": 0,
        "mean_return": mean_return,
        "normalized_return": _normalized(env_id, mean_return),
        "success_rate": demo.metadata["n_success_episodes"] / episodes,
        "failure_rate": float(demo.episode_failures().mean()),
        "transitions": len(demo),
    }


def _normalized(env_id: str, raw: float) -> float:
    norm = normalize.normalized_return_or_none(env_id, raw)
    return float("nan") if norm is None else float(norm)
