"""Camera extrinsics files: the pose of the camera's optical frame in the robot base frame.

One YAML mapping per file (what a hand-eye calibration writes on the robot, and what
``--write-twin`` writes from the twin's camera, so perception reads both the same way)::

    parent_frame: fr3_link0                 # the base frame the poses are published in
    child_frame: camera_color_optical_frame # REP 103 optical frame of the colour camera
    translation: [x, y, z]                  # metres, child origin in the parent frame
    quaternion_xyzw: [x, y, z, w]           # unit quaternion, child axes in the parent frame

``python -m farm_perception.extrinsics --write-twin config/calibration/twin_camera.yaml``
regenerates the twin's file from ``TwinCamera.pose_in_base()``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml

KEYS = ("parent_frame", "child_frame", "translation", "quaternion_xyzw")
UNIT_TOL = 1e-6


class ExtrinsicsError(ValueError):
    """A calibration file is missing, malformed or not a rigid transform."""


def quat_to_matrix(q_xyzw: npt.ArrayLike) -> npt.NDArray[np.float64]:
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(r: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rotation matrix -> unit quaternion (x, y, z, w) with w >= 0 (Shepperd's method)."""
    m = np.asarray(r, dtype=np.float64)
    tr = np.trace(m)
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i], q[j], q[k] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


@dataclass(frozen=True)
class Extrinsics:
    """T_parent_child as frame names + translation + unit quaternion (validated on creation)."""

    parent_frame: str
    child_frame: str
    translation: tuple[float, float, float]
    quaternion_xyzw: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        for key in ("parent_frame", "child_frame"):
            name = getattr(self, key)
            if not isinstance(name, str) or not name or name.strip() != name or "/" in name[:1]:
                raise ExtrinsicsError(f"{key} must be a non-empty frame name, got {name!r}")
        t, q = np.asarray(self.translation, float), np.asarray(self.quaternion_xyzw, float)
        if t.shape != (3,) or q.shape != (4,):
            raise ExtrinsicsError(f"translation needs 3 and quaternion_xyzw 4 numbers ({t}, {q})")
        if not (np.isfinite(t).all() and np.isfinite(q).all()):
            raise ExtrinsicsError(f"extrinsics must be finite, got {t.tolist()}, {q.tolist()}")
        if abs(np.linalg.norm(q) - 1.0) > UNIT_TOL:
            raise ExtrinsicsError(f"quaternion_xyzw must be unit length, |q| = {np.linalg.norm(q)}")

    @classmethod
    def from_matrix(cls, t: npt.ArrayLike, parent_frame: str, child_frame: str) -> Extrinsics:
        t = np.asarray(t, dtype=np.float64)
        q = matrix_to_quat(t[:3, :3])
        return cls(parent_frame, child_frame, tuple(t[:3, 3].tolist()), tuple(q.tolist()))

    def matrix(self) -> npt.NDArray[np.float64]:
        """4x4 T_parent_child."""
        out = np.eye(4)
        out[:3, :3] = quat_to_matrix(self.quaternion_xyzw)
        out[:3, 3] = self.translation
        return out


def load(path: str | Path) -> Extrinsics:
    """Read and validate a calibration file; ExtrinsicsError names the file and the problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ExtrinsicsError(f"{path}: cannot read calibration file: {e}") from e
    if not isinstance(data, dict):
        raise ExtrinsicsError(f"{path}: expected a mapping with keys {KEYS}")
    missing = [k for k in KEYS if k not in data]
    unknown = sorted(set(data) - set(KEYS))
    if missing or unknown:
        raise ExtrinsicsError(f"{path}: missing keys {missing}, unknown keys {unknown}")
    try:
        t = tuple(float(v) for v in data["translation"])
        q = tuple(float(v) for v in data["quaternion_xyzw"])
        return Extrinsics(str(data["parent_frame"]), str(data["child_frame"]), t, q)
    except (TypeError, ValueError) as e:
        raise ExtrinsicsError(f"{path}: {e}") from e


def save(ext: Extrinsics, path: str | Path, comment: str = "") -> None:
    """Write ``ext`` as a calibration file (round-trips exactly through ``load``)."""
    body = {
        "parent_frame": ext.parent_frame,
        "child_frame": ext.child_frame,
        "translation": [float(v) for v in ext.translation],
        "quaternion_xyzw": [float(v) for v in ext.quaternion_xyzw],
    }
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    Path(path).write_text(head + yaml.safe_dump(body, sort_keys=False, default_flow_style=None))


def twin_extrinsics(task: str = "FailureBench/BoundedPush-v0") -> Extrinsics:
    """The twin camera's optical frame in the base frame (the same for every task)."""
    import gymnasium

    import failurebench_sim  # noqa: F401  (registers the envs)
    from failurebench_sim import ros_contract as rc

    env = gymnasium.make(task)
    try:
        env.reset(seed=0)
        t = env.unwrapped.camera_pose_in_base()
    finally:
        env.close()
    return Extrinsics.from_matrix(t, rc.BASE_FRAME, rc.CAMERA_OPTICAL_FRAME)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-twin", metavar="PATH", help="write the twin camera's calibration")
    ap.add_argument("--show", metavar="PATH", help="validate a calibration file and print T")
    args = ap.parse_args(argv)
    if args.write_twin:
        cmd = "python -m farm_perception.extrinsics --write-twin " + args.write_twin
        save(twin_extrinsics(), args.write_twin, f"Twin camera fb_camera (generated: {cmd})")
        print(f"wrote {args.write_twin}")
    if args.show:
        ext = load(args.show)
        print(f"T_{ext.parent_frame}_{ext.child_frame} =\n{np.array2string(ext.matrix())}")
    if not (args.write_twin or args.show):
        ap.error("nothing to do: pass --write-twin PATH or --show PATH")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
