"""Screen how long the arm should hold before pi_rec takes over (``HoldPatience``), gate on.

For each task of a finished pipeline, the offline task policy runs ``--episodes`` episodes
(reset seeds 100000 + i, the evaluation's) under: no gate; the chosen any-of gate holding still
where it fires (farm-qrisk-cal-hold); the same gate running pi_rec (farm-qrisk-cal); and
``HoldPatience`` over the holding gate for each (patience, escape_steps) of the grid
(farm-qrisk-cal-hold-rec). Actions are sampled as in online fine-tuning (``--deterministic``:
the mean). Per variant: mean return, IR-failure episodes, the fraction of steps replaced, and
the episodes whose last 30 steps were all replaced (``frozen_at_end``: for the holding gate the
arm stood still; for the variants with pi_rec some of those steps moved it). The HoldPatience
counts carry over from one episode to the next, as in fine-tuning's vector envs. A screen for
choosing the grid point, not a result: fine-tuning changes the policy, and 30 episodes count
few failures. Writes results/hold_patience_screen/<experiment>_s<seed>.csv.
    python scripts/hold_patience_screen.py --experiment farm_qrisk_g09_chosen --seed 5 --tasks BoundedSoccer-v0 ObstructedPush-v0
"""

from __future__ import annotations

import numpy as np
import torch

from failurebench_sim.episodes import run_episode
from failurebench_sim.make import make_env
from farm_safety_critic.hold_patience import HoldPatience
from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.probe_cli import probe_parser, run_probe

GRID = ((5, 5), (10, 5), (10, 10), (20, 10))
FROZEN_TAIL = 30


def variants(ctx, actor) -> dict:
    out = {"no gate": None, "hold (farm-qrisk-cal-hold)": ctx.gate("farm-qrisk-cal-hold", actor),
           "pi_rec (farm-qrisk-cal)": ctx.gate("farm-qrisk-cal", actor)}  # fmt: skip
    escape = out["pi_rec (farm-qrisk-cal)"].decider
    for k, m in GRID:
        out[f"hold {k} then pi_rec {m}"] = HoldPatience(ctx.gate("farm-qrisk-cal-hold", actor),
                                                        k, m, escape)  # fmt: skip
    return out


def screen(ctx, episodes: int, deterministic: bool) -> list[dict]:
    actor = ctx.task_actor()
    env = make_env(ctx.env_id)
    rows = []
    for name, f in variants(ctx, actor).items():
        torch.manual_seed(0)
        rets, fails, replaced, frozen = [], [], [], 0
        for ep in range(episodes):
            flags: list[bool] = []

            def act(obs: np.ndarray, flags: list[bool] = flags, f=f) -> np.ndarray:
                o = torch.as_tensor(obs[None], dtype=torch.float32)
                with torch.no_grad():
                    a = actor.act(o, deterministic=deterministic).numpy()
                if f is None:
                    return a[0]
                d = f(obs[None].astype(np.float32), a)
                flags.append(bool(d.replaced[0]))
                return d.actions[0]

            r = run_episode(env, act, 100_000 + ep)
            rets.append(r.ret)
            fails.append(r.ir_failure)
            replaced.append(np.mean(flags) if flags else 0.0)
            frozen += int(len(flags) >= FROZEN_TAIL and all(flags[-FROZEN_TAIL:]))
        rows.append({"task": task_name(ctx.task), "variant": name, "episodes": episodes,
                     "sampled": not deterministic, "return": round(float(np.mean(rets)), 1),
                     "ir_failures": int(np.sum(fails)),
                     "replaced": round(float(np.mean(replaced)), 3),
                     "frozen_at_end": frozen})  # fmt: skip
        print(rows[-1], flush=True)
    env.close()
    return rows


def main() -> None:
    ap = probe_parser(__doc__)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--deterministic", action="store_true")
    args = ap.parse_args()
    run_probe(args, lambda ctx: screen(ctx, args.episodes, args.deterministic),
              "results/hold_patience_screen", "_det" if args.deterministic else "")  # fmt: skip


if __name__ == "__main__":
    main()
