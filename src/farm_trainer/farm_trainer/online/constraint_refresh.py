"""Online refresh of FARM's world model with the IR failures that still happen during fine-tuning.

The paper keeps the world model fixed online for lack of failure data; the failures of
fine-tuning are exactly the missing data (the science issue's lever). ``ConstraintRefresh``
wraps a ``SafetyGate``: it keeps the most recent executed transitions (``OnlineBuffer``), and
every ``every`` PPO updates that saw at least ``min_failures`` new IR failures it takes
``steps`` gradient steps of the world model's own objective (``WorldModelUpdater``, Eq. 4-9)
on batches mixing ``online_fraction`` online slices with the offline task + failure data.

Guard against forgetting: after each refresh C_H's ROC-AUC on the held-out offline roll-outs
must stay within ``guard_drop`` of the offline model's; otherwise (or when it cannot be
measured) the refresh is undone. The
gate's numpy scorer keeps views of the parameters and rebuilds its folded copies when they
change in place, so it scores with the refreshed model at once. The refreshed parameters and
the buffer are in the module's state, so a run's checkpoint keeps them across a resume.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from farm_safety_critic.calibration import calibrate, failure_within, logged_action_c_h
from farm_safety_critic.sequence_sampler import (
    SequenceSampler,
    SliceBatch,
    TransitionDataset,
    Transitions,
)
from farm_trainer.online.rollout import Rollout
from farm_trainer.safety.train_world_model import (
    WorldModelTrainConfig,
    WorldModelUpdater,
    cost_targets,
)


@dataclass(frozen=True)
class RefreshConfig:
    every: int = 5
    """PPO updates between refreshes"""
    steps: int = 200
    """world-model gradient steps per refresh"""
    batch: int = 256
    online_fraction: float = 0.5
    """share of each batch sliced from the online buffer"""
    capacity: int = 32_768
    """online transitions kept (the most recent)"""
    min_failures: int = 1
    """new IR-failure steps in the buffer needed before a refresh"""
    guard_drop: float = 0.01
    """largest held-out ROC-AUC drop (vs the offline model) a refresh may cause"""

    def __post_init__(self) -> None:
        if self.every < 1 or self.steps < 1 or self.batch < 2 or self.capacity < 64:
            raise ValueError(f"need every, steps >= 1, batch >= 2, capacity >= 64: {self}")
        if not 0.0 < self.online_fraction < 1.0 or self.guard_drop < 0:
            raise ValueError(f"need 0 < online_fraction < 1 and guard_drop >= 0: {self}")


class OnlineBuffer(nn.Module):
    """A ring of the last ``capacity`` executed transitions, kept as episodes.

    Rows are stored env by env for each rollout; every (rollout, env) segment and every episode
    inside it gets its own id, so no slice crosses an episode, an env or a rollout boundary.
    """

    FIELDS = ("observations", "actions", "rewards", "costs", "terminated", "next_observations")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.capacity = int(capacity)
        for name, width in (("observations", obs_dim), ("next_observations", obs_dim),
                            ("actions", act_dim)):  # fmt: skip
            self.register_buffer(name, torch.zeros(capacity, width))
        for name in ("rewards", "costs", "terminated"):
            self.register_buffer(name, torch.zeros(capacity))
        self.register_buffer("episode_ids", torch.zeros(capacity, dtype=torch.int64))
        self.register_buffer("counts", torch.zeros(3, dtype=torch.int64))  # next, size, next id

    def __len__(self) -> int:
        return int(self.counts[1])

    def add(self, ro: Rollout) -> int:
        """Append ``ro``'s transitions; returns how many IR-failure steps it held."""
        T, n = ro.shape
        ends = np.logical_or(ro.terminated, ro.truncated).T  # (n, T)
        seg = np.cumsum(np.concatenate([np.zeros((n, 1), bool), ends[:, :-1]], axis=1), axis=1)
        first = int(self.counts[2])
        ids = first + (np.arange(n)[:, None] * (T + 1)) + seg  # unique per env and episode
        rows = {
            "observations": ro.obs, "next_observations": ro.next_obs, "actions": ro.actions,
            "rewards": ro.rewards, "costs": ro.costs, "terminated": ro.terminated,
        }  # fmt: skip
        flat = {k: np.swapaxes(v, 0, 1).reshape(n * T, *v.shape[2:]) for k, v in rows.items()}
        flat_ids = ids.reshape(-1)
        for start in range(0, n * T, self.capacity):  # a rollout larger than the ring: its end
            self._write(flat, flat_ids, start, min(start + self.capacity, n * T))
        self.counts[2] = int(flat_ids.max()) + 1
        return int((ro.costs > 0).sum())

    def _write(self, flat: dict[str, np.ndarray], ids: np.ndarray, lo: int, hi: int) -> None:
        k = hi - lo
        at = (int(self.counts[0]) + np.arange(k)) % self.capacity
        for name, x in flat.items():
            getattr(self, name)[at] = torch.as_tensor(np.asarray(x[lo:hi], dtype=np.float32))
        self.episode_ids[at] = torch.as_tensor(ids[lo:hi])
        self.counts[0] = (int(self.counts[0]) + k) % self.capacity
        self.counts[1] = min(int(self.counts[1]) + k, self.capacity)

    def transitions(self) -> Transitions:
        """The kept rows, oldest first (a ``TransitionDataset``)."""
        size, nxt = len(self), int(self.counts[0])
        order = np.arange(size) if size < self.capacity else (nxt + np.arange(size)) % size
        get = lambda name: getattr(self, name).numpy()[order]  # noqa: E731
        ids = self.episode_ids.numpy()[order]
        term = get("terminated") > 0.5
        trunc = np.zeros_like(term)
        trunc[:-1] = ids[1:] != ids[:-1]
        trunc[-1] = True
        trunc &= ~term
        return Transitions(
            observations=get("observations"), actions=get("actions"), rewards=get("rewards"),
            costs=get("costs"), terminated=term, truncated=trunc, episode_ids=ids,
            next_observations=get("next_observations"),
        )  # fmt: skip


