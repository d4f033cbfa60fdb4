"""Overlay image: each object's box and centroid drawn on the colour image (status coloured)."""

from __future__ import annotations

import cv2
import numpy as np

from farm_perception.config import TaskPerception
from farm_perception.estimator import FRESH, Estimate

COLOURS = {FRESH: (0, 255, 0), "held": (255, 200, 0), "missing": (255, 0, 0)}


def draw(rgb: np.ndarray, est: Estimate, task: TaskPerception) -> np.ndarray:
    out = rgb.copy()
    for spec, det, status in zip(task.objects, est.detections, est.status, strict=True):
        if det is None:
            continue
        x0, y0, x1, y1 = det.bbox_xyxy
        colour = COLOURS.get(status, (255, 255, 255))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        cv2.circle(out, (int(det.centroid_uv[0]), int(det.centroid_uv[1])), 2, colour, -1)
        cv2.putText(out, spec.label, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour)
    return out
