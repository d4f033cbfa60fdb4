"""A holding gate that hands back: after ``patience`` holds in a row, an escape step.

Holding still where the gate fires (``farm-qrisk-cal-hold``) fails least, but its critic scores
the *state*: on the held-out roll-outs of ``farm_qrisk_g09_chosen`` seed 5, replacing a fired
action by holding still or by pi_rec brings under the threshold 0.9 % (Soccer) to 18 % (Push)
of the fired rows (``scripts/action_sensitivity_probe.py``). Holding does not change the state,
so the gate keeps firing and the arm freezes for the rest of the episode: with the offline
policy, 10 / 20 Bounded Soccer and 12 / 20 Obstructed Push evaluation episodes end frozen.

``HoldPatience`` wraps such a gate: per row (environment), after ``patience`` consecutive fired
steps the next ``escape_steps`` fired steps execute an escape action instead of holding: the
task policy's proposed action (``escape=None``; the row is then not ``replaced``) or the recovery
policy's (``escape`` a ``RecoveryDecider``). A step where the gate does not fire resets the row's
count, as does a change in the number of rows, and ``reset``. In the benchmark's vector envs the
counts do not see episode boundaries: an episode that starts fired inherits the previous
episode's count (its first escape comes at most ``patience`` steps early).

In the benchmark it wraps the in-process gate (``__call__``); on the graph the arbiter node,
which receives the safety node's scores, applies ``adjust`` to its decider's decision on the
frames it does not hold for another reason, and resets the counts when an episode is paused.
"""

from __future__ import annotations

import math

import numpy as np

from farm_safety_critic.decider import RecoveryDecider
from farm_safety_critic.filter import FilterDecision
from farm_safety_critic.gate import GateInputError, ScoreGate


class HoldPatience:
    """An ``ActionFilter``: ``gate``'s decisions, with an escape after ``patience`` holds."""

    def __init__(
        self,
        gate: ScoreGate | None,
        patience: int = 5,
        escape_steps: int = 5,
        escape: RecoveryDecider | None = None,
    ) -> None:
        if patience < 1 or escape_steps < 1:
            raise GateInputError(
                f"need patience >= 1 and escape_steps >= 1, got {patience}, {escape_steps}"
            )
        self.gate, self.escape = gate, escape
        self.patience, self.escape_steps = int(patience), int(escape_steps)
        self.held = np.zeros(0, dtype=np.int64)
        """consecutive holds per row since its last escape"""
        self.escape_left = np.zeros(0, dtype=np.int64)
        self.counts = {"fired": 0, "escaped": 0}
        self.last_stats = {"escaped_fraction": 0.0}
        """of the fired rows since the filter was built (a resumed run starts over), the share
        that ran the escape (logged every update as ``filter/escaped_fraction``)"""

    @property
    def eps_safe(self) -> float:
        return math.nan if self.gate is None else self.gate.eps_safe

    def reset(self) -> None:
        """Forget every row's count (a new episode on the graph)."""
        self.held, self.escape_left = np.zeros(0, np.int64), np.zeros(0, np.int64)

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision:
        if self.gate is None:
            raise GateInputError("built without a gate: use adjust(obs, proposed, decision)")
        return self.adjust(obs, proposed, self.gate(obs, proposed))

    def adjust(self, obs: np.ndarray, proposed: np.ndarray, d: FilterDecision) -> FilterDecision:
        """``d`` (a holding decision for these rows) with the escapes that are due."""
        n = d.actions.shape[0]
        if self.held.shape != (n,):
            self.held, self.escape_left = np.zeros(n, np.int64), np.zeros(n, np.int64)
        fired = d.replaced & np.isfinite(d.score)  # unscorable rows keep the gate's fallback
        self.held[~fired], self.escape_left[~fired] = 0, 0
        start = fired & (self.escape_left == 0) & (self.held >= self.patience)
        self.escape_left[start] = self.escape_steps
        escaping = fired & (self.escape_left > 0)
        self.held[fired & ~escaping] += 1
        self.held[start] = 0
        self.escape_left[escaping] -= 1
        self.counts["fired"] += int(fired.sum())
        self.counts["escaped"] += int(escaping.sum())
        self.last_stats = {
            "escaped_fraction": self.counts["escaped"] / max(self.counts["fired"], 1)
        }
        if not escaping.any():
            return d
        actions, replaced = d.actions.copy(), d.replaced.copy()
        rows = np.flatnonzero(escaping)
        if self.escape is None:  # the task policy's own action runs
            actions[rows] = np.asarray(proposed, dtype=np.float32)[rows]
            replaced[rows] = False
        else:
            actions[rows] = self.escape.recovery_actions(np.asarray(obs, np.float32)[rows])
        return FilterDecision(actions, replaced, d.score, d.threshold)
