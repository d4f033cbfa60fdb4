"""Derive HSV bands and centre offsets from the twin's renders (truth from MuJoCo segmentation).

Chromatic objects (median saturation >= ACHROMATIC_S) get one hue band (split in two where it
wraps through red at H = 0/179) spanning the [P_LOW, P_HIGH] percentiles of their truth
pixels in H, S and V, widened by MARGIN. Achromatic objects (the black-and-white ball) get a
light and a dark band, split at the Otsu threshold of V. ``fit`` then tightens the bounds
greedily (the move that removes the most false-positive pixels per truth pixel lost) until the
bands match at most FP_BUDGET pixels per frame of everything else inside the object's workspace.
``check`` reports the recall on truth pixels and the false positives in the workspace.
``fit_centre_offset`` measures the visible-surface -> reference-point offset of each object
(median residual of the estimator with a zero offset against the observation slots).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from farm_perception.config import CentreOffset, HsvBand, ObjectSpec, TaskPerception
from farm_perception.estimator import FRESH, PoseEstimator
from farm_perception.geometry import MM, PixelRays
from farm_perception.twin_frames import TwinFrame

P_LOW, P_HIGH = 2.0, 98.0
MARGIN = (3, 25, 25)  # H, S, V
ACHROMATIC_S = 60
FP_BUDGET = 10.0  # false-positive pixels per frame a fitted band may keep (opening removes them)
MIN_RECALL = 0.5
STEP = (1, 4, 4)  # H, S, V tightening step
TOP = (179, 255, 255)


def _clip(v: float, axis: int) -> int:
    return int(np.clip(round(v), 0, TOP[axis]))


def _envelope(px: npt.NDArray[np.uint8], axes: Sequence[int]) -> tuple[list[int], list[int]]:
    lo, hi = [0, 0, 0], list(TOP)
    for a in axes:
        p_lo, p_hi = np.percentile(px[:, a], [P_LOW, P_HIGH])
        lo[a], hi[a] = _clip(p_lo - MARGIN[a], a), _clip(p_hi + MARGIN[a], a)
    return lo, hi


def derive(hsv_pixels: npt.NDArray[np.uint8]) -> tuple[HsvBand, ...]:
    """HSV bands covering an object's truth pixels (N, 3) (see the module docstring)."""
    px = np.asarray(hsv_pixels, dtype=np.uint8).reshape(-1, 3)
    if len(px) == 0:
        raise ValueError("no truth pixels to derive bands from")
    if np.median(px[:, 1]) < ACHROMATIC_S:
        v = px[:, 2].reshape(-1, 1)
        split, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        light, dark = px[px[:, 2] > split], px[px[:, 2] <= split]
        lo, hi = _envelope(light, (1, 2))
        bands = [HsvBand(tuple(lo), tuple(hi))]
        lo, hi = _envelope(dark, (2,))
        bands.append(HsvBand(tuple(lo), tuple(hi)))
        return tuple(bands)
    # chromatic: hue on a circle, centred on the circular mean so red does not wrap
    ang = px[:, 0].astype(np.float64) * (2 * np.pi / 180)
    centre = (np.angle(np.mean(np.exp(1j * ang))) * 180 / (2 * np.pi)) % 180
    rel = (px[:, 0] - centre + 90) % 180 - 90
    h_lo, h_hi = np.percentile(rel, [P_LOW, P_HIGH]) + np.array([-MARGIN[0], MARGIN[0]]) + centre
    lo, hi = _envelope(px, (1, 2))
    h_lo, h_hi = int(np.floor(h_lo)), int(np.ceil(h_hi))
    if h_lo < 0:
        return (
            HsvBand((0, lo[1], lo[2]), (h_hi, hi[1], hi[2])),
            HsvBand((180 + h_lo, lo[1], lo[2]), (179, hi[1], hi[2])),
        )
    if h_hi > 179:
        return (
            HsvBand((h_lo, lo[1], lo[2]), (179, hi[1], hi[2])),
            HsvBand((0, lo[1], lo[2]), (h_hi - 180, hi[1], hi[2])),
        )
    return (HsvBand((h_lo, lo[1], lo[2]), (h_hi, hi[1], hi[2])),)


def _count(px: npt.NDArray[np.uint8], bands: Sequence[tuple[list[int], list[int]]]) -> int:
    hit = np.zeros(len(px), bool)
    for lo, hi in bands:
        hit |= np.all((px >= lo) & (px <= hi), axis=1)
    return int(hit.sum())


