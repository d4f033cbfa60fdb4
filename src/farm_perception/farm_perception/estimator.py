"""Per-frame state estimation: (rgb, aligned depth mm, K, T_base_optical) -> object positions in
the base frame, in the task's observation order, with a fresh / held / missing status each.

Position of a detection (the choice measured in ``test_twin_accuracy``): deproject every mask
pixel with valid depth through its own ray, take the per-axis median of those surface points
(robust to edge pixels and to partial occlusion), then move it from the visible surface to the
object's reference point by the object's ``centre_offset`` (horizontally away from the camera
and along base z; per object in perception.yaml, fitted on twin renders by
``farm-perception bands``). A blob whose 3-D spread exceeds ``max_extent`` is rejected (the
next-largest candidate is tried), which keeps same-coloured scene parts out.
An object not detected keeps its last pose for up to ``max_missed_frames`` frames (status
``held``, e.g. while the gripper hides it), then becomes ``missing``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from farm_perception.color_filter import ColorFilterDetector
from farm_perception.config import ObjectSpec, TaskPerception
from farm_perception.detector import Detection, Detector
from farm_perception.geometry import MM, PixelRays

FRESH, HELD, MISSING = "fresh", "held", "missing"
IDENTITY_XYZW = (0.0, 0.0, 0.0, 1.0)
SPREAD_PCT = (5.0, 95.0)  # percentiles bounding a blob's 3-D spread
MIN_DEPTH_PIXELS = 10  # a blob needs this many pixels with valid depth to be placed


class FrameError(ValueError):
    """An image pair does not fit the camera (shape, dtype)."""


@dataclass(frozen=True)
class Estimate:
    """One frame's result: ``positions`` (n, 3) base frame (NaN where missing), ``status``."""

    positions: npt.NDArray[np.float64]
    status: tuple[str, ...]
    detections: tuple[Detection | None, ...]

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        return np.array([s != MISSING for s in self.status])

    @property
    def complete(self) -> bool:
        """Every object of the task has a pose (fresh or held)."""
        return bool(self.valid.all())


BOX_SHRINK = 0.2  # a bare box loses this fraction of its size on each side (its edges are table)
BOX_NEAR_PCT = 40.0  # and keeps its nearest pixels up to this depth percentile (the object)


def _box_pixels(box, depth_m, allowed=None):
    """Rows, columns and depths of a box's object pixels: its central part, inside the object's
    workspace (``allowed``: not the gripper above it), nearest ones."""
    x0, y0, x1, y1 = box
    dx, dy = BOX_SHRINK * (x1 - x0), BOX_SHRINK * (y1 - y0)
    xa, xb = int(x0 + dx), max(int(x0 + dx) + 1, int(round(x1 - dx)))
    ya, yb = int(y0 + dy), max(int(y0 + dy) + 1, int(round(y1 - dy)))
    rows, cols = np.mgrid[ya:yb, xa:xb].reshape(2, -1)
    inside = (rows < depth_m.shape[0]) & (cols < depth_m.shape[1])
    rows, cols = rows[inside], cols[inside]
    d = depth_m[rows, cols]
    ok = d > 0
    if allowed is not None:
        ok &= allowed[rows, cols]
    if ok.any():
        ok &= d <= np.percentile(d[ok], BOX_NEAR_PCT)
    return rows, cols, d, ok


def place(
    det: Detection,
    spec: ObjectSpec,
    depth_m: npt.NDArray[np.float32],
    rays: PixelRays,
    allowed: np.ndarray | None = None,
) -> npt.NDArray[np.float64] | None:
    """Base-frame reference point of one detection, or None (too few depth pixels, too big).
    ``allowed``: the object's workspace pixels (a bare box keeps only those)."""
    if det.mask is not None:
        rows, cols = np.nonzero(det.mask)
        d = depth_m[rows, cols]
        ok = d > 0
    else:  # a bare box also covers the table behind the object: its nearer pixels are the object
        rows, cols, d, ok = _box_pixels(det.bbox_xyxy, depth_m, allowed)
    if ok.sum() < MIN_DEPTH_PIXELS:
        return None
    pts = rays.points_at(rows[ok], cols[ok], d[ok])
    lo, hi = np.percentile(pts, SPREAD_PCT, axis=0)
    if float(np.max(hi - lo)) > spec.max_extent:
        return None
    p = np.median(pts, axis=0)
    away = p[:2] - rays.origin[:2]
    norm = float(np.linalg.norm(away))
    if norm > 0:
        p[:2] += spec.centre_offset.along_view * away / norm
    p[2] = spec.fixed_z if spec.fixed_z is not None else p[2] + spec.centre_offset.up
    return p


