"""Obstructed Push: the holding gate steered to a replaced fraction, and PPO on the task
policy's own actions, against the chosen setting.

Seeds 10-15 (farm_obstructed_new, farm_obstructed_steer, farm_obstructed_steer30,
farm_obstructed_own), each arm against the Uni-O4 run of its own pipeline seed, return on 100
evaluation episodes. Applies the decision rule fixed in config/experiments/
farm_obstructed_steer.yaml, farm_obstructed_steer30.yaml and farm_obstructed_own.yaml before
their runs. farm_obstructed_steer30's target was chosen on these seeds, so its pass is judged
again on new seeds: 16-18 (farm_obstructed_confirm) and, after that missed, 19-21
(farm_obstructed_confirm2), each rule fixed before its runs. Writes results/obstructed_steer_own/seeds.csv, summary.md and seeds.png.
    python scripts/obstructed_steer_own.py
"""

from __future__ import annotations

from pathlib import Path

from paired_seeds import (
    SUMMARY_HEADER,
    figure,
    replacement_checks,
    seed_rows,
    stats_of,
    summary_row,
)

from failurebench_sim.atomic import write_csv, write_text

TASK = "ObstructedPush-v0"
ARMS = {
    "chosen": [("farm_obstructed_new", "farm-chosen")],
    "steer": [("farm_obstructed_steer", "farm-qrisk-cal-hold-steer")],
    "steer30": [("farm_obstructed_steer30", "farm-qrisk-cal-hold-steer")],
    "own": [("farm_obstructed_own", "farm-chosen")],
}
LABELS = {"chosen": "chosen (hold)", "steer": "hold, steered to 20 % replaced",
          "steer30": "hold, steered to 30 % replaced", "own": "hold, PPO on own actions"}  # fmt: skip
CONFIRM = {
    "chosen": [("farm_obstructed_confirm", "farm-chosen")],
    "steer30": [("farm_obstructed_confirm", "farm-qrisk-cal-hold-steer"),
                ("farm_obstructed_confirm2", "farm-qrisk-cal-hold-steer")],
}  # fmt: skip
"""the chosen setting (seeds 16-18) and the 30 % arm (16-21) on out-of-sample seeds"""
RULE_SEEDS = set(range(10, 16))
ROUNDS = ((range(16, 19), "farm_obstructed_confirm"), (range(19, 22), "farm_obstructed_confirm2"))
"""the 30 % arm's confirmation rounds, each judged on its own seeds by its config's rule (the
second written after the first missed)"""
MAX_MEAN_RATIO = 0.41
"""keeps the four tasks' mean ratio <= 0.35 with Push 0.25, Soccer 0.46 and Wall 0.27"""
OUT = Path("results/obstructed_steer_own")


def decision(by_arm: dict[str, list[dict]]) -> tuple[list[str], dict[str, float]]:
    """The configs' rule on seeds 10-15, arm by arm (an arm without every seed of
    ``RULE_SEEDS`` gets none); the arms that pass, with their mean Δreturn."""
    lines, passed = [], {}
    for arm in ("steer", "steer30", "own"):
        rows = by_arm[arm]
        missing = sorted(RULE_SEEDS - {r["seed"] for r in rows})
        if missing:
            lines.append(f"- {LABELS[arm]}: no verdict, seeds {missing} missing")
            continue
        checks = replacement_checks(rows, by_arm["chosen"], MAX_MEAN_RATIO)
        lines.append(f"- {LABELS[arm]}: "
                     + "; ".join(f"{t}: {'yes' if ok else 'no'}" for t, ok in checks))  # fmt: skip
        if all(ok for _, ok in checks):
            passed[arm] = stats_of(rows)["d_mean"]
    if not passed:
        return [*lines, "- **no arm passes on seeds 10-15**"], passed
    return [*lines, "- passes on seeds 10-15: " + ", ".join(LABELS[a] for a in passed)], passed


