"""Estimator vs the twin's ground truth (observation slots) on rendered frames.

Frames: seeds 0 and 1 of each task's scripted expert at steps 0 (reset), 35 (gripper over /
caging the object) and 60 (dragging it): most frames have the object partly occluded.
Bounds (mm, 3-D error of fresh estimates) are the measured values plus a margin.
"""

import numpy as np
import pytest

from farm_perception import config as pc
from farm_perception.estimator import FRESH, PoseEstimator

# task: (median, max) bound in mm, and the smallest share of objects detected.
# Measured (n fresh / frames, median / p95 / max mm): BoundedPush 6/6, 13.2 / 16.7 / 17.3;
# BoundedSoccer 4/6, 11.7 / 18.8 / 18.9; FragilePushWall 5/6, 12.2 / 14.2 / 14.2;
# ObstructedPush 11/12, 0.6 / 19.9 / 21.9 (the vase, fixed on the table, is ~1 mm).
# The ~12-17 mm is lateral: the fingers hide one side of a caged object.
BOUNDS = {
    "BoundedPush": (18.0, 25.0, 0.8),
    "BoundedSoccer": (18.0, 25.0, 0.5),
    "FragilePushWall": (18.0, 25.0, 0.65),
    "ObstructedPush": (18.0, 28.0, 0.8),
}


def errors(twin, paths, task):
    tp = pc.load(paths["config"], task)
    frames = twin(task)
    f0 = frames[0]
    est = PoseEstimator(tp, f0.k, f0.t_base_optical, 640, 480, max_missed_frames=0)
    errs, total = [], 0
    for f in frames:
        e = est.update(f.rgb, f.depth_mm)
        for i in range(len(tp.objects)):
            total += 1
            if e.status[i] == FRESH:
                errs.append(1000 * np.linalg.norm(e.positions[i] - f.positions[i]))
    return np.array(errs), total


@pytest.mark.parametrize("task", sorted(BOUNDS))
def test_positions_agree_with_ground_truth(twin, paths, task):
    errs, total = errors(twin, paths, task)
    med_bound, max_bound, rate = BOUNDS[task]
    med, p95, worst = np.median(errs), np.percentile(errs, 95), errs.max()
    print(f"{task}: n={len(errs)}/{total} median {med:.1f} p95 {p95:.1f} max {worst:.1f} mm")
    assert len(errs) >= rate * total
    assert med <= med_bound
    assert worst <= max_bound
