"""(H+1)-step slices within episodes, with failure oversampling, for world-model training.

A slice starting at dataset index t covers transitions t, t+1, ..., t+H of the *same* episode.
Steps past the end of the episode (terminal failure, truncation, or the last row of an
episode) are padded by repeating the last valid transition and get ``mask = 0``, so a slice
never mixes two episodes and never bootstraps past a terminal step.

Failure transitions (cost > 0) are rare, so a fixed fraction of every batch is drawn from the
starts whose valid steps contain a cost ("failure slices"); the rest is uniform over all starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from failurebench_sim.observation import HAND, OBJ


class DatasetError(ValueError):
    """A dataset that cannot be sliced safely (shapes, non-finite values, episode ids)."""


class TransitionDataset(Protocol):
    """The fields of ``failurebench_sim.datasets.Dataset`` that are used here."""

    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32
    rewards: np.ndarray  # (N,)
    costs: np.ndarray  # (N,) 1.0 on the IR-failure step
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    episode_ids: np.ndarray  # (N,) int64, contiguous runs
    next_observations: np.ndarray  # (N, obs_dim)


@dataclass
class SliceBatch:
    """Time-major slices: every field is (T, B, ...) with T = H + 1."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    costs: Tensor
    terminated: Tensor
    next_obs: Tensor
    mask: Tensor

    def to(self, device: str | torch.device) -> SliceBatch:
        return SliceBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


@dataclass
class Transitions:
    """Concatenated, validated arrays of one or more datasets."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_ids: np.ndarray
    next_observations: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)


def concat_datasets(datasets: TransitionDataset | Sequence[TransitionDataset]) -> Transitions:
    """Validate and concatenate datasets; episode ids are re-numbered to stay unique."""
    if not isinstance(datasets, Sequence):
        datasets = [datasets]
    if len(datasets) == 0:
        raise DatasetError("no datasets given")
    parts: list[Transitions] = []
    next_id = 0
    for k, ds in enumerate(datasets):
        tr = _validate(ds, f"dataset[{k}]")
        _, ids = np.unique(tr.episode_ids, return_inverse=True)
        tr.episode_ids = ids.astype(np.int64) + next_id
        next_id = int(tr.episode_ids.max()) + 1 if len(tr) else next_id
        parts.append(tr)
    dims = {(p.observations.shape[1], p.actions.shape[1]) for p in parts}
    if len(dims) != 1:
        raise DatasetError(f"datasets disagree on (obs_dim, act_dim): {sorted(dims)}")
    return Transitions(
        **{
            f: np.concatenate([getattr(p, f) for p in parts])
            for f in Transitions.__dataclass_fields__
        }
    )


def _validate(ds: TransitionDataset, name: str) -> Transitions:
    try:
        tr = Transitions(
            observations=np.asarray(ds.observations, dtype=np.float32),
            actions=np.asarray(ds.actions, dtype=np.float32),
            rewards=np.asarray(ds.rewards, dtype=np.float32).reshape(-1),
            costs=np.asarray(ds.costs, dtype=np.float32).reshape(-1),
            terminated=np.asarray(ds.terminated, dtype=bool).reshape(-1),
            truncated=np.asarray(ds.truncated, dtype=bool).reshape(-1),
            episode_ids=np.asarray(ds.episode_ids, dtype=np.int64).reshape(-1),
            next_observations=np.asarray(ds.next_observations, dtype=np.float32),
        )
    except AttributeError as e:
        raise DatasetError(f"{name} lacks a required field: {e}") from e
    n = len(tr.rewards)
    if n == 0:
        raise DatasetError(f"{name} is empty")
    if tr.observations.ndim != 2 or tr.actions.ndim != 2:
        raise DatasetError(f"{name}: observations and actions must be 2-D")
    for f in Transitions.__dataclass_fields__:
        if len(getattr(tr, f)) != n:
            raise DatasetError(f"{name}: field {f} has {len(getattr(tr, f))} rows, expected {n}")
    if tr.next_observations.shape != tr.observations.shape:
        raise DatasetError(f"{name}: next_observations shape differs from observations")
    for f in ("observations", "actions", "rewards", "costs", "next_observations"):
        if not np.isfinite(getattr(tr, f)).all():
            raise DatasetError(f"{name}: {f} contains NaN or inf")
    starts = np.flatnonzero(np.diff(tr.episode_ids) != 0) + 1
    run_ids = tr.episode_ids[np.concatenate([[0], starts])]
    if len(np.unique(run_ids)) != len(run_ids):
        raise DatasetError(f"{name}: episode_ids are not contiguous runs (an id appears twice)")
    return tr


def episode_stop(tr: Transitions) -> np.ndarray:
    """stop[t]: last index of the segment containing t (terminal, truncation or episode end)."""
    n = len(tr)
    idx = np.arange(n)
    last = tr.terminated | tr.truncated
    last[:-1] |= tr.episode_ids[1:] != tr.episode_ids[:-1]
    last[-1] = True
    marks = np.where(last, idx, n)
    return np.minimum.accumulate(marks[::-1])[::-1]


def slice_indices(
    stop: np.ndarray, starts: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(T, B) row indices and validity mask for slices of T = horizon + 1 steps."""
    raw = starts[None, :] + np.arange(horizon + 1)[:, None]
    end = stop[starts][None, :]
    return np.minimum(raw, end), raw <= end


