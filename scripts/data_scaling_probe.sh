#!/usr/bin/env bash
# FARM with 6x more failure data on the headline's offline checkpoints
# (config/experiments/farm_data120k.yaml). The headline's data, offline checkpoints, held-out
# roll-outs and Uni-O4 runs are reused from runs/headline/ when their config hashes match
# (`inputs`), and built here otherwise. Foreground; ~10 min for the world model + ~5 min per
# FARM run on one core.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TASK="${1:-ObstructedPush-v0}"
# shellcheck disable=SC1091
source scripts/env.sh
OMP_NUM_THREADS=1 farm-train pipeline --config config/experiments/farm_data120k.yaml \
  --tasks "$TASK" --methods unio4 farm
