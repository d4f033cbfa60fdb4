#!/usr/bin/env bash
# Issue 14's figures, end to end (resumable: each step skips what exists):
#   dataset from the twin -> YOLOv8n trained from its yaml (CPU, .venv-yolo) -> ONNX shipped in
#   config/models/ -> mAP on the test renders, 3-D error (colour / YOLO / fused), detector and
#   graph latency. Long: run it in the background (nohup scripts/bench_yolo.sh > yolo.log &).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EPOCHS="${EPOCHS:-25}"
scripts/yolo_env.sh
# shellcheck disable=SC1091
source scripts/env.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}"
out=results/perception_yolo
farm-perception yolo-data --out data/yolo --train 1200 --val 200 --test 200
.venv-yolo/bin/python src/farm_perception/farm_perception/yolo_train.py --data data/yolo/data.yaml \
  --out runs/yolo --epochs "$EPOCHS" --imgsz 320 --ship config/models/yolov8n_twin_320.onnx \
  --export-sizes 640 --metrics "$out/map.json" --latency "$out/torch_latency.json" \
  --latency-image data/yolo/images/test/test_000003.jpg
farm-perception yolo-bench --model config/models/yolov8n_twin_320.onnx \
  --latency-models runs/yolo/train/weights/best_640.onnx --scenes 200 --out "$out"
for every in 1 3; do
  farm-graph-bench latency --detector fused --yolo-model config/models/yolov8n_twin_320.onnx \
    --yolo-every "$every" --seconds 30 --out "$out"
  farm-graph-bench latency --detector fused --yolo-model config/models/yolov8n_twin_320.onnx \
    --yolo-every "$every" --seconds 30 --width 320 --height 240 --out "$out"
done
