"""GAE against hand-computed cases: truncation bootstraps, termination does not."""

import numpy as np
import pytest
import torch

from farm_trainer.online.gae import compute_gae

G, L = 0.9, 0.8


def run(term, trunc, next_values=(0.5, 0.5, 0.5)):
    col = lambda x: np.asarray(x, dtype=np.float32)[:, None]  # noqa: E731
    adv, ret = compute_gae(
        col([1, 1, 1]), col([0.5, 0.5, 0.5]), col(next_values), col(term), col(trunc), G, L
    )
    return adv[:, 0].numpy(), ret[:, 0].numpy()


def test_no_done_bootstraps_last_step():
    adv, ret = run([0, 0, 0], [0, 0, 0])
    # delta = 1 + 0.9 * 0.5 - 0.5 = 0.95 everywhere; A_t = delta + 0.72 A_{t+1}
    np.testing.assert_allclose(
        adv, [0.95 + 0.72 * (0.95 + 0.72 * 0.95), 0.95 + 0.72 * 0.95, 0.95], rtol=1e-6
    )
    np.testing.assert_allclose(ret, adv + 0.5, rtol=1e-6)


def test_truncation_bootstraps_from_final_obs_value_and_cuts_recursion():
    adv, _ = run([0, 0, 0], [0, 1, 0], next_values=(0.5, 2.0, 0.5))
    # t=1: 1 + 0.9 * V(final obs)=2.0 - 0.5 = 2.3, no continuation into the next episode
    np.testing.assert_allclose(adv, [0.95 + 0.72 * 2.3, 2.3, 0.95], rtol=1e-6)


def test_termination_does_not_bootstrap():
    adv, _ = run([0, 1, 0], [0, 0, 0], next_values=(0.5, 2.0, 0.5))
    np.testing.assert_allclose(adv, [0.95 + 0.72 * 0.5, 0.5, 0.95], rtol=1e-6)


def test_terminated_last_step_and_env_columns_independent():
    r = torch.ones(2, 2)
    v = torch.zeros(2, 2)
    nv = torch.ones(2, 2)
    term = torch.tensor([[0, 0], [1, 0]])
    trunc = torch.zeros(2, 2)
    adv, _ = compute_gae(r, v, nv, term, trunc, G, L)
    # env 0: A1 = 1; A0 = 1.9 + 0.72 * 1. env 1: A1 = 1.9; A0 = 1.9 + 0.72 * 1.9
    np.testing.assert_allclose(adv.numpy(), [[1.9 + 0.72, 1.9 + 0.72 * 1.9], [1.0, 1.9]], rtol=1e-6)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes"):
        compute_gae(
            np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 1)), np.zeros((3, 2)), np.zeros((3, 2))
        )
