"""Experiment configuration: one YAML file in ``config/experiments/`` -> ``ExperimentConfig``.

Every section is a dataclass with defaults; a YAML file only lists what it changes. Unknown keys
raise ``ExperimentConfigError`` (a typo must never silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METHODS = ("unio4", "farm", "recrl", "mppi")
"""unio4: plain PPO (no gate); farm: world-model C_H gate + recovery policy (Eq. 10-11);
recrl: Recovery RL's Q-risk gate + the same recovery policy (Table II); mppi: C_H gate with MPPI
over the world model in place of the recovery policy (Table II)."""


class ExperimentConfigError(ValueError):
    """An experiment config that cannot be run (unknown key, bad value, unreadable file)."""


@dataclass
class DataConfig:
    """FailureBench datasets (paper Sec. V-B1: 20 demos, 120 recovery demos, 20k-200k failures)."""

    task_demos: int = 20
    recovery_demos: int = 120
    failure_transitions: int = 20_000
    near_failure_transitions: int = 0
    """extra failure data started next to F (``reset(options={"start": "near_failure"})``):
    a noisy policy fails from there far more often, so the constraint head sees many more
    positives per collected step than from the default start alone"""
    heldout_transitions: int = 5_000
    """noisy roll-outs with another seed, for calibration only"""
    expert_episodes: int = 5
    """noise-free scripted-expert episodes: the gate's false-alarm (firing) rate"""
    failure_policy: str = "offline"
    """'offline': the offline task policy + noise (the paper's choice); 'expert': scripted + noise"""
    demo_noise: float | None = None
    """None: ``failurebench_sim.datasets.demo_noise(task)``"""
    failure_noise: float | None = None
    """None: ``failurebench_sim.datasets.failure_noise(task)``"""
    seed: int = 0


@dataclass
class WorldModelStage:
    """World-model pre-training (``farm_trainer.safety.train_world_model``)."""

    steps: int = 20_000
    batch: int = 256
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)
    """``WorldModelTrainConfig`` overrides, e.g. {horizon: 3, model: {latent_dim: 64}}"""


@dataclass
class QRiskStage:
    """Q-risk pre-training for ``recrl`` (``farm_trainer.safety.train_qrisk``)."""

    steps: int = 20_000
    batch: int = 256
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)
    """``QRiskTrainConfig`` overrides, e.g. {gamma_safe: 0.8}"""


@dataclass
class GateConfig:
    """Online gate thresholds: C_H (Eq. 10-11) for farm/mppi, Q_risk for recrl."""

    eps_safe: float = 0.3
    horizon: int = 3
    gamma_risk: float = 0.9
    qrisk_eps_safe: float = 0.3
    eps_rule: dict[str, float] | None = None
    """Per-task eps_safe chosen on held-out data instead of ``eps_safe``:
    ``{max_firing: 0.1, max_expert_firing: 0.03}`` (``calibration.choose_eps_safe``)"""
    mppi: dict[str, Any] = field(
        default_factory=lambda: {
            "num_samples": 128,
            "iterations": 3,
            "num_elites": 16,
            "num_pi_trajs": 8,
        }
    )
    """``MPPIConfig`` overrides (horizon / gamma_risk / eps_safe follow the gate)"""


@dataclass
class OnlineStage:
    """Online fine-tuning: every method starts from the SAME offline checkpoints."""

    steps: int = 200_000
    n_envs: int = 4
    checkpoint_every: int = 10
    tensorboard: bool = False
    ppo: dict[str, Any] = field(default_factory=dict)
    """``PPOConfig`` overrides (defaults: Uni-O4's online stage)"""


@dataclass
class EvaluationConfig:
    """Deterministic evaluation of the init policy and of every final policy."""

    episodes: int = 20
    seed0: int = 100_000
    max_steps: int | None = None
    """cap on episode length (None: the env's own time limit)"""


