"""How much the chosen gate's score depends on the action: is there a smaller step it accepts?

``farm-qrisk-cal-least`` (``LeastInterventionFilter``) executes the largest part of a fired
action that the gate accepts. That helps only if the score (Q-risk(s, a), C_H with a as its first
action) moves with the action. For each task of a finished pipeline this scores the held-out
noisy roll-outs' logged actions with the any-of gate at its calibrated pair; on the rows where it
fires, it scores the same states with the motion part (first 3 entries) of the logged action
times 0.75, 0.5, 0.25 and 0 (gripper kept), with holding still (all zeros) and with pi_rec's
action, and reports the fraction of fired rows each candidate brings under the threshold and the
median of its score over the logged action's. Writes results/action_sensitivity/<experiment>_s<seed>.csv.
    python scripts/action_sensitivity_probe.py --experiment farm_qrisk_g09_chosen --seed 5

``--method farm-runout-seq``: the same for farm-runout-seq's holding member (the run-out score of
the next ``gate.runout_lookahead`` states predicted for the candidate, then the offline task
policy's mean actions: ``push_sequence.PushSequence``), on the rows where it fires and the
state member (the object already rolling out, which no action changes) does not; pi_rec is
the state member's. Written to results/action_sensitivity/<experiment>_s<seed>_runout-seq.csv.
    python scripts/action_sensitivity_probe.py --experiment farm_runout_soccer_more --seed 12 \
        --tasks BoundedSoccer-v0 --method farm-runout-seq
"""

from __future__ import annotations

import numpy as np

from farm_safety_critic import calibration as cal
from farm_safety_critic.filter import FirstFired
from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.probe_cli import probe_parser, run_probe

FRACTIONS = (0.75, 0.5, 0.25, 0.0)


def probe(ctx, method: str = "farm-qrisk-cal") -> list[dict]:
    heldout = ctx.dataset("heldout")
    gate = ctx.gate(method)  # the any-of gate (its decider holds pi_rec), or FirstFired
    obs = heldout.observations.astype(np.float32)
    act = heldout.actions.astype(np.float32)
    rescuable, recovery = np.ones(len(obs), dtype=bool), getattr(gate, "decider", None)
    if isinstance(gate, FirstFired):  # the last member holds; the first sees the state only
        first, gate = gate.members[0], gate.members[-1]
        recovery = first.decider  # pi_rec
        rescuable = ~first(obs, act).replaced
    eps = gate.eps_safe
    score = cal.score_dataset(gate.scores, heldout)
    fired = (score > eps) & rescuable
    o, a, s = obs[fired], act[fired], score[fired]
    candidates = {}
    for f in FRACTIONS:
        c = a.copy()
        c[:, :3] *= f
        candidates[f"motion x{f:g}"] = c
    candidates["hold still (zeros)"] = np.zeros_like(a)
    candidates["pi_rec"] = recovery.recovery_actions(o).astype(np.float32)
    rows, any_ok = [], np.zeros(len(o), bool)
    for name, c in candidates.items():
        sc = np.concatenate([gate.scores(o[i : i + 4096], c[i : i + 4096])
                             for i in range(0, len(o), 4096)])  # fmt: skip
        ok = sc <= eps
        if name.startswith("motion") and name != "motion x0":
            any_ok |= ok
        rows.append({"task": task_name(ctx.task), "candidate": name, "fired_rows": int(fired.sum()),
                     "firing_rate": round(float(fired.mean()), 4),
                     "accepted": round(float(ok.mean()), 4),
                     "median_score_ratio": round(float(np.median(sc / s)), 3)})  # fmt: skip
    rows.append({"task": task_name(ctx.task), "candidate": "any of x0.75/x0.5/x0.25",
                 "fired_rows": int(fired.sum()), "firing_rate": round(float(fired.mean()), 4),
                 "accepted": round(float(any_ok.mean()), 4), "median_score_ratio": ""})  # fmt: skip
    for row in rows:
        print(row, flush=True)
    return rows


def main() -> None:
    parser = probe_parser(__doc__)
    parser.add_argument("--method", default="farm-qrisk-cal",
                        choices=("farm-qrisk-cal", "farm-runout-seq"), help="the gate probed")  # fmt: skip
    args = parser.parse_args()
    suffix = "" if args.method == "farm-qrisk-cal" else "_" + args.method.removeprefix("farm-")
    run_probe(args, lambda ctx: probe(ctx, args.method), "results/action_sensitivity", suffix)


if __name__ == "__main__":
    main()
