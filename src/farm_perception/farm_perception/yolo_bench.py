"""``farm-perception yolo-bench``: 3-D position error and latency of colour, YOLO and fused.

Scenes are rendered like the dataset's (noisy expert states, randomised colours, tints, lights,
distractors, noise and blur) from seeds outside every split, with the camera at its calibrated
pose (the estimator uses the calibrated extrinsics; a jittered camera would measure the
calibration error, not the detector). Each object's estimated position is compared with the
twin's true one; "occluded" rows are those with the gripper within 5 cm of the object
(horizontally), where the hand covers part of it. Latency: the detector alone (ONNX through
onnxruntime) at each model size, on this machine's cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from farm_perception import config as pc
from farm_perception.estimator import PoseEstimator
from farm_perception.twin_frames import OBJ_SLOT, OBJ_STRIDE, depth_to_mm
from farm_perception.yolo import DETECTORS, YoloDetector, make_detector
from farm_perception.yolo_data import SPLIT_SEEDS, TASKS, Randomization, TwinImageSource

BENCH_SEED = SPLIT_SEEDS["test"] + 50_000  # past the test split's images
OCCLUDED_M = 0.05


def position_errors(model: str | Path, config: str | Path, scenes: int, width: int = 640,
                    height: int = 480, conf: float = 0.25) -> list[dict]:  # fmt: skip
    """One row per (scene, object, detector): error in mm (NaN: not found), occluded or not."""
    rows: list[dict] = []
    calibrated = Randomization(camera_shift_m=0.0, camera_tilt_deg=0.0)
    sources: dict[str, TwinImageSource] = {}
    estimators: dict[tuple[str, str], PoseEstimator] = {}
    try:
        for i in range(scenes):
            task = TASKS[i % len(TASKS)]
            if task not in sources:
                sources[task] = TwinImageSource(task, config, width, height, calibrated)
            src = sources[task]
            tp = pc.load(config, task)
            img = src.render(BENCH_SEED + i)
            obs = img.observation
            truth = np.array([obs[OBJ_SLOT + OBJ_STRIDE * j :][:3] for j in range(len(tp.objects))])
            depth_mm = depth_to_mm(img.depth_m)
            visible = {c for c, *_ in img.boxes}
            for kind in DETECTORS:
                key = (task, kind)
                if key not in estimators:
                    k = src.base.camera_intrinsics()
                    det = make_detector(kind, tp.objects, tp.min_area, tp.kernel, model, conf)
                    estimators[key] = PoseEstimator(tp, k, src.base.camera_pose_in_base(),
                                                    width, height, 0, det)  # fmt: skip
                found = {d.label: p for d, p in estimators[key].detect(img.rgb, depth_mm)}
                for j, o in enumerate(tp.objects):
                    p = found.get(o.label)
                    err = float("nan") if p is None else 1e3 * float(np.linalg.norm(p - truth[j]))
                    rows.append({
                        "scene": i, "task": task, "object": o.label, "detector": kind,
                        "visible": o.class_id in visible,
                        "occluded": float(np.linalg.norm(obs[:2] - truth[j][:2])) < OCCLUDED_M,
                        "error_mm": err,
                    })  # fmt: skip
    finally:
        for s in sources.values():
            s.close()
    return rows


def summarize(rows: list[dict]) -> dict:
    """Per detector (all / occluded, visible objects only): found rate, median and p95 mm."""
    out: dict = {}
    for kind in DETECTORS:
        for group, pick in (("all", lambda r: True), ("occluded", lambda r: r["occluded"])):
            sel = [r for r in rows if r["detector"] == kind and r["visible"] and pick(r)]
            err = np.array([r["error_mm"] for r in sel], dtype=float)
            ok = err[np.isfinite(err)]
            out.setdefault(kind, {})[group] = {
                "objects": len(sel),
                "found_rate": float(len(ok) / max(1, len(sel))),
                "median_mm": float(np.median(ok)) if ok.size else None,
                "p95_mm": float(np.percentile(ok, 95)) if ok.size else None,
            }
    return out


def detector_latency(model: str | Path, config: str | Path, n: int = 50, threads=(1, 2)) -> dict:
    """ms per ``boxes`` call (letterbox + ONNX + decode + NMS) on a rendered 640x480 frame."""
    tp = pc.load(config, "ObstructedPush")
    src = TwinImageSource("ObstructedPush", config)
    try:
        rgb = src.render(BENCH_SEED).rgb
    finally:
        src.close()
    out = {}
    for t in threads:
        det = YoloDetector(model, tp.objects, threads=t)
        for _ in range(5):
            det.boxes(rgb)
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            det.boxes(rgb)
            ms.append(1e3 * (time.perf_counter() - t0))
        out[f"threads_{t}"] = {"input": det.size, "p50_ms": float(np.median(ms)),
                               "p99_ms": float(np.percentile(ms, 99))}  # fmt: skip
    return out