class PoseEstimator:
    """Stateful per-task estimator (holds the last good pose of each object)."""

    def __init__(
        self,
        task: TaskPerception,
        k: npt.ArrayLike,
        t_base_optical: npt.ArrayLike,
        width: int,
        height: int,
        max_missed_frames: int = 5,
        detector: Detector | None = None,
    ) -> None:
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}")
        self.task = task
        self.rays = PixelRays(k, t_base_optical, width, height)
        self.max_missed_frames = int(max_missed_frames)
        self.detector = detector or ColorFilterDetector(task.objects, task.min_area, task.kernel)
        n = len(task.objects)
        self._last = np.full((n, 3), np.nan)
        self._missed = np.full(n, self.max_missed_frames + 1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rays.height, self.rays.width

    def reset(self) -> None:
        """Forget held poses (a new episode / scene)."""
        self._last[:] = np.nan
        self._missed[:] = self.max_missed_frames + 1

    def check(self, rgb: np.ndarray, depth_mm: np.ndarray) -> None:
        h, w = self.shape
        if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
            raise FrameError(f"colour must be ({h}, {w}, 3) uint8, got {rgb.shape} {rgb.dtype}")
        if depth_mm.shape != (h, w) or depth_mm.dtype != np.uint16:
            raise FrameError(
                f"depth must be ({h}, {w}) uint16 mm, got {depth_mm.shape} {depth_mm.dtype}"
            )

    def detect(self, rgb: np.ndarray, depth_mm: np.ndarray) -> list[tuple[Detection, np.ndarray]]:
        """(detection, base-frame position) of each object seen in this frame (stateless)."""
        self.check(rgb, depth_mm)
        depth_m = depth_mm.astype(np.float32) * np.float32(MM)
        allowed = {
            o.label: self.rays.inside(
                depth_m, np.array(o.workspace_low), np.array(o.workspace_high)
            )
            for o in self.task.objects
        }
        if hasattr(self.detector, "candidates"):  # several per label: the first that places
            cands = self.detector.candidates(rgb, allowed)
        else:
            cands = {}
            for det in self.detector.detect(rgb, allowed):
                cands.setdefault(det.label, []).append(det)
        found = []
        for spec in self.task.objects:
            for det in cands.get(spec.label, ()):
                p = place(det, spec, depth_m, self.rays, allowed[spec.label])
                if p is not None:
                    found.append((det, p))
                    break
        return found

    def update(self, rgb: np.ndarray, depth_mm: np.ndarray) -> Estimate:
        """Estimate this frame and advance the hold counters. Raises FrameError on bad input."""
        return self._advance({det.label: (det, p) for det, p in self.detect(rgb, depth_mm)})

    def miss(self) -> Estimate:
        """A frame that could not be used at all (bad input): every object counts as missed."""
        return self._advance({})

    def _advance(self, seen: dict[str, tuple[Detection, np.ndarray]]) -> Estimate:
        status, dets = [], []
        for i, spec in enumerate(self.task.objects):
            det, p = seen.get(spec.label, (None, None))
            dets.append(det)
            if p is not None:
                self._last[i], self._missed[i] = p, 0
                status.append(FRESH)
                continue
            self._missed[i] += 1
            status.append(HELD if self._missed[i] <= self.max_missed_frames else MISSING)
        positions = self._last.copy()
        positions[[s == MISSING for s in status]] = np.nan
        return Estimate(positions, tuple(status), tuple(dets))
