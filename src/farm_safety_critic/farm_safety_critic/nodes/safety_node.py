"""``safety_node``: the safety score of every proposed action, the world model's C_H (Eq. 10).

A thin adapter around ``SafetyGate``'s scorer (built without a recovery policy: deciding is the
arbiter's job), or, with ``ensemble_members`` = K > 1, ``EnsembleSafetyGate``'s (method farm-ens:
the mean C_H of ``world_model`` and the K - 1 members beside it, ``member<k>.safetensors`` as the
pipeline's ``ensemble`` stage writes them; give it the ensemble's own ``eps_safe_file``). With a
``qrisk`` checkpoint it is ``AnyOfGate``'s (method farm-qrisk): the larger of C_H and Recovery
RL's Q-risk scaled by ``eps_safe / qrisk_eps_safe``, so the arbiter's ``eps_safe`` fires where
either would. ``anyof_eps_file`` (method farm-qrisk-cal: ``calibration/anyof_eps.json``) sets
both members' thresholds as calibration chose them, a member it left out is not built, and the
score stays in ``eps_safe``'s units.
With a ``runout`` model (``calibration/runout.json``; the farm-runout methods) the score is the
object's run-out score (``RunoutGate``: > ``eps_safe``, the registry's ``runout_eps``, when it
would roll out within ``runout_horizon`` steps) instead of C_H; with ``object_motion`` that of the
displacement the proposed action gives it (farm-runout-ahead); with ``hand_motion`` too
(farm-runout-seq) the score stays the state's and the assessment adds ``hold_score``, the
largest over the next ``runout_lookahead`` states predicted for the live task policy
(``push_sequence.sequence_gate``), and its threshold ``hold_eps`` (``runout_hold_eps``), for an
arbiter with ``recovery: policy_or_hold``.
Pairs the observation and the proposed action of a frame by stamp, publishes the score as
std_msgs/Float32 (``rqt_plot /farm/safety/score/data``), a stamped assessment vector for
the arbiter, the H-step imagined trajectory decoded by the world model as a MarkerArray line
strip coloured by each step's predicted constraint (rviz), and diagnostics.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Float32
from visualization_msgs.msg import Marker, MarkerArray

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import (
    QOS,
    FrameOutputs,
    VectorError,
    declare_from_dataclass,
    diagnostics_message,
    pack_vector,
    paired_callback,
    run_node,
    unpack_vector,
)
from failurebench_sim.stamp_sync import ExactPairer
from farm_policies.live import LivePolicy
from farm_policies.nodes.weights_io import subscribe_weights
from farm_safety_critic.calibration import read_anyof_eps
from farm_safety_critic.gate import AnyOfGate, EnsembleSafetyGate, SafetyGate, ensemble_paths
from farm_safety_critic.nodes.eps_param import use_eps_safe_file
from farm_safety_critic.object_motion import ObjectMotion
from farm_safety_critic.push_sequence import HandMotion, sequence_gate
from farm_safety_critic.qrisk import QRisk, QRiskGate
from farm_safety_critic.runout import MAX_SCORE, RunoutGate, RunoutModel
from farm_safety_critic.safety_score import c_h_terms
from farm_safety_critic.world_model import WorldModel

RANGES = {"horizon": (0, 50), "gamma_risk": (0.0, 1.0), "eps_safe": (0.0, 1e6),
          "marker_every": (0, 1000), "ensemble_members": (1, 16),
          "qrisk_eps_safe": (1e-6, 1.0), "runout_horizon": (1, 1000),
          "runout_lookahead": (1, 100), "runout_hold_eps": (1e-6, MAX_SCORE)}  # fmt: skip
LIVE = ("eps_safe", "runout_hold_eps")  # settable at runtime (farm-pid steers eps_safe)


@dataclass
class SafetyNodeConfig:
    world_model: str = ""
    checkpoint: str = ""  # the task policy pi_task that Eq. 10 rolls out
    horizon: int = 3
    gamma_risk: float = 0.9
    eps_safe: float = 0.3
    eps_safe_file: str = ""  # calibration/eps_safe.json of the task: overrides eps_safe
    marker_every: int = 1  # publish the imagined trajectory every N frames (0 = never)
    ensemble_members: int = 1
    """farm-ens: world models whose C_H is averaged (``world_model`` + members 1 .. K-1)"""
    qrisk: str = ""
    """farm-qrisk: Recovery RL's Q-risk checkpoint whose firing counts too ("" = C_H only)"""
    qrisk_eps_safe: float = 0.3
    """farm-qrisk: Q-risk's own threshold"""
    anyof_eps_file: str = ""
    """farm-qrisk-cal: calibration/anyof_eps.json, C_H's and Q-risk's own thresholds (a member
    left out is not built); ``eps_safe`` stays the score's unit and the arbiter's threshold"""
    runout: str = ""
    """farm-runout*: calibration/runout.json; the score is the object's run-out score against
    ``eps_safe`` (the registry's ``runout_eps``: 1 = it leaves within the horizon) ("" = C_H)"""
    runout_horizon: int = 40
    """farm-runout*: control steps the object's roll is predicted over"""
    object_motion: str = ""
    """farm-runout-ahead / -seq: calibration/object_motion.safetensors (the object's next
    displacement from the proposed action)"""
    hand_motion: str = ""
    """farm-runout-seq: calibration/hand_motion.json; adds the assessment's hold_score"""
    runout_lookahead: int = 5
    """farm-runout-seq: predicted steps of the task policy whose states hold_score scores"""
    runout_hold_eps: float = 0.5
    """farm-runout-seq: hold_score's threshold, published as the assessment's hold_eps"""


