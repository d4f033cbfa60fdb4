"""The ledger: the small files of an experiment's runs, kept under ``results/ledger/``.

``runs/`` holds datasets, weights and checkpoints and is not committed; a new checkout (or a
lost machine) starts without it. The ledger mirrors every task directory's small text files
(``records/*.json``, ``progress.csv``, evaluations, offline and calibration reports; at most
``MAX_BYTES`` each) at the same relative paths, so that it can be committed with the results.

From the ledger, a pipeline

- reports runs whose ``runs/`` files are gone (``report.load_task``), and
- skips a unit whose ledger record is done with the hash it would run with now, when the
  ledger holds the unit's small outputs and files (``Unit.ledger``) and, for a unit with
  binary outputs (weights, datasets), no unit that still has to run needs them
  (``TaskPipeline.decide``). A finished online run is therefore not trained again, and the
  offline stage of a pipeline seed whose runs are all in the ledger is not rebuilt.
"""

from __future__ import annotations

from pathlib import Path

from failurebench_sim.atomic import atomic_write
from farm_trainer.experiments.config import ExperimentConfig, seed_configs
from farm_trainer.experiments.layout import TaskLayout

KEPT_SUFFIXES = (".json", ".csv")
MAX_BYTES = 2 * 1024 * 1024
LEDGER = "ledger"
"""the ledger's directory name under the results directory"""


def kept(path: Path) -> bool:
    """Whether the ledger keeps a file of this name (its size aside)."""
    return path.suffix in KEPT_SUFFIXES


def ledger_layout(ledger_dir: str | Path, layout: TaskLayout) -> TaskLayout:
    """The ledger's copy of ``layout`` (same experiment and task)."""
    return TaskLayout(Path(ledger_dir), layout.experiment, layout.task)


def ledger_sources(cfg: ExperimentConfig, book: TaskLayout, unit_id: str) -> list[TaskLayout]:
    """Where a unit's ledger record may be: this experiment's ledger ``book``, then the ledgers
    of the experiments ``cfg.inputs`` names for it (``stage/item`` before ``stage``)."""
    return [book, *(book.of(n) for n in cfg.inputs_of(unit_id))]


def save_ledger(layout: TaskLayout, ledger_dir: str | Path) -> int:
    """Copy ``layout``'s small text files into the ledger; returns how many changed.

    Files are written atomically and only when their bytes differ, so saving after every job
    is cheap and a ledger under git shows only real changes. Files gone from ``runs/`` stay.
    """
    src = layout.root
    if not src.is_dir():
        return 0
    dst = ledger_layout(ledger_dir, layout).root
    changed = 0
    for path in sorted(src.rglob("*")):
        if not path.is_file() or not kept(path) or path.stat().st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        target = dst / path.relative_to(src)
        if target.exists() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp, d=data: Path(tmp).write_bytes(d))
        changed += 1
    return changed


def save_experiment_ledger(
    cfg: ExperimentConfig, runs_dir: str | Path, ledger_dir: str | Path
) -> int:
    """``save_ledger`` for every pipeline (``seed_configs``) and task of ``cfg``."""
    return sum(save_ledger(TaskLayout(Path(runs_dir), sub.name, t), ledger_dir)
               for sub in seed_configs(cfg) for t in sub.tasks)  # fmt: skip
