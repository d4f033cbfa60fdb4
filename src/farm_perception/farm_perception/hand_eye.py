"""Eye-to-hand calibration: the RealSense's pose in the robot base from a marker on the gripper.

Procedure (README "Calibration"): fix an ArUco / ChArUco marker to the gripper, move the arm
through N >= 10 poses that tilt the marker by different axes (> 30° apart), and at each record
the gripper's pose in the base (``franka_robot_state_broadcaster/current_pose``) and the marker's
pose in the camera (OpenCV's marker detection + ``solvePnP``). The camera is fixed and the
marker is fixed on the gripper, so ``T_base_cam @ T_cam_marker = T_base_gripper @
T_gripper_marker`` for every pose: OpenCV's robot-world/hand-eye solver
(``calibrateRobotWorldHandEye``, Shah's method) gives both unknown transforms. The result is
written as the extrinsics file perception reads (``T_base_optical``), with the residuals.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from farm_perception import extrinsics

MIN_POSES = 4


class HandEyeError(ValueError):
    pass


@dataclass(frozen=True)
class HandEyeResult:
    t_base_cam: npt.NDArray[np.float64]  # the camera (optical frame) in the base
    t_gripper_marker: npt.NDArray[np.float64]
    residual_mm: float  # RMS of the marker position predicted both ways, over the poses
    residual_deg: float  # RMS rotation disagreement


def _split(t: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (4, 4) or not np.isfinite(t).all():
        raise HandEyeError(f"a pose must be a finite 4x4 matrix, got shape {t.shape}")
    return t[:3, :3], t[:3, 3:4]


def _join(r: np.ndarray, p: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = r, np.ravel(p)
    return t


def _angle_deg(r: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))


def solve(t_base_gripper: Sequence[npt.ArrayLike], t_cam_marker: Sequence[npt.ArrayLike]
          ) -> HandEyeResult:  # fmt: skip
    """The camera in the base and the marker on the gripper from N pose pairs."""
    if len(t_base_gripper) != len(t_cam_marker):
        raise HandEyeError(
            f"{len(t_base_gripper)} gripper poses but {len(t_cam_marker)} marker poses"
        )
    if len(t_base_gripper) < MIN_POSES:
        raise HandEyeError(f"need at least {MIN_POSES} pose pairs, got {len(t_base_gripper)}")
    # OpenCV solves  cTw_i wTb = cTg gTb_i  (camera, world, gripper, base). Eye-to-hand maps its
    # world to our marker, its gripper to our base and its base to our gripper:
    #   cTm_i mTg = cTb bTg_i,  i.e. A_i = T_cam_marker_i, B_i = T_base_gripper_i,
    #   X = T_marker_gripper, Z = T_cam_base.
    r_a, t_a, r_b, t_b = [], [], [], []
    for tg, tm in zip(t_base_gripper, t_cam_marker, strict=True):
        r, p = _split(tm)
        r_a.append(r)
        t_a.append(p)
        r, p = _split(tg)
        r_b.append(r)
        t_b.append(p)
    r_x, t_x, r_z, t_z = cv2.calibrateRobotWorldHandEye(
        r_a, t_a, r_b, t_b, method=cv2.CALIB_ROBOT_WORLD_HAND_EYE_SHAH
    )
    t_base_cam = np.linalg.inv(_join(r_z, t_z))
    t_gripper_marker = np.linalg.inv(_join(r_x, t_x))
    errs_mm, errs_deg = [], []
    for tg, tm in zip(t_base_gripper, t_cam_marker, strict=True):
        a = t_base_cam @ np.asarray(tm, dtype=np.float64)
        b = np.asarray(tg, dtype=np.float64) @ t_gripper_marker
        errs_mm.append(1e3 * float(np.linalg.norm(a[:3, 3] - b[:3, 3])))
        errs_deg.append(_angle_deg(a[:3, :3].T @ b[:3, :3]))
    return HandEyeResult(t_base_cam, t_gripper_marker,
                         float(np.sqrt(np.mean(np.square(errs_mm)))),
                         float(np.sqrt(np.mean(np.square(errs_deg)))))  # fmt: skip


def load_pairs(path: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pose pairs recorded as JSON: ``[{"t_base_gripper": 4x4, "t_cam_marker": 4x4}, ...]``."""
    try:
        rows = json.loads(Path(path).read_text())
        return ([np.array(r["t_base_gripper"], dtype=float) for r in rows],
                [np.array(r["t_cam_marker"], dtype=float) for r in rows])  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HandEyeError(f"{path}: not a list of pose pairs ({e})") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="farm-hand-eye", description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", type=Path, help="JSON list of {t_base_gripper, t_cam_marker}")
    ap.add_argument("--out", type=Path, required=True, help="extrinsics YAML perception reads")
    ap.add_argument("--parent-frame", default="fr3_link0")
    ap.add_argument("--child-frame", default="camera_color_optical_frame")
    a = ap.parse_args(argv)
    try:
        res = solve(*load_pairs(a.pairs))
    except HandEyeError as e:
        print(f"farm-hand-eye: {e}", file=sys.stderr)
        return 2
    ext = extrinsics.Extrinsics.from_matrix(res.t_base_cam, a.parent_frame, a.child_frame)
    note = (f"eye-to-hand calibration from {a.pairs.name}: residual {res.residual_mm:.2f} mm RMS, "
            f"{res.residual_deg:.3f} deg RMS")  # fmt: skip
    extrinsics.save(ext, a.out, comment=note)
    print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