def risk_colour(p: float) -> ColorRGBA:
    """Green (C = 0) -> red (C = 1)."""
    p = float(np.clip(p, 0.0, 1.0))
    return ColorRGBA(r=p, g=1.0 - p, b=0.0, a=1.0)


def member_thresholds(c: SafetyNodeConfig) -> tuple[float, float]:
    """(C_H's, Q-risk's) own thresholds: ``anyof_eps_file``'s (``OFF`` = left out) when one is
    given, else (``eps_safe``, ``qrisk_eps_safe``)."""
    if not c.anyof_eps_file:
        return float(c.eps_safe), float(c.qrisk_eps_safe)
    if not c.qrisk:
        raise ValueError(f"anyof_eps_file {c.anyof_eps_file} needs a qrisk checkpoint")
    if c.ensemble_members > 1:  # the pair was chosen on one world model's C_H
        raise ValueError(f"anyof_eps_file {c.anyof_eps_file} is farm-qrisk-cal's (one world "
                         f"model); got ensemble_members {c.ensemble_members}")  # fmt: skip
    return read_anyof_eps(c.anyof_eps_file)  # qrisk_eps_safe is not used


def make_scorer(c: SafetyNodeConfig, actor) -> SafetyGate | EnsembleSafetyGate | AnyOfGate:
    """The scorer of ``c`` (no recovery policy) rolling out ``actor``: C_H of one world model,
    the mean over ``ensemble_members`` of them, and with ``qrisk`` the any-of gate over that and
    Q-risk (in ``eps_safe``'s units), each member at its own threshold (``member_thresholds``)."""
    c_h_eps, q_eps = member_thresholds(c)

    def c_h_gate() -> SafetyGate | EnsembleSafetyGate:
        hp = (c.horizon, c.gamma_risk, c_h_eps)
        models = [WorldModel.load(p) for p in ensemble_paths(c.world_model, c.ensemble_members)]
        if len(models) == 1:
            return SafetyGate(models[0], actor, None, *hp)
        return EnsembleSafetyGate(models, actor, None, *hp)

    if not c.qrisk:
        return c_h_gate()
    if not c.eps_safe > 0:
        raise ValueError(
            f"qrisk needs eps_safe > 0 (Q-risk's score is scaled by eps_safe / qrisk_eps_safe); "
            f"got eps_safe {c.eps_safe}" + (f" from {c.eps_safe_file}" if c.eps_safe_file else "")
        )
    members = [] if np.isinf(c_h_eps) else [c_h_gate()]  # calibration left C_H out
    if not np.isinf(q_eps):
        members.append(QRiskGate(QRisk.load(c.qrisk), None, q_eps))
    return AnyOfGate(members, None, c.eps_safe)


def runout_problem(c: SafetyNodeConfig) -> str:
    """A run-out setting the node would silently misread ("" when there is none)."""
    if not c.runout and (c.object_motion or c.hand_motion):
        return "object_motion / hand_motion score the run-out: they need runout (runout.json)"
    if c.runout and c.eps_safe_file:
        return (f"runout scores the ball's run-out, not C_H: eps_safe_file {c.eps_safe_file} "
                "holds C_H's threshold; set eps_safe_file to \"\" and eps_safe to runout_eps")  # fmt: skip
    if c.hand_motion and not c.object_motion:
        return f"hand_motion {c.hand_motion} (farm-runout-seq) needs object_motion"
    return ""


