"""The node graph as data: which nodes exist, their parameters from the launch YAML, and the
command line that starts each one. No rclpy here (``farm_bringup.nodes.compose`` runs the
composed graph); ``sim.launch.py`` and ``farm-graph`` both build on these functions.

Parameters follow ROS 2's params-file layout (``node_name: ros__parameters: {...}``) with the
``/**`` wildcard merged under each node's own section (the node's value wins), nested mappings
flattened to dotted names, then ``node.param:=value`` overrides on top.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

WILDCARDS = ("/**", "**")
PARAMS_KEY = "ros__parameters"
# Path parameters: "{task}" becomes the task's short id, relative paths are taken from the
# YAML file's folder (config/ in the repository, share/farm_bringup/config when installed).
PATH_PARAMS = (
    "checkpoint",
    "world_model",
    "qrisk",
    "recovery_checkpoint",
    "eps_safe_file",
    "anyof_eps_file",
    "runout",
    "object_motion",
    "hand_motion",
    "config_file",
    "extrinsics_file",
    "init",
    "shield_file",
    "yolo_model",
)
GRAPH_SECTION = "farm_graph"  # not a node: a file's node set (nodes) and its twin (use_twin)


class GraphError(ValueError):
    """A bad config, override or node name, or a node whose package is not installed."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph: its console script (= node name), module and class."""

    name: str
    package: str
    module: str
    cls: str
    default: bool = True  # started unless --nodes names others

    def load_class(self) -> type:
        """The node class, imported now (a clear ``GraphError`` when its package is missing)."""
        self.check_installed()
        return getattr(importlib.import_module(self.module), self.cls)

    def check_installed(self) -> None:
        try:
            found = importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise GraphError(
                f"{self.name}: module {self.module} not found (build/install {self.package})"
            )


NODES = {
    s.name: s
    for s in (
        NodeSpec("sim_node", "failurebench_sim", "failurebench_sim.nodes.sim_node", "SimNode"),
        NodeSpec(
            "perception_node",
            "farm_perception",
            "farm_perception.nodes.perception_node",
            "PerceptionNode",
        ),
        NodeSpec("policy_node", "farm_policies", "farm_policies.nodes.policy_node", "PolicyNode"),
        NodeSpec(
            "safety_node",
            "farm_safety_critic",
            "farm_safety_critic.nodes.safety_node",
            "SafetyNode",
        ),
        NodeSpec(
            "arbiter_node",
            "farm_safety_critic",
            "farm_safety_critic.nodes.arbiter_node",
            "ArbiterNode",
        ),
        # online fine-tuning: only started when asked for (train:=true, --nodes)
        NodeSpec(
            "trainer_node",
            "farm_trainer",
            "farm_trainer.nodes.trainer_node",
            "TrainerNode",
            default=False,
        ),
        NodeSpec(
            "episode_node",
            "farm_bringup",
            "farm_bringup.nodes.episode_node",
            "EpisodeNode",
            default=False,
        ),
        NodeSpec(
            "recorder_node",
            "farm_bringup",
            "farm_bringup.nodes.recorder_node",
            "RecorderNode",
            default=False,
        ),
    )
}

Params = dict[str, Any]


@dataclass(frozen=True)
class Override:
    """``node.param:=value`` (``node`` None: every node, like ``/**``)."""

    node: str | None
    name: str
    value: Any


