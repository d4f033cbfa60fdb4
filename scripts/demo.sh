#!/usr/bin/env bash
# The README's main job: FARM's ROS 2 node graph on the MuJoCo twin, headless, on the embedded
# default (config/sim.yaml + the shipped checkpoints in config/checkpoints/, Bounded Push):
# sim -> policy -> safety (C_H, Eq. 10) -> arbiter (Eq. 11) over DDS in lockstep, the task
# policy exploring, once with the gate and once without from the same checkpoint and seeds.
# Prints every episode and the comparison; writes results/twin_demo/{summary.json,c_h.png}.
#   scripts/demo.sh                                        10 episodes of Bounded Push
#   scripts/demo.sh --task FailureBench/ObstructedPush-v0 --episodes 20
#   scripts/demo.sh --finetune-steps 4096   fine-tuning mode: online FARM through the graph
#                                           (trainer + recorder nodes) first, then the comparison
#                                           with the fine-tuned policy and the recording index
# The in-process pipeline (offline stage -> world model -> online Uni-O4 vs FARM) is
# scripts/pipeline_demo.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh
exec farm-twin-demo "$@"
