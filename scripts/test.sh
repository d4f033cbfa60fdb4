#!/usr/bin/env bash
# Every test: lint + format check + pytest (unit, env, learner and multi-process ROS 2 tests).
# Sets itself up on a fresh machine. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
# the YOLO training environment (ultralytics); without it the training tests skip and say so
scripts/yolo_env.sh || echo "[test] no YOLO environment (scripts/yolo_env.sh failed): YOLO training tests skip"
# shellcheck disable=SC1091
source scripts/env.sh
echo "[test] ruff check + format check"
ruff check .
ruff format --check .
echo "[test] pytest (ROS_DOMAIN_ID=$ROS_DOMAIN_ID, discovery $ROS_AUTOMATIC_DISCOVERY_RANGE)"
pytest "$@"
