"""Task-policy weight messages: the actor's state as safetensors bytes with version and sha256.

The trainer (possibly on another machine) pushes ``encode_weights(actor.state_dict(), version)``
over ROS (``std_msgs/UInt8MultiArray`` on ``ros_contract.POLICY_WEIGHTS``, reliable + transient
local, so a restarted node gets the latest); the policy and safety nodes ``decode_weights`` and
hand the result to ``LivePolicy.update``, which checks version, hash, names and shapes. Bytes are
parsed by safetensors (never unpickled); anything malformed raises ``WeightUpdateError``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import torch
from safetensors.torch import load, save
from torch import Tensor

from farm_policies.checkpoint import tensor_digest
from farm_policies.live import WeightUpdateError

FORMAT = "farm-policy-weights/1"
MAX_BYTES = 64 * 1024 * 1024  # far above any actor FARM ships (~1 MB)


def encode_weights(state: Mapping[str, Tensor], version: int) -> bytes:
    """Safetensors bytes of ``state`` with ``{format, version, sha256}`` metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {"format": FORMAT, "version": str(int(version)), "sha256": tensor_digest(tensors)}
    return save(tensors, metadata=meta)


def decode_weights(data: bytes) -> tuple[int, str, dict[str, Tensor]]:
    """(version, sha256, state) from ``encode_weights`` bytes; ``WeightUpdateError`` otherwise."""
    data = bytes(data)
    if not 8 < len(data) <= MAX_BYTES:
        raise WeightUpdateError(f"weight message of {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise WeightUpdateError("truncated weight message (header longer than the message)")
    try:
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
        state = load(data)
    except Exception as e:  # safetensors raises its own error types for malformed bytes
        raise WeightUpdateError(f"malformed weight message: {e}") from e
    if meta.get("format") != FORMAT:
        raise WeightUpdateError(f"not a {FORMAT} message (format {meta.get('format')!r})")
    try:
        version = int(meta["version"])
        sha = str(meta["sha256"])
    except (KeyError, ValueError) as e:
        raise WeightUpdateError(f"weight message lacks version/sha256: {e}") from e
    return version, sha, {k: torch.as_tensor(v) for k, v in state.items()}
