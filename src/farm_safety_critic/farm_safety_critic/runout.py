"""The object's run-out predicted from its own motion: will it roll past the border?

On Bounded Soccer the IR failure (the ball leaves the table) happens 14-38 steps after the kick
that decides it, and the learned gates can only tell "the hand is at the ball" from "the ball
is lost": at the thresholds that catch the failures they fire on half the steps (the science
issue's Soccer notes). A rolling ball, though, is easy to predict: its speed decays by a nearly
constant factor per control step while nothing touches it, so it will still travel

    |v| * decay / (1 - decay)        (v: its displacement over the last step)

along its heading. ``RunoutModel`` compares that with the distance from the object to the
border of the allowed rectangle along the same heading; the score is their ratio (> 1: it
would leave). The observation carries the object's position in this frame and the last one
(``failurebench_sim.observation``: ``OBJ`` and the same slot ``FRAME_DIM`` later), so the
score needs no model and no action: a state test, as on the robot where the perception gives
the same two frames. ``fit_decay`` estimates the factor from transitions where the hand is
away from the object; ``RunoutGate`` is the ``ScoreGate`` on the score (the recovery policy
where it exceeds ``eps_safe``, default 1).

The constraint target "tied to the object's predicted motion rather than to the policy's
horizon" is the science issue's lever; this is its closed form for objects that roll.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from failurebench_sim.atomic import write_json
from failurebench_sim.observation import FRAME_DIM, HAND, OBJ
from farm_safety_critic.gate import GateInputError, Policy, ScoreGate

OBJ_XY = slice(OBJ.start, OBJ.start + 2)
PREV_OBJ_XY = slice(OBJ.start + FRAME_DIM, OBJ.start + FRAME_DIM + 2)
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
    low: tuple[float, float]
    high: tuple[float, float]
    fit_rows: int = 0
    """free-rolling transitions the decay was fitted on (0: set by hand)"""
    exits: tuple[int, ...] = (0, 1, 2, 3)
    """the borders an object can leave by (0 x-, 1 x+, 2 y-, 3 y+); one heading for another
    border (a wall, as behind Soccer's goal) does not leave"""

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise RunoutError(f"the rolling decay must be in [0, 1), got {self.decay}")
        if not self.exits or not set(self.exits) <= {0, 1, 2, 3}:
            raise RunoutError(f"exits are borders 0-3 (x-, x+, y-, y+), got {self.exits}")
        if len(self.low) != 2 or len(self.high) != 2 or not np.all(np.less(self.low, self.high)):
            raise RunoutError(f"need low < high (xy), got {self.low}, {self.high}")

    def travel_left(self, obs: np.ndarray) -> np.ndarray:
        """How far each row's object will still roll if nothing touches it (m)."""
        v = obs[:, OBJ_XY] - obs[:, PREV_OBJ_XY]
        return np.linalg.norm(v, axis=1) * self.decay / (1.0 - self.decay)

    def distance_to_border(self, obs: np.ndarray) -> np.ndarray:
        """Distance from the object to the rectangle's border along its heading (m); 0 outside
        the rectangle, inf for an object at rest or heading for a border that is no exit."""
        p = obs[:, OBJ_XY].astype(np.float64)
        v = (obs[:, OBJ_XY] - obs[:, PREV_OBJ_XY]).astype(np.float64)
        low, high = np.asarray(self.low), np.asarray(self.high)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_wall = np.where(v > 0, (high - p) / v, np.where(v < 0, (low - p) / v, np.inf))
        steps = np.clip(to_wall.min(axis=1), 0.0, None)  # in units of the last displacement
        axis = to_wall.argmin(axis=1)
        border = 2 * axis + (v[np.arange(len(v)), axis] > 0)  # 0 x-, 1 x+, 2 y-, 3 y+
        speed = np.linalg.norm(v, axis=1)
        with np.errstate(invalid="ignore"):
            room = np.where((speed > 0) & np.isin(border, self.exits), steps * speed, np.inf)
        inside = np.all((p >= low) & (p <= high), axis=1)
        return np.where(inside, room, 0.0)

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Travel left over distance to the border (> 1: the object would leave), in
        [0, ``MAX_SCORE``]; ``MAX_SCORE`` for an object already outside."""
        obs = np.asarray(obs, dtype=np.float64)
        travel, room = self.travel_left(obs), self.distance_to_border(obs)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(room > 0, travel / room, MAX_SCORE)
        return np.clip(np.nan_to_num(ratio, nan=0.0), 0.0, MAX_SCORE)

    def as_dict(self) -> dict[str, Any]:
        """What ``save`` writes and ``load`` reads (JSON)."""
        return {"kind": CHECKPOINT_KIND, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.as_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunoutModel:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise RunoutError(f"cannot read the run-out model {path}: {e}") from e
        if d.pop("kind", None) != CHECKPOINT_KIND:
            raise RunoutError(f"{path} is not a run-out model ({CHECKPOINT_KIND})")
        return cls(float(d["decay"]), tuple(d["low"]), tuple(d["high"]), int(d.get("fit_rows", 0)),
                   tuple(d.get("exits", (0, 1, 2, 3))))  # fmt: skip


def fit_decay(
    observations: np.ndarray,
    next_observations: np.ndarray,
    hand_clear: float = 0.10,
    min_speed: float = 1e-3,
    min_rows: int | None = None,
) -> tuple[float, int]:
    """Least-squares decay v' = decay * v of the object's per-step displacement, on the
    transitions where the hand is more than ``hand_clear`` m from the object before and after
    and the object moves more than ``min_speed`` m per step. Returns (decay, rows used)."""
    o, n = np.asarray(observations, np.float64), np.asarray(next_observations, np.float64)
    clear = (np.linalg.norm(o[:, HAND] - o[:, OBJ], axis=1) > hand_clear) & (
        np.linalg.norm(n[:, HAND] - n[:, OBJ], axis=1) > hand_clear
    )
    v, v_next = o[:, OBJ_XY] - o[:, PREV_OBJ_XY], n[:, OBJ_XY] - n[:, PREV_OBJ_XY]
    rows = (
        clear
        & (np.linalg.norm(v, axis=1) > min_speed)
        & np.isfinite(v).all(1)
        & np.isfinite(v_next).all(1)
    )
    need = MIN_FIT_ROWS if min_rows is None else min_rows
    if rows.sum() < need:
        raise RunoutError(f"{int(rows.sum())} free-rolling transitions, need {need}")
    decay = float((v[rows] * v_next[rows]).sum() / (v[rows] ** 2).sum())
    return min(max(decay, 0.0), 0.999), int(rows.sum())


class RunoutGate(ScoreGate):
    """Recovery where the object is predicted to roll past the border (``RunoutModel``)."""

    def __init__(
        self,
        model: RunoutModel,
        recovery_policy: Policy | Any,
        obs_dim: int,
        act_dim: int,
        eps_safe: float = 1.0,
        fallback_action: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if obs_dim < PREV_OBJ_XY.stop:
            raise GateInputError(
                f"the run-out score reads two frames: obs_dim >= {PREV_OBJ_XY.stop}"
            )
        super().__init__(recovery_policy, eps_safe, obs_dim, act_dim, fallback_action, device)
        self.model = model

    def score_numpy(self, obs: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        return self.model.scores(obs)

    def score(self, obs: Tensor, proposed: Tensor) -> Tensor:
        s = self.model.scores(obs.detach().cpu().numpy())
        return torch.as_tensor(s, dtype=torch.float32, device=obs.device)
