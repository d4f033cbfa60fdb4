"""A 2-D point mass with a planted failure (x > 1), for tests and smoke runs of the safety critic.

s = (x, y), a in [-1, 1]^2, s' = s + STEP * a. Crossing x > 1 is the IR failure: cost 1 and
termination. Each episode drifts with its own random mean action, so many episodes fail.
"""

from __future__ import annotations

import numpy as np

from failurebench_sim.datasets import FIELDS, FORMAT_VERSION, Dataset

STEP = 0.15
BOUNDARY = 1.0


def point_mass_dataset(
    n_episodes: int, max_steps: int = 25, noise: float = 0.5, seed: int = 0
) -> Dataset:
    """Roll out random drifting policies; returns float32/bool/int64 arrays like FailureBench."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in FIELDS}
    for ep in range(n_episodes):
        s = np.array([rng.uniform(-1.0, 0.8), rng.uniform(-1.0, 1.0)])
        mu = rng.uniform(-1.0, 1.0, size=2)
        for t in range(max_steps):
            a = np.clip(mu + noise * rng.standard_normal(2), -1.0, 1.0)
            s2 = s + STEP * a
            s2[1] = np.clip(s2[1], -1.0, 1.0)
            fail = bool(s2[0] > BOUNDARY)
            for k, v in (
                ("observations", s),
                ("actions", a),
                ("rewards", -abs(s2[0] - 0.5)),
                ("costs", float(fail)),
                ("terminated", fail),
                ("truncated", (not fail) and t == max_steps - 1),
                ("episode_ids", ep),
                ("next_observations", s2),
            ):
                rows[k].append(v)
            s = s2
            if fail:
                break
    dtypes = {"terminated": bool, "truncated": bool, "episode_ids": np.int64}
    arrays = {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in rows.items()}
    meta = {"env_id": "toy-point-mass", "seed": seed, "format_version": FORMAT_VERSION}
    return Dataset(**arrays, metadata=meta)


def steps_to_failure(x: np.ndarray, push: float = 1.0) -> np.ndarray:
    """Number of steps k >= 1 until x + k * STEP * push > BOUNDARY under a constant +x push."""
    return np.floor((BOUNDARY - x) / (STEP * push)).astype(np.int64) + 1
