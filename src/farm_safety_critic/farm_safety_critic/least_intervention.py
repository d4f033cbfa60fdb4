"""Least intervention: where a gate fires, the largest part of the proposed motion it accepts.

A holding gate (``farm-qrisk-cal-hold``) declines the whole action wherever it fires: on
Bounded Soccer it replaces ~40 % of the steps and the return after fine-tuning falls below
Uni-O4's. ``LeastInterventionFilter`` asks the same gate about shrunk versions of the proposed
action first: the motion part (FailureBench's end-effector deltas, the first ``motion_dims``
entries) times each of ``fractions`` (largest first), the gripper command kept. It executes the
largest shrunk action whose score is at most ``eps_safe``; where none is, the gate's own recovery
(hold still, or pi_rec). A scaled-down step toward the goal, rather than none, is the
"minimally invasive" choice of safety filters (e.g. Wabersich & Zeilinger's predictive safety
filter keeps the input closest to the proposed one), here over a short list of candidates
scored in one batched call.

Rows the gate could not score (non-finite observation or proposal) keep the gate's decision.
``replaced`` stays True on every row the gate fired on (the task action was not executed as
proposed); ``score`` is the gate's score of the proposed action.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from farm_safety_critic.filter import FilterDecision
from farm_safety_critic.gate import GateInputError, ScoreGate


class LeastInterventionFilter:
    """An ``ActionFilter``: ``gate``'s decisions, a fired row shrunk before it is replaced."""

    def __init__(
        self,
        gate: ScoreGate,
        fractions: Sequence[float] = (0.75, 0.5, 0.25),
        motion_dims: int = 3,
    ) -> None:
        fr = sorted((float(f) for f in fractions), reverse=True)
        if not fr or not all(0.0 < f < 1.0 for f in fr):
            raise GateInputError(f"fractions must be a non-empty list in (0, 1), got {fractions}")
        if not 0 < motion_dims <= gate.act_dim:
            raise GateInputError(f"motion_dims must be in [1, {gate.act_dim}], got {motion_dims}")
        self.gate = gate
        self.fractions = np.asarray(fr, dtype=np.float32)
        self.motion_dims = int(motion_dims)
        self.counts = {"fired": 0, "shrunk": 0}
        self.last_stats = {"shrunk_fraction": 0.0}
        """of the fired rows since the filter was built (a resumed run starts over), the share
        that ran a shrunk action (logged every update as ``filter/shrunk_fraction``)"""

    @property
    def eps_safe(self) -> float:
        return self.gate.eps_safe

    def __call__(self, obs: np.ndarray, proposed: np.ndarray) -> FilterDecision:
        d = self.gate(obs, proposed)
        obs = np.asarray(obs, dtype=np.float32)
        proposed = np.asarray(proposed, dtype=np.float32)
        rows = np.flatnonzero(d.replaced & np.isfinite(d.score))  # fired and scored
        if rows.size == 0:
            return d
        k, m = len(self.fractions), rows.size
        cand = np.repeat(proposed[rows][None], k, axis=0)  # (k, m, act_dim)
        cand[..., : self.motion_dims] *= self.fractions[:, None, None]
        scores = self.gate.scores(np.tile(obs[rows], (k, 1)), cand.reshape(k * m, -1))
        accepted = scores.reshape(k, m) <= self.gate.eps_safe
        first = accepted.argmax(0)  # the largest accepted fraction (fractions sorted descending)
        take = accepted.any(0)
        actions = d.actions.copy()
        actions[rows[take]] = cand[first[take], np.flatnonzero(take)]
        self.counts["fired"] += m
        self.counts["shrunk"] += int(take.sum())
        self.last_stats = {"shrunk_fraction": self.counts["shrunk"] / self.counts["fired"]}
        return FilterDecision(actions, d.replaced, d.score, d.threshold)
