"""The object's run-out predicted from its own motion: will it roll past the border soon?

On Bounded Soccer the IR failure (the ball leaves the table) happens 14-38 steps after the push
that decides it, and the learned gates can only tell "the hand is at the ball" from "the ball
is lost": at the thresholds that catch the failures they fire on half the steps (the science
issue's Soccer notes). A free ball, though, is easy to predict: over 7.8k transitions of seed
5's failure data with the hand away from it, its speed after a step is its speed before
(median ratio 1.0000, 5-95 % 0.9999-1.0006): it rolls on until something stops it. Within a
look-ahead of ``horizon`` steps it travels

    |v| * sum_{k=1..horizon} decay^k     (v: its displacement over the last step)

along its heading. ``RunoutModel`` compares that with the distance from the object to the
border of the allowed rectangle along the same heading (a border that is no exit, such as the
wall behind Soccer's goal, stops it); the score is their ratio (> 1: it leaves within the
horizon). The observation carries the object's position in this frame and the last one
(``failurebench_sim.observation``: ``OBJ`` and the same slot ``FRAME_DIM`` later), so the score
needs no learned critic: a state test, as on the robot, where the perception gives the same two
frames. ``fit_decay`` estimates the factor (the median ratio: a bounce off a wall is no
decay); ``RunoutGate`` is the ``ScoreGate`` on the score, with ``object_motion.ObjectMotion``
optionally scoring the displacement the proposed action would give the object next.

The constraint target "tied to the object's predicted motion rather than to the policy's
horizon" is the science issue's lever; this is its closed form for objects that roll.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from failurebench_sim.atomic import read_json_of_kind, write_json
from failurebench_sim.observation import HAND, OBJ, PREV_OBJ
from farm_safety_critic.gate import GateInputError, Policy, ScoreGate

OBJ_XY = slice(OBJ.start, OBJ.start + 2)
PREV_OBJ_XY = slice(PREV_OBJ.start, PREV_OBJ.start + 2)
MAX_SCORE = 1e3
"""scores are clipped here (an object on the border, moving out, has a zero distance left)"""
CHECKPOINT_KIND = "farm_runout"
MIN_FIT_ROWS = 100
"""free-rolling transitions ``fit_decay`` needs by default"""


class RunoutError(ValueError):
    """A run-out model that cannot be fitted or loaded."""


@dataclass(frozen=True)
class RunoutModel:
    """Rolling decay per control step and the allowed rectangle (xy, metres)."""

    decay: float
    """speed kept per step (1: it rolls on, and without a ``horizon`` any motion toward an exit
    scores ``MAX_SCORE``)"""
    low: tuple[float, float]
    high: tuple[float, float]
    fit_rows: int = 0
    """free-rolling transitions the decay was fitted on (0: set by hand)"""
    exits: tuple[int, ...] = (0, 1, 2, 3)
    """the borders an object can leave by (0 x-, 1 x+, 2 y-, 3 y+); one heading for another
    border (a wall, as behind Soccer's goal) does not leave"""
    horizon: int = 0
    """look-ahead in control steps (0: until the object stops)"""

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay <= 1.0:
            raise RunoutError(f"the rolling decay must be in [0, 1], got {self.decay}")
        if self.horizon < 0:
            raise RunoutError(f"the horizon must be >= 0 steps, got {self.horizon}")
        if not self.exits or not set(self.exits) <= {0, 1, 2, 3}:
            raise RunoutError(f"exits are borders 0-3 (x-, x+, y-, y+), got {self.exits}")
        if isinstance(self.horizon, bool) or int(self.horizon) != self.horizon:
            raise RunoutError(f"the horizon is a whole number of steps, got {self.horizon!r}")
        object.__setattr__(self, "exits", tuple(int(e) for e in self.exits))  # hashable, as loaded
        object.__setattr__(self, "horizon", int(self.horizon))
        if len(self.low) != 2 or len(self.high) != 2 or not np.all(np.less(self.low, self.high)):
            raise RunoutError(f"need low < high (xy), got {self.low}, {self.high}")

    def travel_left(self, obs: np.ndarray) -> np.ndarray:
        """How far each row's object rolls within the horizon if nothing touches it (m)."""
        v = obs[:, OBJ_XY] - obs[:, PREV_OBJ_XY]
        d, h = self.decay, self.horizon
        if d == 1.0:
            steps = float(h) if h else np.inf
        else:
            steps = d * (1.0 - d**h) / (1.0 - d) if h else d / (1.0 - d)
        speed = np.linalg.norm(v, axis=1)
        with np.errstate(invalid="ignore"):
            return np.where(speed > 0, speed * steps, 0.0)

    def distance_to_border(self, obs: np.ndarray) -> np.ndarray:
        """Distance the object rolls along its heading before it crosses a border it can
        leave by (m): a border that is no exit (a wall) turns its motion along that axis back
        and keeps the other, so only the exits' crossing times count. 0 outside the rectangle;
        inf for an object at rest or one that never reaches an exit."""
        p = obs[:, OBJ_XY].astype(np.float64)
        v = (obs[:, OBJ_XY] - obs[:, PREV_OBJ_XY]).astype(np.float64)
        low, high = np.asarray(self.low), np.asarray(self.high)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_wall = np.where(v > 0, (high - p) / v, np.where(v < 0, (low - p) / v, np.inf))
        border = 2 * np.arange(2)[None, :] + (
            v > 0
        )  # per axis, the one it heads for: 0 x-, 1 x+, 2 y-, 3 y+
        to_exit = np.where(np.isin(border, self.exits), to_wall, np.inf)
        steps = np.clip(to_exit.min(axis=1), 0.0, None)  # in units of the last displacement
        speed = np.linalg.norm(v, axis=1)
        with np.errstate(invalid="ignore"):
            room = np.where(speed > 0, steps * speed, np.inf)
        inside = np.all((p >= low) & (p <= high), axis=1)
        return np.where(inside, room, 0.0)

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Travel left over distance to the border (> 1: the object would leave), in
        [0, ``MAX_SCORE``]; ``MAX_SCORE`` for an object already outside, or whose position in
        either frame is not finite (unknown: unsafe)."""
        obs = np.asarray(obs, dtype=np.float64)
        travel, room = self.travel_left(obs), self.distance_to_border(obs)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(room > 0, travel / room, MAX_SCORE)
        known = np.isfinite(obs[:, OBJ_XY]).all(1) & np.isfinite(obs[:, PREV_OBJ_XY]).all(1)
        return np.where(known, np.clip(np.nan_to_num(ratio, nan=0.0), 0.0, MAX_SCORE), MAX_SCORE)

    def as_dict(self) -> dict[str, Any]:
        """What ``save`` writes and ``load`` reads (JSON)."""
        return {"kind": CHECKPOINT_KIND, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.as_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunoutModel:
        try:
            d = read_json_of_kind(path, CHECKPOINT_KIND, "run-out model")
        except ValueError as e:
            raise RunoutError(str(e)) from e
        try:
            return cls(float(d["decay"]), tuple(d["low"]), tuple(d["high"]),
                       int(d.get("fit_rows", 0)), tuple(d.get("exits", (0, 1, 2, 3))),
                       int(d.get("horizon", 0)))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise RunoutError(f"{path}: a run-out model needs decay, low and high: {e}") from e


def free_rolling_ratios(
    observations: np.ndarray,
    next_observations: np.ndarray,
    hand_clear: float = 0.10,
    min_speed: float = 1e-3,
) -> np.ndarray:
    """|v'| / |v| of the object's per-step displacement on the transitions where the hand is
    more than ``hand_clear`` m from the object before and after and the object moves more than
    ``min_speed`` m per step (finite rows only)."""
    o, n = np.asarray(observations, np.float64), np.asarray(next_observations, np.float64)
    clear = (np.linalg.norm(o[:, HAND] - o[:, OBJ], axis=1) > hand_clear) & (
        np.linalg.norm(n[:, HAND] - n[:, OBJ], axis=1) > hand_clear
    )
    v, v_next = o[:, OBJ_XY] - o[:, PREV_OBJ_XY], n[:, OBJ_XY] - n[:, PREV_OBJ_XY]
    with np.errstate(invalid="ignore"):
        rows = clear & (np.linalg.norm(v, axis=1) > min_speed) & np.isfinite(v_next).all(1)
    return np.linalg.norm(v_next[rows], axis=1) / np.linalg.norm(v[rows], axis=1)


def fit_decay(
    observations: np.ndarray,
    next_observations: np.ndarray,
    hand_clear: float = 0.10,
    min_speed: float = 1e-3,
    min_rows: int | None = None,
) -> tuple[float, int]:
    """The object's speed kept per step: the median of ``free_rolling_ratios`` (at most 1).
    Returns (decay, rows used). The median, not a least-squares fit: a few bounces off walls
    (large |v|, small |v'|) would pull a fit of the rolling ball (which keeps its speed) far
    below 1."""
    ratio = free_rolling_ratios(observations, next_observations, hand_clear, min_speed)
    need = max(1, MIN_FIT_ROWS if min_rows is None else min_rows)
    if len(ratio) < need:
        raise RunoutError(f"{len(ratio)} free-rolling transitions, need {need}")
    return float(np.clip(np.median(ratio), 0.0, 1.0)), len(ratio)


class RunoutGate(ScoreGate):
    """Recovery where the object is predicted to roll past the border (``RunoutModel``): from
    its last displacement, with ``motion`` (``ObjectMotion``) from the displacement the
    proposed action would give it next, or with ``sequence`` (``push_sequence.PushSequence``)
    the largest score over the next few predicted steps of the task policy."""

    def __init__(
        self,
        model: RunoutModel,
        recovery_policy: Policy | Any,
        obs_dim: int,
        act_dim: int,
        eps_safe: float = 1.0,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        motion: Any = None,
        sequence: Any = None,
    ) -> None:
        if obs_dim < PREV_OBJ_XY.stop:
            raise GateInputError(
                f"the run-out score reads two frames: obs_dim >= {PREV_OBJ_XY.stop}"
            )
        super().__init__(recovery_policy, eps_safe, obs_dim, act_dim, fallback_action, device)
        self.model, self.motion, self.sequence = model, motion, sequence

    def score_numpy(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        if self.sequence is not None:
            return self.sequence.max_score(self.model.scores, obs, proposed)
        if self.motion is None:
            return self.model.scores(obs)
        return self.model.scores(self.motion.next_observation(obs, proposed))

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        s = self.score_numpy(obs.detach().cpu().numpy(), proposed.detach().cpu().numpy())
        return torch.as_tensor(s, dtype=torch.float32, device=obs.device)
