"""The detector interface: an RGB image in, labelled object detections out.

The colour filter implements it today; a YOLOv8 detector (issue 14) implements the same
``detect`` so the estimator and the node do not change when the detector does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Detection:
    """One object in one image.

    ``bbox_xyxy``: pixel box (x0, y0, x1, y1), inclusive-exclusive; ``mask``: (H, W) bool pixels
    of the object where the detector segments (None for box-only detectors); ``centroid_uv``:
    the mask's (or box's) centre in pixels; ``area``: pixels in the mask (box area without one).
    """

    label: str
    class_id: int
    bbox_xyxy: tuple[int, int, int, int]
    centroid_uv: tuple[float, float]
    area: int
    score: float
    mask: npt.NDArray[np.bool_] | None = None


@runtime_checkable
class Detector(Protocol):
    """``detect(rgb)`` -> at most one Detection per label, best first within a label.

    ``allowed``: optional per-label (H, W) bool masks of the pixels that may belong to that
    object (e.g. a workspace box from depth); a detector ignores pixels outside them.
    """

    labels: tuple[str, ...]

    def detect(
        self, rgb: npt.NDArray[np.uint8], allowed: Mapping[str, np.ndarray] | None = None
    ) -> list[Detection]: ...
