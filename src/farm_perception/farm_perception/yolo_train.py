"""Train YOLOv8n from its model yaml on the twin dataset, offline, and export it to ONNX.

Runs in the YOLO environment (``scripts/yolo_env.sh``: ultralytics needs a torchvision that
matches its torch, which the main CPU environment cannot get here); it imports nothing of FARM,
so that environment needs no FARM install::

    .venv-yolo/bin/python src/farm_perception/farm_perception/yolo_train.py \\
        --data data/yolo/data.yaml --out runs/yolo --epochs 30 --imgsz 320
    # resumes from runs/yolo/train/weights/last.pt when that exists; ends with
    # runs/yolo/train/weights/best.onnx (and --ship PATH copies it there)

No network: ``YOLO_OFFLINE`` stops ultralytics' online checks, settings sync (telemetry) is off,
and plots (which would fetch a font) are off. Weights start from random (``yolov8n.yaml``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def offline(config_dir: Path) -> None:
    """Keep ultralytics off the network and its settings inside ``config_dir``."""
    os.environ["YOLO_OFFLINE"] = "true"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False})


def train(data: Path, out: Path, epochs: int, imgsz: int, batch: int, seed: int) -> Path:
    """Train (or resume) and return the best weights (.pt)."""
    offline(out / "ultralytics_config")
    from ultralytics import YOLO

    last = out / "train" / "weights" / "last.pt"
    if last.exists():
        model = YOLO(str(last))
        try:
            model.train(resume=True, workers=0, plots=False)
        except AssertionError as e:  # "training to N epochs is finished, nothing to resume"
            print(f"not resumed: {e}", file=sys.stderr)
    else:
        model = YOLO("yolov8n.yaml")  # the architecture only: random initial weights
        model.train(data=str(data.resolve()), epochs=epochs, imgsz=imgsz, batch=batch,
                    device="cpu", workers=0, project=str(out.resolve()), name="train",
                    exist_ok=True, plots=False, seed=seed, deterministic=True, amp=False,
                    pretrained=False, patience=max(10, epochs // 3),
                    mosaic=1.0, close_mosaic=max(1, epochs // 5), verbose=False)  # fmt: skip
    return out / "train" / "weights" / "best.pt"


def export_onnx(weights: Path, imgsz: int) -> Path:
    from ultralytics import YOLO

    path = YOLO(str(weights)).export(format="onnx", imgsz=imgsz, opset=17, simplify=False,
                                     dynamic=False, device="cpu")  # fmt: skip
    return Path(path)


def evaluate(weights: Path, data: Path, imgsz: int, split: str = "test") -> dict:
    """mAP50 and mAP50-95 on ``split`` (the held-out test renders)."""
    from ultralytics import YOLO

    m = YOLO(str(weights)).val(data=str(data.resolve()), split=split, imgsz=imgsz, batch=16,
                               device="cpu", workers=0, plots=False, verbose=False)  # fmt: skip
    per_class = {m.names[int(c)]: float(v) for c, v in zip(m.box.ap_class_index, m.box.ap50, strict=True)}  # fmt: skip
    return {"split": split, "imgsz": imgsz, "map50": float(m.box.map50),
            "map50_95": float(m.box.map), "ap50_per_class": per_class}  # fmt: skip


def torch_latency(weights: Path, sizes: list[int], image: Path | None, n: int = 50) -> dict:
    """ms per ``predict`` (pre-processing, torch forward, NMS) at each input size, CPU."""
    import time

    import numpy as np
    from ultralytics import YOLO

    model = YOLO(str(weights))
    frame = np.full((480, 640, 3), 114, np.uint8) if image is None else str(image)
    out = {}
    for size in sizes:
        for _ in range(5):
            model.predict(frame, imgsz=size, device="cpu", verbose=False)
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            model.predict(frame, imgsz=size, device="cpu", verbose=False)
            ms.append(1e3 * (time.perf_counter() - t0))
        out[f"torch_{size}"] = {
            "p50_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/yolo/data.yaml"))
    ap.add_argument("--out", type=Path, default=Path("runs/yolo"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ship", type=Path, help="copy the exported ONNX model here")
    ap.add_argument("--metrics", type=Path, help="write test-split mAP (JSON) here")
    ap.add_argument(
        "--export-sizes",
        type=int,
        nargs="*",
        default=[],
        help="also export ONNX models at these input sizes (best_<size>.onnx)",
    )
    ap.add_argument("--latency", type=Path, help="write torch latency at 320 and 640 (JSON) here")
    ap.add_argument("--latency-image", type=Path, help="a test image for the latency runs")
    a = ap.parse_args(argv)
    best = train(a.data, a.out, a.epochs, a.imgsz, a.batch, a.seed)
    onnx = export_onnx(best, a.imgsz)
    print(f"exported {onnx}")
    if a.ship:
        a.ship.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx, a.ship)
        print(f"shipped {a.ship}")
    for size in a.export_sizes:
        path = export_onnx(best, size)
        shutil.move(path, path.with_name(f"best_{size}.onnx"))
        print(f"exported {path.with_name(f'best_{size}.onnx')}")
    if a.latency:
        res = torch_latency(best, [320, 640], a.latency_image)
        a.latency.parent.mkdir(parents=True, exist_ok=True)
        a.latency.write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res))
    if a.metrics:
        res = evaluate(best, a.data, a.imgsz)
        a.metrics.parent.mkdir(parents=True, exist_ok=True)
        a.metrics.write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
