"""Experiment pipeline: FailureBench data -> offline -> world model -> online runs -> report."""

from farm_trainer.experiments.config import (
    METHODS,
    ExperimentConfig,
    ExperimentConfigError,
    config_from_dict,
    load_config,
)
from farm_trainer.experiments.pipeline import STAGES, PipelineError, TaskPipeline, run_experiment
from farm_trainer.experiments.report import write_report

__all__ = [
    "METHODS",
    "STAGES",
    "ExperimentConfig",
    "ExperimentConfigError",
    "PipelineError",
    "TaskPipeline",
    "config_from_dict",
    "load_config",
    "run_experiment",
    "write_report",
]
