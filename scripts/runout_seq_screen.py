"""Screen farm-runout-seq's settings in simulation: IR failures of a fixed policy behind each.

Runs ``--episodes`` stochastic Bounded Soccer episodes (reset seeds 5000 + i, no learning) of
one policy of a finished pipeline seed: the offline task policy (``--policy init``) or the one
an online run ended with (``--policy <method>``: ``online/<method>_s<seed>/policy_final``),
behind each setting of ``SETTINGS``: no gate; pi_rec where the state's run-out score exceeds
``runout_eps`` and else holding still where a state of the next ``runout_lookahead`` predicted
steps scores over ``runout_hold_eps`` (``farm-runout-seq``, built by the method registry from
the pipeline's own run-out, object-motion and hand-motion fits). Per setting: the failing
episodes and the shares of steps held and run by pi_rec. This is how session 25 chose
``runout_hold_eps: 0.5`` (seed 5). Writes results/runout_seq_screen/<experiment>_s<seed>_<policy>.csv.
    python scripts/runout_seq_screen.py --experiment farm_runout_soccer_seq --seed 5 \\
        --policy farm-runout-seq
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from failurebench_sim.episodes import run_episode
from failurebench_sim.make import make_env
from farm_policies import load_policy
from farm_trainer.experiments.layout import run_dir
from farm_trainer.experiments.probe_cli import probe_parser, run_probe
from farm_trainer.methods import filter_factory

SETTINGS = (  # (name, runout_lookahead, runout_eps, runout_hold_eps); None: no gate
    ("none", None, None, None),
    ("seq5_hold1.0", 5, 1.0, 1.0),
    ("seq5_hold0.7", 5, 1.0, 0.7),
    ("seq5_hold0.5", 5, 1.0, 0.5),
    ("seq10_hold0.5", 10, 1.0, 0.5),
    ("seq5_both0.5", 5, 0.5, 0.5),
)
RESET_SEED0 = 5000


def screen(ctx, seed: int, policy_name: str, episodes: int) -> list[dict]:
    if policy_name == "init":
        path = ctx.task_actor_path
    else:
        rd = run_dir(policy_name, seed)
        path = ctx.path(f"online/{rd.split('/')[1]}", f"{rd}/policy_final.safetensors")
    task = load_policy(path)
    env = make_env(ctx.env_id)
    rows = []
    try:
        for name, lookahead, eps, hold_eps in SETTINGS:
            gate = None
            if lookahead is not None:
                p = dataclasses.replace(ctx.cfg.gate.method_params(), runout_lookahead=lookahead,
                                        runout_eps=eps, runout_hold_eps=hold_eps)  # fmt: skip
                gate = filter_factory("farm-runout-seq", ctx.artifacts(), p)(task.actor)
            torch.manual_seed(0)  # the policy samples its actions from torch's global RNG
            failures, steps, t0 = 0, 0, time.time()

            def act(obs: np.ndarray, gate=gate) -> np.ndarray:
                o = np.asarray(obs, np.float32)[None]
                a = task.act(o[0], deterministic=False)[None]
                return a[0] if gate is None else gate(o, a).actions[0]

            for i in range(episodes):
                r = run_episode(env, act, RESET_SEED0 + i)
                failures, steps = failures + int(r.ir_failure), steps + r.steps
            stats = gate.last_stats if gate is not None else {}
            row = {"policy": policy_name, "setting": name, "runout_lookahead": lookahead or "",
                   "runout_eps": eps or "", "runout_hold_eps": hold_eps or "",
                   "episodes": episodes, "ir_failure_episodes": failures, "steps": steps,
                   "pi_rec_frac": round(stats.get("member0_fraction", 0.0), 4),
                   "held_frac": round(stats.get("member1_fraction", 0.0), 4),
                   "wall_s": round(time.time() - t0, 1)}  # fmt: skip
            print(row, flush=True)
            rows.append(row)
    finally:
        env.close()
    return rows


def main() -> None:
    parser = probe_parser(__doc__, tasks=["BoundedSoccer-v0"])
    parser.set_defaults(experiment="farm_runout_soccer_seq")
    parser.add_argument("--policy", default="init",
                        help="init (the offline task policy) or an online run's method")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    run_probe(args, lambda ctx: screen(ctx, args.seed, args.policy, args.episodes),
              "results/runout_seq_screen", tag=f"_{args.policy}")  # fmt: skip


if __name__ == "__main__":
    main()
