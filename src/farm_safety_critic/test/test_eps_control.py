"""eps_safe steered online to a target IR-failure rate (``AdaptiveEpsSafe``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from farm_safety_critic.eps_control import AdaptiveEpsSafe
from farm_safety_critic.filter import FilterDecision


class FakeGate:
    """A gate whose decisions record the threshold they were made with."""

    def __init__(self, eps: float = 0.1) -> None:
        self.decider = SimpleNamespace(eps_safe=eps)

    @property
    def eps_safe(self) -> float:
        return self.decider.eps_safe

    def __call__(self, obs, proposed):
        n = proposed.shape[0]
        return FilterDecision(proposed, np.zeros(n, bool), np.zeros(n), self.decider.eps_safe)


def test_more_failures_than_the_target_lower_eps_and_fewer_raise_it_back():
    ctl = AdaptiveEpsSafe(FakeGate(0.1), target_rate=0.05, kp=2.0, ki=0.2, window=10)
    seen = []
    for _ in range(10):
        ctl.observe_episodes([1, 0])  # half the episodes fail: above the 5 % target
        seen.append(ctl.eps_safe)
    assert all(b <= a for a, b in zip(seen, seen[1:], strict=False)) and seen[-1] < 0.05
    assert seen[-1] >= 0.1 * 0.1  # never below min_factor * eps_0
    d = ctl(np.zeros((2, 3)), np.zeros((2, 1)))
    assert d.threshold == pytest.approx(seen[-1])  # the gate decides with the adapted eps
    for _ in range(60):
        ctl.observe_episodes([0, 0, 0, 0])  # no failures: eps climbs back, capped at 3 x eps_0
    assert seen[-1] < ctl.eps_safe <= 0.3 + 1e-9


def test_no_finished_episode_keeps_eps_and_the_state_survives_a_checkpoint():
    ctl = AdaptiveEpsSafe(FakeGate(0.2), window=5)
    ctl.observe_episodes([])
    assert ctl.eps_safe == pytest.approx(0.2)
    ctl.observe_episodes([1, 1, 0])
    eps = ctl.eps_safe
    restored = AdaptiveEpsSafe(FakeGate(0.2), window=5)
    restored.load_state_dict(ctl.state_dict())
    assert restored.eps_safe == pytest.approx(eps) and restored.last_stats["eps_safe"] == 0.2


def test_bad_settings_and_a_scores_only_gate_are_refused():
    with pytest.raises(ValueError, match="target_rate"):
        AdaptiveEpsSafe(FakeGate(), target_rate=2.0)
    gate = FakeGate()
    gate.decider = None
    with pytest.raises(ValueError, match="recovery policy"):
        AdaptiveEpsSafe(gate)


def test_the_replaced_signal_raises_eps_above_its_target_and_never_lowers_it_below_eps0():
    """farm-qrisk-cal-hold-steer: the fraction of each roll-out's actions replaced is steered;
    more than the target raises the threshold, episodes' failures leave it alone."""
    ctl = AdaptiveEpsSafe(FakeGate(0.1), target_rate=0.2, kp=2.0, ki=0.5, window=4,
                          min_factor=1.0, max_factor=10.0, signal="replaced")  # fmt: skip
    assert ctl.observe_episodes([1, 1, 1]) == pytest.approx(0.1)  # not this signal
    seen = []
    for _ in range(8):
        ctl.observe_rollout(SimpleNamespace(replaced=np.array([[True, False]] * 4)))  # 50 %
        seen.append(ctl.eps_safe)
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False)) and seen[-1] <= 1.0 + 1e-9
    assert ctl.last_stats["replaced_rate_window"] == pytest.approx(0.5)
    assert ctl(np.zeros((2, 3)), np.zeros((2, 1))).threshold == pytest.approx(seen[-1])
    for _ in range(60):
        ctl.observe_rollout(SimpleNamespace(replaced=np.zeros((4, 2), bool)))  # none replaced
    assert ctl.eps_safe == pytest.approx(0.1)  # back down, but never below the calibrated eps
    ctl.observe_rollout(SimpleNamespace(replaced=np.zeros((0, 2), bool)))  # an empty roll-out
    assert ctl.eps_safe == pytest.approx(0.1)
    with pytest.raises(ValueError, match="signal"):
        AdaptiveEpsSafe(FakeGate(), signal="returns")
