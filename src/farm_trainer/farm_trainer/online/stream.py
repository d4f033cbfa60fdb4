"""PPO on a stream of executed transitions (the trainer node's core; no rclpy).

Transitions arrive one at a time, from a robot or the twin, while the policy keeps acting: each
is journaled (``TransitionJournal``: nothing recorded is lost), and every ``batch_steps`` of
them become a rollout for ``PPOLearner.update`` — the learner the in-process benchmark uses.

Stale transitions (proposed by an older policy version than the learner's, because the graph
kept acting while the update and the weight push were under way) are **kept, with their
log-probabilities recomputed under the behaviour version's weights**: the learner keeps the
last ``keep_versions`` actors it published, so log pi_b(a | s) is the one the in-process loop
stores at collection time, and PPO's ratio corrects for the policy change like for any other
off-policy (recovery) sample. Only a transition whose version is no longer kept (or was never
published by this run) is dropped, counted and logged.

Order on each update: PPO update -> checkpoint (learner, behaviour actors, counters, journal
position) -> the new weights are handed out. A trainer restarted after a crash therefore
resumes at a version no node has run past, re-reads the journal past its checkpoint and trains
those transitions in the next batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from failurebench_sim.episodes import episode_success
from failurebench_sim.normalize import normalized_return_or_none
from farm_policies import CheckpointError, TanhGaussianActor, load_checkpoint, save_checkpoint
from farm_policies.checkpoint import policy_header
from farm_trainer.logging_utils import RunLogger
from farm_trainer.online.journal import TransitionJournal, to_dataset, transitions
from farm_trainer.online.learner import PPOLearner, Transition
from farm_trainer.online.ppo import PPOConfig
from farm_trainer.online.rollout import Rollout, learned_field

CHECKPOINT = "checkpoints/last.safetensors"
JOURNAL = "transitions.journal"
EPS_CONTROL = "eps_control"  # the checkpoint module of farm-pid's controller (trainer node)
DATASET = "dataset"  # one offline-format .npz per update: Dataset.concatenate merges them


@dataclass
class StreamConfig:
    """The trainer's settings (the trainer node declares these as parameters)."""

    task: str = "FailureBench/BoundedPush-v0"
    init: str = ""  # policy checkpoint to fine-tune (actor + value)
    output_dir: str = "runs/ros_trainer"
    batch_steps: int = 2048  # transitions per PPO update (PPOConfig.batch_size)
    max_updates: int = 0  # stop updating after this many (0: never)
    keep_versions: int = 4  # behaviour actors kept for stale transitions
    seed: int = 0
    tensorboard: bool = False
    learn: bool = True  # False: journal only (recording demonstrations, no PPO updates)
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpisodeTally:
    ret: float = 0.0
    failure: bool = False
    success: bool = False
    steps: int = 0


