"""Stage bookkeeping: each unit of work (a stage, or one item of it) records the config that
made it, and is re-run when that record differs from the current config.

A unit's hash is sha256 over its id, exactly the config values it reads, and the hashes of the
units it needs, so a change anywhere upstream changes every hash downstream. The record
(``records/<stage>.<item>.json``) holds that hash and config; a reused unit's record points
``at`` the experiment whose outputs it uses (``inputs``).

A hash names a config, not a result: the same config run again on another CPU gives other
weights and data (floats differ in the last bits, and RL amplifies them). So a done record
also names its production (``run_id``) and the productions of the units it read
(``inputs``), and a unit whose inputs were rebuilt since it ran is stale (``production``):
every method of a pipeline seed is compared from the same offline checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from failurebench_sim.atomic import write_json
from farm_trainer.experiments.layout import STAGE_LOG, TaskLayout


@dataclass
class Unit:
    """One unit of work: its config slice, inputs (unit ids), outputs (task-root relative)."""

    stage: str
    item: str
    config: dict[str, Any]
    needs: tuple[str, ...]
    outputs: tuple[str, ...]
    run: Callable[[], Any]
    clean: tuple[str, ...] = ()
    """removed before a run from a different config (a fresh start, not a resume)"""
    seed: int | None = None
    """online / evaluate units of one seed (run seed-major)"""
    ledger: tuple[str, ...] = ()
    """small files (task-root relative) besides its json / csv outputs that stand for the
    unit's result in the ledger (``ledger.py``), e.g. an online run's ``progress.csv``"""

    @property
    def id(self) -> str:
        return f"{self.stage}/{self.item}" if self.item else self.stage


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def unit_hash(unit: Unit, upstream: dict[str, str]) -> str:
    payload = {"unit": unit.id, "config": unit.config, "needs": upstream}
    return hashlib.sha256(canonical(payload).encode()).hexdigest()[:16]


def read_record(layout: TaskLayout, unit_id: str) -> dict[str, Any] | None:
    path = layout.record_path(unit_id)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_record(
    layout: TaskLayout, unit: Unit, h: str, needs: dict[str, str], **extra: Any
) -> None:
    write_json(
        layout.record_path(unit.id),
        {"unit": unit.id, "hash": h, "config": unit.config, "needs": needs, **extra,
         "time": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    )  # fmt: skip


def resolve(layout: TaskLayout, unit_id: str, depth: int = 0) -> tuple[TaskLayout, dict | None]:
    """Follow ``at`` references to the layout whose files a unit's record describes."""
    rec = read_record(layout, unit_id)
    if rec and rec.get("at") and depth < 8:
        return resolve(layout.of(rec["at"]), unit_id, depth + 1)
    return layout, rec


def new_run_id() -> str:
    """The id of one production of a unit's outputs (a done record's ``run_id``)."""
    return uuid.uuid4().hex[:16]


def production(layout: TaskLayout, unit_id: str) -> str | None:
    """Which production of ``unit_id``'s outputs ``layout`` holds (following ``at``): its
    record's ``run_id``, ``time:<finish time>`` for records of before run ids, None when not
    done."""
    _, rec = resolve(layout, unit_id)
    if not rec or rec.get("state") != "done":
        return None
    return rec.get("run_id") or f"time:{rec.get('time')}"


def finished_after(layout: TaskLayout, unit_id: str, rec: dict[str, Any]) -> bool:
    """Whether ``unit_id``'s done record (at ``layout``, following ``at``) is newer than
    ``rec``: the rule for records of before ``inputs`` (a rebuilt input is newer than what was
    made from it)."""
    _, made = resolve(layout, unit_id)
    try:
        return datetime.fromisoformat(made["time"]) > datetime.fromisoformat(rec["time"])
    except (TypeError, KeyError, ValueError):
        return False


def flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = flat(json.loads(canonical(old))), flat(json.loads(canonical(new)))
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


@dataclass
class Decision:
    """What to do with a unit: ``skip`` (up to date), ``reuse`` (another experiment's), ``run``."""

    action: str
    reason: str
    layout: TaskLayout
    fresh: bool = False
    """run: the recorded config differs (outputs are removed first; no resume)"""
    stale: bool = False
    """a record this run replaces exists (of a different config, or made from rebuilt inputs)"""


def up_to_date(layout: TaskLayout, unit: Unit, h: str) -> tuple[TaskLayout, bool]:
    where, rec = resolve(layout, unit.id)
    ok = bool(rec and rec.get("hash") == h and rec.get("state") == "done")
    return where, ok and all((where.root / p).exists() for p in unit.outputs)


def decide(
    layout: TaskLayout, unit: Unit, h: str, needs: dict[str, str], inputs: list[str]
) -> Decision:
    """Compare the unit's records (own, then ``inputs`` experiments') with hash ``h``."""
    where, ok = up_to_date(layout, unit, h)
    if ok:
        note = "" if where == layout else f" (files of {where.experiment})"
        return Decision("skip", f"up to date{note}", where)
    for other in inputs:
        where, ok = up_to_date(layout.of(other), unit, h)
        if ok:
            return Decision("reuse", f"reused from {where.experiment}", where)
    rec = read_record(layout, unit.id)
    if rec is None:
        present = any((layout.root / p).exists() for p in unit.outputs)
        why = "no record of the config that made the outputs" if present else "output missing"
        return Decision("run", why, layout, fresh=True)
    if rec.get("hash") != h:
        keys = changed_keys(rec.get("config", {}), unit.config)
        if keys:
            why = f"config changed: {', '.join(keys)}"
        else:
            ups = sorted(k for k in set(needs) | set(rec.get("needs", {}))
                         if needs.get(k) != rec.get("needs", {}).get(k))  # fmt: skip
            why = f"upstream changed: {', '.join(ups)}"
        return Decision("run", why, layout, fresh=True, stale=True)
    if rec.get("at"):
        return Decision(
            "run", f"reused files of {rec['at']} are gone or changed", layout, fresh=True
        )
    why = "interrupted: resuming" if rec.get("state") != "done" else "output missing"
    return Decision("run", why, layout)


def remove(layout: TaskLayout, rel_paths: tuple[str, ...]) -> None:
    for rel in rel_paths:
        p = layout.root / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


@dataclass
class StageLog:
    """``stage_log.jsonl``: one line per unit and pipeline call (ran | skipped | reused)."""

    layout: TaskLayout
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, unit: Unit, status: str, reason: str, h: str, seconds: float = 0.0) -> None:
        row = {"stage": unit.stage, "item": unit.item, "status": status, "reason": reason,
               "hash": h, "seconds": round(seconds, 3),
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with open(self.layout.root / STAGE_LOG, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.rows.append(row)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
