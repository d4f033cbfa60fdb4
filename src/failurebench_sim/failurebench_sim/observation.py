"""One observation builder for the twin and the robot: FailureBench's 39-d layout.

MetaWorld (goal observable) observes, per step,

    [hand xyz (3), gripper opening (1), object 1 pos (3) + quat xyzw (4), object 2 (7)]  current
    [the same 18 numbers of the previous step]                                           previous
    [goal xyz (3)]

clipped to the env's observation bounds; on reset the previous half equals the current one.
``ObservationBuilder`` rebuilds exactly that from the pieces a robot measures (end-effector
position, finger positions, estimated object poses, the task's goal), so the policy, the safety
critic and the arbiter see the same vector on the twin, in the benchmark and on the robot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

OBS_DIM = 39
FRAME_DIM = 18
MAX_OBJECTS = 2
GRIPPER_FULL_OPEN_M = 0.1  # MetaWorld normalises the finger distance by 0.1 m
HAND, OBJ, OBJ_QUAT, OBJ2, GOAL = (
    slice(0, 3),
    slice(4, 7),
    slice(7, 11),
    slice(11, 14),
    slice(36, 39),
)
"""slots of the current frame's hand xyz, object 1 xyz and quaternion, object 2 xyz; the goal"""
PREV_HAND, PREV_OBJ = (slice(s.start + FRAME_DIM, s.stop + FRAME_DIM) for s in (HAND, OBJ))
"""the same slots of the previous frame (the observation keeps both frames)"""


class ObservationError(ValueError):
    """A piece of the observation has the wrong shape or is not finite."""


@dataclass(frozen=True)
class ObjectPose:
    """Object position (m, base frame) and orientation (unit quaternion x, y, z, w)."""

    position: tuple[float, float, float]
    quaternion_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


def gripper_opening(finger_distance_m: float) -> float:
    """MetaWorld's normalised gripper opening in [0, 1] from the finger distance in metres."""
    return float(np.clip(finger_distance_m / GRIPPER_FULL_OPEN_M, 0.0, 1.0))


def frame_vector(
    hand_pos: npt.ArrayLike, opening: float, objects: Sequence[ObjectPose]
) -> npt.NDArray[np.float64]:
    """The 18 numbers of one step: hand, opening, then (pos, quat) per object, zero-padded."""
    hand = np.asarray(hand_pos, dtype=np.float64)
    if hand.shape != (3,):
        raise ObservationError(f"hand position must have 3 entries, got shape {hand.shape}")
    if len(objects) > MAX_OBJECTS:
        raise ObservationError(f"at most {MAX_OBJECTS} objects, got {len(objects)}")
    parts = [hand, [float(opening)]]
    for ob in objects:
        pos = np.asarray(ob.position, dtype=np.float64)
        quat = np.asarray(ob.quaternion_xyzw, dtype=np.float64)
        if pos.shape != (3,) or quat.shape != (4,):
            raise ObservationError(
                f"object pose needs 3 + 4 numbers, got {pos.shape}, {quat.shape}"
            )
        parts += [pos, quat]
    out = np.zeros(FRAME_DIM)
    flat = np.concatenate([np.ravel(p) for p in parts])
    out[: flat.size] = flat
    if not np.isfinite(out).all():
        raise ObservationError("observation pieces contain NaN or inf")
    return out


class ObservationBuilder:
    """Stateful 39-d observation: keeps the previous frame half between calls.

    ``low``/``high``: the env's observation bounds (``env.observation_space``); MetaWorld clips
    every observation to them. ``reset()`` starts an episode (the next call's previous half
    equals its current half, as after ``env.reset()``).
    """

    def __init__(self, low: npt.ArrayLike | None = None, high: npt.ArrayLike | None = None):
        self.low = None if low is None else np.asarray(low, dtype=np.float64)
        self.high = None if high is None else np.asarray(high, dtype=np.float64)
        for b in (self.low, self.high):
            if b is not None and b.shape != (OBS_DIM,):
                raise ObservationError(f"observation bounds must have shape ({OBS_DIM},)")
        self._previous: npt.NDArray[np.float64] | None = None

    @classmethod
    def for_env(cls, env) -> ObservationBuilder:
        """Builder with ``env.observation_space``'s bounds (a FailureBench / MetaWorld env)."""
        space = getattr(env, "unwrapped", env).observation_space
        return cls(space.low, space.high)

    def reset(self) -> None:
        self._previous = None

    def __call__(
        self,
        hand_pos: npt.ArrayLike,
        opening: float,
        objects: Sequence[ObjectPose],
        goal: npt.ArrayLike,
    ) -> npt.NDArray[np.float64]:
        """The observation of this step; advances the previous-frame half."""
        current = frame_vector(hand_pos, opening, objects)
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (3,) or not np.isfinite(goal).all():
            raise ObservationError(f"goal must be 3 finite numbers, got {goal}")
        previous = current if self._previous is None else self._previous
        obs = np.concatenate([current, previous, goal])
        if self.low is not None and self.high is not None:
            obs = np.clip(obs, self.low, self.high)
        self._previous = current
        return obs


def split_observation(obs: npt.ArrayLike) -> dict[str, npt.NDArray[np.float64]]:
    """Named views of a 39-d observation (hand, opening, objects (2, 7), previous, goal)."""
    o = np.asarray(obs, dtype=np.float64)
    if o.shape[-1] != OBS_DIM:
        raise ObservationError(f"observation must have {OBS_DIM} entries, got {o.shape}")
    return {
        "hand": o[..., 0:3],
        "opening": o[..., 3],
        "objects": o[..., 4:FRAME_DIM].reshape(*o.shape[:-1], MAX_OBJECTS, 7),
        "previous": o[..., FRAME_DIM : 2 * FRAME_DIM],
        "goal": o[..., 2 * FRAME_DIM :],
    }
