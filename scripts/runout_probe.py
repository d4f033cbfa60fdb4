"""How well the run-out score sees a lost object on held-out roll-outs, from the state and ahead.

For each bounded task of a finished pipeline whose calibration fitted the run-out model
(``calibration/runout.json``; ``calibration/object_motion.safetensors`` for the rows "ahead"):
- the free object's speed kept per step on the failure data (``runout.free_rolling_ratios``):
  the quantiles behind ``fit_decay``'s median;
- for each look-ahead horizon, the run-out score of the state (``RunoutModel.scores``) and of
  the displacement the logged action would give the object next (``ObjectMotion``) at
  threshold 1 ("it leaves within the horizon"): firing rate, precision and recall against the
  run-out window (``last_touch_costs``: the hand's last approach up to the failure), the
  failing episodes flagged and the median lead of the first flag before the failure, the
  firing rate over the steps of the episodes that do not fail, and, for the ahead score, the failing episodes
  with a flag while the object was not yet lost (a push the gate could still decline);
- with ``calibration/hand_motion.json`` too (farm-runout-seq), the rows "sequence": the largest
  score over the states of the next ``LOOKAHEAD`` steps predicted for the logged action and then
  the offline task policy's mean actions (``push_sequence.PushSequence``);
- where the experiment runs farm-runout-seq, that gate as configured (pi_rec or hold: either
  member fires), on the logged actions;
- every row also against "an IR failure within H" (the gate's horizon ``gate.horizon``, the
  label of the issue's precision goal) and within the run-out horizon ``gate.runout_horizon``;
- the same for the chosen any-of gate at its calibrated pair (farm-qrisk-cal) of the pipeline
  seed of ``--chosen`` (default farm_qrisk_g09_soccer, whose held-out roll-outs these are).
Writes results/runout_probe/<experiment>_s<seed>.csv.
    python scripts/runout_probe.py --experiment farm_runout_soccer_ahead --seed 5
"""

from __future__ import annotations

import dataclasses

import numpy as np

from farm_safety_critic import calibration as cal
from farm_safety_critic.decider import numpy_actor
from farm_safety_critic.object_motion import ObjectMotion
from farm_safety_critic.push_sequence import HandMotion, PushSequence
from farm_safety_critic.runout import RunoutModel, free_rolling_ratios
from farm_safety_critic.sequence_sampler import last_touch_costs
from farm_trainer.experiments.layout import HAND_MOTION, OBJECT_MOTION, RUNOUT, task_name
from farm_trainer.experiments.pipeline import task_contexts
from farm_trainer.experiments.probe_cli import probe_parser, run_probe

HORIZONS = (30, 40, 60)
LOOKAHEAD = 5
"""farm-runout-seq's predicted steps (``gate.runout_lookahead`` of farm_runout_soccer_seq)"""
CHOSEN = "farm-qrisk-cal"
"""the chosen setting's any-of gate, scored against the same label where the config has it"""
TOUCH_RADIUS, TOUCH_WINDOW = 0.06, 60  # the run-out targets of farm_qrisk_g09_touch


def flags(heldout, fire: np.ndarray, before: np.ndarray | None = None) -> tuple[int, float]:
    """Failing episodes with a fire at or before the failure (and where ``before`` holds), and
    the median steps from the first such fire to the failure."""
    leads = []
    steps = np.arange(len(heldout))
    for f in np.flatnonzero(heldout.costs > 0):
        ok = (heldout.episode_ids == heldout.episode_ids[f]) & fire & (steps <= f)
        if before is not None:
            ok &= before
        idx = np.flatnonzero(ok)
        if len(idx):
            leads.append(f - idx[0])
    return len(leads), float(np.median(leads)) if leads else float("nan")


