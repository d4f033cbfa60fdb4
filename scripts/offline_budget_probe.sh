#!/usr/bin/env bash
# Offline-stage budget probe (config/experiments/offline_budget.yaml): reuses the headline's task
# demos and BC ensemble, trains critic/value/dynamics at the CPU defaults, runs offline PPO and
# writes results/offline_budget/offline.csv (BC vs improved on the same 20 reset seeds).
#   scripts/offline_budget_probe.sh [task ...]      (default: all four; resumable per stage)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tasks=("$@")
[[ ${#tasks[@]} -gt 0 ]] || tasks=(BoundedPush-v0 BoundedSoccer-v0 FragilePushWall-v0 ObstructedPush-v0)
for task in "${tasks[@]}"; do
  src="runs/headline/$task" dst="runs/offline_budget/$task"
  for need in data/task_demos.npz offline_task/bc_0.safetensors offline_task/bc_1.safetensors; do
    [[ -e "$src/$need" ]] || { echo "missing $src/$need: run the headline first" >&2; exit 2; }
  done
  mkdir -p "$dst/data" "$dst/offline_task"
  cp -n "$src/data/task_demos.npz" "$dst/data/"
  cp -n "$src"/offline_task/bc_{0,1}.safetensors "$dst/offline_task/"
done
# shellcheck disable=SC1091
source scripts/env.sh
OMP_NUM_THREADS=1 farm-train pipeline --config config/experiments/offline_budget.yaml \
  --tasks "${tasks[@]}" --stages offline_task --no-report
python scripts/offline_budget_table.py
