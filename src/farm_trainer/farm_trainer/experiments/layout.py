"""Where an experiment's files live: ``runs_dir/<experiment>/<task>/`` and the paths inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RECORDS = "records"
STAGE_LOG = "stage_log.jsonl"
TASK_ACTOR = "offline_task/actor.safetensors"
RECOVERY_ACTOR = "offline_recovery/actor.safetensors"
WORLD_MODEL = "world_model/world_model.safetensors"
QRISK = "world_model/qrisk.safetensors"
EPS_SAFE = "calibration/eps_safe.json"
EPS_SAFE_ENSEMBLE = "calibration/eps_safe_ensemble.json"
ANYOF_EPS = "calibration/anyof_eps.json"
RUNOUT = "calibration/runout.json"
OBJECT_MOTION = "calibration/object_motion.safetensors"
HAND_MOTION = "calibration/hand_motion.json"


def ensemble_member(k: int) -> str:
    """World model ``k`` >= 1 of farm-ens's ensemble (member 0 is ``WORLD_MODEL``)."""
    from farm_safety_critic.gate import MEMBER_FILE

    return f"world_model/{MEMBER_FILE.format(k=k)}"


def ensemble_member_units(members: int) -> tuple[str, ...]:
    """The ``ensemble`` stage's unit ids of an ensemble of ``members`` world models (member 0
    is the ``world_model`` unit)."""
    return tuple(f"ensemble/member{k}" for k in range(1, members))


def task_name(task: str) -> str:
    """``FailureBench/BoundedPush-v0`` -> ``BoundedPush-v0`` (the run-directory name)."""
    return task.split("/")[-1]


def run_name(method: str, seed: int) -> str:
    return f"{method}_s{seed}"


def data_file(name: str) -> str:
    return f"data/{name}.npz"


def run_dir(method: str, seed: int) -> str:
    return f"online/{run_name(method, seed)}"


@dataclass(frozen=True)
class TaskLayout:
    """One experiment's directory for one task."""

    runs_dir: Path
    experiment: str
    task: str

    @property
    def root(self) -> Path:
        return Path(self.runs_dir) / self.experiment / task_name(self.task)

    def of(self, experiment: str) -> TaskLayout:
        """The same task in another experiment (``inputs``)."""
        return TaskLayout(self.runs_dir, experiment, self.task)

    def record_path(self, unit_id: str) -> Path:
        return self.root / RECORDS / f"{unit_id.replace('/', '.')}.json"