def _cat(a: SliceBatch, b: SliceBatch) -> SliceBatch:
    return SliceBatch(**{k: torch.cat([getattr(a, k), getattr(b, k)], dim=1) for k in a.__dict__})


class ConstraintRefresh(nn.Module):
    """An ``ActionFilter``: ``gate``'s decisions, its world model refreshed on online failures."""

    def __init__(
        self,
        gate: Any,
        offline: Sequence[TransitionDataset],
        heldout: TransitionDataset,
        train: WorldModelTrainConfig,
        cfg: RefreshConfig = RefreshConfig(),
        seed: int = 0,
        eps_rule: dict[str, float] | None = None,
        expert: TransitionDataset | None = None,
    ) -> None:
        """``eps_rule`` (with ``expert``): after each kept refresh, choose eps_safe again by
        ``calibration.choose_eps_safe`` on the gate's scores of the held-out roll-outs and the
        expert, as the pipeline chose the first one (a refresh moves the scores' scale)."""
        super().__init__()
        if eps_rule is not None and expert is None:
            raise ValueError("re-choosing eps_safe (eps_rule) needs the expert data too")
        self.eps_rule, self.expert = eps_rule, expert
        self.register_buffer("eps", torch.tensor(float(gate.eps_safe), dtype=torch.float64))
        self.gate, self.cfg, self.train_cfg = gate, cfg, train
        self.world_model = gate.world_model
        wm = self.world_model.cfg
        self.buffer = OnlineBuffer(cfg.capacity, wm.obs_dim, wm.act_dim)
        self.register_buffer("state", torch.zeros(4, dtype=torch.int64))
        # updates seen, refreshes kept, refreshes undone, failure steps not yet trained on
        self.offline = SequenceSampler(offline, train.horizon, train.failure_fraction, seed,
                                       **cost_targets(train))  # fmt: skip
        self.heldout, self.seed = heldout, seed
        self.heldout_labels = failure_within(heldout, gate.horizon)
        first = self.heldout_report()
        self.auc0 = first["roc_auc"]
        self.updater = WorldModelUpdater(self.world_model, train)
        nan = float("nan")
        self.last_stats: dict[str, float] = {  # every key from the first update on (the log)
            **{f"heldout_{k}": v for k, v in first.items()}, "refreshes": 0.0, "undone": 0.0,
            "constraint_loss": nan, "online_rows": 0.0, "eps_safe": float(gate.eps_safe),
        }  # fmt: skip

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> Any:
        return self.gate(obs, proposed)

    def heldout_report(self) -> dict[str, float]:
        """C_H along the logged held-out actions against "IR failure within H": ROC-AUC, and
        precision / recall / firing rate at the gate's eps_safe (NaN when the held-out data
        hold one class only: then no refresh can be checked, and none is kept)."""
        keys = ("roc_auc", "precision", "recall", "firing_rate")
        if self.heldout_labels.all() or not self.heldout_labels.any():
            return dict.fromkeys(keys, float("nan"))
        self.world_model.eval()
        with torch.no_grad():
            scores = logged_action_c_h(self.world_model, self.heldout, self.gate.horizon,
                                       self.gate.gamma_risk)  # fmt: skip
        report = calibrate(scores, self.heldout_labels, self.gate.eps_safe, self.gate.horizon)
        return {k: float(getattr(report, k)) for k in keys}

    def _rechoose_eps(self) -> None:
        from farm_safety_critic import calibration as cal

        self.world_model.eval()
        chosen = cal.choose_eps_safe(cal.score_dataset(self.gate.scores, self.heldout),
                                     self.heldout_labels,
                                     cal.score_dataset(self.gate.scores, self.expert),
                                     **self.eps_rule)  # fmt: skip
        self.eps.fill_(float(chosen["eps_safe"]))
        self._set_eps()

    def _set_eps(self) -> None:
        if self.gate.decider is not None:
            self.gate.decider.eps_safe = float(self.eps)
        self.last_stats["eps_safe"] = float(self.eps)

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        out = super().load_state_dict(state, strict, assign)
        self._set_eps()
        return out

    def observe_rollout(self, ro: Rollout) -> None:
        """The executed transitions of one update; refreshes when due."""
        self.state[3] += self.buffer.add(ro)
        self.state[0] += 1
        due = int(self.state[0]) % self.cfg.every == 0
        if due and int(self.state[3]) >= self.cfg.min_failures:
            self.refresh()
        self.last_stats["online_rows"] = float(len(self.buffer))

    def refresh(self) -> dict[str, float]:
        """``steps`` world-model steps on mixed batches; undone if the held-out AUC drops."""
        before = copy.deepcopy(self.world_model.state_dict())
        online = SequenceSampler([self.buffer.transitions()], self.train_cfg.horizon,
                                 self.train_cfg.failure_fraction, self.seed + int(self.state[0]),
                                 **cost_targets(self.train_cfg))  # fmt: skip
        n_on = max(1, round(self.cfg.online_fraction * self.cfg.batch))
        losses = []
        for _ in range(self.cfg.steps):
            batch = _cat(self.offline.sample(self.cfg.batch - n_on), online.sample(n_on))
            losses.append(self.updater.step(batch)["loss/constraint"])
        report = self.heldout_report()
        kept = report["roc_auc"] >= self.auc0 - self.cfg.guard_drop
        if kept:
            self.state[1] += 1
            self.state[3] = 0
            self.last_stats.update({f"heldout_{k}": v for k, v in report.items()})
            if self.eps_rule is not None:
                self._rechoose_eps()
        else:
            self.world_model.load_state_dict(before)
            self.state[2] += 1
        self.world_model.eval()
        self.last_stats.update({
            "refreshes": float(self.state[1]), "undone": float(self.state[2]),
            "constraint_loss": float(np.mean(losses)),
        })  # fmt: skip
        return self.last_stats
