#!/usr/bin/env bash
# FARM with look-ahead constraint targets (config/experiments/farm_lookahead.yaml) on one task,
# seed 0, against headline_2e5's Uni-O4 run: headline_2e5's data, offline checkpoints and
# Uni-O4 run are reused from runs/headline_2e5/ when their config hashes match (`inputs`), and
# built here otherwise. Foreground: ~5 min for the world model + ~10 min for the FARM run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TASK="${1:-BoundedSoccer-v0}"
# shellcheck disable=SC1091
source scripts/env.sh
OMP_NUM_THREADS=1 farm-train pipeline --config config/experiments/farm_lookahead.yaml --tasks "$TASK"
