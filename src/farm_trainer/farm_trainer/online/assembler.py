"""Executed transitions from the graph's per-frame messages (the trainer node's pairing; no rclpy).

A transition is frame t's observation (policy node) and decision (arbiter: proposed and executed
action, replaced, score, policy version, hold) joined with the step outcome stamped t' (reward,
cost, flags, the episode and step it belongs to, and t itself as ``from_sec``/``from_nanosec``)
and the next observation: the observation stamped t' while the episode goes on, the final
observation stamped t' when it ended (the frame t' already belongs to the next episode).

On the robot there is no twin step outcome: ``label_step`` builds it from the estimated state
with FailureBench's own predicates (``failurebench_sim.labels``) and the operator's marks.

Messages may arrive in any order across topics; whatever is incomplete waits, bounded by
``max_pending`` frames (the oldest dropped and counted).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from failurebench_sim import ros_contract as rc
from farm_trainer.online.learner import Transition


@dataclass(frozen=True)
class Completed:
    """A transition with where it happened: ``episode``/``step`` of its start frame."""

    transition: Transition
    episode: int
    step: int
    stamp_ns: int  # the start frame's stamp
    success: bool


def from_stamp_ns(step: dict[str, float]) -> int:
    return int(step["from_sec"]) * 1_000_000_000 + int(step["from_nanosec"])


def command_stamp_ns(step: dict[str, float]) -> int | None:
    """The stamp of the command that ran (-1: none; None: the step does not say)."""
    if "command_sec" not in step:
        return None
    sec = int(step["command_sec"])
    return -1 if sec < 0 else sec * 1_000_000_000 + int(step["command_nanosec"])


class TransitionAssembler:
    """Feed ``add_*`` with each message's stamp (ns) and values; each returns the transitions
    it completed. ``invalid`` counts transitions with non-finite fields or held decisions
    (never trained on); ``dropped`` counts frames evicted before they completed; ``late``
    counts steps that ran another frame's command (realtime: the decision came after the
    step), whose executed action is not this frame's decision: deliberately not trained on."""

    def __init__(self, max_pending: int = 512) -> None:
        self.max_pending = int(max_pending)
        self.obs: OrderedDict[int, np.ndarray] = OrderedDict()
        self.finals: OrderedDict[int, np.ndarray] = OrderedDict()
        self.decisions: OrderedDict[int, dict[str, float]] = OrderedDict()
        self.steps: OrderedDict[int, dict[str, float]] = OrderedDict()  # by from-stamp
        self.invalid = self.dropped = self.late = self.duplicates = 0

    # -- inputs -----------------------------------------------------------------------------
    def add_observation(self, stamp_ns: int, obs: np.ndarray) -> list[Completed]:
        return self._put(self.obs, stamp_ns, np.asarray(obs, dtype=np.float32))

    def add_final_observation(self, stamp_ns: int, obs: np.ndarray) -> list[Completed]:
        return self._put(self.finals, stamp_ns, np.asarray(obs, dtype=np.float32))

    def add_decision(self, stamp_ns: int, values: dict[str, float]) -> list[Completed]:
        """The first decision for a frame wins, as in the twin's command latch (what ran)."""
        if stamp_ns in self.decisions:
            self.duplicates += 1
            return []
        return self._put(self.decisions, stamp_ns, dict(values))

    def add_step(self, stamp_ns: int, values: dict[str, float]) -> list[Completed]:
        """A step outcome stamped with the frame it led to (t'); labels per STEP_LABELS."""
        v = {**values, "stamp_ns": int(stamp_ns)}
        return self._put(self.steps, from_stamp_ns(values), v)

    def _put(self, store: OrderedDict, key: int, value: Any) -> list[Completed]:
        store[key] = value
        while len(store) > self.max_pending:
            store.popitem(last=False)
            self.dropped += store is self.decisions
        return self._complete()

    # -- pairing ----------------------------------------------------------------------------
    def _complete(self) -> list[Completed]:
        done = []
        for t, step in list(self.steps.items()):
            if t not in self.obs or t not in self.decisions:
                continue
            t_next = step["stamp_ns"]
            ended = step["terminated"] > 0.5 or step["truncated"] > 0.5
            nxt = (self.finals if ended else self.obs).get(t_next)
            if nxt is None:
                continue
            obs, d = self.obs.pop(t), self.decisions.pop(t)
            del self.steps[t]
            if ended:
                del self.finals[t_next]
            if command_stamp_ns(step) not in (None, t):
                self.late += 1  # what ran was decided for an older frame (or nothing was)
                continue
            tr = transition(obs, d, step, nxt)
            if tr is None:
                self.invalid += 1
                continue
            done.append(
                Completed(
                    tr, int(step["episode"]), int(step["step"]), t, bool(step["success"] > 0.5)
                )
            )
        self._prune()
        return done

    def _prune(self) -> None:
        """Forget observations and decisions older than every step still waiting (their own
        steps can no longer come: steps arrive in frame order per topic)."""
        if not self.steps:
            return
        oldest = next(iter(self.steps))
        for store in (self.obs, self.decisions):
            while store and next(iter(store)) < oldest and len(store) > 2:
                store.popitem(last=False)


