"""The YOLO pieces: auto-labels, label files, a tiny offline training run, the fused fallback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from farm_perception import config as pc
from farm_perception import yolo_data as yd
from farm_perception.color_filter import ColorFilterDetector
from farm_perception.yolo import FusedDetector, YoloModelError, make_detector

ROOT = Path(__file__).resolve().parents[3]
YOLO_PY = ROOT / ".venv-yolo" / "bin" / "python"
YOLO_READY = (ROOT / ".venv-yolo" / ".stamp").exists()  # written once the install succeeded


def test_boxes_are_the_visible_pixels_of_each_class():
    ids = np.full((40, 60), -1)
    ids[5:10, 7:20] = 3  # class 0: geoms 3 and 4
    ids[12:15, 2:4] = 4
    ids[30:32, 50:52] = 9  # class 1: 4 pixels, below the minimum
    boxes = yd.boxes_from_ids(ids, {0: [3, 4], 1: [9]}, min_pixels=5)
    assert boxes == [(0, 2, 5, 20, 15)]
    assert yd.yolo_lines(boxes, 60, 40) == "0 0.183333 0.250000 0.300000 0.250000\n"


def test_rendered_labels_contain_the_objects_true_projection(paths):
    from failurebench_sim.camera import BASE_BODY, project

    src = yd.TwinImageSource("ObstructedPush", paths["config"], 640, 480)
    try:
        img = src.render(7, randomize=False)  # the calibrated camera, no distractors
        k, t_base_cam = src.base.camera_intrinsics(), src.base.camera_pose_in_base()
        body = src.base.data.body(BASE_BODY)
        t_world_base = np.eye(4)
        t_world_base[:3, :3], t_world_base[:3, 3] = body.xmat.reshape(3, 3), body.xpos
    finally:
        src.close()
    assert img.boxes and {b[0] for b in img.boxes} <= {0, 2}
    for c, x0, y0, x1, y1 in img.boxes:
        p_base = np.linalg.solve(t_world_base, np.r_[img.positions[c], 1.0])[:3]
        (u, v), _ = project(k, t_base_cam, p_base)
        assert x0 - 2 <= u <= x1 + 2 and y0 - 2 <= v <= y1 + 2, (c, (u, v), (x0, y0, x1, y1))


@pytest.mark.parametrize(
    ("text", "why"),
    [("0 0.5 0.5 0.1\n", "fields"), ("x 0.5 0.5 0.1 0.1\n", "not numbers"),
     ("7 0.5 0.5 0.1 0.1\n", "class"), ("1.5 0.5 0.5 0.1 0.1\n", "class"),
     ("0 0.5 1.5 0.1 0.1\n", "box"), ("0 0.5 0.5 0 0.1\n", "box"),
     ("0 nan 0.5 0.1 0.1\n", "box")],
)  # fmt: skip
def test_malformed_label_files_are_clear_errors(tmp_path, text, why):
    p = tmp_path / "a.txt"
    p.write_text("1 0.5 0.5 0.2 0.2\n" + text)
    with pytest.raises(yd.LabelFormatError, match=why) as e:
        yd.read_labels(p, n_classes=3)
    assert f"{p}:2" in str(e.value)


def test_a_good_label_file_reads_back(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text(yd.yolo_lines([(2, 10, 20, 30, 60)], 100, 100) + "\n")
    np.testing.assert_allclose(yd.read_labels(p, 3), [[2, 0.2, 0.4, 0.2, 0.4]])


class _NoBoxes:
    def boxes(self, rgb):
        return {}


def test_fused_falls_back_to_the_colour_filter_when_yolo_finds_nothing(twin, paths):
    f = twin("BoundedPush")[0]
    task = pc.load(paths["config"], "BoundedPush")
    color = ColorFilterDetector(task.objects, task.min_area, task.kernel)
    fused = FusedDetector(_NoBoxes(), color)
    want = color.candidates(f.rgb)
    got = fused.candidates(f.rgb)
    assert got.keys() == want.keys() and got["puck"][0].bbox_xyxy == want["puck"][0].bbox_xyxy
    assert fused.fallbacks == 1


def test_a_missing_or_foreign_model_is_a_clear_error(tmp_path, paths):
    objects = pc.load(paths["config"], "BoundedPush").objects
    with pytest.raises(YoloModelError, match="no YOLO model"):
        make_detector("yolo", objects, model=tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(YoloModelError, match="not a loadable"):
        make_detector("fused", objects, model=tmp_path / "bad.onnx")
    with pytest.raises(YoloModelError, match="detector must be"):
        make_detector("sift", objects)


@pytest.mark.skipif(not YOLO_READY, reason="no YOLO environment (scripts/yolo_env.sh)")
def test_a_tiny_offline_training_run_gives_a_model_the_detectors_load(tmp_path, twin, paths):
    data = tmp_path / "data"
    yd.generate(data, {"train": 4, "val": 2, "test": 2}, paths["config"], 320, 240, progress=False)
    model = tmp_path / "model.onnx"
    env = {**os.environ, "YOLO_OFFLINE": "true"}
    run = subprocess.run(
        [str(YOLO_PY), str(ROOT / "src/farm_perception/farm_perception/yolo_train.py"),
         "--data", str(data / "data.yaml"), "--out", str(tmp_path / "run"), "--epochs", "1",
         "--imgsz", "96", "--batch", "2", "--ship", str(model)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert model.exists()
    f = twin("BoundedPush")[0]
    objects = pc.load(paths["config"], "BoundedPush").objects
    for kind in ("yolo", "fused"):
        det = make_detector(kind, objects, model=model, conf=0.0)
        out = det.detect(f.rgb)
        assert all(d.label == "puck" for d in out)  # an untrained model: any boxes, right labels


def test_a_bare_box_is_placed_on_the_object_not_the_table_behind_it(twin, paths):
    import dataclasses

    from farm_perception.estimator import PoseEstimator, place
    from farm_perception.geometry import MM

    f = twin("BoundedPush")[0]
    task = pc.load(paths["config"], "BoundedPush")
    est = PoseEstimator(task, f.k, f.t_base_optical, 640, 480)
    (det, p_mask), *_ = est.detect(f.rgb, f.depth_mm)
    x0, y0, x1, y1 = det.bbox_xyxy
    pad = 6  # a detector's box is looser than the mask's
    box = dataclasses.replace(det, mask=None, bbox_xyxy=(x0 - pad, y0 - pad, x1 + pad, y1 + pad))
    p_box = place(box, task.objects[0], f.depth_mm.astype(np.float32) * np.float32(MM), est.rays)
    assert p_box is not None
    assert np.linalg.norm(p_box - f.positions[0]) < 0.015  # within 1.5 cm of the truth
    assert np.linalg.norm(p_mask - f.positions[0]) < 0.015
