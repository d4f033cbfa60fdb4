"""Stamp pairing, the action <-> target conversion and the observation builder's contract."""

import numpy as np
import pytest

from failurebench_sim.command import CommandError, action_to_target, target_to_action
from failurebench_sim.stamp_sync import ExactPairer, LatestBefore


def test_exact_pairer_never_mixes_frames():
    p = ExactPairer(("a", "b"))
    assert p.add("a", 10, "a10") is None
    assert p.add("a", 20, "a20") is None
    assert p.add("b", 20, "b20") == {"a": "a20", "b": "b20"}  # frame 10 is dropped, not mixed
    assert p.dropped == 1
    assert p.add("b", 10, "b10") is None  # late: its frame was superseded
    assert p.add("a", 20, "dup") is None and p.last_completed == 20
    with pytest.raises(KeyError):
        p.add("c", 30, 0)


def test_exact_pairer_bounds_memory():
    p = ExactPairer(("a", "b"), max_pending=4)
    for t in range(10):
        p.add("a", t, t)
    assert len(p._pending) == 4 and p.dropped == 6


def test_latest_before():
    lb = LatestBefore(max_age_ns=5)
    for t in (1, 3, 7):
        lb.add(t, t)
    assert lb.at(6) == 3 and lb.at(7) == 7 and lb.at(0) is None
    assert lb.at(20) is None  # too old


def test_action_target_round_trip():
    hand = np.array([0.1, 0.6, 0.2])
    for a in np.random.default_rng(0).uniform(-1, 1, (100, 4)):
        target, g = action_to_target(hand, a)
        np.testing.assert_allclose(target_to_action(hand, target, g), a, rtol=0, atol=1e-12)
    target, _ = action_to_target(hand, [5, -5, 0, 0])  # clipped to one unit step
    np.testing.assert_allclose(target - hand, [0.01, -0.01, 0])
    with pytest.raises(CommandError):
        action_to_target(hand, [np.nan, 0, 0, 0])
    with pytest.raises(CommandError):
        target_to_action(hand, [0, 0], 0.0)
