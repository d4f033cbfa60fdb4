"""Scripted expert and recovery policies for the FailureBench tasks.

All policies read only the 39-d observation: hand xyz = o[0:3], object xyz = o[4:7],
second-object slot o[11:14] (the vase in Obstructed Push), previous object xyz = o[22:25],
goal = o[36:39].  They build on MetaWorld's ``SawyerPushV3Policy`` recipe (hover 0.2 above
the object, descend, close the gripper with effort 0.6, drag with a P-controller) and add
way-points that keep clear of the boundary, wall and vase.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from failurebench_sim.core import FailureBenchError
from failurebench_sim.geometry import (
    PUSH_BOUNDARY,
    SOCCER_BOUNDARY,
    VASE_RADIUS,
    WALL_HIGH,
    WALL_LOW,
)

Array = npt.NDArray[np.float64]
OBJ_RADIUS = 0.02
DRAG_Z = 0.05  # hand height while dragging = MetaWorld's hand floor (puck z + 0.03)
HAND_CLEAR = VASE_RADIUS + 0.05 + 0.012  # vase axis to hand centre: finger half-span + 1.2 cm


def _action(hand: Array, target: Array, p: float, grip: float) -> Array:
    return np.clip(np.r_[p * (target - hand), grip], -1.0, 1.0)


def drag_to(
    o: Array, target_xy: Array, p: float = 10.0, lift_first: bool = False, grip_dz: float = 0.1
) -> Array:
    """MetaWorld push recipe: hover over the object, descend, grip (0.6), drag to target_xy.

    Unlike MetaWorld, the drag phase servoes the *object* (not the hand) onto target_xy (the
    fingers cage the object only along y, so it can lag the hand by up to 2 cm in x) and holds
    the hand at the fixed height DRAG_Z (a height relative to a gripped object runs away
    upwards).

    ``lift_first``: a low hand away from the object first rises vertically (recovery use:
    never sweep the fingers through the object on the way up).  ``grip_dz``: close the
    gripper once within this height of the object (MetaWorld: 0.1).
    """
    hand, obj = o[:3], o[4:7] + np.array([-0.005, 0.0, 0.0])
    near = np.linalg.norm(hand[:2] - o[4:6]) <= 0.02 and abs(hand[2] - o[6]) <= grip_dz
    grip = 0.6 if near else 0.0
    far = np.linalg.norm(hand[:2] - obj[:2]) > 0.02
    if lift_first and far and hand[2] < obj[2] + 0.15:
        return _action(hand, np.r_[hand[:2], obj[2] + 0.2], p, 0.0)
    if far:
        return _action(hand, obj + np.array([0.0, 0.0, 0.2]), p, grip)
    if abs(hand[2] - obj[2]) > 0.04:
        return _action(hand, obj + np.array([0.0, 0.0, 0.03]), p, grip)
    drag = np.r_[p * (np.asarray(target_xy) - o[4:6]), p * (DRAG_Z - hand[2])]
    return np.clip(np.r_[drag, grip], -1.0, 1.0)


class ScriptedPolicy:
    """``act(obs) -> action`` (4,) in [-1, 1]; ``reset()`` clears per-episode memory."""

    def __init__(self, rule: Callable[[Array, dict], Array]) -> None:
        self._rule = rule
        self._memo: dict = {}

    def reset(self) -> None:
        self._memo = {}

    def act(self, obs: npt.ArrayLike) -> Array:
        o = np.asarray(obs, dtype=np.float64)
        if o.shape != (39,):
            raise FailureBenchError(f"observation must have shape (39,), got {o.shape}")
        return self._rule(o, self._memo).astype(np.float32)


# -- experts ---------------------------------------------------------------------------------
def push_expert(o: Array, memo: dict) -> Array:
    return drag_to(o, o[36:38])


def soccer_expert(o: Array, memo: dict) -> Array:
    """Cage the ball between the open fingers, then roll it into the goal at moderate speed."""
    return drag_to(o, o[36:38] + np.array([0.0, 0.02]), p=8.0)


WALL_GAP = 0.008  # push-wall expert: object edge to the wall's free end face while passing it
WALL_PASS_SPEED = 0.35  # push-wall expert: |action| cap along the end face (3.5 mm/step)
WALL_BACK_CLEAR = 0.055  # object centre this far past the back face before turning to the goal


def push_wall_expert(o: Array, memo: dict) -> Array:
    """Drag the object around the wall's free (-x) end: sideways into a lane ``WALL_GAP`` beside
    the end face, re-grip it centred (the sideways drag leaves it ~2 cm off the hand in x, at
    the tips of the claws), slowly forward along the end face until the back finger clears the
    wall, then to the goal."""
    hand, obj, goal = o[:3], o[4:6], o[36:38]
    x_lane = WALL_LOW[0] - OBJ_RADIUS - WALL_GAP
    y_past = WALL_HIGH[1] + WALL_BACK_CLEAR
    if obj[1] >= y_past:
        return drag_to(o, goal)
    if obj[0] > x_lane + 0.005 and not memo.get("lane"):
        side = np.array([x_lane - 0.003, min(obj[1], WALL_LOW[1] - 0.07)])
        return drag_to(o, side)
    memo["lane"] = True
    if memo.get("grip", 0) < 6:
        if abs(hand[0] - obj[0]) > 0.004 and not memo.get("grip"):  # open, centre over it
            return _action(hand, np.r_[obj[0], obj[1], DRAG_Z], 10.0, -1.0)
        memo["grip"] = memo.get("grip", 0) + 1  # close in place
        return _action(hand, np.r_[hand[:2], DRAG_Z], 10.0, 0.6)
    a = drag_to(o, np.array([x_lane, y_past + 0.02]))
    a[:2] = np.clip(a[:2], -WALL_PASS_SPEED, WALL_PASS_SPEED)
    return a


def obstructed_expert(o: Array, memo: dict) -> Array:
    """Straight to the goal if that keeps the hand ``HAND_CLEAR`` from the vase axis; else
    head for the tangent point of the clearance circle on the goal side (bug-style detour)."""
    obj, goal, vase = o[4:6], o[36:38], o[11:13]
    seg = goal - obj
    length = max(np.linalg.norm(seg), 1e-6)
    u = seg / length
    s = float(np.dot(vase - obj, u))
    if not (0.0 < s < length and np.linalg.norm(vase - obj - s * u) < HAND_CLEAR):
        return drag_to(o, goal)
    w = obj - vase
    dist = np.linalg.norm(w)
    if dist <= HAND_CLEAR:
        return drag_to(o, vase + (HAND_CLEAR + 0.02) * w / dist)
    alpha = np.arccos(HAND_CLEAR / dist)
    best = None
    for sign in (1.0, -1.0):
        c, s_ = np.cos(sign * alpha), np.sin(sign * alpha)
        tangent = vase + HAND_CLEAR * np.array([c * w[0] - s_ * w[1], s_ * w[0] + c * w[1]]) / dist
        if best is None or np.linalg.norm(goal - tangent) < np.linalg.norm(goal - best):
            best = tangent
    return drag_to(o, best + 0.03 * (best - obj) / max(np.linalg.norm(best - obj), 1e-6))


# -- recovery --------------------------------------------------------------------------------
def _rect_recovery(low: Array, high: Array) -> Callable[[Array, dict], Array]:
    centre = 0.5 * (np.asarray(low) + np.asarray(high))

    def rule(o: Array, memo: dict) -> Array:
        """Grip the object and drag it back towards the centre of the boundary."""
        return drag_to(o, centre, lift_first=True)

    return rule


def soccer_recovery(o: Array, memo: dict) -> Array:
    """Intercept the rolling ball from above (aiming where it will be), squeeze it between the
    fingers, and carry it back to the centre while keeping the hand over it."""
    hand, ball, v = o[:3], o[4:7], o[4:6] - o[22:24]
    centre = 0.5 * (SOCCER_BOUNDARY[0] + SOCCER_BOUNDARY[1])
    dxy = np.linalg.norm(hand[:2] - ball[:2])
    caged = hand[2] - ball[2] <= 0.04 and dxy <= (0.035 if memo.get("caged") else 0.02)
    if not caged:
        memo["caged"] = 0
        lead = ball[:2] + v * min(dxy / 0.008 + 2.0, 15.0)
        z = ball[2] + (0.1 if dxy > 0.03 else 0.03)
        grip = 0.6 if dxy <= 0.02 and hand[2] - ball[2] <= 0.045 else 0.0
        return _action(hand, np.r_[lead, z], 25.0, grip)
    memo["caged"] = memo.get("caged", 0) + 1  # a spell may start with the ball caged
    if memo["caged"] < 8 or np.linalg.norm(ball[:2] - centre) < 0.06:
        return np.array([0.0, 0.0, 0.0, 0.6])  # squeeze the ball before moving / hold safe
    xy = 4.0 * (centre - ball[:2]) + 10.0 * (ball[:2] - hand[:2])
    return np.clip(np.r_[xy, 10.0 * (DRAG_Z - hand[2]), 0.6], -1.0, 1.0)


def push_wall_recovery(o: Array, memo: dict) -> Array:
    """Grip the object and pull it straight away from the nearest wall face, then hold."""
    if "safe" not in memo:
        obj = o[4:6]
        nearest = np.clip(obj, WALL_LOW, WALL_HIGH)
        away = obj - nearest
        away = away / np.linalg.norm(away) if np.linalg.norm(away) > 1e-6 else np.array([0, -1.0])
        memo["safe"] = obj + 0.08 * away
    return drag_to(o, memo["safe"], lift_first=True)


def obstructed_recovery(o: Array, memo: dict) -> Array:
    """Drag the object away from the vase, then lift the arm clear of it."""
    hand, obj, vase = o[:3], o[4:6], o[11:13]
    if "safe" not in memo:
        away = obj - vase
        away /= max(np.linalg.norm(away), 1e-6)
        memo["safe"] = obj + 0.07 * away
    if memo.get("lifting") or np.linalg.norm(obj - memo["safe"]) < 0.02:
        memo["lifting"] = True
        return _action(hand, np.r_[hand[:2], 0.25], 10.0, -1.0)
    return drag_to(o, memo["safe"], lift_first=True)


_RULES: dict[str, dict[str, Callable[[Array, dict], Array]]] = {
    "FailureBench/BoundedPush-v0": {
        "expert": push_expert,
        "recovery": _rect_recovery(*PUSH_BOUNDARY),
    },
    "FailureBench/BoundedSoccer-v0": {"expert": soccer_expert, "recovery": soccer_recovery},
    "FailureBench/FragilePushWall-v0": {
        "expert": push_wall_expert,
        "recovery": push_wall_recovery,
    },
    "FailureBench/ObstructedPush-v0": {
        "expert": obstructed_expert,
        "recovery": obstructed_recovery,
    },
    # the vase moves: the same rules, re-planned every step from the observed vase
    "FailureBench/DisturbedPush-v0": {
        "expert": obstructed_expert,
        "recovery": obstructed_recovery,
    },
}
KINDS = ("expert", "recovery")


def get(env_id: str, kind: str) -> ScriptedPolicy:
    """Scripted policy for ``env_id`` (one of ``TASK_IDS``); ``kind`` is 'expert' or 'recovery'."""
    if env_id not in _RULES:
        raise FailureBenchError(f"unknown env id {env_id!r}; expected one of {list(_RULES)}")
    if kind not in KINDS:
        raise FailureBenchError(f"policy kind must be one of {KINDS}, got {kind!r}")
    return ScriptedPolicy(_RULES[env_id][kind])
