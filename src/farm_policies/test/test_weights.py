"""Weight messages: round trip into LivePolicy; corrupted, truncated, foreign and stale pushes
are rejected and the old weights keep running."""

import numpy as np
import pytest
import torch
from safetensors.torch import save

from farm_policies.actor import TanhGaussianActor
from farm_policies.live import LivePolicy, WeightUpdateError
from farm_policies.weights import decode_weights, encode_weights


def _actor(seed: int) -> TanhGaussianActor:
    torch.manual_seed(seed)
    return TanhGaussianActor(6, 2, hidden=16, depth=2)


def test_round_trip_updates_the_live_policy():
    live, new = LivePolicy(_actor(0)), _actor(1)
    data = encode_weights(new.state_dict(), version=5)
    live.update(*decode_weights(data))
    assert live.version == 5
    obs = np.ones(6)
    want = new.act(torch.ones(1, 6), deterministic=True)[0].detach().numpy()
    np.testing.assert_allclose(live.act(obs)[0], want, atol=1e-6)


@pytest.mark.parametrize("case", ["truncated", "garbage", "flipped", "foreign", "stale", "shape"])
def test_bad_pushes_are_rejected(case):
    live = LivePolicy(_actor(0), version=2)
    before = live.act(np.ones(6))[0]
    data = encode_weights(_actor(1).state_dict(), version=3)
    if case == "truncated":
        data = data[: len(data) // 2]
    elif case == "garbage":
        data = b"\x00" * 64
    elif case == "flipped":  # a payload byte changes: the sha256 no longer matches
        data = data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:]
    elif case == "foreign":
        data = save({"x": torch.zeros(2)})
    elif case == "stale":
        data = encode_weights(_actor(1).state_dict(), version=2)
    elif case == "shape":
        data = encode_weights(TanhGaussianActor(6, 2, hidden=8, depth=2).state_dict(), version=3)
    with pytest.raises(WeightUpdateError):
        live.update(*decode_weights(data))
    assert live.version == 2
    np.testing.assert_array_equal(live.act(np.ones(6))[0], before)
