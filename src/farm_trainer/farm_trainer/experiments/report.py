"""Aggregate an experiment's runs into ``results/<experiment>/``: CSV, markdown table, figures.

summary.csv        per task x method: IR-failure episodes during fine-tuning (mean, std over
                   seeds), normalised return before / after (deterministic evaluation),
                   success rate, online steps/s, fraction of replaced actions
table.md           Table II-like failure-episode table with the FARM / Uni-O4 ratio, the
                   return table (Fig. 5 in numbers), offline returns, calibration, latency
fig4_failures.png  cumulative IR-failure episodes vs env steps (mean +- std over seeds)
fig5_returns.png   normalised return before / after fine-tuning
latency.csv        SafetyGate.__call__ p50 / p99 at batch 1 and 16; online steps/s
runs.csv           one row per online run (task, method, seed): IR-failure episodes and return
                   after, so methods can be compared seed by seed (paired over pipeline seeds)
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from failurebench_sim.atomic import atomic_write, write_json, write_text
from farm_trainer.experiments.config import ExperimentConfig, seed_configs
from farm_trainer.experiments.context import read_json
from farm_trainer.experiments.layout import TaskLayout, run_name, task_name
from farm_trainer.experiments.ledger import (
    LEDGER,
    ledger_layout,
    ledger_sources,
    save_experiment_ledger,
)
from farm_trainer.experiments.records import resolve

COLORS = {"unio4": "tab:blue", "farm": "tab:red", "recrl": "tab:green", "mppi": "tab:orange",
          "ppo-lag": "tab:purple", "p3o": "tab:brown", "cpo": "tab:gray"}  # fmt: skip
_MORE_COLORS = ("tab:cyan", "tab:olive", "tab:pink", "black", "gold", "navy", "teal", "magenta",
                "lime", "maroon")  # fmt: skip
"""for methods without a colour of their own, in the order a figure lists them"""


def method_colors(methods: list[str]) -> dict[str, str]:
    """A distinct colour per method: ``COLORS``' own, the others from ``_MORE_COLORS`` in turn
    (so two methods of one figure never share matplotlib's default first colour)."""
    more = iter(_MORE_COLORS * (1 + len(methods) // len(_MORE_COLORS)))
    return {m: COLORS.get(m) or next(more) for m in methods}


LABELS = {"unio4": "Uni-O4", "farm": "FARM", "recrl": "Rec-RL", "mppi": "MPPI",
          "ppo-lag": "PPO-Lag", "p3o": "P3O", "cpo": "CPO"}  # fmt: skip
SUMMARY_FIELDS = [
    "task", "method", "seeds_found", "seeds_complete", "env_steps_mean",
    "ir_failure_episodes_mean", "ir_failure_episodes_std", "episodes_mean",
    "failure_episode_frac_mean", "return_before", "return_before_std", "return_after_mean",
    "return_after_std", "raw_return_before", "raw_return_after_mean", "raw_return_after_std",
    "success_before", "success_after_mean", "failure_rate_after_mean", "train_success_rate_last",
    "replaced_frac_mean", "steps_per_s_mean", "bc_return", "offline_return",
]  # fmt: skip


@dataclass
class RunResult:
    """One online run: its progress.csv curve and (if evaluated) its final evaluation."""

    method: str
    seed: int
    env_steps: np.ndarray
    ir_failure_episodes: np.ndarray
    last: dict[str, float]
    complete: bool
    eval_final: dict[str, Any] | None = None
    steps_per_s: float = float("nan")
    train_return: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """normalised return of the training episodes finished in each update (NaN: none)"""


@dataclass
class TaskResult:
    task: str
    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    eval_init: dict[str, Any] | None = None
    eval_bc: dict[str, Any] | None = None
    """BC member before offline PPO, evaluated like eval_init (evaluation.episodes episodes)"""
    offline: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    pipeline: str = ""
    """``s<seed>`` for one pipeline seed's result"""
    pipelines: list[TaskResult] = field(default_factory=list)
    """with ``pipeline_seeds``: one result per pipeline seed (the fields above: the first's)"""

    def each(self) -> list[TaskResult]:
        """The pipelines whose offline stage this task's runs started from."""
        return self.pipelines or [self]


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def read_progress(path: Path) -> list[dict[str, float]]:
    """Rows of a ``progress.csv`` as floats (empty cells -> NaN)."""
    with open(path, newline="") as f:
        return [{k: _float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _maybe_json(path: Path) -> Any:
    return read_json(path) if path.exists() else None


def load_task(
    cfg: ExperimentConfig, task: str, runs_dir: str | Path, ledger: str | Path | None = None
) -> TaskResult:
    """Every run of ``task``; with ``pipeline_seeds``, of every pipeline seed. A unit with no
    record under ``runs_dir`` is read from the ``ledger`` directory (``ledger.py``)."""
    subs = seed_configs(cfg)
    if len(subs) == 1 and subs[0] is cfg:
        return _load_pipeline(cfg, task, runs_dir, ledger)
    parts = [_load_pipeline(sub, task, runs_dir, ledger) for sub in subs]
    for sub, part in zip(subs, parts, strict=True):
        part.pipeline = f"s{sub.seeds[0]}"
    first = parts[0]
    res = TaskResult(first.task, {}, first.eval_init, first.eval_bc, first.offline,
                     first.calibration, first.latency, pipelines=parts)  # fmt: skip
    for part in parts:
        for method, runs in part.runs.items():
            res.runs.setdefault(method, []).extend(runs)
    return res


def _load_pipeline(
    cfg: ExperimentConfig, task: str, runs_dir: str | Path, ledger: str | Path | None = None
) -> TaskResult:
    cfg = cfg.for_task(task)
    layout = TaskLayout(Path(runs_dir), cfg.name, task)
    book = None if ledger is None else ledger_layout(ledger, layout)

    def source(unit_id: str) -> tuple[Path, dict | None]:
        """The task directory holding ``unit_id``'s files (another experiment's when reused;
        the ledger's when ``runs_dir`` has no record of it) and the unit's record."""
        where, rec = resolve(layout, unit_id)
        if rec is None and book is not None:
            for b in ledger_sources(cfg, book, unit_id):
                book_where, book_rec = resolve(b, unit_id)
                if book_rec is not None:
                    return book_where.root, book_rec
        return where.root, rec

    def root(unit_id: str) -> Path:
        return source(unit_id)[0]

    res = TaskResult(task=task_name(task))
    res.eval_init = _maybe_json(root("evaluate/init") / "offline_task" / "eval_init.json")
    res.eval_bc = _maybe_json(root("evaluate/bc") / "offline_task" / "eval_bc.json")
    res.offline = _maybe_json(root("offline_task") / "offline_task" / "offline_report.json")
    res.calibration = {
        **(_maybe_json(root("calibration/scores") / "calibration" / "calibration.json") or {}),
        **(_maybe_json(root("calibration/qrisk") / "calibration" / "qrisk.json") or {}),
    } or None
    res.latency = _maybe_json(root("calibration/latency") / "calibration" / "latency.json")
    for method in cfg.methods:  # a label: its runs are the registry method's (method_for)
        for seed in cfg.seeds:
            name = run_name(cfg.method_of(method), seed)
            where, rec = source(f"online/{name}")
            run = where / "online" / name
            final = root(f"evaluate/{name}") / "online" / name / "eval_final.json"
            if not (run / "progress.csv").exists():
                continue
            rows = read_progress(run / "progress.csv")
            if not rows:
                continue
            sps = np.array([r.get("steps_per_s", np.nan) for r in rows])
            res.runs.setdefault(method, []).append(
                RunResult(
                    method=method,
                    seed=seed,
                    env_steps=np.array([r["env_steps"] for r in rows]),
                    ir_failure_episodes=np.array([r["ir_failure_episodes"] for r in rows]),
                    last=rows[-1],
                    complete=(run / "policy_final.safetensors").exists()
                    or bool(rec and rec.get("state") == "done"),
                    eval_final=_maybe_json(final),
                    steps_per_s=float(np.nanmean(sps)) if np.isfinite(sps).any() else math.nan,
                    train_return=np.array([r.get("ep_return_normalized", np.nan) for r in rows]),
                )
            )
    return res


def _mean_std(xs: list[float]) -> tuple[float, float]:
    a = np.asarray([x for x in xs if x is not None and math.isfinite(x)], dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std())


def _eval_norm(ev: dict[str, Any] | None) -> float:
    return _float((ev or {}).get("normalized_return_mean"))


def _offline_norm(offline: dict[str, Any] | None, which: str) -> float:
    ev = (offline or {}).get("evaluation") or {}
    return _float((ev.get(which) or {}).get("normalized_return"))


def _offline_returns_of(tr: TaskResult) -> tuple[float, float]:
    if tr.eval_bc and tr.eval_init:
        return _eval_norm(tr.eval_bc), _eval_norm(tr.eval_init)
    return _offline_norm(tr.offline, "bc"), _offline_norm(tr.offline, "improved")


def offline_returns(tr: TaskResult) -> tuple[float, float]:
    """Normalised return of the chosen BC member and of its offline-PPO improvement: from the
    pipeline's evaluation (evaluation.episodes episodes) when present, else the offline
    stage's own short evaluation; the mean over pipeline seeds."""
    pairs = [_offline_returns_of(p) for p in tr.each()]
    return _mean_std([b for b, _ in pairs])[0], _mean_std([i for _, i in pairs])[0]


def return_before(tr: TaskResult, key: str = "normalized_return_mean") -> tuple[float, float]:
    """The offline init's evaluated return (mean, std over pipeline seeds)."""
    return _mean_std([_float((p.eval_init or {}).get(key)) for p in tr.each()])


def summary_rows(results: list[TaskResult]) -> list[dict[str, Any]]:
    """One row per task x method that has at least one run."""
    rows = []
    for tr in results:
        bc_return, offline_return = offline_returns(tr)
        for method, runs in tr.runs.items():
            ir = _mean_std([r.last["ir_failure_episodes"] for r in runs])
            after = _mean_std([_eval_norm(r.eval_final) for r in runs])
            raw = _mean_std([_float((r.eval_final or {}).get("return_mean")) for r in runs])
            before, before_std = return_before(tr)
            rows.append({
                "task": tr.task, "method": method, "seeds_found": len(runs),
                "seeds_complete": sum(r.complete for r in runs),
                "env_steps_mean": _mean_std([r.last["env_steps"] for r in runs])[0],
                "ir_failure_episodes_mean": ir[0], "ir_failure_episodes_std": ir[1],
                "episodes_mean": _mean_std([r.last["episodes"] for r in runs])[0],
                "failure_episode_frac_mean": _mean_std(
                    [r.last["ir_failure_episodes"] / max(r.last["episodes"], 1) for r in runs])[0],
                "return_before": before, "return_before_std": before_std,
                "return_after_mean": after[0], "return_after_std": after[1],
                "raw_return_before": return_before(tr, "return_mean")[0],
                "raw_return_after_mean": raw[0], "raw_return_after_std": raw[1],
                "success_before": return_before(tr, "success_rate")[0],
                "success_after_mean": _mean_std(
                    [_float((r.eval_final or {}).get("success_rate")) for r in runs])[0],
                "failure_rate_after_mean": _mean_std(
                    [_float((r.eval_final or {}).get("failure_rate")) for r in runs])[0],
                "train_success_rate_last": _mean_std(
                    [r.last.get("success_rate", math.nan) for r in runs])[0],
                "replaced_frac_mean": _mean_std(
                    [r.last.get("replaced_frac_total", math.nan) for r in runs])[0],
                "steps_per_s_mean": _mean_std([r.steps_per_s for r in runs])[0],
                "bc_return": bc_return, "offline_return": offline_return,
            })  # fmt: skip
    return rows


RUN_FIELDS = ["task", "method", "seed", "complete", "env_steps", "ir_failure_episodes",
              "episodes", "return_after", "raw_return_after"]  # fmt: skip


def run_rows(results: list[TaskResult]) -> list[dict[str, Any]]:
    """One row per online run: what ``summary_rows`` averages, before it is averaged."""
    return [
        {"task": tr.task, "method": method, "seed": r.seed, "complete": int(r.complete),
         "env_steps": r.last["env_steps"], "ir_failure_episodes": r.last["ir_failure_episodes"],
         "episodes": r.last["episodes"], "return_after": _eval_norm(r.eval_final),
         "raw_return_after": _float((r.eval_final or {}).get("return_mean"))}
        for tr in results for method, runs in tr.runs.items() for r in runs
    ]  # fmt: skip


def _fmt(v: Any) -> str:
    """CSV cell: floats with 6 significant digits, NaN as an empty cell."""
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    return str(v)


def _csv_text(fields: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in fields})
    return buf.getvalue()


def _pm(mean: float, std: float, digits: int = 1) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}"


def markdown_table(
    cfg: ExperimentConfig, rows: list[dict[str, Any]], results: list[TaskResult]
) -> str:
    """Table II-like failure table, return table, offline/calibration/latency tables."""
    by = {(r["task"], r["method"]): r for r in rows}
    methods = cfg.methods
    tasks = [task_name(t) for t in cfg.tasks]
    lines = [f"# {cfg.name}: IR-failure episodes during fine-tuning (mean ± std over seeds)", ""]
    steps = f"{cfg.online.steps:g} online env steps per run, seeds {cfg.seeds}"
    lines += [f"{steps}. Lower is better.", ""]
    for m in methods:  # a label's registry method, task by task (method_for)
        runs = {t: cfg.for_task(t).method_of(m) for t in cfg.tasks}
        if any(run != m for run in runs.values()):
            lines += [f"`{m}` runs " + ", ".join(f"{r} on {task_name(t)}" for t, r in runs.items())
                      + ".", ""]  # fmt: skip
    ratio = "farm" in methods and "unio4" in methods
    head = ["Task", *(LABELS.get(m, m) for m in methods)] + (["FARM / Uni-O4"] if ratio else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in tasks:
        cells = [t]
        for m in methods:
            r = by.get((t, m))
            cell = _pm(r["ir_failure_episodes_mean"], r["ir_failure_episodes_std"]) if r else "–"
            if (
                r
                and r["seeds_complete"] < r["seeds_found"]
                or (r and r["seeds_found"] < len(cfg.seeds))
            ):
                cell += f" ({r['seeds_complete']}/{len(cfg.seeds)} done)"
            cells.append(cell)
        if ratio:
            f, u = by.get((t, "farm")), by.get((t, "unio4"))
            ok = f and u and u["ir_failure_episodes_mean"] > 0
            cells.append(
                f"{f['ir_failure_episodes_mean'] / u['ir_failure_episodes_mean']:.2f}"
                if ok
                else "–"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Normalised return (expert = 100, random = 0), deterministic evaluation", ""]
    head = ["Task", "Method", "before (offline init)", "after fine-tuning", "success after",
            "episodes with IR failure / all", "replaced actions", "online steps/s"]  # fmt: skip
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in tasks:
        for m in methods:
            r = by.get((t, m))
            if not r:
                continue
            lines.append("| " + " | ".join([
                t, LABELS.get(m, m), _pm(r["return_before"], math.nan),
                _pm(r["return_after_mean"], r["return_after_std"]),
                _pm(r["success_after_mean"], math.nan, 2),
                _pm(r["failure_episode_frac_mean"], math.nan, 3),
                _pm(r["replaced_frac_mean"], math.nan, 3), _pm(r["steps_per_s_mean"], math.nan, 0),
            ]) + " |")  # fmt: skip
    lines += ["", "## Offline stage (normalised return of the chosen member)", ""]
    lines += ["| Task | BC | offline PPO (Uni-O4) |", "|---|---|---|"]
    for tr in results:
        bc, improved = offline_returns(tr)
        lines.append(f"| {tr.task} | {_pm(bc, math.nan)} | {_pm(improved, math.nan)} |")
    lines += _calibration_lines(results) + _latency_lines(results, rows)
    return "\n".join(lines) + "\n"


def _calibration_lines(results: list[TaskResult]) -> list[str]:
    out = [
        "",
        "## Safety-score calibration on held-out noisy roll-outs (IR failure within H steps)",
        "",
    ]
    head = ["Task", "score", "eps_safe", "ROC-AUC", "precision", "recall", "firing rate",
            "expert firing rate"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tr in [p for t in results for p in t.each()]:
        for name in ("world_model_c_h", "world_model_logged_actions", "qrisk"):
            c = (tr.calibration or {}).get(name)
            if not c:
                continue
            label = f"{tr.task} ({tr.pipeline})" if tr.pipeline else tr.task
            if "error" in c:
                out.append(f"| {label} | {name} | | {c['error']} | | | | |")
                continue
            keys = ("eps_safe", "roc_auc", "precision", "recall", "firing_rate",
                    "expert_firing_rate")  # fmt: skip
            vals = [c.get(k) for k in keys]
            out.append(
                "| "
                + " | ".join([label, name, *("–" if v is None else f"{v:.3f}" for v in vals)])
                + " |"
            )
    return out


def latency_rows(results: list[TaskResult], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gate latency per task and batch size, with the same task's online steps/s."""
    by = {(r["task"], r["method"]): r for r in rows}
    out = []
    for tr in results:
        for key, lat in sorted((tr.latency or {}).items()):
            if not key.startswith("batch"):
                continue
            u = by.get((tr.task, "unio4"), {}).get("steps_per_s_mean", math.nan)
            f = by.get((tr.task, "farm"), {}).get("steps_per_s_mean", math.nan)
            out.append({
                "task": tr.task, "batch": lat["batch"], "p50_ms": lat["p50_ms"],
                "p99_ms": lat["p99_ms"], "replaced_frac": lat.get("replaced_frac", math.nan),
                "unio4_steps_per_s": u, "farm_steps_per_s": f,
                "farm_over_unio4": f / u if u and math.isfinite(u) else math.nan,
            })  # fmt: skip
    return out


LATENCY_FIELDS = ["task", "batch", "p50_ms", "p99_ms", "replaced_frac", "unio4_steps_per_s",
                  "farm_steps_per_s", "farm_over_unio4"]  # fmt: skip


def _latency_lines(results: list[TaskResult], rows: list[dict[str, Any]]) -> list[str]:
    lat = latency_rows(results, rows)
    if not lat:
        return []
    out = ["", "## SafetyGate.__call__ latency (1 thread) and online throughput", ""]
    out += [
        "| Task | batch | p50 ms | p99 ms | Uni-O4 steps/s | FARM steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in lat:
        out.append(f"| {r['task']} | {r['batch']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                   f"{_pm(r['unio4_steps_per_s'], math.nan, 0)} | {_pm(r['farm_steps_per_s'], math.nan, 0)} |")  # fmt: skip
    return out


# ---------------------------------------------------------------------- figures
def _curve(runs: list[RunResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds aligned on update index (same batch size), cut to the shortest run; from (0, 0)."""
    n = min(len(r.env_steps) for r in runs)
    x = np.concatenate([[0.0], np.mean([r.env_steps[:n] for r in runs], axis=0)])
    y = np.stack([np.concatenate([[0.0], r.ir_failure_episodes[:n]]) for r in runs])
    return x, y.mean(0), y.std(0)


def plot_failures(results: list[TaskResult], methods: list[str], path: Path) -> None:
    """Fig. 4: cumulative IR-failure episodes vs env steps, mean ± std band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), squeeze=False)
    colors = method_colors(methods)
    for ax, tr in zip(axes[0], results, strict=True):
        for m in methods:
            if m not in tr.runs:
                continue
            x, mu, sd = _curve(tr.runs[m])
            ax.plot(x, mu, color=colors[m], label=LABELS.get(m, m))
            ax.fill_between(x, mu - sd, mu + sd, color=colors[m], alpha=0.2, linewidth=0)
        ax.set_title(tr.task)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cumulative IR-failure episodes")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)


def plot_returns(
    rows: list[dict[str, Any]], tasks: list[str], methods: list[str], path: Path
) -> None:
    """Fig. 5: normalised return before / after fine-tuning per task and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["task"], r["method"]): r for r in rows}
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.4), squeeze=False)
    width, colors = 0.38, method_colors(methods)
    for ax, t in zip(axes[0], tasks, strict=True):
        ms = [m for m in methods if (t, m) in by]
        for i, m in enumerate(ms):
            r = by[(t, m)]
            c = colors[m]
            ax.bar(i - width / 2, np.nan_to_num(r["return_before"]), width, color=c, alpha=0.35,
                   label="before" if i == 0 else None)  # fmt: skip
            ax.bar(i + width / 2, np.nan_to_num(r["return_after_mean"]), width, color=c,
                   yerr=np.nan_to_num(r["return_after_std"]), capsize=3,
                   label="after" if i == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(ms)), [LABELS.get(m, m) for m in ms], fontsize=8)
        ax.axhline(100, color="gray", linestyle="--", linewidth=0.8)
        ax.set_title(t)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("normalised return (expert = 100)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)


def _save_fig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


# ---------------------------------------------------------------------- entry point
def write_report(
    cfg: ExperimentConfig, runs_dir: str | Path = "runs", results_dir: str | Path = "results"
) -> Path:
    """Save the runs' small files to ``results_dir/ledger`` (``ledger.py``), then write
    summary.csv, table.md, fig4_failures.png, fig5_returns.png, latency.csv from the runs and
    the ledger together."""
    out = Path(results_dir) / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    ledger = Path(results_dir) / LEDGER
    save_experiment_ledger(cfg, runs_dir, ledger)
    results = [load_task(cfg, t, runs_dir, ledger) for t in cfg.tasks]
    rows = summary_rows(results)
    write_text(out / "summary.csv", _csv_text(SUMMARY_FIELDS, rows))
    write_text(out / "runs.csv", _csv_text(RUN_FIELDS, run_rows(results)))
    write_text(out / "table.md", markdown_table(cfg, rows, results))
    write_text(out / "latency.csv", _csv_text(LATENCY_FIELDS, latency_rows(results, rows)))
    write_json(out / "calibration.json", {
        f"{p.task}/{p.pipeline}" if p.pipeline else p.task: p.calibration
        for tr in results for p in tr.each()
    })  # fmt: skip
    plot_failures(results, cfg.methods, out / "fig4_failures.png")
    plot_returns(rows, [task_name(t) for t in cfg.tasks], cfg.methods, out / "fig5_returns.png")
    from farm_trainer.experiments.paper_tables import write_paper_tables

    write_paper_tables(cfg, rows, results, out)
    return out
