"""An experiment as independent jobs, run one after another here or as tasks on Ray.

Jobs, in the order the sequential path runs them (seed-major, then method-major, so the first
seed's whole table is complete first, one method's row at a time):

    offline  (pipeline, task)                  every unit of no seed: data, offline stages,
                                               world model, Q-risk, calibration, init eval
    run      (pipeline, task, method, seed)    ``online/<method>_s<seed>`` + its evaluation;
                                               needs its pipeline's offline job

A job is the same ``TaskPipeline`` units either way (``run_job``), so Ray changes where a job
runs, never what it computes: the same seeds give the same results. A job that dies on Ray is
retried (``retries``); the retry resumes an online run from its last checkpoint
(``records``: "interrupted: resuming").
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm_trainer.experiments.config import (
    STAGES,
    ExperimentConfig,
    config_from_dict,
    seed_configs,
)
from farm_trainer.experiments.context import log_line
from farm_trainer.experiments.layout import run_name, task_name

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""a local Ray (no ``--address``) with these binds every server to 127.0.0.1 (Ray turns a
``127.0.0.1`` node address into the LAN one, and its gRPC servers then listen on all
interfaces) and sends no usage statistics; also in ``config/ros_localhost.env``"""
CRASH_ENV = "FARM_SWEEP_CRASH_AFTER_UPDATES"
"""fault injection for tests: the first attempt of every run job exits after this many PPO
updates (and a checkpoint); a marker file beside the run makes it happen once"""


@dataclass(frozen=True)
class Job:
    """One schedulable piece of an experiment (``run is None``: the offline job)."""

    pipeline: str
    """the (sub-)experiment name: ``<name>`` or ``<name>/s<seed>``"""
    task: str
    method: str | None = None
    seed: int | None = None

    @property
    def run(self) -> str | None:
        """``<method>_s<seed>`` (None: the offline job)"""
        return None if self.method is None else run_name(self.method, int(self.seed or 0))

    @property
    def offline(self) -> Job:
        return Job(self.pipeline, self.task)

    @property
    def label(self) -> str:
        return f"{self.pipeline}/{task_name(self.task)}" + (f" {self.run}" if self.run else "")


def runnable(live: Iterable[Job], admitted: Container[Job], finished: Container[Job]) -> int:
    """How many of the ``live`` (admitted, unfinished) jobs can hold a CPU now: all but the run
    jobs whose offline job was admitted and has not finished (Ray keeps those waiting on their
    argument without a CPU, so they must not fill the admission window)."""
    return sum(1 for j in live
               if j.run is None or j.offline not in admitted or j.offline in finished)  # fmt: skip


def _selected(stage: str, stages: set[str], uid: str) -> bool:
    return stage in stages or uid in stages


def plan_jobs(cfg: ExperimentConfig, stages: Iterable[str] = STAGES) -> list[Job]:
    """Every job of ``cfg`` for the selected stages, in the sequential order."""
    stages = set(stages)
    late = any(s.split("/")[0] in ("online", "evaluate") for s in stages)
    early = any(s.split("/")[0] not in ("online", "evaluate") for s in stages)
    jobs: list[Job] = []
    for sub in seed_configs(cfg):
        jobs += [Job(sub.name, t) for t in sub.tasks]
        if late:
            per_task = {t: sub.for_task(t) for t in sub.tasks}  # method labels resolve per task
            for seed in sub.seeds:  # method-major: each method's row fills across the tasks
                for m in sub.methods:
                    jobs += [Job(sub.name, t, c.method_of(m), seed) for t, c in per_task.items()]
    if not early:  # online / evaluate only: the offline job still checks its inputs are there
        jobs = [j for j in jobs if j.run is not None]
    return jobs


def _pipeline(cfg: ExperimentConfig, job: Job, runs_dir: str | Path, progress: bool,
              log: Callable[[str], None], rebuild: bool, ledger: str | None) -> Any:  # fmt: skip
    from farm_trainer.experiments.pipeline import TaskPipeline

    sub = {c.name: c for c in seed_configs(cfg)}[job.pipeline]
    return TaskPipeline(sub, job.task, runs_dir, progress, log, rebuild, ledger)


