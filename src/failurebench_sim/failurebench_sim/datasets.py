"""Offline datasets for FailureBench: the transition container, its ``.npz`` format and collection.

A dataset is a flat table of N transitions ``(s, a, r, c, terminated, truncated, s')`` grouped into
episodes by ``episode_ids``. On disk it is one ``.npz`` archive (no pickles) holding one array per
field plus ``metadata``, a one-element unicode array with a JSON object. See the package README.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from failurebench_sim.atomic import atomic_write
from failurebench_sim.episodes import episode_success
from failurebench_sim.make import resolve_env_id

FORMAT_VERSION = 1
CREATED_BY = "failurebench_sim.datasets"
KINDS = ("task", "recovery", "failure")
STARTS = ("reset", "near_failure")

# (dtype, rank) of every array field; rank 2 fields share obs_dim / act_dim.
FIELDS: dict[str, tuple[np.dtype, int]] = {
    "observations": (np.dtype(np.float32), 2),
    "actions": (np.dtype(np.float32), 2),
    "rewards": (np.dtype(np.float32), 1),
    "costs": (np.dtype(np.float32), 1),
    "terminated": (np.dtype(np.bool_), 1),
    "truncated": (np.dtype(np.bool_), 1),
    "episode_ids": (np.dtype(np.int64), 1),
    "next_observations": (np.dtype(np.float32), 2),
}
METADATA_KEY = "metadata"


# Gaussian action-noise std (on the [-1, 1] action scale) added to the scripted expert.
# DEMO_NOISE gives "medium-expert" task demos (normalised return roughly 40-80);
# FAILURE_NOISE gives exploration-like roll-outs with frequent IR failures. See the package README.
DEMO_NOISE: dict[str, float] = {
    "FailureBench/BoundedPush-v0": 0.4,
    "FailureBench/BoundedSoccer-v0": 0.2,
    "FailureBench/FragilePushWall-v0": 0.25,
    "FailureBench/ObstructedPush-v0": 0.3,
    "FailureBench/DisturbedPush-v0": 0.3,
}
FAILURE_NOISE: dict[str, float] = {
    "FailureBench/BoundedPush-v0": 0.5,
    "FailureBench/BoundedSoccer-v0": 0.6,
    "FailureBench/FragilePushWall-v0": 0.5,
    "FailureBench/ObstructedPush-v0": 0.7,
    "FailureBench/DisturbedPush-v0": 0.7,
}
DEFAULT_DEMO_NOISE = 0.5
DEFAULT_FAILURE_NOISE = 0.5


def demo_noise(env_id: str) -> float:
    """sigma of the medium-expert task demos for ``env_id``."""
    return DEMO_NOISE.get(resolve_env_id(env_id), DEFAULT_DEMO_NOISE)


def failure_noise(env_id: str) -> float:
    """sigma of the failure roll-outs (and of the 'noisy expert' benchmark row) for ``env_id``."""
    return FAILURE_NOISE.get(resolve_env_id(env_id), DEFAULT_FAILURE_NOISE)


class DatasetFormatError(ValueError):
    """A dataset (in memory or on disk) violates the FailureBench dataset format."""


class Policy(Protocol):
    def act(self, obs: np.ndarray) -> np.ndarray: ...
    def reset(self) -> None: ...


@dataclass(frozen=True)
class Dataset:
    """N transitions in episode order; validated on construction."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_ids: np.ndarray
    next_observations: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate({name: getattr(self, name) for name in FIELDS}, self.metadata)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_episodes(self) -> int:
        return len(_run_starts(self.episode_ids))

    def episodes(self) -> Iterator[slice]:
        """One slice per episode (a contiguous run of equal ``episode_ids``)."""
        starts = _run_starts(self.episode_ids)
        ends = [*starts[1:], len(self)]
        for start, end in zip(starts, ends, strict=True):
            yield slice(int(start), int(end))

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of every episode, shape (n_episodes,)."""
        return np.array([self.rewards[s].sum(dtype=np.float64) for s in self.episodes()])

    def episode_failures(self) -> np.ndarray:
        """Whether each episode contains an IR failure (a step with cost > 0)."""
        return np.array([bool(self.costs[s].max(initial=0.0) > 0) for s in self.episodes()])

    @staticmethod
    def concatenate(parts: Sequence[Dataset]) -> Dataset:
        """Stack datasets; episode ids are renumbered 0..E-1 over all parts, in order."""
        if not parts:
            raise DatasetFormatError("concatenate needs at least one dataset")
        arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in FIELDS}
        ids, offset = [], 0
        for part in parts:
            local = np.cumsum(np.diff(part.episode_ids, prepend=part.episode_ids[:1]) != 0)
            ids.append(local.astype(np.int64) + offset)
            offset += part.n_episodes
        arrays["episode_ids"] = np.concatenate(ids)
        common = {
            k: v
            for k, v in parts[0].metadata.items()
            if all(k in p.metadata and p.metadata[k] == v for p in parts[1:])
        }
        metadata = {
            **common,
            "n_episodes": offset,
            "format_version": FORMAT_VERSION,
            "created_by": f"{CREATED_BY}.Dataset.concatenate",
            "parts": [p.metadata for p in parts],
        }
        return Dataset(**arrays, metadata=metadata)


def _run_starts(episode_ids: np.ndarray) -> np.ndarray:
    if len(episode_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.diff(episode_ids, prepend=episode_ids[0] - 1) != 0)


def _validate(arrays: dict[str, Any], metadata: Any) -> None:
    for name, (dtype, rank) in FIELDS.items():
        a = arrays.get(name)
        if not isinstance(a, np.ndarray):
            raise DatasetFormatError(
                f"field '{name}' must be a numpy array, got {type(a).__name__}"
            )
        if a.dtype != dtype:
            raise DatasetFormatError(f"field '{name}' has dtype {a.dtype}, expected {dtype}")
        if a.ndim != rank:
            raise DatasetFormatError(f"field '{name}' has shape {a.shape}, expected rank {rank}")
    n = arrays["rewards"].shape[0]
    for name, a in arrays.items():
        if a.shape[0] != n:
            raise DatasetFormatError(
                f"length mismatch: '{name}' has {a.shape[0]} rows, 'rewards' has {n}"
            )
    obs, next_obs = arrays["observations"], arrays["next_observations"]
    if obs.shape[1:] != next_obs.shape[1:]:
        raise DatasetFormatError(
            f"observations {obs.shape} and next_observations {next_obs.shape} differ in obs_dim"
        )
    for name in ("observations", "actions", "rewards", "costs", "next_observations"):
        bad = ~np.isfinite(arrays[name])
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DatasetFormatError(f"field '{name}' has non-finite values (first at row {row})")
    if n and np.abs(arrays["actions"]).max() > 1.0:
        raise DatasetFormatError("field 'actions' has values outside [-1, 1]")
    if n and (arrays["costs"].min() < 0.0 or arrays["costs"].max() > 1.0):
        raise DatasetFormatError("field 'costs' has values outside [0, 1]")
    ids = arrays["episode_ids"]
    if n and (ids[0] < 0 or np.any(np.diff(ids) < 0)):
        row = int(np.flatnonzero(np.diff(ids) < 0)[0]) + 1 if ids[0] >= 0 else 0
        raise DatasetFormatError(
            f"'episode_ids' must be non-negative and non-decreasing (episodes stored as "
            f"contiguous runs); violated at row {row}"
        )
    if not isinstance(metadata, dict):
        raise DatasetFormatError(f"metadata must be a dict, got {type(metadata).__name__}")


def save_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    """Write ``dataset`` to ``path`` (.npz) atomically: temp file in the same dir + ``os.replace``."""
    path = Path(path)
    try:
        meta = json.dumps(dataset.metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(f"metadata is not JSON-serialisable: {exc}") from exc
    arrays = {name: getattr(dataset, name) for name in FIELDS}
    arrays[METADATA_KEY] = np.array([meta])

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read and fully validate a dataset written by :func:`save_dataset` (never unpickles)."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetFormatError(f"{path}: not a readable dataset .npz ({exc})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DatasetFormatError(f"{path}: not an .npz archive (found a single .npy array)")
    try:
        with npz:
            missing = [k for k in (*FIELDS, METADATA_KEY) if k not in npz.files]
            if missing:
                raise DatasetFormatError(f"{path}: missing key(s) {missing}")
            arrays = {name: npz[name] for name in FIELDS}
            raw_meta = npz[METADATA_KEY]
    except DatasetFormatError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetFormatError(f"{path}: unreadable array in dataset .npz ({exc})") from exc
    metadata = _parse_metadata(path, raw_meta)
    try:
        return Dataset(**arrays, metadata=metadata)
    except DatasetFormatError as exc:
        raise DatasetFormatError(f"{path}: {exc}") from exc


def _parse_metadata(path: Path, raw: np.ndarray) -> dict:
    if raw.dtype.kind != "U" or raw.shape != (1,):
        raise DatasetFormatError(
            f"{path}: 'metadata' must be a 1-element unicode array holding JSON, "
            f"got dtype {raw.dtype} shape {raw.shape}"
        )
    try:
        metadata = json.loads(str(raw[0]))
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path}: 'metadata' is not valid JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise DatasetFormatError(f"{path}: 'metadata' JSON must be an object")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path}: unsupported format_version {version!r} (this code reads {FORMAT_VERSION})"
        )
    return metadata


# --------------------------------------------------------------------------- collection


class RandomPolicy:
    """Uniform random actions in [-1, 1]^act_dim (the 0 of the normalised return)."""

    def __init__(self, act_dim: int = 4, seed: int = 0) -> None:
        self.act_dim, self.rng = act_dim, np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)

    def reset(self) -> None:
        pass


def make_policy(env_id: str, policy: str | Policy, seed: int = 0) -> Policy:
    """``'expert'``/``'recovery'`` (scripted, from ``failurebench_sim.policies``), ``'random'``, or an object."""
    if not isinstance(policy, str):
        return policy
    if policy == "random":
        return RandomPolicy(seed=seed)
    from failurebench_sim import policies  # the scripted policies need the registered envs

    return policies.get(resolve_env_id(env_id), policy)


@dataclass
class Episode:
    """One roll-out: arrays of length T; ``success``: the goal was reached and no IR failure occurred."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_observations: np.ndarray
    success: bool

    @property
    def failure(self) -> bool:
        return bool(self.costs.max(initial=0.0) > 0)

    def __len__(self) -> int:
        return len(self.rewards)


