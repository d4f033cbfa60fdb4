#!/usr/bin/env bash
# The in-process reference for `farm-graph-bench finetune`: online FARM with the same shipped
# checkpoints, eps_safe, horizon and PPO settings, `farm-train online` (4 vector envs), per seed.
#   scripts/bench_inprocess_finetune.sh [SEED ...]    (default 0 1 2; resumes a stopped run)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/env.sh
TASK=BoundedPush-v0
CK="config/checkpoints/$TASK"
EPS="$(python -c "import json;print(json.load(open('$CK/eps_safe.json'))['eps_safe'])")"
for seed in "${@:-0 1 2}"; do
  for s in $seed; do
    out="runs/inprocess_finetune/seed$s"
    resume=(); [[ -f "$out/checkpoints/last.safetensors" ]] && resume=(--resume)
    farm-train online --task "$TASK" --method farm --init "$CK/actor.safetensors" \
      --world-model "$CK/world_model.safetensors" --recovery "$CK/recovery.safetensors" \
      --eps-safe "$EPS" --horizon 3 --gamma-risk 0.9 --steps 200000 --seed "$s" \
      --out "$out" --no-progress --no-tensorboard "${resume[@]}"
  done
done