def tighten(
    bands: Sequence[HsvBand],
    truth: npt.NDArray[np.uint8],
    others: npt.NDArray[np.uint8],
    n_frames: int,
) -> tuple[HsvBand, ...]:
    """Greedy shrink of the band bounds until false positives <= FP_BUDGET per frame."""
    cur = [(list(b.low), list(b.high)) for b in bands]
    truth, others = truth.astype(np.int16), others.astype(np.int16)
    budget, need = FP_BUDGET * n_frames, MIN_RECALL * len(truth)
    fp, tp = _count(others, cur), _count(truth, cur)
    while fp > budget:
        best = None
        for i in range(len(cur)):
            for axis in range(3):
                for side in (0, 1):
                    trial = [(list(a), list(b)) for a, b in cur]
                    bound = trial[i][side]
                    bound[axis] += STEP[axis] if side == 0 else -STEP[axis]
                    if trial[i][0][axis] > trial[i][1][axis]:
                        continue
                    t_fp, t_tp = _count(others, trial), _count(truth, trial)
                    gain = (fp - t_fp) / (tp - t_tp + 1.0)
                    if t_tp >= need and fp > t_fp and (best is None or gain > best[0]):
                        best = (gain, trial, t_fp, t_tp)
        if best is None:
            break
        _, cur, fp, tp = best
    return tuple(HsvBand(tuple(lo), tuple(hi)) for lo, hi in cur)


def workspace_pixels(frames: Sequence[TwinFrame], spec: ObjectSpec, limit: int = 200_000):
    """HSV of the other pixels inside the object's workspace over ``frames`` (subsampled)."""
    rays, out = None, []
    for f in frames:
        if rays is None:
            rays = PixelRays(f.k, f.t_base_optical, f.rgb.shape[1], f.rgb.shape[0])
        depth = f.depth_mm.astype(np.float32) * np.float32(MM)
        ws = rays.inside(depth, np.array(spec.workspace_low), np.array(spec.workspace_high))
        out.append(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2HSV)[ws & ~f.masks[spec.label]])
    px = np.concatenate(out)
    step = max(1, len(px) // limit)
    return px[::step], step


def fit(frames: Sequence[TwinFrame], spec: ObjectSpec) -> tuple[HsvBand, ...]:
    """Bands for ``spec`` derived from and tightened on ``frames`` (with segmentation masks)."""
    truth = truth_pixels(frames, spec.label)
    others, step = workspace_pixels(frames, spec)
    return tighten(derive(truth), truth, others, max(1, len(frames) // step))


def in_bands(hsv: npt.NDArray[np.uint8], bands: Sequence[HsvBand]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(hsv.shape[:-1], bool)
    for b in bands:
        mask |= cv2.inRange(hsv.reshape(-1, 1, 3), b.low, b.high).reshape(hsv.shape[:-1]) > 0
    return mask


def truth_pixels(frames: Sequence[TwinFrame], label: str) -> npt.NDArray[np.uint8]:
    """HSV values (N, 3) of the object's visible pixels over ``frames``."""
    return np.concatenate([cv2.cvtColor(f.rgb, cv2.COLOR_RGB2HSV)[f.masks[label]] for f in frames])


def check(frames: Sequence[TwinFrame], spec: ObjectSpec) -> dict[str, float]:
    """Recall on truth pixels and false positives (pixels per frame) inside the workspace."""
    hits = total = fp = 0
    rays = None
    for f in frames:
        if rays is None:
            rays = PixelRays(f.k, f.t_base_optical, f.rgb.shape[1], f.rgb.shape[0])
        band = in_bands(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2HSV), spec.bands)
        ws = rays.inside(
            f.depth_mm.astype(np.float32) * np.float32(MM),
            np.array(spec.workspace_low),
            np.array(spec.workspace_high),
        )
        truth = f.masks[spec.label]
        hits += int((band & truth).sum())
        total += int(truth.sum())
        fp += int((band & ws & ~truth).sum())
    return {"recall": hits / max(total, 1), "false_positives_per_frame": fp / max(len(frames), 1)}


def fit_centre_offset(frames: Sequence[TwinFrame], task: TaskPerception) -> dict[str, CentreOffset]:
    """Per object, the median (along-view, up) residual of zero-offset estimates vs the truth."""
    zero = TaskPerception(
        task.task,
        tuple(dataclasses.replace(o, centre_offset=CentreOffset()) for o in task.objects),
        task.min_area,
        task.kernel,
    )
    res: dict[str, list[tuple[float, float]]] = {o.label: [] for o in task.objects}
    est = None
    for f in frames:
        if est is None:
            est = PoseEstimator(zero, f.k, f.t_base_optical, f.rgb.shape[1], f.rgb.shape[0], 0)
        e = est.update(f.rgb, f.depth_mm)
        for i, o in enumerate(task.objects):
            if e.status[i] != FRESH:
                continue
            away = f.positions[i][:2] - f.t_base_optical[:2, 3]
            away /= np.linalg.norm(away)
            d = f.positions[i] - e.positions[i]
            res[o.label].append((float(d[:2] @ away), float(d[2])))
    return {
        label: CentreOffset(*(round(float(v), 4) for v in np.median(r, axis=0)))
        for label, r in res.items()
        if r
    }
