#!/usr/bin/env bash
# The headline benchmark (config/experiments/headline.yaml: 4 tasks x 3 seeds x 2e5 online steps,
# Uni-O4 / FARM / Rec-RL critic / MPPI) in the background. Takes many hours on a CPU.
#   scripts/benchmark.sh            start, or continue after an interruption (finished stages
#                                   and online checkpoints are reused)
#   scripts/benchmark.sh --status   is it running? tail of the log
# Log: runs/headline/benchmark.log. Results are refreshed after every seed round and at the end;
# a partial report at any time: farm-train pipeline --config config/experiments/headline.yaml --report-only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="${FARM_BENCH_CONFIG:-config/experiments/headline.yaml}"
DIR=runs/headline
LOG="$DIR/benchmark.log"
PIDFILE="$DIR/benchmark.pid"
mkdir -p "$DIR"

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if [[ "${1:-}" == "--status" ]]; then
  if running; then echo "running (pid $(cat "$PIDFILE"))"; else echo "not running"; fi
  [[ -f "$LOG" ]] && tail -n 20 "$LOG"
  exit 0
fi
if running; then
  echo "[benchmark] already running (pid $(cat "$PIDFILE")); log: $LOG"
  exit 0
fi

scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh
echo "[benchmark] $(date -u +%FT%TZ) starting/continuing $CONFIG" >> "$LOG"
# nice: the benchmark yields the CPU to interactive work on a shared machine.
PYTHONUNBUFFERED=1 nohup nice -n "${FARM_BENCH_NICE:-10}" farm-train pipeline --config "$CONFIG" "$@" >> "$LOG" 2>&1 &
echo $! > "$PIDFILE"
echo "[benchmark] started pid $! ; log: $LOG ; re-run this script to continue after a stop"
