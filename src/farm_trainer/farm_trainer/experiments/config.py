"""Experiment configuration: one YAML file in ``config/experiments/`` -> ``ExperimentConfig``.

Every section is a dataclass with defaults; a YAML file only lists what it changes, and may
``extends: base.yaml`` (deep merge: mappings merge key by key, anything else replaces). Every
key, nested ones included (``schema.NESTED``), is checked against the dataclass it feeds when the
file is read: a typo or a wrong type raises ``ExperimentConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from farm_trainer.experiments.layout import task_name
from farm_trainer.experiments.schema import NESTED, ExperimentConfigError, check_fields
from farm_trainer.methods import (
    METHOD_NAMES,
    MPPI_OVERRIDES,
    MethodParams,
    replaced_problem,
    runout_problem,
)

METHODS = METHOD_NAMES
"""``farm_trainer.methods.METHODS``: the one registry of online methods"""
STAGES = (
    "data",
    "offline_task",
    "offline_recovery",
    "failures",
    "world_model",
    "ensemble",
    "qrisk",
    "calibration",
    "online",
    "evaluate",
)
_GATE_DEFAULTS = MethodParams()


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


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@dataclass
class GateConfig:
    """Every online method's hyper-parameters (``MethodParams``): the gate thresholds, C_H
    (Eq. 10-11) for farm/mppi and Q_risk for recrl, and the constrained baselines' cost budget."""

    eps_safe: float = _GATE_DEFAULTS.eps_safe
    horizon: int = _GATE_DEFAULTS.horizon
    gamma_risk: float = _GATE_DEFAULTS.gamma_risk
    qrisk_eps_safe: float = _GATE_DEFAULTS.qrisk_eps_safe
    eps_rule: dict[str, float] | None = None
    """Per-task eps_safe chosen on held-out data instead of ``eps_safe``:
    ``{max_firing: 0.1, max_expert_firing: 0.03}`` (``calibration.choose_eps_safe``)"""
    anyof_rule: dict[str, float] | None = None
    """farm-qrisk-cal: both any-of thresholds chosen per task on held-out data,
    ``{max_firing: 0.1, max_expert_firing: 0.03, min_precision: 0.2}``
    (``calibration.choose_anyof_eps``)"""
    mppi: dict[str, Any] = field(default_factory=lambda: dict(MPPI_OVERRIDES))
    """``MPPIConfig`` overrides (horizon / gamma_risk / eps_safe follow the gate)"""
    cost_limit: float = _GATE_DEFAULTS.cost_limit
    """the constrained baselines' episode cost budget d (ppo-lag, p3o, cpo; ``MethodParams``)"""
    lr_lambda: float = _GATE_DEFAULTS.lr_lambda
    p3o_kappa: float = _GATE_DEFAULTS.p3o_kappa
    cpo_target_kl: float = _GATE_DEFAULTS.cpo_target_kl
    eps_target_rate: float = _GATE_DEFAULTS.eps_target_rate
    """farm-pid: the IR-failure rate eps_safe is steered to (``AdaptiveEpsSafe``)"""
    eps_kp: float = _GATE_DEFAULTS.eps_kp
    eps_ki: float = _GATE_DEFAULTS.eps_ki
    replaced_target_rate: float = _GATE_DEFAULTS.replaced_target_rate
    """farm-qrisk-cal-hold-steer: the fraction of an update's actions the gate may replace
    before its thresholds rise"""
    replaced_kp: float = _GATE_DEFAULTS.replaced_kp
    replaced_ki: float = _GATE_DEFAULTS.replaced_ki
    replaced_window: int = _GATE_DEFAULTS.replaced_window
    replaced_max_factor: float = _GATE_DEFAULTS.replaced_max_factor
    refresh_every: int = _GATE_DEFAULTS.refresh_every
    """farm-refresh: PPO updates between world-model refreshes on online failures"""
    refresh_steps: int = _GATE_DEFAULTS.refresh_steps
    refresh_online_fraction: float = _GATE_DEFAULTS.refresh_online_fraction
    refresh_guard_drop: float = _GATE_DEFAULTS.refresh_guard_drop
    ensemble_members: int = _GATE_DEFAULTS.ensemble_members
    """farm-ens: world models whose mean C_H gates (the experiment's world model + members
    trained with other seeds by the ``ensemble`` stage)"""
    shrink_fractions: list[float] = field(
        default_factory=lambda: list(_GATE_DEFAULTS.shrink_fractions)
    )
    """farm-qrisk-cal-least: parts of the proposed motion tried where the gate fires"""
    hold_patience: int = _GATE_DEFAULTS.hold_patience
    """farm-qrisk-cal-hold-rec: holds in a row before pi_rec takes over"""
    escape_steps: int = _GATE_DEFAULTS.escape_steps
    """farm-qrisk-cal-hold-rec: fired steps pi_rec then runs before the arm holds again"""
    runout_eps: float = _GATE_DEFAULTS.runout_eps
    """farm-runout*: the gate fires where the object's predicted roll over the room left to an
    exit exceeds this (1: it would leave within the horizon)"""
    runout_horizon: int = _GATE_DEFAULTS.runout_horizon
    """farm-runout*: control steps the object's roll is predicted over"""
    runout_lookahead: int = _GATE_DEFAULTS.runout_lookahead
    """farm-runout-seq: predicted steps of the task policy whose states are scored"""
    runout_hold_eps: float | None = _GATE_DEFAULTS.runout_hold_eps
    """farm-runout-seq: the arm holds where a predicted state's run-out score exceeds this
    (None: ``runout_eps``)"""

    def __post_init__(self) -> None:
        # checked when the config loads, not when an online job builds the filter
        fr = self.shrink_fractions
        if not fr or not all(_number(f) and 0 < f < 1 for f in fr):
            raise ExperimentConfigError(f"gate.shrink_fractions must be in (0, 1), got {fr}")
        for name in ("hold_patience", "escape_steps"):
            value = getattr(self, name)
            if not _number(value) or not isinstance(value, int) or value < 1:
                raise ExperimentConfigError(f"gate.{name} must be an integer >= 1, got {value!r}")
        if problem := runout_problem(self.runout_eps, self.runout_horizon, self.runout_lookahead,
                                     self.runout_hold_eps):  # fmt: skip
            raise ExperimentConfigError(f"gate.{problem}")
        if problem := replaced_problem(self.replaced_target_rate, self.replaced_window,
                                       self.replaced_max_factor):  # fmt: skip
            raise ExperimentConfigError(f"gate.{problem}")

    def method_params(
        self, eps_safe: float | None = None, qrisk_eps_safe: float | None = None
    ) -> MethodParams:
        """The registry's hyper-parameters (``eps_safe``, ``qrisk_eps_safe``: calibrated ones,
        if any)."""
        return MethodParams(
            eps_safe=self.eps_safe if eps_safe is None else eps_safe, horizon=self.horizon,
            gamma_risk=self.gamma_risk,
            qrisk_eps_safe=self.qrisk_eps_safe if qrisk_eps_safe is None else qrisk_eps_safe,
            mppi=dict(self.mppi),
            cost_limit=self.cost_limit, lr_lambda=self.lr_lambda, p3o_kappa=self.p3o_kappa,
            cpo_target_kl=self.cpo_target_kl, eps_target_rate=self.eps_target_rate,
            eps_kp=self.eps_kp, eps_ki=self.eps_ki,
            replaced_target_rate=self.replaced_target_rate, replaced_kp=self.replaced_kp,
            replaced_ki=self.replaced_ki, replaced_window=self.replaced_window,
            replaced_max_factor=self.replaced_max_factor, refresh_every=self.refresh_every,
            refresh_steps=self.refresh_steps, refresh_online_fraction=self.refresh_online_fraction,
            refresh_guard_drop=self.refresh_guard_drop, ensemble_members=self.ensemble_members,
            shrink_fractions=tuple(sorted(self.shrink_fractions, reverse=True)),
            hold_patience=self.hold_patience,
            escape_steps=self.escape_steps, runout_eps=self.runout_eps,
            runout_horizon=self.runout_horizon, runout_lookahead=self.runout_lookahead,
            runout_hold_eps=self.runout_hold_eps,
            eps_rule=None if self.eps_rule is None else dict(self.eps_rule),
        )  # fmt: skip


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
    inputs: dict[str, str | list[str]] = field(default_factory=dict)
    """stage (or ``stage/item``) -> another experiment whose outputs of it are reused, by
    reference, when their recorded config hash equals this experiment's (else built here); a
    list names several, searched in order (e.g. where pipeline seeds were built in different
    experiments)"""
    pipeline_seeds: bool = False
    """True: each seed is a whole pipeline (data, offline stage, world model, online run) under
    ``runs/<name>/s<seed>/``; False: one pipeline (seed-0 data and checkpoints), seeds vary the
    online stage only (``seed_configs``)"""
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """task -> a mapping merged onto this config for that task's pipeline only (``for_task``),
    e.g. constraint targets, ``inputs`` or ``method_for`` chosen per task; the other tasks'
    units keep their hashes"""
    method_for: dict[str, str] = field(default_factory=dict)
    """method label -> the registry method it runs, so one column of the tables can run
    another method per task (``task_overrides``), e.g. ``{farm-chosen: farm-qrisk-cal-hold}``
    and on one task ``{farm-chosen: farm-qrisk-cal}``. Units, run directories and hashes are
    the registry method's (a run is reused by any experiment that runs the same method); the
    tables show the label. A label may not be a registry name itself."""

    def __post_init__(self) -> None:
        self._check_method_for(self.method_for, "method_for")
        bad = [m for m in self.methods if self.method_of(m) not in METHODS]
        if bad:
            raise ExperimentConfigError(
                f"unknown method(s) {bad}; choose from {METHODS} or map a label in method_for"
            )
        twice = sorted({m for m in self.run_methods if self.run_methods.count(m) > 1})
        if twice:
            raise ExperimentConfigError(f"methods run {twice} under two labels")
        if not self.tasks or not self.methods or not self.seeds:
            raise ExperimentConfigError("tasks, methods and seeds must be non-empty")
        from failurebench_sim import EXTRA_TASK_IDS, TASK_IDS

        known = [task_name(t) for t in TASK_IDS + EXTRA_TASK_IDS]
        bad_tasks = [t for t in self.tasks if task_name(t) not in known]
        if bad_tasks:
            raise ExperimentConfigError(f"unknown task(s) {bad_tasks}; choose from {known}")
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
        for key, other in self.inputs.items():
            names = _names(other)
            if (key.split("/")[0] not in STAGES or not names
                    or not all(isinstance(n, str) and n for n in names)):  # fmt: skip
                raise ExperimentConfigError(
                    f"inputs.{key}: keys are stages {STAGES} (or stage/item), values experiment"
                    " names (or lists of them)"
                )
            if self.name in names:
                raise ExperimentConfigError(f"inputs.{key} names this experiment itself")
            self.check_unit_id(key, f"inputs.{key}")
        if self.data.near_failure_transitions < 0:
            raise ExperimentConfigError(
                f"data.near_failure_transitions must be >= 0, got {self.data.near_failure_transitions}"
            )
        for task, over in self.task_overrides.items():
            if not isinstance(over, dict):
                raise ExperimentConfigError(
                    f"task_overrides.{task} must be a mapping, got {over!r}"
                )
            fixed = sorted(set(over) & _NOT_PER_TASK)
            fixed += [f"{k}.seed" for k in _SEEDED if "seed" in (over.get(k) or {})]
            if fixed:
                raise ExperimentConfigError(
                    f"task_overrides.{task}: {fixed} cannot differ between tasks of one experiment"
                )
            where = f"task_overrides.{task}.method_for"
            self._check_method_for(over.get("method_for") or {}, where)
            extra = sorted(set(over.get("method_for") or {}) - self.labels)
            if extra:
                raise ExperimentConfigError(
                    f"{where}: {extra} are not method labels of this experiment"
                )
            try:  # every key checked now, not when the task's pipeline starts
                self.for_task(task)
            except ExperimentConfigError as e:
                raise ExperimentConfigError(f"task_overrides.{task}: {e}") from e

    @staticmethod
    def _check_method_for(method_for: Any, where: str) -> None:
        if not isinstance(method_for, dict):
            raise ExperimentConfigError(f"{where} must be a mapping, got {method_for!r}")
        for label, method in method_for.items():
            if label in METHODS:
                raise ExperimentConfigError(
                    f"{where}.{label}: a registry method runs itself; give the column a label"
                    " of its own"
                )
            if method not in METHODS:
                raise ExperimentConfigError(
                    f"{where}.{label}: unknown method {method!r}; choose from {METHODS}"
                )

    def inputs_of(self, unit_id: str) -> list[str]:
        """The experiments ``inputs`` names for unit ``unit_id``, in search order
        (``stage/item`` before ``stage``; each list in its own order)."""
        keys = (unit_id, unit_id.split("/")[0])
        return list(
            dict.fromkeys(n for k in keys if k in self.inputs for n in _names(self.inputs[k]))
        )

    @property
    def labels(self) -> set[str]:
        """Method labels that are not registry names (``method_for``'s keys, and any method
        of ``methods`` that is no registry name)."""
        return set(self.method_for) | {m for m in self.methods if m not in METHODS}

    def check_unit_id(self, unit_id: str, where: str) -> None:
        """Refuse a ``stage/item`` that names a method label: units are named by the registry
        method the label runs, so it would silently select nothing."""
        stage, _, item = unit_id.partition("/")
        label = item.rpartition("_s")[0]
        if stage in ("online", "evaluate") and label in self.labels:
            raise ExperimentConfigError(
                f"{where}: {label} is a method label; units are named by the registry method"
                " it runs on each task (method_for)"
            )

    def method_of(self, label: str) -> str:
        """The registry method that method label ``label`` runs (``method_for``; a registry
        name runs itself)."""
        return self.method_for.get(label, label)

    @property
    def run_methods(self) -> list[str]:
        """The registry methods this config runs (``methods`` through ``method_for``)."""
        return [self.method_of(m) for m in self.methods]

    def for_task(self, task: str) -> ExperimentConfig:
        """This config as ``task``'s pipeline runs it: ``task_overrides[task]`` merged on top
        (``deep_merge``, checked like a YAML file); ``self`` where the task has none."""
        over = self.task_overrides.get(task_name(task))
        if not over:
            return self
        raw = deep_merge({**self.to_dict(), "task_overrides": {}}, over)
        return config_from_dict(raw, f"{self.name}.task_overrides.{task}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with top-level fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)


_NOT_PER_TASK = {"name", "tasks", "methods", "seeds", "pipeline_seeds", "task_overrides"}
"""what one experiment shares across its tasks (``task_overrides`` may not change it)"""
_SEEDED = ("data", "offline", "world_model", "qrisk")
"""sections whose ``seed`` each pipeline seed shifts (``seed_configs``): not set per task"""

PIPELINE_SEED_DIR = "s{seed}"
"""sub-experiment of pipeline seed ``seed``: ``runs/<name>/s<seed>/<task>/``"""


def seed_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """The pipelines an experiment runs: itself, or with ``pipeline_seeds`` one per seed.

    Pipeline seed ``s`` is ``cfg`` with seeds ``[s]``, every stage seed shifted by ``s`` (data,
    offline stage, world model, Q-risk) and the name ``<name>/s<s>``; ``inputs`` then name the
    other experiment's pipeline of the same seed. The evaluation's reset seeds stay the same,
    so every pipeline is scored on the same episodes.
    """
    if not cfg.pipeline_seeds:
        return [cfg]
    out = []
    for s in cfg.seeds:
        sub = dataclasses.replace(
            cfg,
            name=f"{cfg.name}/{PIPELINE_SEED_DIR.format(seed=s)}",
            seeds=[s],
            pipeline_seeds=False,
            data=dataclasses.replace(cfg.data, seed=cfg.data.seed + s),
            offline={**cfg.offline, "seed": int(cfg.offline.get("seed", 0)) + s},
            world_model=dataclasses.replace(cfg.world_model, seed=cfg.world_model.seed + s),
            qrisk=dataclasses.replace(cfg.qrisk, seed=cfg.qrisk.seed + s),
            inputs=_seeded_inputs(cfg.inputs, s),
            task_overrides={
                t: {**o, "inputs": _seeded_inputs(o["inputs"], s)} if "inputs" in o else o
                for t, o in cfg.task_overrides.items()
            },
        )
        out.append(sub)
    return out


def _seeded_inputs(inputs: dict[str, str | list[str]], seed: int) -> dict[str, str | list[str]]:
    """``inputs`` naming the other experiments' pipelines of pipeline seed ``seed``."""
    sub = PIPELINE_SEED_DIR.format(seed=seed)
    return {k: [f"{n}/{sub}" for n in v] if isinstance(v, list) else f"{v}/{sub}"
            for k, v in inputs.items()}  # fmt: skip


def _names(value: str | list[str]) -> list[str]:
    """An ``inputs`` value as the list of experiment names it stands for."""
    return value if isinstance(value, list) else [value]


def pipeline_of(cfg: ExperimentConfig, seed: int) -> ExperimentConfig:
    """Pipeline seed ``seed`` of ``cfg`` (``seed_configs``; ``cfg`` itself without
    ``pipeline_seeds``), e.g. for a probe of one finished pipeline."""
    if not cfg.pipeline_seeds:
        return cfg
    return seed_configs(cfg.replace(seeds=[seed]))[0]


def _built_below(raw: Any, where: str) -> None:
    """A section dataclass: checked when ``_build`` recurses into it."""


def _build(cls: type, raw: Any, where: str, section: str = "") -> Any:
    if raw is None:
        return cls()
    subs = {name: sub for (owner, name), sub in _SECTIONS.items() if owner is cls}
    later = {name: _built_below for name in subs}
    check_fields(cls, raw, where, nested={**later, **NESTED.get(section, {})})
    kwargs = {}
    for name, value in raw.items():
        sub = subs.get(name)
        kwargs[name] = _build(sub, value, f"{where}.{name}", name) if sub else value
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
    """Validated ``ExperimentConfig`` from a (YAML-loaded, ``extends`` already merged) mapping."""
    cfg = _build(ExperimentConfig, raw, where)
    for key in ("tasks", "methods"):
        setattr(cfg, key, [str(x) for x in getattr(cfg, key)])
    names = {task_name(t) for t in cfg.tasks}
    unknown = sorted(str(t) for t in cfg.task_overrides if task_name(str(t)) not in names)
    if unknown:
        raise ExperimentConfigError(
            f"{where}: task_overrides names {unknown}, not tasks of this experiment {cfg.tasks}"
        )
    cfg.task_overrides = {task_name(str(t)): o for t, o in cfg.task_overrides.items()}
    cfg.seeds = [int(s) for s in cfg.seeds]
    cfg.__post_init__()
    return cfg


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping with its ``extends`` chain merged in (paths relative to the file)."""
    path = path.resolve()
    if path in seen:
        raise ExperimentConfigError(f"{path}: extends itself (via {[str(p) for p in seen]})")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ExperimentConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ExperimentConfigError(f"{path}: invalid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ExperimentConfigError(f"{path}: top level must be a mapping")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ExperimentConfigError(f"{path}: extends must be a file name, got {parent!r}")
    base = read_yaml(path.parent / parent, (*seen, path))
    for own in ("name", "inputs"):  # an experiment's own (name default: its file name)
        base.pop(own, None)
    for over in (base.get("task_overrides") or {}).values():
        if isinstance(over, dict):
            over.pop("inputs", None)  # per-task inputs are the experiment's own too
    return deep_merge(base, raw)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML experiment config (``yaml.safe_load``: no Python object tags)."""
    path = Path(path)
    raw = read_yaml(path)
    raw["name"] = raw.get("name", path.stem)
    return config_from_dict(raw, str(path))
