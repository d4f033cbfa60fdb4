"""Bounded Soccer's two frontier settings over every pipeline seed run with 100-episode evaluations.

The chosen gate (farm-qrisk-cal-hold with run-out constraint targets) and farm-runout-seq
(hold at 0.5), each against the Uni-O4 run of its own pipeline seed, from the runs.csv of
``--experiments`` (default: farm_runout_soccer_eval100, seeds 5-11, and farm_runout_soccer_more,
seeds 12-15): per seed the IR-failure ratio and the paired return difference; over seeds the
mean ± s.e., the median and a paired t-test; and the decision rule fixed in
config/experiments/farm_runout_soccer_more.yaml before its runs. Writes
results/soccer_tradeoff/seeds.csv, summary.md and seeds.png.
    python scripts/soccer_tradeoff.py
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from levers_table import read_runs

from failurebench_sim.atomic import atomic_write, write_csv, write_text

TASK = "BoundedSoccer-v0"
METHODS = {"farm-qrisk-cal-hold": "chosen gate", "farm-runout-seq": "farm-runout-seq"}
OTHER_TASKS = (0.25, 0.27, 0.16)
"""the chosen setting's failure ratios on Push, Wall and Obstructed (seeds 0-7)"""
NEW_SEEDS = {12, 13, 14, 15}
RULE_SEEDS = set(range(5, 16))
"""the rule is over these pipeline seeds: with one missing for either method it says so"""
OUT = Path("results/soccer_tradeoff")


def seed_rows(experiments: list[str]) -> list[dict]:
    """One row per (method, seed): failures and return against that seed's Uni-O4 run."""
    rows = []
    for exp in experiments:
        runs = read_runs(exp)
        base = runs.get((TASK, "unio4"), {})
        for method in METHODS:
            for seed, r in sorted(runs.get((TASK, method), {}).items(), key=lambda x: int(x[0])):
                if seed not in base:
                    continue
                b = base[seed]
                fails, base_fails = int(r["ir_failure_episodes"]), int(b["ir_failure_episodes"])
                rows.append({"method": method, "seed": int(seed), "experiment": exp,
                             "ir_failure_episodes": fails, "unio4_ir_failure_episodes": base_fails,
                             "ratio": round(fails / base_fails, 3) if base_fails else math.inf,
                             "return_after": float(r["return_after"]),
                             "unio4_return_after": float(b["return_after"]),
                             "d_return": round(float(r["return_after"])
                                               - float(b["return_after"]), 2)})  # fmt: skip
    return rows


