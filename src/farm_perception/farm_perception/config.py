"""``config/perception.yaml``: per task, the objects (observation order) and how to find them.

Per object: ``label``, ``class_id``, ``bands`` (one or more OpenCV HSV boxes, H in 0..179,
S and V in 0..255, whose union is the object's colour), ``workspace`` (base-frame box its
visible surface lies in; pixels elsewhere are ignored), ``max_extent`` (m: a blob whose 3-D
spread exceeds it is something else), ``centre_offset`` (visible surface -> object reference
point, see ``estimator``), ``all_bands`` (a blob must show every band: the black-and-white
ball), ``fixed_z`` (the reference point's known height, for an object fixed on the table). ``farm-perception bands`` derives and checks the bands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "config" / "perception.yaml"


class PerceptionConfigError(ValueError):
    """perception.yaml is malformed or lacks the requested task."""


@dataclass(frozen=True)
class HsvBand:
    low: tuple[int, int, int]
    high: tuple[int, int, int]

    def __post_init__(self) -> None:
        tops = (179, 255, 255)
        for lo, hi, top in zip(self.low, self.high, tops, strict=True):
            if not (0 <= lo <= hi <= top):
                raise PerceptionConfigError(f"HSV band {self.low}..{self.high} out of range/order")


@dataclass(frozen=True)
class CentreOffset:
    """Visible-surface median -> reference point: ``along_view`` m horizontally away from the
    camera, ``up`` m along base z."""

    along_view: float = 0.0
    up: float = 0.0


@dataclass(frozen=True)
class ObjectSpec:
    label: str
    class_id: int
    bands: tuple[HsvBand, ...]
    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    max_extent: float = 0.1
    centre_offset: CentreOffset = field(default_factory=CentreOffset)
    twin_body: str = ""  # MuJoCo body of the object in the twin (deriving bands only)
    all_bands: bool = False  # a blob must contain pixels of every band (patterned objects)
    fixed_z: float | None = None  # reference-point height when it is known (a fixed object)


@dataclass(frozen=True)
class TaskPerception:
    task: str
    objects: tuple[ObjectSpec, ...]
    min_area: int = 30
    kernel: int = 3

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(o.label for o in self.objects)


def task_key(task: str) -> str:
    """'FailureBench/BoundedPush-v0' or 'BoundedPush' -> 'BoundedPush'."""
    name = task.split("/")[-1]
    return name[: -len("-v0")] if name.endswith("-v0") else name


def _triple(v: Any, what: str) -> tuple:
    if not isinstance(v, list | tuple) or len(v) != 3:
        raise PerceptionConfigError(f"{what} must be 3 numbers, got {v!r}")
    return tuple(v)


def _object(d: dict, defaults: dict, where: str) -> ObjectSpec:
    d = {**defaults, **d}
    try:
        bands = tuple(
            HsvBand(_triple(lo, "band low"), _triple(hi, "band high")) for lo, hi in d["bands"]
        )
        ws = d["workspace"]
        return ObjectSpec(
            label=str(d["label"]),
            class_id=int(d["class_id"]),
            bands=bands,
            workspace_low=tuple(float(x) for x in _triple(ws["low"], "workspace low")),
            workspace_high=tuple(float(x) for x in _triple(ws["high"], "workspace high")),
            max_extent=float(d.get("max_extent", 0.1)),
            centre_offset=CentreOffset(**(d.get("centre_offset") or {})),
            twin_body=str(d.get("twin_body", "")),
            all_bands=bool(d.get("all_bands", False)),
            fixed_z=None if d.get("fixed_z") is None else float(d["fixed_z"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, PerceptionConfigError):
            raise PerceptionConfigError(f"{where}: {e}") from e
        raise PerceptionConfigError(f"{where}: malformed object entry ({e!r})") from e


def parse(data: dict, task: str, source: str = "perception config") -> TaskPerception:
    """The TaskPerception of ``task`` from a loaded perception.yaml mapping."""
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise PerceptionConfigError(f"{source}: expected a mapping with a 'tasks' mapping")
    key = task_key(task)
    if key not in data["tasks"]:
        raise PerceptionConfigError(f"{source}: no task {key!r}; has {sorted(data['tasks'])}")
    defaults = dict(data.get("defaults") or {})
    entry = data["tasks"][key] or {}
    obj_defaults = {k: defaults[k] for k in ("workspace", "max_extent") if k in defaults}
    objects = tuple(
        _object(o, obj_defaults, f"{source}: {key}.objects[{i}]")
        for i, o in enumerate(entry.get("objects") or ())
    )
    if not objects:
        raise PerceptionConfigError(f"{source}: task {key!r} lists no objects")
    if len({o.label for o in objects}) != len(objects):
        raise PerceptionConfigError(f"{source}: task {key!r} repeats an object label")
    min_area = int(entry.get("min_area", defaults.get("min_area", 30)))
    kernel = int(entry.get("kernel", defaults.get("kernel", 3)))
    if min_area < 1 or kernel < 1:
        raise PerceptionConfigError(f"{source}: min_area and kernel must be >= 1")
    return TaskPerception(key, objects, min_area, kernel)


def load(path: str | Path, task: str) -> TaskPerception:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PerceptionConfigError(f"{path}: cannot read: {e}") from e
    return parse(data, task, str(path))
