"""The seed paper's comparison tables from an experiment's runs, next to the paper's own numbers.

paper_tables.md          Table I (return after fine-tuning: FARM, Uni-O4, PPO-Lag, P3O, CPO; raw
                         and normalised), Table II (IR-failure episodes: FARM, Rec-RL, MPPI and
                         every other method), the side-by-side with the paper (ratios to FARM:
                         our step budget differs), and how the constrained baselines behave
                         from the pre-trained start (collapse: return after < before - 10)
paper_comparison.csv     the side-by-side in numbers
fig6_ablation_returns.png  Fig. 6: return before / after for FARM, Rec-RL and MPPI
fig7_training_return.png   normalised training-episode return vs env steps, every method
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from failurebench_sim.atomic import write_text
from farm_trainer.experiments.config import ExperimentConfig
from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.report import (
    LABELS,
    _csv_text,
    _eval_norm,
    _pm,
    _save_fig,
    method_colors,
    plot_returns,
    return_before,
)

PAPER_STEPS = 1_000_000
"""online steps per run in the paper (Sec. V)"""
PAPER_TABLE_I = {
    "farm": (4593.96, 2276.53, 3220.12, 1227.18),
    "ppo-lag": (420.79, 404.80, 268.83, 543.95),
    "p3o": (95.33, 598.55, -278.62, 455.86),
    "cpo": (156.28, 692.90, -994.55, 47.40),
}
"""Table I: mean return after fine-tuning over three seeds (Push, Soccer, Wall, Obstructed)"""
PAPER_TABLE_II = {
    "farm": (951.00, 878.67, 3393.00, 1914.67),
    "recrl": (1250.67, 1687.00, 4234.00, 2175.00),
    "mppi": (1112.00, 2022.67, 3753.00, 2229.00),
}
"""Table II: mean IR-failure episodes during fine-tuning over three seeds"""
PAPER_TASKS = ("BoundedPush-v0", "BoundedSoccer-v0", "FragilePushWall-v0", "ObstructedPush-v0")
TABLE_I_METHODS = ("farm", "unio4", "ppo-lag", "p3o", "cpo")
TABLE_II_METHODS = ("farm", "recrl", "mppi", "unio4", "ppo-lag", "p3o", "cpo")
CONSTRAINED = ("ppo-lag", "p3o", "cpo")
COLLAPSE_DROP = 10.0
"""a run 'collapses' when its normalised return after fine-tuning is this far below before"""


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else math.nan


def _r(v: float) -> str:
    return f"{v:.2f}" if math.isfinite(v) else "–"


def _seeds_note(r: dict[str, Any], n: int) -> str:
    done = r["seeds_complete"]
    return "" if done >= n else f" ({done}/{n} seeds)"


def _complete(r: dict[str, Any] | None) -> bool:
    """Every run found has finished (a partial run's counts would bias a ratio)."""
    return bool(r) and 0 < r["seeds_complete"] == r["seeds_found"]


def _unfinished(r: dict[str, Any]) -> str:
    return f"unfinished ({r['env_steps_mean'] / 1000:.0f}k steps)"


def _method_rows(
    methods: list[str],
    tasks: list[str],
    by: dict[tuple[str, str], dict[str, Any]],
    n: int,
    finished: Callable[[dict[str, Any]], str],
) -> list[str]:
    """One table row per method: ``finished(row)`` where its runs are done, else a note."""
    out = []
    for m in methods:
        cells = [LABELS.get(m, m)]
        for t in tasks:
            r = by.get((t, m))
            cells.append("–" if not r else _unfinished(r) if not _complete(r)
                         else finished(r) + _seeds_note(r, n))  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return out


def table_i(cfg: ExperimentConfig, by: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    methods = [m for m in TABLE_I_METHODS if m in cfg.methods]
    tasks = [task_name(t) for t in cfg.tasks]
    n = len(cfg.seeds)
    out = ["## Table I: return after fine-tuning from the same offline policy", "",
           f"Mean ± std over {n} seeds; raw episode return, then normalised (expert 100,"
           " random 0) in brackets. Before = the offline init.", ""]  # fmt: skip
    head = ["Method", *tasks]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    before = ["offline init (before)"]
    for t in tasks:
        r = next((by[(t, m)] for m in methods if (t, m) in by), None)
        before.append(
            f"{_pm(r['raw_return_before'], math.nan)} [{_pm(r['return_before'], r['return_before_std'])}]"
            if r else "–"
        )  # fmt: skip
    out.append("| " + " | ".join(before) + " |")
    return out + _method_rows(methods, tasks, by, n, lambda r: (
        f"{_pm(r['raw_return_after_mean'], r['raw_return_after_std'])}"
        f" [{_pm(r['return_after_mean'], r['return_after_std'])}]"
    ))  # fmt: skip


def table_ii(cfg: ExperimentConfig, by: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    methods = [m for m in TABLE_II_METHODS if m in cfg.methods]
    tasks = [task_name(t) for t in cfg.tasks]
    n = len(cfg.seeds)
    out = ["", "## Table II: IR-failure episodes during fine-tuning", "",
           f"Mean ± std over {n} seeds, {cfg.online.steps:g} online steps per run. Lower is"
           " better.", ""]  # fmt: skip
    head = ["Method", *tasks]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + _method_rows(methods, tasks, by, n, lambda r: _pm(
        r["ir_failure_episodes_mean"], r["ir_failure_episodes_std"]
    ))  # fmt: skip


def comparison_rows(
    cfg: ExperimentConfig, by: dict[tuple[str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per task and method: the paper's ratio to FARL and ours to FARM (returns, failures)."""
    rows = []
    for i, t in enumerate(PAPER_TASKS):
        farm = by.get((t, "farm"))
        for table, paper, key in (
            ("I", PAPER_TABLE_I, "raw_return_after_mean"),
            ("II", PAPER_TABLE_II, "ir_failure_episodes_mean"),
        ):
            for m, values in paper.items():
                if m == "farm":
                    continue
                ours = by.get((t, m))
                ours = ours if _complete(ours) else None
                farm = farm if _complete(farm) else None
                rows.append({
                    "table": table, "task": t, "method": m,
                    "paper_value": values[i], "paper_farm": paper["farm"][i],
                    "paper_ratio_to_farm": _ratio(values[i], paper["farm"][i]),
                    "ours_value": ours[key] if ours else math.nan,
                    "ours_farm": farm[key] if farm else math.nan,
                    "ours_ratio_to_farm": _ratio(ours[key], farm[key]) if ours and farm
                    else math.nan,
                    "ours_seeds": ours["seeds_complete"] if ours else 0,
                    "ours_farm_seeds": farm["seeds_complete"] if farm else 0,
                })  # fmt: skip
    return rows


COMPARISON_FIELDS = ["table", "task", "method", "paper_value", "paper_farm",
                     "paper_ratio_to_farm", "ours_value", "ours_farm", "ours_ratio_to_farm",
                     "ours_seeds", "ours_farm_seeds"]  # fmt: skip


def comparison_lines(rows: list[dict[str, Any]], steps: int) -> list[str]:
    out = ["", "## Side by side with the paper (ratio to FARM on the same task)", "",
           f"The paper ran {PAPER_STEPS:g} online steps per run, we ran {steps:g}, and its"
           " returns are on another scale (our rewards are >= 0): only ratios compare. Table I:"
           " return after / FARM's (below 1: worse than FARM). Table II: failure episodes /"
           " FARM's (above 1: more failures than FARM). Ours: finished runs only.", ""]  # fmt: skip
    out += ["| Table | Method | " + " | ".join(PAPER_TASKS) + " |", "|" + "---|" * 6]
    for table in ("I", "II"):
        for m in dict.fromkeys(r["method"] for r in rows if r["table"] == table):
            cells = []
            for t in PAPER_TASKS:
                r = next(x for x in rows if (x["table"], x["method"], x["task"]) == (table, m, t))
                cells.append(f"paper {_r(r['paper_ratio_to_farm'])} / ours"
                             f" {_r(r['ours_ratio_to_farm'])}")  # fmt: skip
            out.append(f"| {table} | {LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    return out


def collapse_lines(cfg: ExperimentConfig, results: list[Any]) -> list[str]:
    """How the constrained baselines move from the pre-trained policy, run by run."""
    methods = [m for m in ("unio4", "farm", *CONSTRAINED) if m in cfg.methods]
    out = ["", "## From the pre-trained start: does fine-tuning keep the offline policy?", "",
           f"Per method and task: runs whose normalised return after fine-tuning is more than"
           f" {COLLAPSE_DROP:g} below the offline init's (collapsed / runs), the mean change"
           " after - before, and the lowest training-episode return (normalised, mean of 5"
           " updates) seen during fine-tuning.", ""]  # fmt: skip
    out += ["| Task | Method | collapsed / runs | after - before | lowest training return |",
            "|---|---|---|---|---|"]  # fmt: skip
    for tr in results:
        before = {p.pipeline or "": _eval_norm(p.eval_init) for p in tr.each()}
        mean_before = return_before(tr)[0]
        for m in methods:
            runs = tr.runs.get(m, [])
            done = [r for r in runs if r.eval_final]
            if not done:
                continue
            deltas, lows = [], []
            for r in done:
                b = before.get(f"s{r.seed}", mean_before)
                deltas.append(_eval_norm(r.eval_final) - b)
                tr_ret = r.train_return[np.isfinite(r.train_return)]
                if tr_ret.size >= 5:
                    lows.append(float(np.convolve(tr_ret, np.ones(5) / 5, "valid").min()))
            collapsed = sum(d < -COLLAPSE_DROP for d in deltas)
            low = f"{np.mean(lows):.1f}" if lows else "–"
            out.append(f"| {tr.task} | {LABELS.get(m, m)} | {collapsed} / {len(done)} |"
                       f" {np.mean(deltas):+.1f} | {low} |")  # fmt: skip
    return out


def plot_training_return(results: list[Any], methods: list[str], path: Path) -> None:
    """Normalised return of the training episodes vs env steps (mean over seeds, smoothed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), squeeze=False)
    colors = method_colors(methods)
    for ax, tr in zip(axes[0], results, strict=True):
        for m in methods:
            runs = [r for r in tr.runs.get(m, []) if np.isfinite(r.train_return).any()]
            if not runs:
                continue
            n = min(r.train_return.size for r in runs)
            x = np.mean([r.env_steps[:n] for r in runs], axis=0)
            ys = np.array([r.train_return[:n] for r in runs])
            y = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in ys.T])
            k = min(10, n)
            y = np.nan_to_num(y, nan=float(np.nanmean(y)))
            y = np.convolve(
                np.pad(y, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, "valid"
            )  # fmt: skip (a moving mean without the zero-padded ends)
            ax.plot(x, y, color=colors[m], label=LABELS.get(m, m), linewidth=1.2)
        ax.set_title(tr.task)
        ax.set_xlabel("env steps")
        ax.axhline(100, color="gray", linestyle="--", linewidth=0.8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("training return (normalised)")
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    _save_fig(fig, path)


def write_paper_tables(
    cfg: ExperimentConfig, rows: list[dict[str, Any]], results: list[Any], out: Path
) -> None:
    """``paper_tables.md``, ``paper_comparison.csv`` and Fig. 6 / 7 under ``out``."""
    by = {(r["task"], r["method"]): r for r in rows}
    cmp_rows = comparison_rows(cfg, by)
    lines = [f"# {cfg.name}: the paper's tables at {cfg.online.steps:g} online steps", ""]
    lines += table_i(cfg, by) + table_ii(cfg, by)
    lines += comparison_lines(cmp_rows, cfg.online.steps) + collapse_lines(cfg, results)
    write_text(out / "paper_tables.md", "\n".join(lines) + "\n")
    write_text(out / "paper_comparison.csv", _csv_text(COMPARISON_FIELDS, cmp_rows))
    tasks = [task_name(t) for t in cfg.tasks]
    ablations = [m for m in ("farm", "recrl", "mppi") if m in cfg.methods]
    if len(ablations) > 1:
        plot_returns(rows, tasks, ablations, out / "fig6_ablation_returns.png")
    plot_training_return(results, list(cfg.methods), out / "fig7_training_return.png")
