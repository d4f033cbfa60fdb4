#!/usr/bin/env bash
# FARM with 6x more failure data on the headline's offline checkpoints
# (config/experiments/farm_data120k.yaml). Needs the headline's runs for the task.
# Runs in the foreground; ~10 min for the world model + ~5 min per FARM run on one core.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG=config/experiments/farm_data120k.yaml
TASK="${1:-ObstructedPush-v0}"
SRC="runs/headline/$TASK"
DST="runs/farm_data120k/$TASK"
for need in data/task_demos.npz data/recovery_demos.npz data/expert.npz data/heldout.npz \
            offline_task/actor.safetensors offline_recovery/actor.safetensors \
            online/unio4_s0/policy_final.safetensors online/unio4_s1/policy_final.safetensors \
            online/unio4_s2/policy_final.safetensors; do
  [[ -e "$SRC/$need" ]] || { echo "missing $SRC/$need: run the headline first" >&2; exit 2; }
done
mkdir -p "$DST/data" "$DST/online"
cp -n "$SRC"/data/{task_demos,recovery_demos,expert,heldout}.npz "$DST/data/"
cp -rn "$SRC/offline_task" "$SRC/offline_recovery" "$DST/"
cp -rn "$SRC"/online/unio4_s{0,1,2} "$DST/online/"
# shellcheck disable=SC1091
source scripts/env.sh
OMP_NUM_THREADS=1 farm-train pipeline --config "$CONFIG" --tasks "$TASK" --methods unio4 farm
