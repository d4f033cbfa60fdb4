"""Building blocks of the TD-MPC2-style world model: NormedLinear, SimNorm, mlp."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

SIMNORM_DIM = 8


class SimNorm(nn.Module):
    """Simplicial normalisation: softmax over consecutive groups of ``dim`` features."""

    def __init__(self, dim: int = SIMNORM_DIM) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        x = x.reshape(*shape[:-1], -1, self.dim)
        return F.softmax(x, dim=-1).reshape(shape)


class NormedLinear(nn.Linear):
    """Linear -> (Dropout) -> LayerNorm -> activation (Mish by default)."""

    def __init__(
        self, in_dim: int, out_dim: int, dropout: float = 0.0, act: nn.Module | None = None
    ) -> None:
        super().__init__(in_dim, out_dim)
        self.ln = nn.LayerNorm(out_dim)
        self.act = act if act is not None else nn.Mish()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.act(self.ln(x))


def mlp(
    in_dim: int,
    hidden: list[int],
    out_dim: int,
    act: nn.Module | None = None,
    dropout: float = 0.0,
) -> nn.Sequential:
    """NormedLinear hidden layers, then a plain Linear head (or a NormedLinear with ``act``).

    ``dropout`` applies to the first hidden layer only (TD-MPC2's Q-networks).
    """
    dims = [in_dim, *hidden]
    layers: list[nn.Module] = [
        NormedLinear(dims[i], dims[i + 1], dropout=dropout if i == 0 else 0.0)
        for i in range(len(dims) - 1)
    ]
    layers.append(
        NormedLinear(dims[-1], out_dim, act=act)
        if act is not None
        else nn.Linear(dims[-1], out_dim)
    )
    return nn.Sequential(*layers)


def weight_init(m: nn.Module) -> None:
    """Truncated-normal (std 0.02) weights and zero biases for linear layers."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