def run_job(
    cfg_dict: dict[str, Any],
    job: Job,
    runs_dir: str = "runs",
    stages: Sequence[str] = STAGES,
    progress: bool = False,
    rebuild: bool = True,
    after: Any = None,
    log: Callable[[str], None] = log_line,
    ledger: str | None = None,
) -> Job:
    """Run one job's units in this process (``after``: the job it waits for on Ray; unused;
    ``ledger``: skip units done there)."""
    import torch

    torch.set_num_threads(1)
    cfg = config_from_dict(cfg_dict)
    pipe = _pipeline(cfg, job, runs_dir, progress, log, rebuild, ledger)
    selected = set(stages)
    if job.run is None:
        uids = [uid for uid, u in pipe.units.items()
                if u.seed is None and _selected(u.stage, selected, uid)]  # fmt: skip
        _record_config(pipe.root / "experiment_config.json", pipe.cfg.to_dict())
    else:
        uids = [uid for uid in (f"online/{job.run}", f"evaluate/{job.run}")
                if _selected(uid.split("/")[0], selected, uid)]  # fmt: skip
    pipe.check_stale(uids)
    for uid in uids:
        if job.method is not None and uid.startswith("online/"):
            _crash_once(pipe, job, uid)
        pipe.run_unit(uid)
    return job


def _record_config(path: Path, cfg: dict[str, Any]) -> None:
    """Write the config a seed's root ran with, keeping the methods an earlier invocation
    recorded there (``--methods recrl`` adds Rec-RL; it does not erase FARM's record)."""
    import json

    from failurebench_sim.atomic import write_json

    if path.exists():
        try:
            earlier = json.loads(path.read_text()).get("methods", [])
        except (OSError, ValueError):
            earlier = []
        cfg = {**cfg, "methods": list(dict.fromkeys([*earlier, *cfg.get("methods", [])]))}
    write_json(path, cfg)


def _crash_once(pipe: Any, job: Job, uid: str) -> None:
    """``CRASH_ENV`` (tests): the first attempt of an online run trains a few updates, saves
    its checkpoint and kills its own process, as a lost node would."""
    n = os.environ.get(CRASH_ENV)
    marker = pipe.root / "records" / f"{uid.replace('/', '.')}.crashed"
    if not n or marker.exists() or pipe.decide(uid).action != "run":
        return
    from farm_trainer.experiments.records import write_record
    from farm_trainer.experiments.stages.online import run as run_online

    unit = pipe.units[uid]
    write_record(pipe.layout, unit, pipe.hashes[uid], pipe.needs(unit), state="started",
                 inputs=pipe.input_productions(unit))  # fmt: skip
    run_online(pipe.ctx, str(job.method), int(job.seed or 0), max_updates=int(n))
    marker.write_text("this run was killed once on purpose (fault injection)\n")
    os._exit(75)


def loopback_only_ray() -> None:
    """Make the next local ``ray.init`` single-machine: ``LOOPBACK_ENV`` for the Ray processes
    it starts, and the same switch in this process if ray was imported before."""
    os.environ.update(LOOPBACK_ENV)
    import sys

    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


