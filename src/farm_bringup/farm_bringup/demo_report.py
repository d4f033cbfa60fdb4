"""The main job's bookkeeping (no rclpy): per-episode outcomes of a graph run, the with/without
gate comparison, the JSON summary and the C_H plot."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from failurebench_sim.atomic import atomic_write, write_json
from failurebench_sim.episodes import episode_success


@dataclass
class EpisodeRecord:
    episode: int
    ret: float = 0.0
    steps: int = 0
    reached_success: bool = False
    ir_failure: bool = False
    replaced: int = 0

    @property
    def success(self) -> bool:
        return episode_success(self.reached_success, self.ir_failure)


@dataclass
class RunRecorder:
    """Joins the twin's episode state, the arbiter's decisions and the episode events by stamp."""

    episode_of: dict[int, tuple[int, int]] = field(default_factory=dict)  # stamp -> (ep, step)
    decisions: dict[int, tuple[float, bool, float]] = field(default_factory=dict)  # score, rep, eps
    events: list[tuple[str, int, int, float]] = field(default_factory=list)  # kind, ep, step, ret
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each decision

    def steady_rate(self, skip: int = 100) -> float:
        """Decisions per second after the first ``skip`` (start-up: discovery, first calls)."""
        a = self.arrivals[skip:]
        return (len(a) - 1) / (a[-1] - a[0]) if len(a) > 1 and a[-1] > a[0] else float("nan")

    def episodes(self) -> list[EpisodeRecord]:
        eps: dict[int, EpisodeRecord] = {}
        for kind, ep, step, ret in self.events:
            rec = eps.setdefault(ep, EpisodeRecord(ep))
            if kind == "success":
                rec.reached_success = True
            elif kind in ("ir_failure", "timeout"):
                rec.ir_failure |= kind == "ir_failure"
                rec.ret, rec.steps = ret, step
        replaced: dict[int, int] = defaultdict(int)
        for stamp, (_, rep, _) in self.decisions.items():
            if rep and stamp in self.episode_of:
                replaced[self.episode_of[stamp][0]] += 1
        ended = {k for kind, k, _, _ in self.events if kind in ("ir_failure", "timeout")}
        out = [eps[k] for k in sorted(ended)]
        for rec in out:
            rec.replaced = replaced[rec.episode]
        return out

    def score_trace(self) -> dict[str, np.ndarray]:
        """Per decided frame, in stamp order: step index, C_H, replaced, eps_safe."""
        stamps = sorted(self.decisions)
        d = np.array([self.decisions[s] for s in stamps], dtype=float).reshape(-1, 3)
        return {"frame": np.arange(len(stamps)), "score": d[:, 0], "replaced": d[:, 1] > 0.5,
                "eps_safe": d[:, 2]}  # fmt: skip


def summarize(episodes: list[EpisodeRecord]) -> dict[str, Any]:
    n = max(len(episodes), 1)
    return {
        "episodes": len(episodes),
        "ir_failures": int(sum(e.ir_failure for e in episodes)),
        "successes": int(sum(e.success for e in episodes)),
        "return_mean": float(np.mean([e.ret for e in episodes])) if episodes else float("nan"),
        "replaced_actions": int(sum(e.replaced for e in episodes)),
        "replaced_frac": sum(e.replaced for e in episodes) / max(sum(e.steps for e in episodes), 1),
        "success_rate": sum(e.success for e in episodes) / n,
        "per_episode": [{**asdict(e), "success": e.success} for e in episodes],
    }


def write_outputs(out_dir: Path, summary: dict[str, Any], trace: dict[str, np.ndarray]) -> None:
    """``summary.json`` and ``c_h.png`` (C_H over the gated run, eps_safe, recovery steps)."""
    write_json(out_dir / "summary.json", summary)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.5))
    x, s = trace["frame"], np.clip(trace["score"], 1e-6, None)
    ax.semilogy(x, s, lw=0.8, label="C_H of the proposed action")
    if len(x):
        ax.axhline(trace["eps_safe"][0], color="k", ls="--", lw=1, label="eps_safe")
    rep = trace["replaced"]
    ax.scatter(x[rep], s[rep], color="red", s=8, zorder=3, label="recovery ran")
    ax.set_xlabel("control step (gated run)")
    ax.set_ylabel("C_H")
    ax.set_title(f"{summary['task']}: safety score through the graph")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    atomic_write(out_dir / "c_h.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
