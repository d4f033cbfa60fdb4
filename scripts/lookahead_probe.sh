#!/usr/bin/env bash
# FARM with look-ahead constraint targets (config/experiments/farm_lookahead.yaml) on one task,
# seed 0, against headline_2e5's Uni-O4 run. Needs runs/headline_2e5/<task>. Foreground:
# ~5 min for the world model + ~10 min for the FARM run on one core.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TASK="${1:-BoundedSoccer-v0}"
SRC="runs/headline_2e5/$TASK" DST="runs/farm_lookahead/$TASK"
for need in data/failures_near.npz offline_task/actor.safetensors offline_recovery/actor.safetensors \
            online/unio4_s0/policy_final.safetensors online/unio4_s0/eval_final.json; do
  [[ -e "$SRC/$need" ]] || { echo "missing $SRC/$need: run scripts/headline_2e5.sh first" >&2; exit 2; }
done
mkdir -p "$DST/online"
cp -rn "$SRC/data" "$SRC/offline_task" "$SRC/offline_recovery" "$DST/"
cp -rn "$SRC/online/unio4_s0" "$DST/online/"
# shellcheck disable=SC1091
source scripts/env.sh
OMP_NUM_THREADS=1 farm-train pipeline --config config/experiments/farm_lookahead.yaml --tasks "$TASK"
