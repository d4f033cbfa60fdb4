"""The next few pushes of the task policy, predicted: will the ball they kick leave the table?

``RunoutGate`` with ``ObjectMotion`` scores the displacement ONE proposed action gives the
object; on Bounded Soccer the ball is often lost by a sequence of pushes, each harmless alone,
and that one-step score declines the losing push in only about half of the failing episodes
(``scripts/runout_probe.py``). ``PushSequence`` rolls the state ``lookahead`` steps forward:
the proposed action first, then the task policy's own (mean) actions, the object moved by
``ObjectMotion`` and the hand by ``HandMotion``; the run-out score of the sequence is the
largest over its predicted states.

``HandMotion`` is the arm's closed loop under a delta-position command, fitted by least squares:
next hand displacement = A @ action[:3] + B @ last hand displacement + c. On Bounded Soccer's
failure data (pipeline seed 5) it explains 93 % of the variance of the hand's displacement
(B ~ 0.92 I: the mocap-driven hand lags its command by ~12 steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from failurebench_sim.atomic import read_json_of_kind, write_json
from failurebench_sim.observation import HAND, PREV_HAND
from farm_safety_critic.runout import RunoutGate, RunoutModel

CHECKPOINT_KIND = "farm_hand_motion"
MIN_FIT_ROWS = 20


class HandMotionError(ValueError):
    """A hand-motion model that cannot be fitted or loaded."""


def hand_features(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """[action xyz, hand's last displacement (m), 1] per row."""
    o = np.asarray(obs, dtype=np.float64)
    a = np.asarray(actions, dtype=np.float64)
    return np.concatenate([a[:, :3], o[:, HAND] - o[:, PREV_HAND], np.ones((len(o), 1))], axis=1)


@dataclass(frozen=True)
class HandMotion:
    """Linear model of the hand's next displacement (``hand_features`` -> xyz, metres)."""

    coef: tuple[tuple[float, ...], ...]
    """7 rows (action xyz, last displacement xyz, bias) x 3 columns (x, y, z)"""
    r2: float = float("nan")
    rows: int = 0

    def __post_init__(self) -> None:
        c = np.asarray(self.coef, dtype=np.float64)
        if c.shape != (7, 3) or not np.isfinite(c).all():
            raise HandMotionError(
                f"a hand-motion model has 7 x 3 finite coefficients, got {c.shape}"
            )
        object.__setattr__(self, "coef", tuple(map(tuple, c.tolist())))

    def displacement(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The hand's predicted xyz displacement over the next step (m), per row."""
        return hand_features(obs, actions) @ np.asarray(self.coef)

    def as_dict(self) -> dict[str, Any]:
        """What ``save`` writes and ``load`` reads (JSON)."""
        return {"kind": CHECKPOINT_KIND, "coef": self.coef, "r2": self.r2, "rows": self.rows}

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.as_dict())

    @classmethod
    def load(cls, path: str | Path) -> HandMotion:
        try:
            d = read_json_of_kind(path, CHECKPOINT_KIND, "hand-motion model")
            r2 = d.get("r2")
            return cls(d["coef"], float("nan") if r2 is None else float(r2), int(d.get("rows", 0)))
        except HandMotionError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise HandMotionError(f"not a readable hand-motion model: {e}") from e


def fit_hand_motion(obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> HandMotion:
    """Least squares of the hand's next displacement on ``hand_features`` (finite rows)."""
    x = hand_features(obs, actions)
    y = np.asarray(next_obs, np.float64)[:, HAND] - np.asarray(obs, np.float64)[:, HAND]
    ok = np.isfinite(x).all(1) & np.isfinite(y).all(1)
    if ok.sum() < MIN_FIT_ROWS:
        raise HandMotionError(f"{int(ok.sum())} finite transitions, need {MIN_FIT_ROWS}")
    coef, *_ = np.linalg.lstsq(x[ok], y[ok], rcond=None)
    err = ((x[ok] @ coef - y[ok]) ** 2).sum()
    r2 = 1.0 - float(err / max(((y[ok] - y[ok].mean(0)) ** 2).sum(), 1e-12))
    return HandMotion(coef, r2, int(ok.sum()))


class PushSequence:
    """Predicted states of the next ``lookahead`` steps: ``proposed`` first, then ``policy``'s.

    ``motion``: an ``ObjectMotion`` (``next_observation(obs, actions)`` moves the object);
    ``policy``: numpy obs (n, d) -> mean actions (n, a), the LIVE task policy."""

    def __init__(self, motion: Any, hand: HandMotion, policy: Callable[[np.ndarray], np.ndarray],
                 lookahead: int) -> None:  # fmt: skip
        if isinstance(lookahead, bool) or int(lookahead) != lookahead or lookahead < 1:
            raise ValueError(f"the look-ahead is a whole number of steps >= 1, got {lookahead!r}")
        self.motion, self.hand, self.policy = motion, hand, policy
        self.lookahead = int(lookahead)

    def step(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """One predicted step: the object by ``motion``, the hand by ``hand``."""
        nxt = self.motion.next_observation(obs, actions)
        nxt[:, PREV_HAND] = obs[:, HAND]
        nxt[:, HAND] = obs[:, HAND] + self.hand.displacement(obs, actions)
        return nxt

    def max_score(self, score: Callable[[np.ndarray], np.ndarray], obs: np.ndarray,
                  proposed: np.ndarray) -> np.ndarray:  # fmt: skip
        """The largest ``score`` over each row's predicted states (not the current one)."""
        x = np.asarray(obs, dtype=np.float64)
        actions = np.asarray(proposed, dtype=np.float64)
        best = np.full(len(x), -np.inf)
        for k in range(self.lookahead):
            x = self.step(x, actions)
            best = np.maximum(best, score(x))
            if k + 1 < self.lookahead:
                actions = np.asarray(self.policy(x.astype(np.float32)), dtype=np.float64)
        return best


def mean_actions(actor: Any) -> Callable[[np.ndarray], np.ndarray]:
    """numpy obs (n, d) -> ``actor``'s mean actions (n, a): the compiled numpy path of a CPU
    ``TanhGaussianActor`` (it reads the actor's own tensors, so weights loaded into the actor
    later are followed), else torch."""
    import torch

    from farm_safety_critic.decider import as_policy, numpy_actor

    compiled = numpy_actor(actor)
    if compiled is not None:
        return compiled
    policy = as_policy(actor)
    return lambda x: policy(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()


def sequence_gate(model: RunoutModel, motion: Any, hand: HandMotion, actor: Any, lookahead: int,
                  hold_eps: float, obs_dim: int, act_dim: int) -> RunoutGate:  # fmt: skip
    """farm-runout-seq's holding member: the arm held still where a state of the next
    ``lookahead`` steps predicted for ``actor`` (the live task policy) scores over ``hold_eps``.
    The benchmark's registry and the graph's safety node both build it here."""
    from farm_safety_critic.decider import hold_still

    seq = PushSequence(motion, hand, mean_actions(actor), lookahead)
    return RunoutGate(model, hold_still(act_dim), obs_dim, act_dim, eps_safe=hold_eps,
                      sequence=seq)  # fmt: skip
