"""How far ahead must Soccer's gate see? The fewest-alarm thresholds for each look-ahead.

``calibration.choose_anyof_for_recall`` picks the any-of pair that fires least on held-out
roll-outs while catching ``min_recall`` of the IR failures within ``recall_within`` steps. For
each window in WINDOWS and recall in RECALLS this reports the pair it picks, its held-out firing
rate and recall, next to the experiment's own calibrated pair on the same labels. Online, the
pair picked for 10 steps let 3-5x more Soccer failures through than the chosen gate
(farm_qrisk_g09_fewest); this shows how many alarms a longer look-ahead costs. Grids: the ones
of config/experiments/farm_qrisk_g09_fewest.yaml. Writes
results/recall_window_probe/<experiment>_s<seed>.csv.
    python scripts/recall_window_probe.py --experiment farm_qrisk_g09_chosen --seed 5
"""

from __future__ import annotations

from farm_safety_critic import calibration as cal
from farm_trainer.experiments.context import ANYOF_UNIT
from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.probe_cli import probe_parser, run_probe
from farm_trainer.experiments.stages.calibration import anyof_scores

WINDOWS = (10, 20, 40, 60)
RECALLS = (0.9, 0.95)
C_H_GRID = (0.5, 1.0, 1.5, 2.0, 3.0)
QRISK_GRID = (0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999)
MAX_EXPERT_FIRING = 0.05


def probe(ctx) -> list[dict]:
    c_h, qrisk, labels_within = anyof_scores(ctx)
    own = cal.read_anyof_eps(str(ctx.path(*ANYOF_UNIT)))
    rows = []
    for window in WINDOWS:
        labels = labels_within(window)
        at_own = cal._anyof_point(cal._anyof_inputs(c_h, qrisk, labels, "probe"), *own)
        for recall in RECALLS:
            r = cal.choose_anyof_for_recall(c_h, qrisk, labels, recall, MAX_EXPERT_FIRING,
                                            C_H_GRID, QRISK_GRID)  # fmt: skip
            rows.append({"task": task_name(ctx.task), "within_steps": window,
                         "min_recall": recall, "eps_safe": r["eps_safe"],
                         "qrisk_eps_safe": r["qrisk_eps_safe"],
                         "firing_rate": round(r["firing_rate"], 4),
                         "recall": round(r["recall"], 4), "recall_met": r["recall_met"],
                         "own_pair": f"{own[0]} / {own[1]}",
                         "own_firing_rate": round(at_own["firing_rate"], 4),
                         "own_recall": round(at_own["recall"], 4)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    args = probe_parser(__doc__, tasks=["BoundedSoccer-v0"]).parse_args()
    run_probe(args, probe, "results/recall_window_probe")


if __name__ == "__main__":
    main()