def stats_of(rows: list[dict]) -> dict:
    from scipy import stats

    d = np.array([r["d_return"] for r in rows])
    ratio = np.array([r["ratio"] for r in rows])
    fails = sum(r["ir_failure_episodes"] for r in rows)
    base = sum(r["unio4_ir_failure_episodes"] for r in rows)
    return {"n": len(rows), "ratio_mean": float(ratio.mean()), "ratio_max": float(ratio.max()),
            "ratio_pooled": fails / base if base else math.inf,
            "d_mean": float(d.mean()), "d_se": float(stats.sem(d)) if len(d) > 1 else math.nan,
            "d_median": float(np.median(d)),
            "p": float(stats.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 else math.nan}  # fmt: skip


def decision(by_method: dict[str, list[dict]]) -> list[str]:
    """The rule of farm_runout_soccer_more.yaml, condition by condition; no verdict until both
    methods have every seed of ``RULE_SEEDS`` (each paired with its Uni-O4 run)."""
    seq, chosen = by_method["farm-runout-seq"], by_method["farm-qrisk-cal-hold"]
    missing = {m: sorted(RULE_SEEDS - {r["seed"] for r in rows}) for m, rows in by_method.items()}
    s = stats_of(seq)
    mean_ratio = (s["ratio_mean"] + sum(OTHER_TASKS)) / 4
    new_seq = {r["seed"]: r["d_return"] for r in seq if r["seed"] in NEW_SEEDS}
    new_chosen = {r["seed"]: r["d_return"] for r in chosen if r["seed"] in NEW_SEEDS}
    both = sorted(set(new_seq) & set(new_chosen))
    a = float(np.mean([new_seq[k] for k in both])) if both else math.nan
    b = float(np.mean([new_chosen[k] for k in both])) if both else math.nan
    checks = [
        (f"(1) mean Δreturn {s['d_mean']:+.1f} ≥ −2", s["d_mean"] >= -2),
        (f"(2) ratio < 1 on every seed (largest {s['ratio_max']:.2f})", s["ratio_max"] < 1),
        (f"(3) four-task mean ratio {mean_ratio:.2f} ≤ 0.35", mean_ratio <= 0.35),
        (f"(4) seeds {both}: Δreturn {a:+.1f} above the chosen gate's {b:+.1f}", a > b),
    ]
    lines = [f"- {text}: {'yes' if ok else 'no'}" for text, ok in checks]
    if any(missing.values()):
        gaps = "; ".join(f"{METHODS[m]} lacks seeds {v}" for m, v in missing.items() if v)
        return [*lines, f"- **no verdict: the rule is over seeds 5-15 ({gaps})**"]
    verdict = all(ok for _, ok in checks)
    lines.append(f"- **farm-runout-seq {'replaces' if verdict else 'does not replace'} the chosen "
                 f"gate on Soccer**")  # fmt: skip
    return lines


def figure(by_method: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    pts = {m: {r["seed"]: (r["ratio"], r["d_return"]) for r in rows}
           for m, rows in by_method.items()}  # fmt: skip
    a, b = pts["farm-qrisk-cal-hold"], pts["farm-runout-seq"]
    for seed in sorted(set(a) & set(b)):
        ax.plot([a[seed][0], b[seed][0]], [a[seed][1], b[seed][1]], color="0.8", lw=0.8, zorder=1)
    for (m, label), colour in zip(METHODS.items(), ("tab:blue", "tab:orange"), strict=True):
        for seed, (x, y) in pts[m].items():
            ax.scatter(x, y, color=colour, s=22, zorder=2,
                       label=label if seed == min(pts[m]) else None)  # fmt: skip
            ax.annotate(str(seed), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.axhline(-2, color="k", ls="--", lw=0.8)
    ax.axvline(1, color="k", ls=":", lw=0.8)
    ax.set_xlabel("IR-failure episodes / Uni-O4's (per pipeline seed)")
    ax.set_ylabel("return after − Uni-O4's (100 episodes)")
    ax.set_title("Bounded Soccer: the two settings, seed by seed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", nargs="+",
                    default=["farm_runout_soccer_eval100", "farm_runout_soccer_more"])  # fmt: skip
    args = ap.parse_args()
    rows = seed_rows(args.experiments)
    by_method = {m: [r for r in rows if r["method"] == m] for m in METHODS}
    write_csv(OUT / "seeds.csv", rows)
    lines = ["# Bounded Soccer: the chosen gate against farm-runout-seq, every seed", "",
             "Generated by `python scripts/soccer_tradeoff.py` from the runs.csv of "
             + ", ".join(f"`{e}`" for e in args.experiments) + ". Each method against the Uni-O4 "
             "run of its own pipeline seed; return after fine-tuning on 100 evaluation episodes.",
             "", "| Soccer | seeds | failures / Uni-O4's (mean; pooled; largest) | Δreturn "
             "mean ± s.e. | median | paired p |", "|---|---|---|---|---|---|"]  # fmt: skip
    for m, label in METHODS.items():
        if not by_method[m]:
            continue
        s = stats_of(by_method[m])
        seeds = ", ".join(str(r["seed"]) for r in by_method[m])
        lines.append(f"| {label} | {seeds} | {s['ratio_mean']:.2f}; {s['ratio_pooled']:.2f}; "
                     f"{s['ratio_max']:.2f} | {s['d_mean']:+.1f} ± {s['d_se']:.1f} | "
                     f"{s['d_median']:+.1f} | {s['p']:.2f} |")  # fmt: skip
    if all(by_method.values()):
        lines += ["", "Decision rule (fixed before seeds 12-15 ran):", "", *decision(by_method)]
        figure(by_method, OUT / "seeds.png")
        lines += ["", "![seed by seed](seeds.png)"]
    write_text(OUT / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