@dataclass
class ExperimentConfig:
    """A whole experiment: tasks x methods x seeds over one set of offline checkpoints per task."""

    name: str = "experiment"
    tasks: list[str] = field(default_factory=lambda: ["BoundedPush-v0"])
    methods: list[str] = field(default_factory=lambda: ["unio4", "farm"])
    seeds: list[int] = field(default_factory=lambda: [0])
    data: DataConfig = field(default_factory=DataConfig)
    offline: dict[str, Any] = field(default_factory=dict)
    """``OfflineConfig`` overrides for the task policy (and the recovery policy's base)"""
    offline_recovery: dict[str, Any] = field(default_factory=dict)
    """extra ``OfflineConfig`` overrides for the recovery policy"""
    world_model: WorldModelStage = field(default_factory=WorldModelStage)
    qrisk: QRiskStage = field(default_factory=QRiskStage)
    gate: GateConfig = field(default_factory=GateConfig)
    online: OnlineStage = field(default_factory=OnlineStage)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    latency_calls: int = 200
    """SafetyGate.__call__ repetitions per batch size for the p50/p99 latency"""

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ExperimentConfigError(f"unknown method(s) {bad}; choose from {METHODS}")
        if not self.tasks or not self.methods or not self.seeds:
            raise ExperimentConfigError("tasks, methods and seeds must be non-empty")
        if self.data.failure_policy not in ("offline", "expert"):
            raise ExperimentConfigError(
                f"data.failure_policy must be 'offline' or 'expert', got {self.data.failure_policy!r}"
            )
        for name, v in (
            ("data.task_demos", self.data.task_demos),
            ("data.recovery_demos", self.data.recovery_demos),
            ("data.failure_transitions", self.data.failure_transitions),
            ("data.heldout_transitions", self.data.heldout_transitions),
            ("world_model.steps", self.world_model.steps),
            ("qrisk.steps", self.qrisk.steps),
            ("online.steps", self.online.steps),
            ("online.n_envs", self.online.n_envs),
            ("evaluation.episodes", self.evaluation.episodes),
            ("latency_calls", self.latency_calls),
        ):
            if int(v) < 1:
                raise ExperimentConfigError(f"{name} must be >= 1, got {v}")
        rule = self.gate.eps_rule
        if rule is not None:
            if set(rule) != {"max_firing", "max_expert_firing"}:
                raise ExperimentConfigError(
                    f"gate.eps_rule needs exactly max_firing and max_expert_firing, got {sorted(rule)}"
                )
            if not all(0.0 <= float(v) <= 1.0 for v in rule.values()):
                raise ExperimentConfigError(f"gate.eps_rule budgets must lie in [0, 1], got {rule}")
        if self.data.near_failure_transitions < 0:
            raise ExperimentConfigError(
                f"data.near_failure_transitions must be >= 0, got {self.data.near_failure_transitions}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with top-level fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)


def _build(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ExperimentConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ExperimentConfigError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")
    kwargs = {}
    for name, value in raw.items():
        sub = _SECTIONS.get((cls, name))
        kwargs[name] = _build(sub, value, f"{where}.{name}") if sub else value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ExperimentConfigError(f"{where}: {e}") from e


_SECTIONS: dict[tuple[type, str], type] = {
    (ExperimentConfig, "data"): DataConfig,
    (ExperimentConfig, "world_model"): WorldModelStage,
    (ExperimentConfig, "qrisk"): QRiskStage,
    (ExperimentConfig, "gate"): GateConfig,
    (ExperimentConfig, "online"): OnlineStage,
    (ExperimentConfig, "evaluation"): EvaluationConfig,
}


def config_from_dict(raw: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Validated ``ExperimentConfig`` from a (YAML-loaded) mapping."""
    cfg = _build(ExperimentConfig, raw, where)
    for key in ("tasks", "methods"):
        setattr(cfg, key, [str(x) for x in getattr(cfg, key)])
    cfg.seeds = [int(s) for s in cfg.seeds]
    cfg.__post_init__()
    return cfg


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML experiment config (``yaml.safe_load``: no Python object tags)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ExperimentConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ExperimentConfigError(f"{path}: invalid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ExperimentConfigError(f"{path}: top level must be a mapping")
    raw.setdefault("name", path.stem)
    return config_from_dict(raw, str(path))
