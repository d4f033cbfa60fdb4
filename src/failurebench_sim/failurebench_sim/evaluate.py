"""Roll out a scripted policy (optionally with Gaussian action noise) and report rates.

Episode outcome: ``failurebench_sim.episodes`` (success only without an IR failure).

    python -m failurebench_sim.evaluate FailureBench/BoundedPush-v0 expert --noise 0.4 -n 50
    python -m failurebench_sim.evaluate FailureBench/BoundedPush-v0 expert --speed
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np

import failurebench_sim  # noqa: F401  (registers the ids)
from failurebench_sim import episodes, policies
from failurebench_sim.core import FailureBenchError


def run_episode(
    env: gym.Env,
    policy: policies.ScriptedPolicy,
    noise_std: float,
    seed: int,
    start: str = "default",
) -> dict[str, float]:
    """One episode with env seed ``seed`` and noise drawn from Generator(seed)."""
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        a = policy.act(obs)
        if noise_std > 0:
            a = np.clip(a + noise_std * rng.standard_normal(4), -1.0, 1.0)
        return a

    policy.reset()
    ep = episodes.run_episode(env, act, seed, options={"start": start})
    return {
        "return": ep.ret,
        "success": float(ep.success),
        "failure": float(ep.ir_failure),
        "steps": ep.steps,
    }


def evaluate(
    env_id: str,
    policy_kind: str,
    noise_std: float = 0.0,
    episodes: int = 50,
    seed0: int = 0,
    start: str = "default",
) -> dict[str, float]:
    """Success rate, IR-failure rate and mean return over seeds ``seed0 .. seed0+episodes-1``."""
    if episodes < 1:
        raise FailureBenchError(f"episodes must be >= 1, got {episodes}")
    if noise_std < 0:
        raise FailureBenchError(f"noise_std must be >= 0, got {noise_std}")
    env = gym.make(env_id)
    policy = policies.get(env_id, policy_kind)
    try:
        eps = [run_episode(env, policy, noise_std, seed0 + i, start) for i in range(episodes)]
    finally:
        env.close()
    return {
        "success_rate": float(np.mean([e["success"] for e in eps])),
        "failure_rate": float(np.mean([e["failure"] for e in eps])),
        "mean_return": float(np.mean([e["return"] for e in eps])),
        "mean_steps": float(np.mean([e["steps"] for e in eps])),
        "episodes": episodes,
    }


def _make(env_id: str, seed: int) -> gym.Env:
    if env_id in failurebench_sim.TASK_IDS:
        return gym.make(env_id)
    env = gym.make("Meta-World/goal_observable", env_name=env_id, seed=seed)
    env.unwrapped._freeze_rand_vec = False  # random goals, as in FailureBench
    return env


def _steps_per_second(env: gym.Env, steps: int, rng: np.random.Generator) -> float:
    env.reset(seed=int(rng.integers(2**31)))
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def speed_ratio(
    env_id: str, baseline: str = "push-v3", blocks: int = 5, steps: int = 400, seed: int = 0
) -> dict[str, float]:
    """Env steps/s (uniform random actions, resets included) vs a plain MetaWorld env.

    The two envs run in alternating blocks in one process, so CPU contention hits both alike;
    the reported ratio is the median of the per-block ratios.
    """
    rng = np.random.default_rng(seed)
    env, base = _make(env_id, seed), _make(baseline, seed)
    rates = [
        (_steps_per_second(env, steps, rng), _steps_per_second(base, steps, rng))
        for _ in range(blocks)
    ]
    env.close()
    base.close()
    fb, mw = np.array(rates).T
    return {
        "steps_per_s": float(np.median(fb)),
        f"{baseline}_steps_per_s": float(np.median(mw)),
        "ratio": float(np.median(fb / mw)),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("env_id", choices=failurebench_sim.TASK_IDS)
    p.add_argument("kind", choices=policies.KINDS)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("-n", "--episodes", type=int, default=50)
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--start", default="default", choices=("default", "near_failure"))
    p.add_argument("--speed", action="store_true", help="only time steps/s vs plain push-v3")
    a = p.parse_args(argv)
    if a.speed:
        print(json.dumps({"env_id": a.env_id, **speed_ratio(a.env_id)}))
        return
    res = evaluate(a.env_id, a.kind, a.noise, a.episodes, a.seed0, a.start)
    print(json.dumps({"env_id": a.env_id, "kind": a.kind, "noise_std": a.noise, **res}))


if __name__ == "__main__":
    main()