def repo_config() -> Path:
    """config/sim.yaml: the installed share copy when the ament index has one, else the
    repository's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory("farm_bringup")) / "config" / "sim.yaml"
        if shared.exists():
            return shared
    except (ImportError, LookupError):
        pass
    return Path(__file__).resolve().parents[3] / "config" / "sim.yaml"


def _flatten(params: Mapping[str, Any], prefix: str = "") -> Params:
    out: Params = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def load_config(path: str | os.PathLike) -> dict[str, Params]:
    """``{section: flat params}`` of a params file; the wildcard section is keyed ``/**``."""
    text = Path(path).read_text()
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, Mapping):
        raise GraphError(f"{path}: expected a mapping of node names")
    sections: dict[str, Params] = {}
    for key, body in raw.items():
        if not isinstance(body, Mapping) or set(body) != {PARAMS_KEY}:
            raise GraphError(f"{path}: section {key!r} must hold exactly '{PARAMS_KEY}'")
        name = "/**" if key in WILDCARDS else str(key).lstrip("/")
        if "/" in name and name != "/**":
            raise GraphError(f"{path}: namespaced section {key!r} is not supported")
        sections[name] = _flatten(body[PARAMS_KEY] or {})
    return sections


def parse_value(text: str) -> Any:
    """A ``-p`` value as rcl reads it: YAML, and numbers also where PyYAML keeps a string
    (``1e-3``)."""
    value = yaml.safe_load(text) if text.strip() else ""
    if isinstance(value, str):
        for number in (int, float):
            try:
                return number(value)
            except ValueError:
                pass
    return value


def parse_override(text: str) -> Override:
    """``node.param:=value`` or ``param:=value`` (all nodes)."""
    key, sep, value = text.partition(":=")
    if not sep or not key:
        raise GraphError(f"override {text!r} is not name:=value")
    node, dot, name = key.partition(".")
    if dot and node in NODES:
        return Override(node, name, parse_value(value))
    return Override(None, key, parse_value(value))


def task_short_id(task: str) -> str:
    """``FailureBench/BoundedPush-v0`` -> ``BoundedPush-v0`` (the checkpoint folder name)."""
    return task.rsplit("/", 1)[-1]


def resolve_path(value: str, task: str, base: Path) -> str:
    """A path parameter: ``{task}`` filled in, made absolute against ``base``; "" stays ""."""
    if not value:
        return value
    path = Path(value.format(task=task_short_id(task))).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def node_params(
    sections: Mapping[str, Params],
    node: str,
    overrides: Iterable[Override] = (),
    base: Path | None = None,
) -> Params:
    """The parameters ``node`` starts with: ``/**``, its own section, overrides, then paths
    resolved against ``base`` (the YAML's folder)."""
    params = {**sections.get("/**", {}), **sections.get(node, {})}
    for o in overrides:
        if o.node in (None, node):
            params[o.name] = o.value
    if base is not None:
        task = str(params.get("task", ""))
        for key in PATH_PARAMS:
            if isinstance(params.get(key), str):
                params[key] = resolve_path(params[key], task, base)
    return params


def mode_overrides(
    task: str | None = None,
    clock_mode: str | None = None,
    observation_source: str | None = None,
) -> list[Override]:
    """The launch arguments as overrides (sim.launch.py and farm-graph's flags alike).

    lockstep also sets the arbiter's ``command_rate_hz`` to 0 (publish on decisions only)."""
    out = []
    if task:
        out.append(Override(None, "task", task))
    if clock_mode:
        out.append(Override("sim_node", "clock_mode", clock_mode))
        if clock_mode == "lockstep":
            out.append(Override("arbiter_node", "command_rate_hz", 0.0))
    if observation_source:
        out.append(Override("sim_node", "observation_source", observation_source))
    return out


def default_nodes(sections: Mapping[str, Params], overrides: Sequence[Override] = ()) -> list[str]:
    """The default graph: every default node, perception only when the twin renders."""
    source = node_params(sections, "sim_node", overrides).get("observation_source", "camera")
    return [
        n
        for n, spec in NODES.items()
        if spec.default and (n != "perception_node" or source == "camera")
    ]


def graph_nodes(
    sections: Mapping[str, Params], overrides: Sequence[Override] = (), use_twin: bool = False
) -> list[str]:
    """The nodes a file's graph runs: its ``farm_graph.nodes`` (plus the twin with
    ``use_twin``), or, in a file without that section (sim.yaml), ``default_nodes``."""
    spec = sections.get(GRAPH_SECTION)
    if spec is None:
        return default_nodes(sections, overrides)
    names = list(spec.get("nodes", ()))
    if not use_twin:
        return names
    return ["sim_node", *(n for n in names if n != "episode_node")]  # the twin owns episodes


def section_overrides(sections: Mapping[str, Params], key: str) -> list[Override]:
    """A real-robot file's ``farm_graph.<key>`` overrides: ``use_twin`` (the twin replaces the
    drivers) or ``demos`` (record teleoperated demonstrations)."""
    spec = sections.get(GRAPH_SECTION)
    if spec is None:
        raise GraphError(f"this config has no {GRAPH_SECTION!r} section (no {key} overrides)")
    return [parse_override(o) for o in spec.get(key, ())]


def twin_overrides(sections: Mapping[str, Params]) -> list[Override]:
    """What ``use_twin`` changes in a real-robot file."""
    return section_overrides(sections, "use_twin")


def check_nodes(names: Iterable[str]) -> list[NodeSpec]:
    unknown = [n for n in names if n not in NODES]
    if unknown:
        raise GraphError(f"unknown nodes {unknown}; known: {sorted(NODES)}")
    return [NODES[n] for n in names]


def format_value(value: Any) -> str:
    """A value for ``-p name:=value`` (JSON is YAML, so strings stay strings)."""
    return json.dumps(value)


def process_command(
    spec: NodeSpec,
    params_file: str | os.PathLike,
    params: Mapping[str, Any],
    python: str = sys.executable,
) -> list[str]:
    """The child process of one node: its ``main`` with the YAML and ``params`` as ``-p``.

    ``-p node:name:=value`` (node-qualified, as launch_ros writes it): a plain ``-p`` counts as
    ``/**`` and loses against the YAML's section for the node."""
    launcher = f"from {spec.module} import main; main()"
    command = [python, "-c", launcher, "--ros-args", "--params-file", str(params_file)]
    for name, value in params.items():
        command += ["-p", f"{spec.name}:{name}:={format_value(value)}"]
    return command


def changed_params(
    sections: Mapping[str, Params], node: str, overrides: Sequence[Override], base: Path
) -> Params:
    """What the YAML alone would not give ``node``: overrides and resolved paths (the ``-p``
    arguments of its process, the extra parameters of its launch ``Node``)."""
    plain = node_params(sections, node)
    full = node_params(sections, node, overrides, base)
    return {k: v for k, v in full.items() if k not in plain or plain[k] != v}
