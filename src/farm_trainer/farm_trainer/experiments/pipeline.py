"""The experiment pipeline of one task: FailureBench data -> offline -> world model -> online.

Stages, in order (``STAGES``; one module each in ``experiments/stages/``):

    data              data/{task_demos,recovery_demos,expert}.npz
    offline_task      offline_task/      Uni-O4 BC ensemble -> offline PPO (task demos)
    offline_recovery  offline_recovery/  the same pipeline on recovery demos
    failures          data/{failures,failures_near,heldout}.npz  noisy roll-outs of the task policy
    world_model       world_model/world_model.safetensors   task demos + failures (Eq. 4-9)
    qrisk             world_model/qrisk.safetensors         Recovery RL's critic (recrl only)
    calibration       calibration/{eps_safe,calibration,qrisk,latency}.json
    online            online/<method>_s<seed>/  PPO from the SAME offline checkpoints
    evaluate          offline_task/eval_{init,bc}.json, online/<run>/eval_final.json

Each unit of work (a stage or one item of it) is skipped only when its record
(``records/``) holds the hash of the config it would run with now (``records.py``); otherwise
it runs again, and so does everything downstream. ``inputs`` reuses another experiment's
up-to-date units by reference. With a ledger (``ledger.py``, the committed copy of the runs'
small files), a unit done there with the same hash is skipped too when nothing that still has to
run needs its weights. A unit is stale, whatever its hash, when an input it read was rebuilt
since (``records.production``): a rebuilt offline stage re-runs every method of its seed.
Every decision is appended to ``stage_log.jsonl``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from farm_trainer.experiments.config import (
    STAGES,
    ExperimentConfig,
    load_config,
    pipeline_of,
    seed_configs,
)
from farm_trainer.experiments.context import PipelineError, TaskContext, log_line
from farm_trainer.experiments.layout import TaskLayout, task_name
from farm_trainer.experiments.ledger import kept, ledger_layout, ledger_sources, save_ledger
from farm_trainer.experiments.records import (
    Decision,
    StageLog,
    Unit,
    decide,
    finished_after,
    new_run_id,
    production,
    read_record,
    remove,
    resolve,
    timed,
    unit_hash,
    write_record,
)
from farm_trainer.experiments.stages import STAGE_UNITS

if TYPE_CHECKING:
    from farm_trainer.experiments.sweep import Job

__all__ = ["STAGES", "PipelineError", "TaskPipeline", "run_experiment"]


def _check_stages(stages: Iterable[str]) -> list[str]:
    """Stage names, or ``stage/item`` for one unit (e.g. ``data/task_demos``)."""
    stages = list(stages)
    unknown = {s for s in stages if s.split("/")[0] not in STAGES}
    if unknown:
        raise PipelineError(f"unknown stage(s) {sorted(unknown)}; choose from {STAGES}")
    return stages


def _selected(unit: Unit, stages: set[str]) -> bool:
    return unit.stage in stages or unit.id in stages


class TaskPipeline:
    """All units of one task under ``runs_dir/<experiment>/<task>/``."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        task: str,
        runs_dir: str | Path = "runs",
        progress: bool = False,
        log: Callable[[str], None] = log_line,
        rebuild: bool = True,
        ledger: str | Path | None = None,
    ) -> None:
        """``ledger``: the ledger directory (``results/ledger``) to skip finished units from."""
        from failurebench_sim.datasets import resolve_env_id

        cfg = cfg.for_task(task)
        self.cfg, self.task, self.log, self.rebuild = cfg, task, log, rebuild
        self.layout = TaskLayout(Path(runs_dir), cfg.name, task)
        self.ctx = TaskContext(cfg, task, resolve_env_id(task), self.layout, self.locate,
                               progress, log)  # fmt: skip
        self.units: dict[str, Unit] = {}
        for stage in STAGES:
            for unit in STAGE_UNITS[stage](self.ctx):
                self.units[unit.id] = unit
        self.hashes: dict[str, str] = {}
        for uid, unit in self.units.items():  # pipeline order: needs come first
            self.hashes[uid] = unit_hash(unit, self.needs(unit))
        self.dependents: dict[str, list[str]] = {uid: [] for uid in self.units}
        for uid, unit in self.units.items():
            for n in unit.needs:
                if n in self.dependents:
                    self.dependents[n].append(uid)
        self.ledger = None if ledger is None else ledger_layout(ledger, self.layout)
        self.where: dict[str, TaskLayout] = {}
        self.log_file = StageLog(self.layout)

    @property
    def root(self) -> Path:
        return self.layout.root

    def needs(self, unit: Unit) -> dict[str, str]:
        return {n: self.hashes[n] for n in unit.needs}

    def inputs(self, unit: Unit) -> list[str]:
        """Experiments named by ``inputs`` for this unit (``stage/item`` before ``stage``)."""
        return self.cfg.inputs_of(unit.id)

    def decide(self, uid: str) -> Decision:
        return self.decide_all()[uid]

    def decide_all(self) -> dict[str, Decision]:
        """Every unit's decision, from the records as they are now.

        A unit runs when it has no record of its hash anywhere (``records.decide``), when its
        record was made from another production of an input than the one there now
        (``stale_input``), or when an input runs (everything made from a rebuilt input is
        stale). A unit of binary outputs that only the ledger holds (``ledger_skip``) runs
        when a unit that needs it runs. The last two rules feed each other, so they are
        applied until nothing changes.
        """
        base: dict[str, Decision] = {}
        from_ledger: set[str] = set()  # binary units that only the ledger holds
        local = {uid for uid in self.units if read_record(self.layout, uid) is not None}
        for uid, unit in self.units.items():
            d = decide(self.layout, unit, self.hashes[uid], self.needs(unit), self.inputs(unit))
            # the ledger stands in only for units of which runs/ knows nothing (a new
            # checkout); a local record (an interrupted run, a deleted output) is the truth
            booked = self.ledger_skip(uid) if d.action == "run" and uid not in local else None
            if booked is not None:
                d = booked
                if not all(kept(Path(p)) for p in unit.outputs):
                    from_ledger.add(uid)
            base[uid] = d
        runs: dict[str, Decision] = {}
        for uid, d in base.items():
            resuming = d.action == "run" and not d.fresh
            why = self.stale_input(uid, d.layout, base) if d.action != "run" or resuming else None
            if why is not None:
                runs[uid] = Decision("run", why, self.layout, fresh=True, stale=True)
            elif d.action == "run":
                runs[uid] = d
        changed = True
        while changed:
            changed = False
            for uid, unit in self.units.items():
                d = runs.get(uid)
                if d is not None and d.fresh:
                    continue
                rebuilt = next((n for n in unit.needs if n in runs), None)
                if rebuilt is not None:  # made (or resuming) from weights that are to change
                    runs[uid] = Decision("run", f"input {rebuilt} is to be rebuilt", self.layout,
                                         fresh=True, stale=uid in local)  # fmt: skip
                    changed = True
                elif d is None and uid in from_ledger:
                    needed = next((x for x in self.dependents[uid] if x in runs), None)
                    if needed is not None:
                        runs[uid] = Decision("run", f"output missing (needed by {needed})",
                                             self.layout, fresh=True)  # fmt: skip
                        changed = True
        return {uid: runs.get(uid, d) for uid, d in base.items()}

    def stale_input(self, uid: str, where: TaskLayout, located: dict[str, Decision]) -> str | None:
        """Why ``uid``'s record at ``where`` no longer stands for its inputs, which are where
        ``located`` says (None: it does): one it read is another production than the one there
        now (records without ``inputs``: finished after it)."""
        _, rec = resolve(where, uid)
        if rec is None:
            return None
        made_from = rec.get("inputs")
        for n in self.units[uid].needs:
            at = located[n].layout
            if (made_from.get(n) != production(at, n) if made_from is not None
                    else finished_after(at, n, rec)):  # fmt: skip
                return f"input {n} was rebuilt after it ran"
        return None

    def input_productions(self, unit: Unit) -> dict[str, str | None]:
        """The production of each unit ``unit`` reads (a record's ``inputs``)."""
        return {n: production(self.locate(n), n) for n in unit.needs}

    def ledger_skip(self, uid: str) -> Decision | None:
        """A skip of ``uid`` from the ledger (this experiment's, else that of an experiment
        ``inputs`` names for the unit): its record there is done with the current hash, and its
        small outputs and ``Unit.ledger`` files are there. None without a ledger or record."""
        if self.ledger is None:
            return None
        unit = self.units[uid]
        small = [p for p in unit.outputs if kept(Path(p))] + list(unit.ledger)
        for ledger in ledger_sources(self.cfg, self.ledger, uid):
            where, rec = resolve(ledger, uid)
            if (rec and rec.get("hash") == self.hashes[uid] and rec.get("state") == "done"
                    and all((where.root / p).exists() for p in small)):  # fmt: skip
                of = "" if where.experiment == self.layout.experiment else f" of {where.experiment}"
                return Decision("skip", f"done in the ledger{of} ({self.ledger.runs_dir})", where)
        return None

    def locate(self, uid: str) -> TaskLayout:
        """Where unit ``uid``'s files are (another experiment's when reused)."""
        if uid not in self.where and uid in self.units:
            d = self.decide(uid)
            if d.action != "run":
                self.where[uid] = d.layout
        return self.where.get(uid, self.layout)

    # ------------------------------------------------------------------ plan
    def plan(self, stages: Iterable[str] = STAGES) -> list[tuple[Unit, Decision]]:
        """Every selected unit with what a run would do and why (nothing is written)."""
        stages = set(_check_stages(stages))
        decisions = self.decide_all()
        return [(u, decisions[uid]) for uid, u in self.units.items() if _selected(u, stages)]

    def check_stale(self, stages: Iterable[str] = STAGES) -> None:
        """With ``rebuild=False``: stop before any work if a unit's record is of another config."""
        if self.rebuild:
            return
        stale = [f"{u.id} ({d.reason})" for u, d in self.plan(stages) if d.stale]
        if stale:
            raise PipelineError(
                f"{task_name(self.task)}: outputs made by a different config or from rebuilt"
                f" inputs: {'; '.join(stale)}."
                " Re-run without --no-rebuild to rebuild them (and everything downstream)"
            )

    # ------------------------------------------------------------------ run
    def run(self, stages: Iterable[str] = STAGES, seeds: Iterable[int] | None = None) -> None:
        """Run the selected stages (online / evaluate units of ``seeds`` only) in order."""
        import torch

        stages = set(_check_stages(stages))
        self.check_stale(stages)
        torch.set_num_threads(1)
        seeds = set(self.cfg.seeds if seeds is None else seeds)
        first = self.cfg.seeds[0] in seeds  # units of no seed run with the first seed's round
        for uid, unit in self.units.items():
            if _selected(unit, stages) and (unit.seed in seeds if unit.seed is not None else first):
                self.run_unit(uid)

    def run_unit(self, uid: str) -> None:
        unit, h = self.units[uid], self.hashes[uid]
        label = f"{task_name(self.task)} {uid}"
        self._require(unit)
        d = self.decide(uid)
        if d.action == "skip":
            self.where[uid] = d.layout
            self.log_file.add(unit, "skipped", d.reason, h)
            self.log(f"[pipeline] {label}: {d.reason}, skipped")
            return
        if d.action == "reuse":
            remove(self.layout, unit.clean or unit.outputs)
            write_record(self.layout, unit, h, self.needs(unit), state="done",
                         at=d.layout.experiment)  # fmt: skip
            self.where[uid] = d.layout
            self.log_file.add(unit, "reused", d.reason, h)
            self.log(f"[pipeline] {label}: {d.reason}")
            return
        if d.stale and not self.rebuild:
            raise PipelineError(f"{label}: {d.reason} (--no-rebuild)")
        self.log(f"[pipeline] {label}: running ({d.reason})")
        if d.fresh:
            remove(self.layout, unit.clean or unit.outputs)
        inputs = self.input_productions(unit)
        write_record(self.layout, unit, h, self.needs(unit), state="started", inputs=inputs)
        self.where[uid] = self.layout
        dt = timed(unit.run)
        write_record(self.layout, unit, h, self.needs(unit), state="done", seconds=round(dt, 3),
                     inputs=inputs, run_id=new_run_id())  # fmt: skip
        self.log_file.add(unit, "ran", d.reason, h, dt)
        self.log(f"[pipeline] {label}: finished in {dt:.1f} s")

    def _require(self, unit: Unit) -> None:
        """Every unit this one needs is up to date (run now, or skipped / reused)."""
        missing = []
        todo = [n for n in unit.needs if n not in self.where]
        decisions = self.decide_all() if todo else {}
        for n in todo:
            d = decisions[n]
            if d.action == "run":
                missing.append(f"{n} ({d.reason})")
            else:
                self.where[n] = d.layout
        if missing:
            raise PipelineError(
                f"{self.task}: missing input(s) for {unit.id}: {', '.join(missing)};"
                " run the earlier stages"
            )