def noisy_action(a: np.ndarray, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """a' = clip(a + sigma * eps, -1, 1), eps ~ N(0, I)."""
    a = np.asarray(a, dtype=np.float64)
    if noise_std > 0:
        a = a + noise_std * rng.standard_normal(a.shape)
    return np.clip(a, -1.0, 1.0).astype(np.float32)


def rollout(
    env: gym.Env,
    policy: Policy,
    seed: int,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
    start: str = "reset",
    max_steps: int | None = None,
) -> Episode:
    """Roll ``policy`` with Gaussian action noise from ``env.reset(seed=seed)`` until done or ``max_steps``."""
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    options = {"start": start} if start != "reset" else None
    obs, _ = env.reset(seed=seed, options=options)
    policy.reset()
    steps: list[tuple] = []  # (s, a, r, c, terminated, truncated, s')
    success = False
    while True:
        a = noisy_action(policy.act(obs), noise_std, rng)
        next_obs, r, terminated, truncated, info = env.step(a)
        success |= bool(info.get("success", 0.0))
        if max_steps is not None and len(steps) + 1 >= max_steps:
            truncated = truncated or not terminated
        steps.append((obs, a, r, info.get("cost", 0.0), terminated, truncated, next_obs))
        obs = next_obs
        if terminated or truncated:
            break
    o, a, r, c, te, tr, o2 = zip(*steps, strict=True)
    success = episode_success(success, any(c))
    f32 = np.float32
    return Episode(
        observations=np.asarray(o, dtype=f32),
        actions=np.asarray(a, dtype=f32),
        rewards=np.asarray(r, dtype=f32),
        costs=np.asarray(c, dtype=f32),
        terminated=np.asarray(te, dtype=bool),
        truncated=np.asarray(tr, dtype=bool),
        next_observations=np.asarray(o2, dtype=f32),
        success=success,
    )


def collect(
    env_id: str,
    policy: str | Policy,
    n_episodes: int | None = None,
    n_transitions: int | None = None,
    noise_std: float = 0.0,
    seed: int = 0,
    start: str = "reset",
    kind: str = "task",
    policy_name: str | None = None,
    progress: bool = False,
) -> Dataset:
    """Roll ``policy`` + N(0, noise_std^2) action noise (clipped to [-1, 1]) into a :class:`Dataset`.

    Exactly one of ``n_episodes`` / ``n_transitions`` is given. Episode ``i`` starts from
    ``env.reset(seed=seed + i)``; with ``n_transitions`` the last episode is cut at the budget and
    its final step is marked ``truncated``.
    """
    if (n_episodes is None) == (n_transitions is None):
        raise ValueError("give exactly one of n_episodes or n_transitions")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    env_id = resolve_env_id(env_id)
    env = gym.make(env_id)
    pi = make_policy(env_id, policy, seed=seed)
    rng = np.random.default_rng(seed)
    total = n_episodes if n_episodes is not None else n_transitions
    bar = _progress(total, f"collect {kind} {env_id}", "ep" if n_episodes else "step", progress)
    episodes: list[Episode] = []
    n_steps = 0
    try:
        while (n_episodes is not None and len(episodes) < n_episodes) or (
            n_transitions is not None and n_steps < n_transitions
        ):
            budget = None if n_transitions is None else n_transitions - n_steps
            ep = rollout(env, pi, seed + len(episodes), noise_std, rng, start, budget)
            episodes.append(ep)
            n_steps += len(ep)
            bar.update(1 if n_episodes is not None else len(ep))
    finally:
        bar.close()
        env.close()
    metadata = {
        "env_id": env_id,
        "kind": kind,
        "policy": policy_name or (policy if isinstance(policy, str) else type(policy).__name__),
        "noise_std": float(noise_std),
        "seed": int(seed),
        "start": start,
        "n_episodes": len(episodes),
        "n_transitions": n_steps,
        "n_failure_episodes": sum(ep.failure for ep in episodes),
        "n_success_episodes": sum(ep.success for ep in episodes),
        "format_version": FORMAT_VERSION,
        "created_by": f"{CREATED_BY}.collect",
    }
    return _stack(episodes, metadata)


def _stack(episodes: Sequence[Episode], metadata: dict) -> Dataset:
    names = [n for n in FIELDS if n != "episode_ids"]
    arrays = {n: np.concatenate([getattr(ep, n) for ep in episodes]) for n in names}
    arrays["episode_ids"] = np.repeat(
        np.arange(len(episodes), dtype=np.int64), [len(ep) for ep in episodes]
    )
    return Dataset(**arrays, metadata=metadata)


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)