def apply_mark(c: Completed, mark: str) -> Completed:
    """An operator's mark on a completed transition: ``ir_failure`` ends it as FailureBench's
    failure does (cost 1, terminated, reward 0), and so does ``intervention`` (a person had to
    step in: an intervention-requiring failure by definition); ``success`` marks it successful."""
    tr = c.transition
    if mark in ("ir_failure", "intervention"):
        tr = dataclasses.replace(tr, cost=1.0, terminated=True, truncated=False, reward=0.0)
        return dataclasses.replace(c, transition=tr, success=False)
    if mark == "success":
        return dataclasses.replace(c, success=True)
    raise ValueError(f"unknown mark {mark!r}")


def transition(
    obs: np.ndarray, decision: dict[str, float], step: dict[str, float], next_obs: np.ndarray
) -> Transition | None:
    """The ``Transition`` of one frame, or None when it must not be trained on (the arbiter
    held, or a field is not finite)."""
    proposed = np.array([decision[f"proposed_{a}"] for a in rc.ACTION_LABELS])
    executed = np.array([decision[f"executed_{a}"] for a in rc.ACTION_LABELS])
    if decision.get("hold", 0.0) > 0.5:
        return None
    arrays = (obs, next_obs, proposed, executed)
    scalars = (step["reward"], step["cost"])
    if not (all(np.isfinite(a).all() for a in arrays) and np.isfinite(scalars).all()):
        return None
    return Transition(
        obs=obs, proposed=proposed.astype(np.float32),
        action=np.clip(executed, -1.0, 1.0).astype(np.float32),
        reward=float(step["reward"]), cost=float(step["cost"]),
        terminated=bool(step["terminated"] > 0.5), truncated=bool(step["truncated"] > 0.5),
        next_obs=next_obs, replaced=bool(decision["replaced"] > 0.5),
        score=float(decision["score"]),
        policy_version=int(decision["policy_version"]),
    )  # fmt: skip


class EstimatedSteps:
    """Step outcomes on the robot, where no twin reports them: FailureBench's reward, failure
    and success predicates on the estimated next state (``failurebench_sim.labels``), a time
    limit, and an episode count of its own (the episode manager that resets the scene owns
    the real one). ``feed`` replaces ``add_observation`` for the trainer."""

    def __init__(self, task: str, time_limit: int = 200) -> None:
        from failurebench_sim.labels import StateLabeler

        self.labeler = StateLabeler(task)
        self.time_limit = int(time_limit)
        self.prev: tuple[int, np.ndarray] | None = None
        self.episode = self.step = 0

    def feed(self, t: int, obs: np.ndarray, asm: TransitionAssembler) -> list[Completed]:
        obs = np.asarray(obs, dtype=np.float32)
        done: list[Completed] = []
        if not np.isfinite(obs).all():
            return asm.add_observation(t, obs)
        if self.prev is None:
            self.labeler.begin(obs)
        else:
            t0, _ = self.prev
            d = asm.decisions.get(t0)
            executed = (
                None if d is None else np.array([d[f"executed_{a}"] for a in rc.ACTION_LABELS])
            )
            if executed is not None and np.isfinite(executed).all():
                reward, cost, success = self.labeler.label(executed, obs)
                terminated = cost > 0
                truncated = not terminated and self.step + 1 >= self.time_limit
                sec, nsec = divmod(t0, 1_000_000_000)
                step = {"reward": reward, "cost": cost, "success": float(success),
                        "terminated": float(terminated), "truncated": float(truncated),
                        "episode": float(self.episode), "step": float(self.step),
                        "from_sec": float(sec), "from_nanosec": float(nsec)}  # fmt: skip
                if terminated or truncated:
                    done += asm.add_final_observation(t, obs)
                    self.episode, self.step = self.episode + 1, 0
                    self.labeler.begin(obs)
                else:
                    self.step += 1
                done += asm.add_step(t, step)
        self.prev = (t, obs)
        return done + asm.add_observation(t, obs)