def task_contexts(
    experiment: str,
    seed: int,
    tasks: Iterable[str] | None = None,
    runs_dir: str | Path = "runs",
    configs: str | Path = "config/experiments",
    ledger: str | Path | None = "results/ledger",
) -> Iterable[TaskContext]:
    """The finished pipeline's context of each task (default: the config's) for pipeline seed
    ``seed`` of ``configs/<experiment>.yaml``: what the probe scripts read checkpoints from
    (small files such as a calibrated eps_safe also from ``ledger``, when runs/ lacks them)."""
    cfg = pipeline_of(load_config(Path(configs) / f"{experiment}.yaml"), seed)
    for task in tasks or cfg.tasks:
        yield TaskPipeline(cfg, task, runs_dir, log=lambda s: None, ledger=ledger).ctx


def run_experiment(
    cfg: ExperimentConfig,
    runs_dir: str | Path = "runs",
    stages: Iterable[str] = STAGES,
    progress: bool = False,
    log: Callable[[str], None] = log_line,
    after_round: Callable[[], None] | None = None,
    rebuild: bool = True,
    ray: bool = False,
    ray_address: str | None = None,
    workers: int | None = None,
    ledger: str | Path | None = None,
) -> list[TaskPipeline]:
    """Run the selected stages of every pipeline (``seed_configs``) and task of ``cfg``.

    The jobs (``sweep.plan_jobs``) go seed-major, so a long experiment has a complete
    tasks x methods table for the first seed early; ``after_round()`` is called when every run
    of a seed has finished (e.g. to refresh results). ``ray``: the same jobs as Ray tasks
    (``sweep.run_on_ray``: local Ray on 127.0.0.1 with ``workers`` CPUs, or ``ray_address``).
    ``ledger``: units done there are skipped, and each finished job's small files are saved
    there (``ledger.py``).
    """
    from farm_trainer.experiments.sweep import plan_jobs, run_on_ray, run_sequential

    stages = _check_stages(stages)
    pipes = [TaskPipeline(sub, t, runs_dir, progress, log, rebuild, ledger)
             for sub in seed_configs(cfg) for t in sub.tasks]  # fmt: skip
    layouts = {(p.cfg.name, p.task): p.layout for p in pipes}
    for pipe in pipes:
        pipe.check_stale(stages)
    jobs = plan_jobs(cfg, stages)
    left = Counter(j.seed for j in jobs if j.method is not None)

    def on_done(job: Job) -> None:
        if ledger is not None:
            save_ledger(layouts[job.pipeline, job.task], ledger)
        if job.method is None:
            return
        left[job.seed] -= 1
        if left[job.seed] == 0 and after_round is not None:
            after_round()

    if ray or ray_address:
        run_on_ray(cfg, jobs, runs_dir, stages, ray_address, workers, rebuild=rebuild,
                   on_done=on_done, log=log, ledger=ledger)  # fmt: skip
    else:
        run_sequential(cfg, jobs, runs_dir, stages, progress, rebuild, on_done, log, ledger)
    return pipes


def format_plan(pipes: list[TaskPipeline], stages: Iterable[str] = STAGES) -> str:
    """What a run would do, unit by unit: ``run`` / ``reuse`` / ``skip`` and why."""
    lines = []
    for pipe in pipes:
        lines.append(f"{pipe.cfg.name}/{task_name(pipe.task)}:")
        for unit, d in pipe.plan(stages):
            lines.append(f"  {d.action:<6} {unit.id:<28} {d.reason}")
    return "\n".join(lines)
