"""YOLOv8 detection with onnxruntime, and the fused YOLO + colour-filter detector.

``YoloDetector`` runs a YOLOv8 model exported to ONNX by ``yolo_train.py`` (input
``1x3xSxS`` RGB in 0..1, letterboxed; output ``1x(4+C)xN``: box centre, size in input pixels,
then per-class scores) and keeps, per label, the best box after non-maximum suppression.
``FusedDetector`` refines each YOLO box with the colour mask of its object inside the box (so
depth is read on the object's pixels, not the background the box also covers), and falls back
to the colour filter alone when YOLO finds nothing for a label. Both implement ``Detector``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from farm_perception.color_filter import ColorFilterDetector
from farm_perception.config import ObjectSpec
from farm_perception.detector import Detection

DETECTORS = ("color", "yolo", "fused")
PAD = 114  # ultralytics' letterbox grey


class YoloModelError(ValueError):
    pass


def letterbox(rgb: npt.NDArray[np.uint8], size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The image scaled to fit ``size`` x ``size`` and padded (centred), as (1, 3, S, S) float32
    in 0..1; the scale and the (x, y) padding, to map boxes back."""
    h, w = rgb.shape[:2]
    scale = min(size / h, size / w)
    nh, nw = round(h * scale), round(w * scale)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas = np.full((size, size, 3), PAD, dtype=np.uint8)
    canvas[top : top + nh, left : left + nw] = cv2.resize(
        rgb, (nw, nh), interpolation=cv2.INTER_LINEAR
    )
    return canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0, scale, (left, top)


class YoloDetector:
    """``Detector`` over a YOLOv8 ONNX model; classes map to labels by the objects' class ids."""

    def __init__(self, model: str | Path, objects: Sequence[ObjectSpec], conf: float = 0.25,
                 iou: float = 0.5, threads: int = 1) -> None:  # fmt: skip
        import onnxruntime as ort

        path = Path(model)
        if not path.is_file():
            raise YoloModelError(f"no YOLO model at {path} (farm-perception: yolo_train.py)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own classes for bad files
            raise YoloModelError(f"{path}: not a loadable ONNX model ({e})") from None
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4 or inp.shape[2] != inp.shape[3] or not isinstance(inp.shape[2], int):
            raise YoloModelError(f"{path}: want a static square input, got {inp.shape}")
        self.size, self.input = int(inp.shape[2]), inp.name
        meta = self.session.get_modelmeta().custom_metadata_map
        names = ast.literal_eval(meta.get("names", "{}")) if "names" in meta else {}
        self.objects = tuple(objects)
        self.labels = tuple(o.label for o in self.objects)
        for o in self.objects:
            if names and names.get(o.class_id) != o.label:
                raise YoloModelError(f"{path}: class {o.class_id} is {names.get(o.class_id)!r}, "
                                     f"the task's {o.label!r}")  # fmt: skip
        n_out = self.session.get_outputs()[0].shape[1]
        if isinstance(n_out, int) and max(o.class_id for o in self.objects) >= n_out - 4:
            raise YoloModelError(f"{path}: {n_out - 4} classes, the task needs class ids "
                                 f"{[o.class_id for o in self.objects]}")  # fmt: skip
        self.conf, self.iou = float(conf), float(iou)

    def boxes(self, rgb: npt.NDArray[np.uint8]) -> dict[str, list[tuple[float, tuple]]]:
        """Per label, (score, (x0, y0, x1, y1)) in image pixels after NMS, best first."""
        x, scale, (left, top) = letterbox(rgb, self.size)
        (out,) = self.session.run(None, {self.input: x})
        pred = out[0].T  # (N, 4 + C)
        h, w = rgb.shape[:2]
        res: dict[str, list[tuple[float, tuple]]] = {}
        for o in self.objects:
            scores = pred[:, 4 + o.class_id]
            keep = np.flatnonzero(scores >= self.conf)
            if not keep.size:
                continue
            cx, cy, bw, bh = pred[keep, :4].T
            x0 = np.clip((cx - bw / 2 - left) / scale, 0, w)
            y0 = np.clip((cy - bh / 2 - top) / scale, 0, h)
            x1 = np.clip((cx + bw / 2 - left) / scale, 0, w)
            y1 = np.clip((cy + bh / 2 - top) / scale, 0, h)
            rects = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).tolist()
            idx = cv2.dnn.NMSBoxes(rects, scores[keep].tolist(), self.conf, self.iou)
            res[o.label] = [(float(scores[keep][i]), (x0[i], y0[i], x1[i], y1[i]))
                            for i in np.asarray(idx).reshape(-1)]  # fmt: skip
        return res

    def detect(self, rgb: npt.NDArray[np.uint8], allowed: Mapping[str, np.ndarray] | None = None
               ) -> list[Detection]:  # fmt: skip
        """The best box of each label (boxes outside the label's ``allowed`` pixels dropped)."""
        out, found = [], self.boxes(rgb)
        for o in self.objects:
            for score, box in found.get(o.label, ()):
                det = box_detection(o, score, box)
                if allowed is None or o.label not in allowed or _inside(det, allowed[o.label]):
                    out.append(det)
                    break
        return out


