#!/usr/bin/env bash
# The headline at 2e5 online steps (config/experiments/headline_2e5.yaml) in the background, via
# scripts/benchmark.sh: resumable, the same --status / --report flags. From a fresh clone this
# builds everything (data, offline checkpoints, world models, calibration, online runs); stages
# that runs/farm_data120k/ already holds with the same config hash are reused by reference
# (the config's `inputs`), never copied. What would run, and why:
#   farm-train pipeline --config config/experiments/headline_2e5.yaml --plan
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export FARM_BENCH_CONFIG=config/experiments/headline_2e5.yaml
exec scripts/benchmark.sh "$@"
