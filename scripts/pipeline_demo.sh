#!/usr/bin/env bash
# The whole method on one experiment config (offline + online, in process): FailureBench data -> Uni-O4 offline task
# and recovery policies -> world model -> online Uni-O4 vs FARM from the same checkpoints ->
# results/<name>/{summary.csv,table.md,latency.csv,fig4_failures.png,fig5_returns.png}.
#   scripts/pipeline_demo.sh                                   config/experiments/demo.yaml (<= 10 min, 2 cores)
#   scripts/pipeline_demo.sh config/experiments/smoke.yaml     any other experiment config
#   scripts/pipeline_demo.sh config/experiments/demo.yaml --online-steps 5000   extra args go to the pipeline
# Re-running resumes: stages whose recorded config hash matches are skipped, changed ones re-run
# with everything downstream (--plan shows which and why; delete runs/<name>/ to start over).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="${1:-config/experiments/demo.yaml}"
shift || true

scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh

name="$(python -c 'import sys; from farm_trainer.experiments import load_config; print(load_config(sys.argv[1]).name)' "$CONFIG")"
start=$(date +%s)
farm-train pipeline --config "$CONFIG" "$@"
echo
cat "results/$name/table.md"
echo
echo "[demo] wall time $(( $(date +%s) - start )) s; results in results/$name/, runs in runs/$name/"
