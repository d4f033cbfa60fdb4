#!/usr/bin/env bash
# Rebuild the graph's shipped checkpoints: offline stages of config/experiments/graph_checkpoints.yaml
# for all four tasks, then copy task actor, recovery actor, world model and calibration into
# config/checkpoints/<Task>/ (small files, committed). Bounded Soccer also gets the run-out
# models of its calibration (runout.json, object_motion.safetensors, hand_motion.json: the ball's
# and the arm's motion, for the safety node's farm-runout methods), fitted for farm-runout-seq.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/env.sh
RUNS="${RUNS:-runs}"
farm-train pipeline --config config/experiments/graph_checkpoints.yaml --runs-dir "$RUNS" \
  --stages data offline_task offline_recovery failures world_model calibration
farm-train pipeline --config config/experiments/graph_checkpoints.yaml --runs-dir "$RUNS" \
  --tasks BoundedSoccer-v0 --methods unio4 farm-runout-seq \
  --stages data offline_task offline_recovery failures world_model calibration
for dir in "$RUNS"/graph_checkpoints/*/; do
  task="$(basename "$dir")"
  out="config/checkpoints/$task"
  mkdir -p "$out"
  cp "$dir/offline_task/actor.safetensors" "$out/actor.safetensors"
  cp "$dir/offline_recovery/actor.safetensors" "$out/recovery.safetensors"
  cp "$dir/world_model/world_model.safetensors" "$out/world_model.safetensors"
  cp "$dir/calibration/calibration.json" "$dir/calibration/eps_safe.json" "$out/"
  for f in runout.json object_motion.safetensors hand_motion.json; do
    if [[ -f "$dir/calibration/$f" ]]; then cp "$dir/calibration/$f" "$out/"; fi
  done
  echo "shipped $out"
done
