#!/usr/bin/env bash
# The headline at 2e5 online steps (config/experiments/headline_2e5.yaml) in the background.
# Copies the data, offline checkpoints and world models of runs/farm_data120k/<task>/ (run
# scripts/benchmark.sh with the headline config, then scripts/data_scaling_probe.sh <task>, first),
# then runs the calibration (per-task eps_safe) and the online stages via scripts/benchmark.sh:
# resumable, the same --status / --report flags.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export FARM_BENCH_CONFIG=config/experiments/headline_2e5.yaml
case "${1:-}" in --status|--report) exec scripts/benchmark.sh "$1" ;; esac
for task in BoundedPush-v0 BoundedSoccer-v0 FragilePushWall-v0 ObstructedPush-v0; do
  src="runs/farm_data120k/$task" dst="runs/headline_2e5/$task"
  for need in data/failures_near.npz offline_task/actor.safetensors \
              offline_recovery/actor.safetensors world_model/world_model.safetensors; do
    [[ -e "$src/$need" ]] || { echo "missing $src/$need: run the data-scaling probe first" >&2; exit 2; }
  done
  mkdir -p "$dst"
  cp -rn "$src/data" "$src/offline_task" "$src/offline_recovery" "$src/world_model" "$dst/"
done
exec scripts/benchmark.sh "$@"