def make_runout_scorers(c: SafetyNodeConfig, actor) -> tuple[RunoutGate, RunoutGate | None]:
    """The farm-runout scorers of ``c`` (``runout`` set): the state's (or, with
    ``object_motion`` alone, the proposed push's) run-out score, and with ``hand_motion``
    farm-runout-seq's holding member over ``actor``'s next steps (else None). ``c`` has passed
    ``runout_problem`` (the node checks it first)."""
    model = dataclasses.replace(RunoutModel.load(c.runout), horizon=c.runout_horizon)
    dims = (actor.obs_dim, actor.act_dim)
    if not c.hand_motion:
        motion = ObjectMotion.load(c.object_motion) if c.object_motion else None
        return RunoutGate(model, None, *dims, eps_safe=c.eps_safe, motion=motion), None
    state = RunoutGate(model, None, *dims, eps_safe=c.eps_safe)
    hold = sequence_gate(model, ObjectMotion.load(c.object_motion), HandMotion.load(c.hand_motion),
                         actor, c.runout_lookahead, c.runout_hold_eps, *dims)  # fmt: skip
    return state, hold


def world_model_gate(gate) -> SafetyGate | None:
    """The first one-world-model C_H gate inside ``gate`` (an ensemble's or an any-of gate's
    members, depth first); None when it has none."""
    if isinstance(gate, SafetyGate):
        return gate
    for member in getattr(gate, "members", ()):
        if (found := world_model_gate(member)) is not None:
            return found
    return None


