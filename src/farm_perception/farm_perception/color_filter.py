"""HSV colour-filter detector: per object, the union of its HSV bands, cleaned by a morphological
opening then closing, restricted to the allowed pixels, largest connected component first.

Candidates (components of at least ``min_area`` pixels) are returned largest first so a caller
with depth can reject the ones that are not object-shaped (``estimator``); ``detect`` keeps only
the largest per label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from farm_perception.config import ObjectSpec
from farm_perception.detector import Detection

MAX_CANDIDATES = 4
MIN_BAND_SHARE = 0.05  # all_bands: each band covers at least this share of the blob


class ColorFilterDetector:
    """``Detector`` over HSV bands (see ``farm_perception.config.ObjectSpec``)."""

    def __init__(self, objects: Sequence[ObjectSpec], min_area: int = 30, kernel: int = 3):
        if min_area < 1 or kernel < 1:
            raise ValueError(f"min_area and kernel must be >= 1, got {min_area}, {kernel}")
        self.objects = tuple(objects)
        self.labels = tuple(o.label for o in self.objects)
        self.min_area = int(min_area)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))

    def band_mask(self, hsv: npt.NDArray[np.uint8], spec: ObjectSpec) -> npt.NDArray[np.uint8]:
        """0/255 mask of the pixels inside any of the object's bands."""
        mask = np.zeros(hsv.shape[:2], np.uint8)
        for b in spec.bands:
            mask |= cv2.inRange(hsv, b.low, b.high)
        return mask

    def candidates(
        self, rgb: npt.NDArray[np.uint8], allowed: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, list[Detection]]:
        """Per label, up to MAX_CANDIDATES components >= min_area pixels, largest first."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        out: dict[str, list[Detection]] = {}
        for spec in self.objects:
            mask = self.band_mask(hsv, spec)
            if allowed is not None and spec.label in allowed:
                mask &= allowed[spec.label].astype(np.uint8) * 255
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._kernel)
            found = self._components(mask, spec)
            if spec.all_bands and len(spec.bands) > 1:
                found = [d for d in found if self._shows_every_band(hsv, d, spec)]
            out[spec.label] = found
        return out

    def _shows_every_band(self, hsv: np.ndarray, det: Detection, spec: ObjectSpec) -> bool:
        px = hsv[det.mask].reshape(-1, 1, 3)
        need = max(1, int(MIN_BAND_SHARE * det.area))
        return all(
            int(cv2.countNonZero(cv2.inRange(px, b.low, b.high))) >= need for b in spec.bands
        )

    def _components(self, mask: npt.NDArray[np.uint8], spec: ObjectSpec) -> list[Detection]:
        n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
        order = [i for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1]
        found = []
        for i in order[:MAX_CANDIDATES]:
            area = int(stats[i, cv2.CC_STAT_AREA])
            if area < self.min_area:
                break
            x, y, w, h = (int(v) for v in stats[i, :4])
            found.append(
                Detection(
                    label=spec.label,
                    class_id=spec.class_id,
                    bbox_xyxy=(x, y, x + w, y + h),
                    centroid_uv=(float(cents[i, 0]), float(cents[i, 1])),
                    area=area,
                    score=1.0,
                    mask=labels == i,
                )
            )
        return found

    def detect(
        self, rgb: npt.NDArray[np.uint8], allowed: Mapping[str, np.ndarray] | None = None
    ) -> list[Detection]:
        """The largest component of each object (objects not seen are absent)."""
        return [c[0] for c in self.candidates(rgb, allowed).values() if c]
