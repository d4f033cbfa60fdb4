"""Experiment pipeline: FailureBench data -> offline -> world model -> online runs -> report.

config.py   ExperimentConfig, YAML loading (``extends``), load-time validation (schema.py)
layout.py   run directories and file names          records.py  config hashes, stage log
context.py  what a stage sees                       stages/     one module per stage
pipeline.py the driver (plan, run, resume)          report.py   results/<experiment>/
"""

from farm_trainer.experiments.config import (
    METHODS,
    STAGES,
    ExperimentConfig,
    ExperimentConfigError,
    config_from_dict,
    load_config,
)
from farm_trainer.experiments.context import PipelineError
from farm_trainer.experiments.pipeline import (
    TaskPipeline,
    format_plan,
    run_experiment,
    task_contexts,
)
from farm_trainer.experiments.report import write_report

__all__ = [
    "METHODS",
    "STAGES",
    "ExperimentConfig",
    "ExperimentConfigError",
    "PipelineError",
    "TaskPipeline",
    "config_from_dict",
    "format_plan",
    "load_config",
    "run_experiment",
    "task_contexts",
    "write_report",
]