class SafetyNode(Node):
    """Scores every proposed action; composable (``SafetyNode(**node_kwargs)``)."""

    def __init__(self, node_name: str = "safety_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        fixed = [f.name for f in dataclasses.fields(SafetyNodeConfig) if f.name not in LIVE]
        self.cfg = c = declare_from_dataclass(self, SafetyNodeConfig(), RANGES, read_only=fixed)
        use_eps_safe_file(self, c)
        self.task_policy = LivePolicy.from_checkpoint(c.checkpoint)
        actor = self.task_policy.actor  # pushes to the actor reach Eq. 10 (and the sequence)
        self.hold_gate: RunoutGate | None = None  # farm-runout-seq's holding member
        if problem := runout_problem(c):  # before the world model's checks: the clearer error
            raise ValueError(problem)
        if c.runout:  # the markers show C_H's imagined roll-out: nothing to do with this score
            self.gate, self.hold_gate = make_runout_scorers(c, actor)
        else:
            self.gate = make_scorer(c, actor)
        self.imagined = world_model_gate(self.gate)  # the markers' roll-out
        if self.imagined is None and c.marker_every and not c.runout:  # no C_H in the gate
            wm = WorldModel.load(c.world_model)
            hp = (c.horizon, c.gamma_risk)
            self.imagined = SafetyGate(wm, self.task_policy.actor, None, *hp, numpy_scoring=False)
        self.pairer = ExactPairer(("obs", "proposed"))
        subscribe_weights(self, self.task_policy)  # Eq. 10 rolls out the live pi_task
        self.frames, self.fired = 0, 0
        self.latency_ms: deque[float] = deque(maxlen=1000)  # the last 1000 scoring times
        self._frames_at_diag = 0  # frames at the last diagnostics (1 s timer): the rate
        self.outputs = FrameOutputs()
        reliable = QOS[rc.RELIABLE]
        self.pub_score = self.create_publisher(Float32, rc.SAFETY_SCORE, reliable)
        self.pub_assess = self.create_publisher(JointState, rc.SAFETY_ASSESSMENT, reliable)
        self.pub_markers = self.create_publisher(MarkerArray, rc.SAFETY_TRAJECTORY, reliable)
        self.pub_diag = self.create_publisher(DiagnosticArray, rc.DIAGNOSTICS, reliable)
        self.create_subscription(JointState, rc.OBSERVATION, self._on("obs"), reliable)
        self.create_subscription(JointState, rc.PROPOSED_ACTION, self._on("proposed"), reliable)
        self.create_timer(1.0, self._diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _on_set_parameters(self, params) -> SetParametersResult:
        """A live eps_safe or runout_hold_eps (rclpy has checked type and range): the firing
        count and the assessment's thresholds follow it."""
        for p in params:
            if p.name in LIVE:
                setattr(self.cfg, p.name, float(p.value))
        return SetParametersResult(successful=True)

    def _on(self, stream: str):
        return paired_callback(self.pairer, self.outputs, stream, self.score)

    def score(self, frame: dict) -> None:
        """The safety score of the frame's proposed action (C_H, or the method's; farm-runout-seq also
        its holding member's); assessment, score and markers published."""
        obs_msg, proposed_msg = frame["obs"], frame["proposed"]
        t0 = time.perf_counter()
        try:
            obs = unpack_vector(obs_msg, rc.OBS_LABELS)
            prop = unpack_vector(proposed_msg, rc.PROPOSED_LABELS)
            scored = [g.scores(obs[None], prop[None, : len(rc.ACTION_LABELS)])[0]
                      for g in (self.gate, self.hold_gate) if g is not None]  # fmt: skip
            # a non-finite input: not vetted, the arbiter holds
            c_h, *hold = [float(x) if np.isfinite(x) else float("inf") for x in scored]
        except (VectorError, ValueError) as e:
            self.get_logger().warning(f"unscorable frame ({e}): C_H = inf", throttle_duration_sec=2)
            c_h, hold = float("inf"), [float("inf")] * (self.hold_gate is not None)
        version = self.task_policy.version  # the pi_task that Eq. 10 rolled out
        ms = 1e3 * (time.perf_counter() - t0)
        self.frames += 1
        self.fired += int(not c_h <= self.cfg.eps_safe
                          or any(not h <= self.cfg.runout_hold_eps for h in hold))  # fmt: skip
        self.latency_ms.append(ms)
        stamp = obs_msg.header.stamp
        labels, values = rc.ASSESSMENT_LABELS, [c_h, self.cfg.eps_safe, version, ms]
        if hold:  # farm-runout-seq: the holding member's score and threshold
            labels, values = (
                (*labels, *rc.HOLD_ASSESSMENT_LABELS),
                [*values, hold[0], self.cfg.runout_hold_eps],
            )
        self.outputs.publish(
            (self.pub_assess, pack_vector(labels, values, stamp)),
            (self.pub_score, Float32(data=c_h)),
        )  # fmt: skip
        every = self.cfg.marker_every
        if every and self.frames % every == 0 and np.isfinite(c_h) and self.imagined is not None:
            self.pub_markers.publish(self.trajectory_markers(obs, prop, stamp))

    @torch.no_grad()
    def trajectory_markers(self, obs: np.ndarray, prop: np.ndarray, stamp) -> MarkerArray:
        """The decoded hand positions S(z_i)[0:3], i = 0..H, coloured by C(z_i, a_i) (of the
        first world model of an ensemble)."""
        shown = self.imagined
        decoded: list[torch.Tensor] = []
        terms = c_h_terms(
            shown.world_model, shown.task_policy,
            torch.as_tensor(obs[None], dtype=torch.float32),
            torch.as_tensor(prop[None, : len(rc.ACTION_LABELS)], dtype=torch.float32),
            self.cfg.horizon, decoded=decoded,
        )  # fmt: skip
        line = Marker(ns="farm_imagined", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
        line.header.stamp, line.header.frame_id = stamp, rc.BASE_FRAME
        line.scale.x = 0.005
        line.pose.orientation.w = 1.0
        for z, p in zip(decoded, terms[:, 0].tolist(), strict=True):
            x, y, zz = z[0, :3].tolist()
            line.points.append(Point(x=x, y=y, z=zz))
            line.colors.append(risk_colour(p))
        return MarkerArray(markers=[line])

    def _diagnostics(self) -> None:
        lat = np.asarray(self.latency_ms) if self.latency_ms else np.zeros(1)
        rate, self._frames_at_diag = self.frames - self._frames_at_diag, self.frames
        values = {"frames": self.frames, "rate_hz": float(rate), "fired": self.fired,
                  "eps_safe": float(self.cfg.eps_safe),
                  "latency_p50_ms": float(np.percentile(lat, 50)),
                  "latency_p99_ms": float(np.percentile(lat, 99))}  # fmt: skip
        stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(diagnostics_message("farm/safety_node", "farm", "scoring", values,
                                                  stamp))  # fmt: skip


def main(args: list[str] | None = None) -> None:
    run_node(SafetyNode, args)
