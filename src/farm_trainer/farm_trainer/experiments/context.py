"""What every stage of one task sees: the config, the env id, and where each input file is."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm_trainer.experiments.config import ExperimentConfig
from farm_trainer.experiments.layout import (
    ANYOF_EPS,
    EPS_SAFE,
    EPS_SAFE_ENSEMBLE,
    RECOVERY_ACTOR,
    TASK_ACTOR,
    WORLD_MODEL,
    TaskLayout,
    data_file,
    ensemble_member,
    ensemble_member_units,
)
from farm_trainer.methods import Artifacts, calibrates_anyof, filter_factory, uses_ensemble

DATA_UNITS = {"task_demos": "data", "recovery_demos": "data", "expert": "data",
              "failures": "failures", "failures_near": "failures", "heldout": "failures"}  # fmt: skip
"""dataset name -> the stage that makes it"""
EPS_UNIT = ("calibration/eps_safe", EPS_SAFE)
EPS_UNIT_ENSEMBLE = ("calibration/eps_safe_ensemble", EPS_SAFE_ENSEMBLE)
"""the calibration unit (and file) of eps_safe under ``gate.eps_rule``: FARM's world model's, and
the ensemble's (chosen on the ensemble's own scores)"""
ANYOF_UNIT = ("calibration/anyof_eps", ANYOF_EPS)
"""the calibration unit (and file) of farm-qrisk-cal's two thresholds (``gate.anyof_rule``)"""


def eps_unit(method: str) -> tuple[str, str]:
    """The calibration unit and file of ``method``'s eps_safe (FARM's unless it gates on an
    ensemble, or chooses both any-of thresholds together)."""
    if calibrates_anyof(method):
        return ANYOF_UNIT
    return EPS_UNIT_ENSEMBLE if uses_ensemble(method) else EPS_UNIT


class PipelineError(RuntimeError):
    """A stage cannot run (missing input of an earlier stage, stale outputs, bad stage name)."""


def log_line(msg: str) -> None:
    """Default progress log: stdout, flushed (the benchmark log is a file)."""
    print(msg, flush=True)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


@dataclass
class TaskContext:
    """One task of one experiment; ``locate(unit_id)`` is where that unit's files are."""

    cfg: ExperimentConfig
    task: str
    env_id: str
    layout: TaskLayout
    locate: Callable[[str], TaskLayout]
    progress: bool = False
    log: Callable[[str], None] = log_line

    def path(self, unit_id: str, rel: str) -> Path:
        return self.locate(unit_id).root / rel

    def out(self, rel: str) -> Path:
        """A file this experiment writes (under its own task directory)."""
        return self.layout.root / rel

    def data_path(self, name: str) -> Path:
        return self.path(f"{DATA_UNITS[name]}/{name}", data_file(name))

    def dataset(self, name: str) -> Any:
        from failurebench_sim.datasets import load_dataset

        return load_dataset(self.data_path(name))

    def safety_names(self) -> list[str]:
        """Task demos + failure data (+ near-failure-start failure data when configured)."""
        names = ["task_demos", "failures"]
        if self.cfg.data.near_failure_transitions > 0:
            names.append("failures_near")
        return names

    def safety_units(self) -> tuple[str, ...]:
        """The units that make ``safety_names``' datasets (what a stage trained on them needs)."""
        return tuple(f"{DATA_UNITS[n]}/{n}" for n in self.safety_names())

    def safety_data(self) -> list[Any]:
        return [self.dataset(n) for n in self.safety_names()]

    def safety_rows(self, *fields: str) -> tuple[Any, ...]:
        """``fields`` of the task demos and failure data, each concatenated over the datasets."""
        import numpy as np

        data = self.safety_data()
        return tuple(np.concatenate([getattr(d, f) for d in data]) for f in fields)

    @property
    def task_actor_path(self) -> Path:
        return self.path("offline_task", TASK_ACTOR)

    def task_actor(self) -> Any:
        from farm_policies.checkpoint import load_actor_value

        return load_actor_value(self.task_actor_path)[0].eval()

    def eps_safe(self, method: str = "farm") -> float:
        """C_H threshold: ``gate.eps_safe``, or the calibrated per-task one (``gate.eps_rule``;
        an ensemble gate has its own, chosen on its ensemble's scores; farm-qrisk-cal's comes
        with Q-risk's, ``thresholds``)."""
        return self.thresholds(method)["eps_safe"]

    def thresholds(self, method: str = "farm") -> dict[str, float]:
        """``MethodParams`` thresholds of ``method`` this task calibrated: ``eps_safe`` (see
        ``eps_safe``), and for farm-qrisk-cal ``qrisk_eps_safe`` too (inf: member left out)."""
        if calibrates_anyof(method):
            from farm_safety_critic.calibration import read_anyof_eps

            eps, qrisk_eps = read_anyof_eps(str(self.path(*ANYOF_UNIT)))
            return {"eps_safe": eps, "qrisk_eps_safe": qrisk_eps}
        if self.cfg.gate.eps_rule is None:
            return {"eps_safe": self.cfg.gate.eps_safe}
        unit, rel = eps_unit(method)
        return {"eps_safe": float(read_json(self.path(unit, rel))["eps_safe"])}

    def artifacts(self) -> Artifacts:
        from farm_trainer.experiments.layout import HAND_MOTION, OBJECT_MOTION, QRISK, RUNOUT

        names = self.safety_names()
        units = ensemble_member_units(self.cfg.gate.ensemble_members)
        members = tuple(self.path(u, ensemble_member(k)) for k, u in enumerate(units, 1))
        return Artifacts(self.path("world_model", WORLD_MODEL),
                         self.path("offline_recovery", RECOVERY_ACTOR), self.path("qrisk", QRISK),
                         tuple(self.data_path(n) for n in names), self.data_path("heldout"),
                         members, self.data_path("expert"),
                         self.path("calibration/runout", RUNOUT),
                         self.path("calibration/object_motion", OBJECT_MOTION),
                         self.path("calibration/hand_motion", HAND_MOTION))  # fmt: skip

    def gate(self, method: str, actor: Any = None, eps_safe: float | None = None,
             seed: int = 0) -> Any:  # fmt: skip
        """The registry's gate of ``method`` over ``actor`` (default: the offline task policy)."""
        eps = self.thresholds(method) if eps_safe is None else {"eps_safe": eps_safe}
        make = filter_factory(method, self.artifacts(), self.cfg.gate.method_params(**eps), seed)
        return make(self.task_actor() if actor is None else actor)