def box_detection(o: ObjectSpec, score: float, box: tuple) -> Detection:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    return Detection(o.label, o.class_id, (x0, y0, x1, y1), ((x0 + x1) / 2, (y0 + y1) / 2),
                     (x1 - x0) * (y1 - y0), score)  # fmt: skip


def _inside(det: Detection, allowed: np.ndarray) -> bool:
    u, v = (int(c) for c in det.centroid_uv)
    h, w = allowed.shape
    return 0 <= v < h and 0 <= u < w and bool(allowed[v, u])


class FusedDetector:
    """YOLO boxes refined by the colour mask inside them; the colour filter where YOLO misses.

    ``yolo_every`` > 1 runs YOLO on one frame in N and reuses its boxes (grown by ``margin_px``
    per skipped frame, for motion) on the frames between, where only the colour mask runs: the
    per-frame cost of the colour filter, the recognition of YOLO."""

    def __init__(self, yolo: YoloDetector, color: ColorFilterDetector, margin_px: int = 4,
                 yolo_every: int = 1) -> None:  # fmt: skip
        if yolo_every < 1:
            raise YoloModelError(f"yolo_every must be >= 1, got {yolo_every}")
        self.yolo, self.color, self.margin = yolo, color, int(margin_px)
        self.yolo_every = int(yolo_every)
        self.labels = color.labels
        self.fallbacks = 0  # labels found by the colour filter alone
        self._frames = 0
        self._boxes: dict = {}

    def candidates(self, rgb: npt.NDArray[np.uint8], allowed: Mapping[str, np.ndarray] | None = None
                   ) -> dict[str, list[Detection]]:  # fmt: skip
        """Per label, best first: the colour blobs inside YOLO's boxes, then YOLO's bare boxes,
        then (no YOLO box at all) the colour filter's own candidates."""
        h, w = rgb.shape[:2]
        age = self._frames % self.yolo_every
        if age == 0:
            self._boxes = self.yolo.boxes(rgb)
        self._frames += 1
        boxes, margin = self._boxes, self.margin * (1 + age)
        spec = {o.label: o for o in self.color.objects}
        in_boxes: dict[str, np.ndarray] = {}
        for label, found in boxes.items():
            m = np.zeros((h, w), dtype=bool)
            for _, (x0, y0, x1, y1) in found:
                a, b = int(max(0, x0 - margin)), int(max(0, y0 - margin))
                m[b : int(min(h, y1 + margin)), a : int(min(w, x1 + margin))] = True
            if allowed is not None and label in allowed:
                m &= allowed[label].astype(bool)
            in_boxes[label] = m
        refined = self.color.candidates(rgb, in_boxes) if in_boxes else {}
        plain = None
        out: dict[str, list[Detection]] = {}
        for label in self.labels:
            if label in boxes:
                out[label] = [
                    *(d for d in refined.get(label, ())),
                    *(box_detection(spec[label], s, b) for s, b in boxes[label]),
                ]
                continue
            if plain is None:
                plain = self.color.candidates(rgb, allowed)
            if plain.get(label):
                self.fallbacks += 1
                out[label] = plain[label]
        return out

    def detect(self, rgb: npt.NDArray[np.uint8], allowed: Mapping[str, np.ndarray] | None = None
               ) -> list[Detection]:  # fmt: skip
        return [c[0] for c in self.candidates(rgb, allowed).values() if c]


def make_detector(kind: str, objects: Sequence[ObjectSpec], min_area: int = 30, kernel: int = 3,
                  model: str | Path = "", conf: float = 0.25, yolo_every: int = 1):  # fmt: skip
    """The detector a perception node or benchmark runs: ``color`` | ``yolo`` | ``fused``."""
    if kind not in DETECTORS:
        raise YoloModelError(f"detector must be one of {DETECTORS}, got {kind!r}")
    color = ColorFilterDetector(objects, min_area, kernel)
    if kind == "color":
        return color
    yolo = YoloDetector(model, objects, conf)
    return yolo if kind == "yolo" else FusedDetector(yolo, color, yolo_every=yolo_every)
