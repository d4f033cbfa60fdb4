#!/usr/bin/env bash
# The headline benchmark (config/experiments/headline.yaml: 4 FailureBench tasks x 3 seeds,
# FARM vs Uni-O4) in the background, one pipeline process per task group (default 2 groups on a
# 2-core machine; each process uses one thread). Resumable: stages whose recorded config hash
# matches the config are skipped and an interrupted online run continues from its checkpoint,
# so re-running the same command continues after any interruption; a stage whose config
# changed is re-run with everything downstream (`farm-train pipeline --config C --plan` shows
# what would run and why).
#   scripts/benchmark.sh                     start (or continue) all groups
#   scripts/benchmark.sh --status            which groups run; tail of each log
#   scripts/benchmark.sh --report            write results/<name>/ from whatever has finished
# Environment: FARM_BENCH_CONFIG (default config/experiments/headline.yaml),
#   FARM_BENCH_GROUPS (default "BoundedPush-v0,BoundedSoccer-v0 ObstructedPush-v0,FragilePushWall-v0"),
#   FARM_BENCH_STEPS (override online.steps: a different value re-runs the online runs from
#   scratch, since the learning-rate schedule depends on it), FARM_BENCH_NICE (default 10).
# Logs: runs/<name>/bench_<group>.log. One process per group: extra pipeline arguments
# (e.g. --methods recrl mppi --seeds 0) are passed through.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="${FARM_BENCH_CONFIG:-config/experiments/headline.yaml}"
GROUPS_SPEC="${FARM_BENCH_GROUPS:-BoundedPush-v0,BoundedSoccer-v0 ObstructedPush-v0,FragilePushWall-v0}"
NAME="$(sed -n 's/^name: *//p' "$CONFIG" | head -n 1)"
DIR="runs/${NAME:?config has no name}"
mkdir -p "$DIR"

running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

case "${1:-}" in
  --status)
    for pid in "$DIR"/bench_*.pid; do
      [[ -e "$pid" ]] || continue
      g="$(basename "$pid" .pid)"
      if running "$pid"; then echo "== $g: running (pid $(cat "$pid"))"; else echo "== $g: stopped"; fi
      tail -n 5 "$DIR/$g.log"
    done
    exit 0 ;;
  --report)
    # shellcheck disable=SC1091
    source scripts/env.sh
    exec farm-train pipeline --config "$CONFIG" --report-only ;;
esac

scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh
extra=()
[[ -n "${FARM_BENCH_STEPS:-}" ]] && extra+=(--online-steps "$FARM_BENCH_STEPS")
for group in $GROUPS_SPEC; do
  tag="bench_${group//,/_}"
  pidfile="$DIR/$tag.pid"
  if running "$pidfile"; then
    echo "[benchmark] $group already running (pid $(cat "$pidfile"))"
    continue
  fi
  echo "[benchmark] $(date -u +%FT%TZ) starting/continuing $CONFIG tasks $group" >> "$DIR/$tag.log"
  # nice: the benchmark yields the CPU to interactive work; one thread per process.
  OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 nohup nice -n "${FARM_BENCH_NICE:-10}" \
    farm-train pipeline --config "$CONFIG" --tasks ${group//,/ } --no-report "${extra[@]}" "$@" \
    >> "$DIR/$tag.log" 2>&1 &
  echo $! > "$pidfile"
  echo "[benchmark] $group: pid $! ; log $DIR/$tag.log"
done
echo "[benchmark] when all groups finish: scripts/benchmark.sh --report"
