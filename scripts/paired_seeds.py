"""Gated settings against Uni-O4, pipeline seed by pipeline seed, from experiments' runs.csv.

Each arm (a setting, possibly spread over several experiments) is paired with the Uni-O4 run of
the same experiment and pipeline seed (they share its offline checkpoints): the IR-failure
ratio and the return difference per seed, then mean ± s.e., median and a paired t-test over
seeds, and a seed-by-seed figure. Used by the scripts that apply a decision rule fixed in an
experiment's config before its runs (soccer_tradeoff.py, obstructed_dualclip.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from levers_table import read_runs

from failurebench_sim.atomic import atomic_write

Arm = list[tuple[str, str]]
"""(experiment, method label in its runs.csv) for each experiment that ran the setting"""


def seed_rows(arms: dict[str, Arm], task: str) -> list[dict]:
    """One row per (arm, seed): failures and return against that seed's Uni-O4 run."""
    rows = []
    for arm, sources in arms.items():
        for exp, method in sources:
            runs = read_runs(exp)
            base = runs.get((task, "unio4"), {})
            for seed, r in sorted(runs.get((task, method), {}).items(), key=lambda x: int(x[0])):
                if seed not in base:
                    continue
                b = base[seed]
                fails, base_fails = int(r["ir_failure_episodes"]), int(b["ir_failure_episodes"])
                rows.append({"method": arm, "seed": int(seed), "experiment": exp,
                             "ir_failure_episodes": fails, "unio4_ir_failure_episodes": base_fails,
                             "ratio": round(fails / base_fails, 3) if base_fails else math.inf,
                             "return_after": float(r["return_after"]),
                             "unio4_return_after": float(b["return_after"]),
                             "d_return": round(float(r["return_after"])
                                               - float(b["return_after"]), 2)})  # fmt: skip
    return rows


def stats_of(rows: list[dict]) -> dict:
    """Over seeds: the mean, pooled and largest failure ratio; Δreturn mean ± s.e., median, p."""
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


def summary_row(label: str, rows: list[dict]) -> str:
    """A markdown table row: seeds, failure ratios, Δreturn mean ± s.e., median, paired p."""
    s = stats_of(rows)
    seeds = ", ".join(str(r["seed"]) for r in rows)
    return (f"| {label} | {seeds} | {s['ratio_mean']:.2f}; {s['ratio_pooled']:.2f}; "
            f"{s['ratio_max']:.2f} | {s['d_mean']:+.1f} ± {s['d_se']:.1f} | "
            f"{s['d_median']:+.1f} | {s['p']:.2f} |")  # fmt: skip


def replacement_checks(
    rows: list[dict], reference: list[dict], max_mean_ratio: float, min_d_return: float = -2.0
) -> list[tuple[str, bool]]:
    """An arm against the setting it would replace (``reference``, the same task's rows), as the
    Obstructed rules fixed in the configs ask: mean Δreturn >= ``min_d_return``, above the
    reference's on the seeds both ran, failure ratio < 1 on every seed and mean <=
    ``max_mean_ratio``. Each check as (text, passed)."""
    s = stats_of(rows)
    ref = {r["seed"]: r["d_return"] for r in reference}
    both = sorted(set(ref) & {r["seed"] for r in rows})
    mine = float(np.mean([r["d_return"] for r in rows if r["seed"] in both] or [np.nan]))
    theirs = float(np.mean([ref[k] for k in both] or [np.nan]))
    floor = f"{min_d_return:g}".replace("-", "−")
    return [(f"mean Δreturn {s['d_mean']:+.1f} ≥ {floor}", s["d_mean"] >= min_d_return),
            (f"seeds {both}: {mine:+.1f} above the chosen setting's {theirs:+.1f}", mine > theirs),
            (f"ratio < 1 on every seed (largest {s['ratio_max']:.2f}) and mean "
             f"{s['ratio_mean']:.2f} ≤ {max_mean_ratio:g}",
             s["ratio_max"] < 1 and s["ratio_mean"] <= max_mean_ratio)]  # fmt: skip


SUMMARY_HEADER = ["| {task} | seeds | failures / Uni-O4's (mean; pooled; largest) | Δreturn "
                  "mean ± s.e. | median | paired p |", "|---|---|---|---|---|---|"]  # fmt: skip


def figure(by_arm: dict[str, list[dict]], labels: dict[str, str], path: Path, title: str,
           ylabel: str) -> None:  # fmt: skip
    """Failure ratio against Δreturn per seed, one colour per arm, a seed's arms joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    pts = {m: {r["seed"]: (r["ratio"], r["d_return"]) for r in rows} for m, rows in by_arm.items()}
    arms = list(pts)
    for a, b in zip(arms, arms[1:], strict=False):
        for seed in sorted(set(pts[a]) & set(pts[b])):
            (xa, ya), (xb, yb) = pts[a][seed], pts[b][seed]
            ax.plot([xa, xb], [ya, yb], color="0.8", lw=0.8, zorder=1)
    for i, m in enumerate(arms):
        colour = f"C{i % 10}"  # matplotlib's default cycle: tab:blue, tab:orange, ...
        for seed, (x, y) in pts[m].items():
            ax.scatter(x, y, color=colour, s=22, zorder=2,
                       label=labels[m] if seed == min(pts[m]) else None)  # fmt: skip
            ax.annotate(str(seed), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.axhline(-2, color="k", ls="--", lw=0.8)
    ax.axvline(1, color="k", ls=":", lw=0.8)
    ax.set_xlabel("IR-failure episodes / Uni-O4's (per pipeline seed)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