class StreamLearner:
    """Journal every transition, update every ``batch_steps``, checkpoint, resume."""

    def __init__(self, cfg: StreamConfig, actor: TanhGaussianActor, critic, log: Callable = print,
                 eps_controller: Any = None) -> None:  # fmt: skip
        """``eps_controller``: an ``EpsController`` (farm-pid's, or farm-qrisk-cal-hold-steer's),
        fed each update's finished episodes and replaced flags as the benchmark loop feeds it
        (its eps_safe goes in the update's row as ``eps_safe``, its state in the checkpoint)."""
        self.cfg = cfg
        self.log = log
        self.eps_controller = eps_controller
        torch.manual_seed(cfg.seed)
        cfg.ppo.batch_size = cfg.batch_steps
        # the learning rate decays linearly over max_updates like the in-process loop's
        self.learner = PPOLearner(actor, critic, cfg.ppo, cfg.max_updates or None)
        self.out = Path(cfg.output_dir)
        self.journal = TransitionJournal(self.out / JOURNAL, actor.obs_dim, actor.act_dim, cfg.task)
        self.behaviour: dict[int, dict[str, torch.Tensor]] = {}
        self.counters = {
            "update": 0, "transitions": 0, "trained_rows": 0, "episodes": 0,
            "ir_failure_episodes": 0, "successes": 0, "replaced": 0, "stale_recomputed": 0,
            "stale_dropped": 0,
        }  # fmt: skip
        self.finished: list[dict[str, float]] = []
        self.tally = EpisodeTally()
        self.last_key: tuple[int, int] | None = None
        self.resumed = self._resume()
        if not self.resumed:
            self._keep_behaviour()
            self._retally(self.journal.read())  # killed before its first checkpoint
        self.logger = RunLogger(self.out, cfg.tensorboard, ("update", self.counters["update"]))

    # -- weights ---------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self.learner.policy_version

    def weights(self) -> tuple[dict[str, torch.Tensor], int]:
        """The actor's state and version, to push to the policy and safety nodes."""
        return self.learner.actor.state_dict(), self.version

    def _keep_behaviour(self) -> None:
        sd = {k: v.detach().clone() for k, v in self.learner.actor.state_dict().items()}
        self.behaviour[self.version] = sd
        for v in sorted(self.behaviour)[: -max(1, self.cfg.keep_versions)]:
            del self.behaviour[v]

    # -- transitions -----------------------------------------------------------------------
    def add(self, tr: Transition, episode: int, step: int, stamp_ns: int = 0,
            success: bool = False) -> dict[str, Any] | None:  # fmt: skip
        """Journal one transition (and tally its episode); run an update when the batch is
        full. Returns the update's log row, else None."""
        self.journal.append(tr, episode, step, stamp_ns, success)
        self.counters["transitions"] += 1
        self.counters["replaced"] += int(tr.replaced)
        self._tally(tr, episode, step, success)
        if self.pending() >= self.cfg.batch_steps and self._may_update():
            return self.update()
        return None

    def _may_update(self) -> bool:
        if not self.cfg.learn:
            return False
        return not self.cfg.max_updates or self.counters["update"] < self.cfg.max_updates

    def pending(self) -> int:
        return self.journal.rows - self.counters["trained_rows"]

    def _tally(self, tr: Transition, episode: int, step: int, success: bool) -> None:
        if self.last_key is not None and self.last_key[0] != episode and self.tally.steps:
            self._close_episode(cut=True)  # the episode's end was not seen (trainer restart)
        t = self.tally
        t.ret += float(tr.reward)
        t.failure |= bool(tr.cost > 0)
        t.success |= bool(success)
        t.steps += 1
        self.last_key = (episode, step)
        if tr.terminated or tr.truncated:
            self._close_episode()

    def _close_episode(self, cut: bool = False) -> None:
        t = self.tally
        if not cut:
            self.counters["episodes"] += 1
            self.counters["ir_failure_episodes"] += int(t.failure)
            self.counters["successes"] += int(episode_success(t.success, t.failure))
            self.finished.append({"return": t.ret, "ir_failure": float(t.failure),
                                  "success": float(episode_success(t.success, t.failure))})  # fmt: skip
        self.tally = EpisodeTally()

    # -- update ----------------------------------------------------------------------------
    def rollout(self, records: np.ndarray) -> Rollout:
        """A (T, 1) rollout of journal records; a gap in (episode, step) between two records
        (transitions missed while the trainer was down) cuts GAE there like a time limit."""
        T = len(records)
        ro = Rollout.empty(T, 1, records["obs"].shape[1], records["action"].shape[1])
        ro.obs[:, 0], ro.next_obs[:, 0] = records["obs"], records["next_obs"]
        ro.proposed[:, 0], ro.actions[:, 0] = records["proposed"], records["action"]
        ro.rewards[:, 0], ro.costs[:, 0] = records["reward"], records["cost"]
        ro.terminated[:, 0] = records["terminated"] > 0
        ro.truncated[:, 0] = records["truncated"] > 0
        ro.replaced[:, 0], ro.scores[:, 0] = records["replaced"] > 0, records["score"]
        ro.policy_version[:, 0] = records["policy_version"]
        ep, st = records["episode"], records["step"]
        follows = (ep[1:] == ep[:-1]) & (st[1:] == st[:-1] + 1)
        ended = ro.terminated[:-1, 0] | ro.truncated[:-1, 0]
        ro.truncated[:-1, 0] |= ~follows & ~ended
        return ro

    @torch.no_grad()
    def annotate(self, ro: Rollout) -> np.ndarray:
        """``PPOLearner.annotate``, then log pi_b for stale rows from the kept behaviour actors;
        returns the mask of rows to train on (False: behaviour version not kept)."""
        self.learner.annotate(ro)
        versions = ro.policy_version[:, 0]
        keep = np.ones(len(versions), dtype=bool)
        for v in np.unique(versions):
            v = int(v)
            if v == self.version:
                continue
            rows = versions == v
            if v not in self.behaviour:
                keep &= ~rows
                continue
            scratch = _clone_actor(self.learner.actor, self.behaviour[v])
            obs = torch.as_tensor(ro.obs[rows, 0])
            learned = getattr(ro, learned_field(self.learner.cfg.learn_actions))
            act = torch.as_tensor(learned[rows, 0])
            ro.logp[rows, 0] = scratch.log_prob(obs, act).numpy()
            self.counters["stale_recomputed"] += int(rows.sum())
        return keep

    def update(self) -> dict[str, Any]:
        """PPO on every pending transition, then checkpoint (before the weights go out)."""
        start = self.counters["trained_rows"]
        records = self.journal.read(start)
        # the batch in the offline dataset format too (offline -> online -> offline)
        to_dataset(records, {"task": self.cfg.task},
                   self.out / DATASET / f"update_{self.counters['update'] + 1:05d}.npz")  # fmt: skip
        ro = self.rollout(records)
        replaced = ro.replaced  # every executed action's, stale rows (dropped below) included
        keep = self.annotate(ro)
        if not keep.all():
            dropped = int((~keep).sum())
            self.counters["stale_dropped"] += dropped
            self.log(f"dropped {dropped} transitions of policy versions no longer kept")
            ro = _select(ro, keep)
        stats = self.learner.update(ro) if ro.shape[0] else {}
        self.counters["update"] += 1
        self.counters["trained_rows"] = start + len(records)
        self._keep_behaviour()
        row = self._row(ro, stats)
        if self.eps_controller is not None:
            row["eps_safe"] = self.eps_controller.observe_update(
                [f["ir_failure"] for f in self.finished], replaced
            )
        # logged before the checkpoint: a resume drops rows past its checkpoint, so a kill
        # between the two never leaves a gap in progress.csv
        self.logger.log(row, step=self.counters["transitions"])
        self.save()
        self.finished = []
        return row

    def _row(self, ro: Rollout, stats: dict[str, float]) -> dict[str, Any]:
        c, fin = self.counters, self.finished
        mean = lambda k: float(np.mean([f[k] for f in fin])) if fin else float("nan")  # noqa: E731
        ret = mean("return")
        norm = normalized_return_or_none(self.cfg.task, ret) if math.isfinite(ret) else None
        return {
            "update": c["update"], "policy_version": self.version, "env_steps": c["transitions"],
            "episodes": c["episodes"], "ir_failure_episodes": c["ir_failure_episodes"],
            "ep_return": ret, "ep_return_normalized": float("nan") if norm is None else norm,
            "success_rate": mean("success"), "episodes_this_update": len(fin),
            "replaced_frac": float(ro.replaced.mean()) if ro.shape[0] else float("nan"),
            "stale_recomputed": c["stale_recomputed"], "stale_dropped": c["stale_dropped"],
            **stats,
        }  # fmt: skip

    # -- checkpoint ------------------------------------------------------------------------
    def save(self) -> Path:
        lrn = self.learner
        modules = {**lrn.modules(), "rng": {"torch": torch.get_rng_state()}}
        modules.update({f"behaviour_{v}": sd for v, sd in self.behaviour.items()})
        if self.eps_controller is not None:
            modules[EPS_CONTROL] = self.eps_controller.state_dict()
        meta = {"stage": "online_ros", "task": self.cfg.task, "update": self.version}
        header = {
            **policy_header(lrn.actor, meta, self.cfg.seed), **lrn.header(),
            "counters": dict(self.counters), "behaviour_versions": sorted(self.behaviour),
            "tally": asdict(self.tally), "last_key": self.last_key, "finished": self.finished,
            "config": self.cfg.to_dict(),
        }  # fmt: skip
        return save_checkpoint(self.out / CHECKPOINT, modules, header)

    def _resume(self) -> bool:
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        lrn = self.learner
        sds, header = load_checkpoint(path, lrn.actor.obs_dim, lrn.actor.act_dim)
        try:
            lrn.load(sds, header)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from e
        torch.set_rng_state(sds["rng"]["torch"])
        if self.eps_controller is not None and EPS_CONTROL in sds:
            self.eps_controller.load_state_dict(sds[EPS_CONTROL])
        self.counters.update({k: int(v) for k, v in header["counters"].items()})
        self.behaviour = {int(v): sds[f"behaviour_{v}"] for v in header["behaviour_versions"]}
        # transitions journaled after the checkpoint: tally them again (they are pending)
        self.tally = EpisodeTally(**header["tally"])
        self.last_key = tuple(header["last_key"]) if header["last_key"] else None
        self.finished = list(header["finished"])
        self._retally(self.journal.read(self.counters["transitions"]))
        self.log(
            f"resumed {path}: policy v{self.version}, {self.counters['transitions']} "
            f"transitions journaled, {self.pending()} pending"
        )
        return True

    def _retally(self, records: np.ndarray) -> None:
        """Count journaled transitions the counters do not hold yet (written after the last
        checkpoint, or before the first one)."""
        for r, tr in zip(records, transitions(records), strict=True):
            self.counters["transitions"] += 1
            self.counters["replaced"] += int(tr.replaced)
            self._tally(tr, int(r["episode"]), int(r["step"]), bool(r["success"]))

    def close(self) -> None:
        self.journal.close()
        self.logger.close()


def _clone_actor(actor: TanhGaussianActor, state: dict[str, torch.Tensor]) -> TanhGaussianActor:
    scratch = copy.deepcopy(actor)
    scratch.load_state_dict(state)
    return scratch.eval()


def _select(ro: Rollout, keep: np.ndarray) -> Rollout:
    return Rollout(**{k: getattr(ro, k)[keep] for k in ro.__dataclass_fields__})
