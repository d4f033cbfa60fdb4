"""FailureBench action <-> end-effector target, the one conversion the arbiter and the twin share.

A FailureBench (MetaWorld) action is a[:3] in [-1, 1] scaled by ``ACTION_SCALE`` (1 cm) as a
position step of the hand, and a[3] the gripper effort (+1 closes). The robot's Cartesian
impedance controller takes an absolute end-effector target instead, so the arbiter publishes
``hand + ACTION_SCALE * a[:3]`` and the twin (or any bridge) recovers the action from the
target and the hand position of the same frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ACTION_SCALE = 0.01  # MetaWorld's SawyerXYZEnv.action_scale: metres per unit action


class CommandError(ValueError):
    """A hand position, action or target of the wrong shape or not finite."""


def _vec(x: npt.ArrayLike, n: int, what: str) -> npt.NDArray[np.float64]:
    v = np.asarray(x, dtype=np.float64)
    if v.shape != (n,) or not np.isfinite(v).all():
        raise CommandError(f"{what} must be {n} finite numbers, got {v!r}")
    return v


def action_to_target(
    hand_pos: npt.ArrayLike, action: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], float]:
    """(end-effector target xyz, gripper command) for ``action`` taken at ``hand_pos``."""
    hand, a = _vec(hand_pos, 3, "hand position"), _vec(action, 4, "action")
    a = np.clip(a, -1.0, 1.0)
    return hand + ACTION_SCALE * a[:3], float(a[3])


def target_to_action(
    hand_pos: npt.ArrayLike, target_xyz: npt.ArrayLike, gripper: float
) -> npt.NDArray[np.float64]:
    """The action (4,) that moves the hand at ``hand_pos`` towards ``target_xyz`` (clipped)."""
    hand, target = _vec(hand_pos, 3, "hand position"), _vec(target_xyz, 3, "target")
    g = _vec([gripper], 1, "gripper command")
    return np.clip(np.r_[(target - hand) / ACTION_SCALE, g], -1.0, 1.0)


def hold_still_if_nonfinite(actions: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], int]:
    """Rows with a NaN/inf entry become zeros (no end-effector motion); returns (actions, n_rows).

    A diverged policy must not crash a run or reach the robot: the env would reject the action,
    a real controller might not.
    """
    a = np.asarray(actions, dtype=np.float32)
    bad = ~np.isfinite(a).all(axis=-1)
    if not bad.any():
        return a, 0
    a = a.copy()
    a[bad] = 0.0
    return a, int(np.sum(bad))
