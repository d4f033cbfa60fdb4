"""One module per pipeline stage; each ``units(ctx)`` lists that stage's units of work."""

from collections.abc import Callable

from farm_trainer.experiments.context import TaskContext
from farm_trainer.experiments.records import Unit
from farm_trainer.experiments.stages import (
    calibration,
    data,
    evaluate,
    failures,
    offline,
    online,
    qrisk,
    world_model,
)

STAGE_UNITS: dict[str, Callable[[TaskContext], list[Unit]]] = {
    "data": data.units,
    "offline_task": offline.task_units,
    "offline_recovery": offline.recovery_units,
    "failures": failures.units,
    "world_model": world_model.units,
    "ensemble": world_model.ensemble_units,
    "qrisk": qrisk.units,
    "calibration": calibration.units,
    "online": online.units,
    "evaluate": evaluate.units,
}
"""in pipeline order (``config.STAGES``)"""
