#!/usr/bin/env bash
# Offline-stage budget probe (config/experiments/offline_budget.yaml): the headline's task demos
# (reused from runs/headline/ when their config hash matches, `inputs`), the same BC ensemble
# settings and seeds as the headline, critic/value/dynamics at the CPU defaults, offline PPO;
# writes results/offline_budget/offline.csv (BC vs improved on the same 20 reset seeds).
#   scripts/offline_budget_probe.sh [task ...]      (default: all four; resumable per stage)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
tasks=("$@")
[[ ${#tasks[@]} -gt 0 ]] || tasks=(BoundedPush-v0 BoundedSoccer-v0 FragilePushWall-v0 ObstructedPush-v0)
# shellcheck disable=SC1091
source scripts/env.sh
OMP_NUM_THREADS=1 farm-train pipeline --config config/experiments/offline_budget.yaml \
  --tasks "${tasks[@]}" --stages data/task_demos offline_task --no-report
python scripts/offline_budget_table.py
