"""Safetensors checkpoints with a JSON header (never pickle).

Tensors of module ``name`` are stored as ``"name/<state_dict key>"``; the safetensors metadata
entry ``farm_header`` holds a JSON header with the format version, creation time, per-module
architecture, a SHA-256 of all tensor bytes, and whatever the caller adds (dims, normalisation,
training metadata, seed). Writes are atomic (temp file in the same directory + ``os.replace``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from failurebench_sim.atomic import atomic_write
from farm_policies.actor import TanhGaussianActor, ValueNet, build_module
from farm_policies.policy import Policy

FORMAT = "farm-checkpoint"
FORMAT_VERSION = 1
HEADER_KEY = "farm_header"
ACTOR, VALUE = "actor", "value"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupted, truncated, not ours, or does not match."""


def tensor_digest(tensors: Mapping[str, Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    tensors_by_module: Mapping[str, nn.Module | Mapping[str, Tensor]],
    header: Mapping[str, Any],
) -> Path:
    """Write modules (or raw tensor dicts) and a JSON-serialisable ``header`` atomically."""
    tensors: dict[str, Tensor] = {}
    modules: dict[str, Any] = {}
    for name, obj in tensors_by_module.items():
        if "/" in name or not name:
            raise ValueError(f"module name must be non-empty and contain no '/': {name!r}")
        sd = obj.state_dict() if isinstance(obj, nn.Module) else dict(obj)
        config = obj.config() if hasattr(obj, "config") else None
        modules[name] = {"config": config, "keys": sorted(sd)}
        for key, value in sd.items():
            if not isinstance(value, Tensor):
                raise ValueError(f"{name}/{key} is not a tensor ({type(value).__name__})")
            tensors[f"{name}/{key}"] = value.detach().cpu().clone().contiguous()
    full = {
        **dict(header),
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": header.get("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        "modules": modules,
        "tensor_sha256": tensor_digest(tensors),
    }
    try:
        metadata = {HEADER_KEY: json.dumps(full, allow_nan=False)}
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint header is not JSON-serialisable: {e}") from e
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_checkpoint(
    path: str | os.PathLike, obs_dim: int | None = None, act_dim: int | None = None
) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
    """Read and verify a checkpoint: ``({module: state_dict}, header)``.

    Raises ``CheckpointError`` if the file is missing, not safetensors, truncated, corrupted
    (checksum), from another format/version, or if ``obs_dim``/``act_dim`` do not match.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for bad files
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (corrupted or truncated?): {e}"
        ) from e
    if HEADER_KEY not in metadata:
        raise CheckpointError(f"{path} is a safetensors file but has no FARM header")
    try:
        header = json.loads(metadata[HEADER_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: FARM header is not valid JSON: {e}") from e
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported format {header.get('format')!r} "
            f"v{header.get('format_version')!r} (expected {FORMAT!r} v{FORMAT_VERSION})"
        )
    if tensor_digest(tensors) != header.get("tensor_sha256"):
        raise CheckpointError(f"{path}: tensor checksum mismatch (file corrupted)")
    state_dicts: dict[str, dict[str, Tensor]] = {}
    for name, info in header.get("modules", {}).items():
        keys = set(info.get("keys", []))
        state_dicts[name] = {
            k.split("/", 1)[1]: v for k, v in tensors.items() if k.split("/", 1)[0] == name
        }
        if set(state_dicts[name]) != keys:
            raise CheckpointError(f"{path}: tensors of module {name!r} do not match the header")
    for key, expected in (("obs_dim", obs_dim), ("act_dim", act_dim)):
        if expected is not None and header.get(key) != expected:
            raise CheckpointError(
                f"{path}: {key} mismatch: checkpoint has {header.get(key)}, expected {expected}"
            )
    return state_dicts, header


def instantiate(
    state_dicts: Mapping[str, Mapping[str, Tensor]], header: Mapping[str, Any], name: str
) -> nn.Module:
    """Rebuild module ``name`` from its stored architecture and load its weights strictly."""
    info = header.get("modules", {}).get(name)
    if info is None or name not in state_dicts:
        raise CheckpointError(f"checkpoint has no module {name!r} (has {sorted(state_dicts)})")
    config = info.get("config")
    if not config:
        raise CheckpointError(f"module {name!r} has no stored architecture")
    for key in ("obs_dim", "act_dim"):
        if key in config and key in header and config[key] != header[key]:
            raise CheckpointError(
                f"module {name!r}: {key}={config[key]} disagrees with header {key}={header[key]}"
            )
    try:
        module = build_module(config)
        module.load_state_dict(state_dicts[name], strict=True)
    except (RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"module {name!r} does not match its architecture {config}: {e}"
        ) from e
    return module


def policy_header(
    actor: TanhGaussianActor, meta: Mapping[str, Any] | None, seed: int | None
) -> dict:
    """Standard header fields for a policy checkpoint."""
    return {
        "obs_dim": actor.obs_dim,
        "act_dim": actor.act_dim,
        "architecture": actor.config(),
        "normalization": {
            "obs_mean": actor.normalizer.obs_mean.tolist(),
            "obs_std": actor.normalizer.obs_std.tolist(),
        },
        "meta": dict(meta or {}),
        "seed": seed,
    }


def save_policy(
    path: str | os.PathLike,
    actor: TanhGaussianActor,
    value: ValueNet | None = None,
    meta: Mapping[str, Any] | None = None,
    seed: int | None = None,
    extra_modules: Mapping[str, nn.Module | Mapping[str, Tensor]] | None = None,
) -> Path:
    """Save an actor (and optional value net) as ``actor``/``value`` modules."""
    modules: dict[str, Any] = {ACTOR: actor}
    if value is not None:
        if value.obs_dim != actor.obs_dim:
            raise ValueError(f"value obs_dim {value.obs_dim} != actor obs_dim {actor.obs_dim}")
        modules[VALUE] = value
    modules.update(extra_modules or {})
    return save_checkpoint(path, modules, policy_header(actor, meta, seed))


def load_actor_value(
    path: str | os.PathLike, obs_dim: int | None = None, act_dim: int | None = None
) -> tuple[TanhGaussianActor, ValueNet | None, dict[str, Any]]:
    """Load ``(actor, value or None, header)`` from a policy checkpoint."""
    state_dicts, header = load_checkpoint(path, obs_dim, act_dim)
    actor = instantiate(state_dicts, header, ACTOR)
    if not isinstance(actor, TanhGaussianActor):
        raise CheckpointError(f"{path}: module 'actor' is a {type(actor).__name__}")
    value = instantiate(state_dicts, header, VALUE) if VALUE in state_dicts else None
    return actor, value, header


def load_policy(
    path: str | os.PathLike, obs_dim: int | None = None, act_dim: int | None = None
) -> Policy:
    """Load an inference ``Policy`` from a checkpoint written by ``save_policy``."""
    actor, value, header = load_actor_value(path, obs_dim, act_dim)
    return Policy(actor, value, header)
