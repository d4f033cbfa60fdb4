#!/usr/bin/env bash
# The paper's tables (config/experiments/paper_tables.yaml): every method x task x pipeline seed
# as jobs on a local Ray bound to 127.0.0.1, in the background. Resumable: re-running the same
# command skips every finished unit and continues interrupted online runs from their checkpoints;
# finished jobs are also saved to results/ledger/ (commit it), from which a new machine skips them.
#   scripts/paper_tables.sh                 start (or continue); FARM_SWEEP_WORKERS (default 2)
#   scripts/paper_tables.sh --status        running or not; the sweep's last progress lines
#   scripts/paper_tables.sh --report        results/paper_tables/ from whatever has finished
#   scripts/paper_tables.sh --stop          stop the sweep (finished units stay)
# Extra arguments go to farm-train pipeline (e.g. --seeds 0, --address <ray cluster>).
# Log: runs/paper_tables/sweep.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG=config/experiments/paper_tables.yaml
DIR=runs/paper_tables
PID="$DIR/sweep.pid"
mkdir -p "$DIR"
running() { [[ -f "$PID" ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

case "${1:-}" in
  --status)
    if running; then echo "== sweep running (pid $(cat "$PID"))"; else echo "== sweep stopped"; fi
    grep -h "\[sweep\]" "$DIR/sweep.log" 2>/dev/null | tail -n 5 || true
    exit 0 ;;
  --report)
    # shellcheck disable=SC1091
    source scripts/env.sh
    exec farm-train pipeline --config "$CONFIG" --report-only ;;
  --stop)
    if running; then kill -- "-$(cat "$PID")" 2>/dev/null || kill "$(cat "$PID")"; fi
    exit 0 ;;
esac

if running; then
  echo "[paper_tables] already running (pid $(cat "$PID"))"
  exit 0
fi
scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh
echo "[paper_tables] $(date -u +%FT%TZ) starting/continuing $CONFIG" >> "$DIR/sweep.log"
OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 setsid nohup nice -n "${FARM_SWEEP_NICE:-10}" \
  farm-train pipeline --config "$CONFIG" --ray --workers "${FARM_SWEEP_WORKERS:-2}" "$@" \
  >> "$DIR/sweep.log" 2>&1 &
echo $! > "$PID"
echo "[paper_tables] pid $!; log $DIR/sweep.log; progress: scripts/paper_tables.sh --status"
