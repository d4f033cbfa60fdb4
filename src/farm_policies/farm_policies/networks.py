"""MLP builder with the orthogonal initialisation used by Uni-O4 / CleanRL PPO."""

from __future__ import annotations

import math

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}
HIDDEN_GAIN = math.sqrt(2.0)
ACTOR_HEAD_GAIN = 0.01
VALUE_HEAD_GAIN = 1.0


def orthogonal_init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights with ``gain``, zero bias."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: int = 256,
    depth: int = 3,
    activation: str = "relu",
    out_gain: float = 1.0,
) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` then a linear head.

    Hidden layers get orthogonal gain sqrt(2); the head gets ``out_gain`` (0.01 for an actor
    head, 1.0 for a value head).
    """
    if depth < 1 or hidden < 1:
        raise ValueError(
            f"mlp needs depth >= 1 and hidden >= 1, got depth={depth}, hidden={hidden}"
        )
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [orthogonal_init(nn.Linear(width, hidden), HIDDEN_GAIN), act()]
        width = hidden
    layers.append(orthogonal_init(nn.Linear(width, out_dim), out_gain))
    return nn.Sequential(*layers)
