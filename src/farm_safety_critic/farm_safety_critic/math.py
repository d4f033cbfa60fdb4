"""Symlog / two-hot helpers for the discrete regression of rewards and values (as TD-MPC2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

NUM_BINS = 101
VMIN, VMAX = -10.0, 10.0
BIN_SIZE = (VMAX - VMIN) / (NUM_BINS - 1)


def symlog(x: Tensor) -> Tensor:
    """sign(x) * log(1 + |x|)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    """Inverse of symlog: sign(x) * (exp(|x|) - 1)."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


def bins(device: torch.device | None = None) -> Tensor:
    """Bin centres in symlog space, shape (NUM_BINS,)."""
    return torch.linspace(VMIN, VMAX, NUM_BINS, device=device)


def two_hot(x: Tensor) -> Tensor:
    """Scalars (...,) -> soft two-hot targets (..., NUM_BINS) over symlog(x) clamped to [VMIN, VMAX]."""
    y = torch.clamp(symlog(x), VMIN, VMAX)
    pos = (y - VMIN) / BIN_SIZE
    idx = torch.floor(pos).clamp(max=NUM_BINS - 2).long()
    offset = (pos - idx).unsqueeze(-1)
    out = torch.zeros(*x.shape, NUM_BINS, device=x.device, dtype=x.dtype)
    out.scatter_(-1, idx.unsqueeze(-1), 1.0 - offset)
    out.scatter_add_(-1, idx.unsqueeze(-1) + 1, offset)
    return out


def two_hot_inv(logits: Tensor) -> Tensor:
    """Logits (..., NUM_BINS) -> scalars (...,): symexp of the expected bin value."""
    return symexp((F.softmax(logits, dim=-1) * bins(logits.device)).sum(-1))


def soft_ce(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy between predicted logits (..., NUM_BINS) and two_hot(target (...,)); shape (...,)."""
    return -(two_hot(target) * F.log_softmax(logits, dim=-1)).sum(-1)
