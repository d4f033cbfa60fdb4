"""symlog / two-hot round trips and the TD-MPC2 building blocks."""

import math

import pytest
import torch

from farm_safety_critic import layers
from farm_safety_critic import math as wm

torch.set_num_threads(1)


def test_symlog_symexp_round_trip():
    x = torch.tensor([-1e4, -3.0, -0.5, 0.0, 0.25, 7.0, 1e4])
    assert torch.allclose(wm.symexp(wm.symlog(x)), x, rtol=1e-5)
    assert wm.symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)


def test_two_hot_hand_case_and_round_trip():
    zero = wm.two_hot(torch.tensor([0.0]))
    assert zero.shape == (1, wm.NUM_BINS)
    assert zero[0, 50].item() == pytest.approx(1.0) and zero.sum().item() == pytest.approx(1.0)
    # symlog(x) = 0.1 lies half-way between bins 50 (0.0) and 51 (0.2)
    half = wm.two_hot(wm.symexp(torch.tensor([0.1])))
    assert half[0, 50].item() == pytest.approx(0.5, abs=1e-5)
    assert half[0, 51].item() == pytest.approx(0.5, abs=1e-5)
    x = torch.tensor([-500.0, -5.0, -0.3, 0.0, 0.7, 3.0, 1000.0])
    th = wm.two_hot(x)
    assert torch.allclose(th.sum(-1), torch.ones(len(x)))
    back = wm.two_hot_inv(torch.log(th + 1e-12))
    assert torch.allclose(back, x, rtol=1e-3, atol=1e-3)


def test_two_hot_clamps_to_range():
    th = wm.two_hot(torch.tensor([1e9, -1e9]))
    assert th[0, -1].item() == pytest.approx(1.0) and th[1, 0].item() == pytest.approx(1.0)


def test_soft_ce_uniform_logits():
    logits = torch.zeros(3, wm.NUM_BINS)
    ce = wm.soft_ce(logits, torch.tensor([0.0, 5.0, -2.0]))
    assert torch.allclose(ce, torch.full((3,), math.log(wm.NUM_BINS)))


def test_simnorm_groups_sum_to_one():
    x = torch.randn(5, 32)
    y = layers.SimNorm(8)(x)
    assert torch.allclose(y.view(5, 4, 8).sum(-1), torch.ones(5, 4), atol=1e-6)


def test_mlp_shapes_and_dropout_only_first_layer():
    net = layers.mlp(6, [16, 16], 3, dropout=0.1)
    assert net(torch.randn(2, 6)).shape == (2, 3)
    assert net[0].dropout is not None and net[1].dropout is None
    assert isinstance(net[-1], torch.nn.Linear) and not isinstance(net[-1], layers.NormedLinear)
