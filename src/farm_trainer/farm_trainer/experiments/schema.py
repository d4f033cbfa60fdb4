"""Check a config mapping against the dataclass (or function) it feeds: keys, types, values.

``check_fields(cls, raw, where)`` fails with ``ExperimentConfigError`` naming the first bad key
(``where.key``); ``NESTED`` lists the free-form sections of an experiment and the real
hyper-parameter classes they are passed to, so a typo there fails when the YAML is read.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any


class ExperimentConfigError(ValueError):
    """An experiment config that cannot be run (unknown key, bad value, unreadable file)."""


def type_ok(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type hint (int is a float; bool is not an int)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, dict)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        return isinstance(value, list | tuple)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def check_fields(
    cls: type,
    raw: Any,
    where: str,
    exclude: tuple[str, ...] = (),
    nested: Mapping[str, Callable[[Any, str], None]] | None = None,
) -> None:
    """``raw`` may only hold fields of dataclass ``cls`` (minus ``exclude``), of the right types."""
    if not isinstance(raw, dict):
        raise ExperimentConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in dataclasses.fields(cls) if f.name not in exclude)
    for key, value in raw.items():
        if key not in known:
            raise ExperimentConfigError(f"unknown key {where}.{key}; known: {known}")
        if nested and key in nested:
            nested[key](value, f"{where}.{key}")
        elif not type_ok(value, hints[key]):
            raise ExperimentConfigError(
                f"{where}.{key} must be {_hint_name(hints[key])}, got {value!r}"
            )


def construct(fn: Callable[..., Any], where: str, **kwargs: Any) -> Any:
    """``fn(**kwargs)``, its own validation errors reported as ``where: message``."""
    try:
        return fn(**kwargs)
    except (TypeError, ValueError) as e:
        raise ExperimentConfigError(f"{where}: {e}") from e


# ---------------------------------------------------------------- the nested sections
def check_offline(raw: Any, where: str) -> None:
    from farm_trainer.offline.pipeline import OfflineConfig

    check_fields(OfflineConfig, raw, where, exclude=("kind", "progress"))
    construct(OfflineConfig, where, **raw)


def check_world_model_train(raw: Any, where: str) -> None:
    from farm_safety_critic.losses import LossConfig
    from farm_safety_critic.world_model import WorldModelConfig
    from farm_trainer.safety.train_world_model import WorldModelTrainConfig

    def model(v: Any, w: str) -> None:
        check_fields(WorldModelConfig, v, w, exclude=("obs_dim", "act_dim"))
        construct(WorldModelConfig, w, obs_dim=1, act_dim=1, **v)

    def loss(v: Any, w: str) -> None:
        check_fields(LossConfig, v, w)
        construct(LossConfig, w, **v)

    check_fields(WorldModelTrainConfig, raw, where, nested={"model": model, "loss": loss})


def check_qrisk_train(raw: Any, where: str) -> None:
    from farm_trainer.safety.train_qrisk import QRiskTrainConfig

    check_fields(QRiskTrainConfig, raw, where)
    construct(QRiskTrainConfig, where, **raw)


def check_ppo(raw: Any, where: str) -> None:
    from farm_trainer.online.ppo import PPOConfig

    check_fields(PPOConfig, raw, where)
    construct(PPOConfig, where, **raw)


def check_mppi(raw: Any, where: str) -> None:
    from farm_safety_critic.mppi import MPPIConfig

    check_fields(MPPIConfig, raw, where)
    construct(MPPIConfig, where, **raw)


def check_eps_rule(raw: Any, where: str) -> None:
    """Keyword arguments of ``calibration.choose_eps_safe`` (after the three score arrays)."""
    from farm_safety_critic.calibration import choose_eps_safe

    _check_rule(choose_eps_safe, 3, raw, where)


def check_anyof_rule(raw: Any, where: str) -> None:
    """Keyword arguments of ``calibration.choose_anyof_eps`` (after the scores and labels), or,
    with ``min_recall``, of ``calibration.choose_qrisk_for_recall`` (with ``c_h_grid`` too:
    ``calibration.choose_anyof_for_recall``) plus ``recall_within`` (the label's look-ahead,
    steps; default the gate's H)."""
    from farm_safety_critic.calibration import (
        choose_anyof_eps,
        choose_anyof_for_recall,
        choose_qrisk_for_recall,
    )

    if isinstance(raw, dict) and "min_recall" in raw:
        raw = dict(raw)
        within = raw.pop("recall_within", 1)
        if not (type_ok(within, int) and within >= 1):
            raise ExperimentConfigError(
                f"{where}.recall_within must be an int >= 1, got {within!r}"
            )
        if "c_h_grid" in raw:
            _check_rule(choose_anyof_for_recall, 3, raw, where)
            return
        _check_rule(choose_qrisk_for_recall, 3, raw, where,
                    set_by_stage=("c_h_eps_safe", "ceiling"))  # fmt: skip
        return
    _check_rule(choose_anyof_eps, 3, raw, where, set_by_stage=("c_h_eps_safe",))


def _check_rule(
    fn: Callable[..., Any], n_arrays: int, raw: Any, where: str, set_by_stage: tuple = ()
) -> None:
    """``raw``: keyword arguments of calibration rule ``fn`` after its ``n_arrays`` inputs (less
    those the stage sets); numbers in [0, 1], grids non-empty lists of numbers >= 0."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise ExperimentConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    params = [p for p in list(inspect.signature(fn).parameters.values())[n_arrays:]
              if p.name not in set_by_stage]  # fmt: skip
    known = {p.name: p for p in params}
    for key, value in raw.items():
        if key not in known:
            raise ExperimentConfigError(f"unknown key {where}.{key}; known: {sorted(known)}")
        if "grid" in key:
            if not (isinstance(value, (list, tuple)) and value
                    and all(type_ok(v, float) and v >= 0 for v in value)):  # fmt: skip
                raise ExperimentConfigError(
                    f"{where}.{key} must be a non-empty list of numbers >= 0, got {value!r}"
                )
        elif not (type_ok(value, float) and 0.0 <= value <= 1.0):
            raise ExperimentConfigError(f"{where}.{key} must be a number in [0, 1], got {value!r}")
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    missing = [k for k in required if k not in raw]
    if missing:
        raise ExperimentConfigError(f"{where} needs {' and '.join(missing)}")


NESTED: dict[str, dict[str, Callable[[Any, str], None]]] = {
    "": {"offline": check_offline, "offline_recovery": check_offline},
    "world_model": {"train": check_world_model_train},
    "qrisk": {"train": check_qrisk_train},
    "online": {"ppo": check_ppo},
    "gate": {"mppi": check_mppi, "eps_rule": check_eps_rule, "anyof_rule": check_anyof_rule},
}
"""section ('' = top level) -> key -> checker of that key's mapping"""