# ---------------------------------------------------------------------- executors
class Progress:
    """One line per finished job: count, elapsed time and the time left over the whole sweep.

    The time left sums, over the jobs not done, the mean duration of finished jobs of the same
    kind (offline / run), divided by the jobs running at once. A job that took under
    ``UP_TO_DATE_S`` found its outputs done: it counts as finished but not in the means, so a
    resumed sweep does not promise the rest at the speed of skipping."""

    UP_TO_DATE_S = 5.0

    def __init__(
        self, jobs: list[Job], log: Callable[[str], None] = log_line, parallel: int = 1
    ) -> None:
        self.left = Counter(_kind(j) for j in jobs)
        self.total, self.done, self.parallel = len(jobs), 0, max(1, parallel)
        self.seconds: dict[str, list[float]] = {"offline": [], "run": []}
        self.t0, self.log = time.perf_counter(), log

    def __call__(self, job: Job, seconds: float) -> None:
        self.done += 1
        self.left[_kind(job)] -= 1
        if seconds >= self.UP_TO_DATE_S:
            self.seconds[_kind(job)].append(seconds)
        every = [x for xs in self.seconds.values() for x in xs] or [0.0]
        mean = {
            k: sum(v) / len(v) if v else sum(every) / len(every) for k, v in self.seconds.items()
        }
        eta = sum(n * mean[k] for k, n in self.left.items()) / self.parallel
        elapsed = time.perf_counter() - self.t0
        self.log(f"[sweep] {self.done}/{self.total} jobs done ({job.label}, {seconds:.0f} s);"
                 f" elapsed {elapsed / 60:.1f} min, about {eta / 60:.0f} min left")  # fmt: skip


def _kind(job: Job) -> str:
    return "offline" if job.method is None else "run"


def run_sequential(
    cfg: ExperimentConfig,
    jobs: list[Job],
    runs_dir: str | Path = "runs",
    stages: Sequence[str] = STAGES,
    progress: bool = False,
    rebuild: bool = True,
    on_done: Callable[[Job], None] | None = None,
    log: Callable[[str], None] = log_line,
    ledger: str | Path | None = None,
) -> None:
    """Every job in this process, in order."""
    bar = Progress(jobs, log)
    book = None if ledger is None else str(ledger)
    for job in jobs:
        t0 = time.perf_counter()
        run_job(cfg.to_dict(), job, str(runs_dir), list(stages), progress, rebuild, log=log,
                ledger=book)  # fmt: skip
        bar(job, time.perf_counter() - t0)
        if on_done is not None:
            on_done(job)


def run_on_ray(
    cfg: ExperimentConfig,
    jobs: list[Job],
    runs_dir: str | Path = "runs",
    stages: Sequence[str] = STAGES,
    address: str | None = None,
    workers: int | None = None,
    retries: int = 3,
    rebuild: bool = True,
    on_done: Callable[[Job], None] | None = None,
    log: Callable[[str], None] = log_line,
    ledger: str | Path | None = None,
) -> None:
    """Every job as a Ray task (1 CPU each); a run job waits for its pipeline's offline job.

    ``address``: an existing Ray cluster (every node needs this package and the runs
    directory on shared storage); None starts a local Ray bound to 127.0.0.1 with ``workers``
    CPUs (default: all).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    if not address:
        loopback_only_ray()
    import ray

    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=True)
    try:
        remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(run_job)
        runs_dir = str(Path(runs_dir).resolve())
        book = None if ledger is None else str(Path(ledger).resolve())
        # jobs enter Ray in the plan's (seed-major) order, no more runnable ones than there are
        # CPUs: Ray would otherwise start every ready offline job of the later seeds first
        window = max(1, int(ray.cluster_resources().get("CPU", 1)))
        refs: dict[Job, Any] = {}
        started: dict[Any, tuple[Job, float]] = {}
        finished: set[Job] = set()
        queue, pending, bar = list(jobs), [], Progress(jobs, log, window)
        while queue or pending:
            while queue and runnable((started[r][0] for r in pending), refs, finished) < window:
                job = queue.pop(0)
                dep = refs.get(job.offline) if job.run is not None else None
                ref = remote.remote(cfg.to_dict(), job, runs_dir, list(stages), False, rebuild,
                                    dep, ledger=book)  # fmt: skip
                refs[job], started[ref] = ref, (job, time.perf_counter())
                pending.append(ref)
            done, pending = ray.wait(pending, num_returns=1)
            job, t0 = started[done[0]]
            ray.get(done[0])  # raises the job's error (after its retries)
            finished.add(job)
            bar(job, time.perf_counter() - t0)
            if on_done is not None:
                on_done(job)
    finally:
        ray.shutdown()