def lookahead_costs(tr: Transitions, steps: int, discount: float) -> np.ndarray:
    """Soft cost target y_t = max_{0 <= j <= steps} discount^j c_{t+j} within t's segment.

    ``steps = 0`` returns the costs unchanged. With steps > 0 the constraint head is asked to
    flag the states and actions *leading to* a failure, not only the failure step: an object
    pushed off course fails many steps after the last touch (see scripts/failure_lead_time.py).
    """
    if steps < 0 or not 0.0 <= discount <= 1.0:
        raise DatasetError(f"need steps >= 0 and 0 <= discount <= 1, got {steps}, {discount}")
    target = tr.costs.astype(np.float32).copy()
    if steps == 0:
        return target
    stop = episode_stop(tr)
    idx = np.arange(len(tr))
    for j in range(1, steps + 1):
        ahead = idx + j
        valid = ahead <= stop
        target[valid] = np.maximum(target[valid], discount**j * tr.costs[ahead[valid]])
    return target


def last_touch_costs(tr: Transitions, radius: float, window: int) -> np.ndarray:
    """Cost 1 from the hand's last approach to the object up to the IR failure that follows.

    For each failure step f: the steps t in [t_k, f], t_k the last step of f's segment at or
    before f with the hand within ``radius`` of object 1 (observation slots ``HAND``, ``OBJ``),
    at most ``window`` steps back (the window's first step where the hand never came that near).
    A ball kicked off course is lost at the kick, though it leaves the table tens of steps later
    (``scripts/failure_lead_time.py``): in hindsight every state of its free run, and the kick
    itself, needed a recovery. ``radius = 0`` returns the costs unchanged.
    """
    if radius < 0 or window < 0:
        raise DatasetError(f"need radius >= 0 and window >= 0, got {radius}, {window}")
    target = tr.costs.astype(np.float32).copy()
    if radius == 0:
        return target
    stop, idx = episode_stop(tr), np.arange(len(tr))
    opens = np.r_[True, stop[1:] != stop[:-1]]
    start = np.maximum.accumulate(np.where(opens, idx, 0))  # first row of t's segment
    near = np.linalg.norm(tr.observations[:, HAND] - tr.observations[:, OBJ], axis=1) < radius
    for f in np.flatnonzero(tr.costs > 0):
        lo = max(int(start[f]), int(f) - window)
        touched = np.flatnonzero(near[lo : f + 1])
        target[lo + (touched[-1] if len(touched) else 0) : f + 1] = 1.0
    return target


class SequenceSampler:
    """Samples ``SliceBatch``es of H+1 steps with a fixed fraction of failure slices.

    ``cost_lookahead`` > 0 replaces the binary costs by ``lookahead_costs`` (soft targets for the
    constraint head), ``cost_touch_radius`` > 0 by ``last_touch_costs`` (both: the look-ahead of
    the latter); failure slices are then those with any positive target.
    """

    def __init__(
        self,
        datasets: TransitionDataset | Sequence[TransitionDataset],
        horizon: int,
        failure_fraction: float = 0.25,
        seed: int = 0,
        cost_lookahead: int = 0,
        cost_discount: float = 0.9,
        cost_touch_radius: float = 0.0,
        cost_touch_window: int = 60,
    ) -> None:
        if horizon < 0:
            raise DatasetError(f"horizon must be >= 0, got {horizon}")
        if failure_fraction > 1:
            raise DatasetError(f"failure_fraction must be <= 1, got {failure_fraction}")
        self.data = concat_datasets(datasets)
        if cost_touch_radius:
            self.data.costs = last_touch_costs(self.data, cost_touch_radius, cost_touch_window)
        if cost_lookahead:
            self.data.costs = lookahead_costs(self.data, cost_lookahead, cost_discount)
        self.horizon = horizon
        self.failure_fraction = failure_fraction
        self.rng = np.random.default_rng(seed)
        self.stop = episode_stop(self.data)
        all_starts = np.arange(len(self.data))
        rows, mask = slice_indices(self.stop, all_starts, horizon)
        self.failure_starts = all_starts[((self.data.costs[rows] > 0) & mask).any(0)]

    @property
    def obs_dim(self) -> int:
        return self.data.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.data.actions.shape[1]

    def sample_starts(self, batch: int) -> np.ndarray:
        """Start indices: round(failure_fraction * batch) failure slices (if any), rest uniform.

        ``failure_fraction <= 0`` disables oversampling.
        """
        n_fail = 0
        if self.failure_fraction > 0 and len(self.failure_starts):
            n_fail = round(self.failure_fraction * batch)
        fail = (
            self.rng.choice(self.failure_starts, size=n_fail) if n_fail else np.empty(0, np.int64)
        )
        uniform = self.rng.integers(0, len(self.data), size=batch - n_fail)
        return np.concatenate([fail, uniform]).astype(np.int64)

    def sample(self, batch: int) -> SliceBatch:
        return self.gather(self.sample_starts(batch))

    def gather(self, starts: np.ndarray) -> SliceBatch:
        rows, mask = slice_indices(self.stop, starts, self.horizon)
        d = self.data

        def t(x: np.ndarray) -> Tensor:
            return torch.as_tensor(x[rows])

        return SliceBatch(
            obs=t(d.observations),
            actions=t(d.actions),
            rewards=t(d.rewards),
            costs=t(d.costs),
            terminated=t(d.terminated).float(),
            next_obs=t(d.next_observations),
            mask=torch.as_tensor(mask, dtype=torch.float32),
        )

    def obs_stats(self, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (floored at ``eps``) of observations and next observations."""
        x = np.concatenate([self.data.observations, self.data.next_observations])
        return x.mean(0), np.maximum(x.std(0), eps)
