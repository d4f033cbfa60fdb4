#!/usr/bin/env bash
# The YOLO training environment (.venv-yolo): ultralytics with a torch/torchvision pair that match.
# The main environment's CPU torch has no matching torchvision on this machine's package index,
# so training and export run here; inference runs in the main environment with onnxruntime.
#   scripts/yolo_env.sh            # idempotent; ~2 min and ~6 GB the first time
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/.venv-yolo"
want="$(sha256sum "$here/requirements/yolo.txt" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && "$(cat "$venv/.stamp" 2>/dev/null)" == "$want" ]]; then exit 0; fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r "$here/requirements/yolo.txt"
printf '%s' "$want" > "$venv/.stamp"
echo "[yolo_env] $venv ready"