def probe(ctx, chosen=None) -> list[dict]:
    base = RunoutModel.load(ctx.path("calibration/runout", RUNOUT))
    motion_path = ctx.path("calibration/object_motion", OBJECT_MOTION)
    motion = ObjectMotion.load(motion_path) if motion_path.exists() else None
    heldout = ctx.dataset("heldout")
    window = last_touch_costs(heldout, TOUCH_RADIUS, TOUCH_WINDOW) > 0
    g = ctx.cfg.gate
    within = {f"within_{h}": cal.failure_within(heldout, h) for h in (g.horizon, g.runout_horizon)}
    safe_ep = ~np.isin(heldout.episode_ids, heldout.episode_ids[heldout.costs > 0])
    failures = ctx.dataset("failures")
    ratio = free_rolling_ratios(failures.observations, failures.next_observations)
    q = np.quantile(ratio, [0.05, 0.5, 0.95]) if len(ratio) else [np.nan] * 3
    common = {"task": task_name(ctx.task), "decay": round(base.decay, 5),
              "free_rows": len(ratio), "speed_kept_p05": round(float(q[0]), 5),
              "speed_kept_median": round(float(q[1]), 5), "speed_kept_p95": round(float(q[2]), 5),
              "failing_episodes": int((heldout.costs > 0).sum())}  # fmt: skip
    obs, nxt, seq = heldout.observations, None, None
    if motion is not None:
        nxt = motion.next_observation(obs, heldout.actions)
    hand_path = ctx.path("calibration/hand_motion", HAND_MOTION)
    if motion is not None and hand_path.exists():
        policy = numpy_actor(ctx.task_actor())
        seq = PushSequence(motion, HandMotion.load(hand_path), policy, LOOKAHEAD)

    def row(name: str, horizon: int | str, fire: np.ndarray, before_lost: int | str = "") -> dict:
        n_flag, lead = flags(heldout, fire)
        out = {**common, "score": name, "horizon": horizon, "firing_rate": round(fire.mean(), 4),
               "precision_runout": round((fire & window).sum() / max(fire.sum(), 1), 3),
               "recall_runout": round((fire & window).sum() / max(window.sum(), 1), 3),
               "failures_flagged": n_flag, "median_lead": lead,
               "firing_rate_safe_episodes": round(fire[safe_ep].mean(), 4) if safe_ep.any() else "",
               "failures_flagged_before_lost": before_lost}  # fmt: skip
        for name_, label in within.items():
            prec, rec = cal.precision_recall(fire.astype(float), label, 0.5)
            out[f"precision_{name_}"], out[f"recall_{name_}"] = round(prec, 3), round(rec, 3)
        print(out, flush=True)
        return out

    rows = []
    if chosen is not None:  # the chosen gate, from the experiment that calibrated it
        gate = chosen.gate(CHOSEN)
        rows.append(row(CHOSEN, "", cal.score_dataset(gate.scores, heldout) > gate.eps_safe))
    if "farm-runout-seq" in ctx.cfg.run_methods:
        gate = ctx.gate("farm-runout-seq")
        fired = gate(obs.astype(np.float32), heldout.actions.astype(np.float32)).replaced
        rows.append(row("farm-runout-seq", g.runout_horizon, fired))
    for h in HORIZONS:
        model = dataclasses.replace(base, horizon=h)
        now = model.scores(obs) > 1.0
        scored = {"state": now}
        if nxt is not None:
            scored["ahead"] = model.scores(nxt) > 1.0
        if seq is not None:
            scored["sequence"] = seq.max_score(model.scores, obs, heldout.actions) > 1.0
        for name, fire in scored.items():
            before = flags(heldout, fire, ~now)[0] if name != "state" else ""
            rows.append(row(name, h, fire, before))
    return rows


def main() -> None:
    parser = probe_parser(__doc__, tasks=["BoundedSoccer-v0"])
    parser.add_argument("--chosen", default="farm_qrisk_g09_soccer",
                        help="the experiment whose farm-qrisk-cal gate is scored too ('' : none)")  # fmt: skip
    args = parser.parse_args()

    def with_chosen(ctx) -> list[dict]:
        chosen = None
        if args.chosen:
            found = task_contexts(args.chosen, args.seed, [ctx.task], args.runs_dir)
            chosen = next(iter(found))
        return probe(ctx, chosen)

    run_probe(args, with_chosen, "results/runout_probe")


if __name__ == "__main__":
    main()