def confirmation(passed: dict[str, float], rows: list[dict]) -> list[str]:
    """The confirmation configs' rule, round by round: the 30 % arm's pass on seeds 10-15 holds
    on the round's seeds alone (ratio < 1 on each, mean <= MAX_MEAN_RATIO; mean Δreturn >= -2);
    the first round that holds keeps it."""
    lines = []
    for seeds, exp in ROUNDS:
        mine = [r for r in rows if r["seed"] in seeds]
        missing = sorted(set(seeds) - {r["seed"] for r in mine})
        name = f"seeds {seeds.start}-{seeds.stop - 1} ({exp})"
        if missing:
            return [*lines, f"- {name}: no verdict yet, seeds {missing} missing"]
        s = stats_of(mine)
        checks = [(f"ratio < 1 on every seed (largest {s['ratio_max']:.3f}) and mean "
                   f"{s['ratio_mean']:.3f} ≤ {MAX_MEAN_RATIO:g}",
                   s["ratio_max"] < 1 and s["ratio_mean"] <= MAX_MEAN_RATIO),
                  (f"mean Δreturn {s['d_mean']:+.1f} ≥ −2", s["d_mean"] >= -2)]  # fmt: skip
        lines.append(f"- {name}: " + "; ".join(f"{t}: {'yes' if ok else 'no'}" for t, ok in checks))
        if "steer30" in passed and all(ok for _, ok in checks):
            return [*lines, f"- **{LABELS['steer30']} replaces the chosen setting on Obstructed**"]
    return [*lines, "- **the chosen setting stays on Obstructed**"]


def table(by_arm: dict[str, list[dict]]) -> list[str]:
    rows = [summary_row(LABELS[a], r) for a, r in by_arm.items() if r]
    return [*(h.format(task="Obstructed") for h in SUMMARY_HEADER), *rows]


def main() -> None:
    rows = seed_rows(ARMS, TASK)
    confirm_rows = seed_rows(CONFIRM, TASK)
    by_arm = {a: [r for r in rows if r["method"] == a] for a in ARMS}
    confirm = {a: [r for r in confirm_rows if r["method"] == a] for a in CONFIRM}
    write_csv(OUT / "seeds.csv", rows + confirm_rows)
    sources = dict.fromkeys(e for a in (*ARMS.values(), *CONFIRM.values()) for e, _ in a)
    verdict, passed = decision(by_arm)
    lines = ["# Obstructed Push: steering the replaced fraction, PPO on own actions", "",
             "Generated by `python scripts/obstructed_steer_own.py` from the runs.csv of "
             + ", ".join(f"`{e}`" for e in sources)
             + ". Each arm against the Uni-O4 run of its own pipeline seed; return after "
             "fine-tuning on 100 evaluation episodes.", "", "Seeds 10-15:", "", *table(by_arm),
             "", "Decision rule (fixed in the configs before their runs):", "", *verdict]  # fmt: skip
    if any(confirm.values()):
        last = max(r["seed"] for rows_ in confirm.values() for r in rows_)
        pooled = {f"{a} pooled": by_arm[a] + confirm[a] for a in CONFIRM if confirm[a]}
        for k, v in pooled.items():
            LABELS[k] = f"{LABELS[k.split()[0]]}, seeds {min(r['seed'] for r in v)}-"
            LABELS[k] += str(max(r["seed"] for r in v))
        lines += ["", f"New pipeline seeds 16-{last} (farm_obstructed_confirm: 16-18, both arms;"
                  " farm_obstructed_confirm2: 19-21, the 30 % arm), and all seeds pooled:", "",
                  *table({**confirm, **pooled})]  # fmt: skip
    lines += ["", "Confirmation rounds (each rule fixed before its runs; the first before the "
              "30 % arm's seeds 10-15 were seen):", "",
              *confirmation(passed, confirm["steer30"])]  # fmt: skip
    if any(by_arm.values()):
        figure({a: r for a, r in by_arm.items() if r}, LABELS, OUT / "seeds.png",
               "Obstructed Push: seeds 10-15, seed by seed",
               "return after − Uni-O4's (100 episodes)")  # fmt: skip
        lines += ["", "![seed by seed](seeds.png)"]
    write_text(OUT / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
