"""``arbiter_node``: the recovery arbiter (Eq. 11) that commands the Cartesian controller.

Pairs each frame's observation, proposed action and safety assessment by stamp, asks the
``RecoveryDecider`` (which holds the fixed recovery policy, or the arm still with ``recovery:
hold``; ``hold_then_policy``: ``HoldPatience``'s pi_rec after ``hold_patience`` holds in a row;
``policy_or_hold``: farm-runout-seq's ``FirstFired`` rule, pi_rec where the score exceeds
``eps_safe``, else the arm held still where the assessment's ``hold_score`` exceeds its
``hold_eps``) for the action to execute, turns it
into an end-effector target with ``command.action_to_target``, passes target and gripper through
the hard ``Shield`` (workspace box, step and speed limits, gripper range: not learned, applied
to task and recovery actions alike) and publishes them stamped with the frame. Every decision
(both actions, which ran, score, eps_safe, policy version, hold, shield) goes to
``/farm/decision``; the executed action there is the shielded one (what the robot gets).

Realtime (``command_rate_hz`` > 0) a steady timer republishes the latest target at that rate,
as streaming impedance clients expect, and is the watchdog: when any input the decision needs
(end-effector pose, observation, proposed action, score) is older than ``watchdog_periods``
control periods, it holds (the measured end-effector pose as the target) within one period,
reports ERROR on ``/diagnostics``, and resumes by itself with the next fresh decision. With
``max_frame_age_s`` set, a frame stamped further than that from the node's clock holds, and so
does a streaming tick whose latest decided target is that old (dropped or late camera frames
degrade to holds, never to an old frame's action).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from failurebench_sim import ros_contract as rc
from failurebench_sim.command import CommandError, action_to_target, target_to_action
from failurebench_sim.nodes.ros_io import (
    QOS,
    FrameOutputs,
    VectorError,
    declare_from_dataclass,
    diagnostics_message,
    pack_vector,
    paired_callback,
    pose_msg,
    run_node,
    stamp_ns,
    unpack_vector,
)
from failurebench_sim.stamp_sync import ExactPairer
from failurebench_sim.twin import GRIPPER_DOWN_XYZW
from farm_policies.checkpoint import load_actor_value
from farm_safety_critic.decider import RecoveryDecider, hold_still
from farm_safety_critic.filter import first_fired
from farm_safety_critic.hold_patience import HoldPatience
from farm_safety_critic.nodes.eps_param import use_eps_safe_file
from farm_safety_critic.reflex import message_class, stopped_reason
from farm_safety_critic.shield import Shield, ShieldLimits, load_limits

ACT = len(rc.ACTION_LABELS)
RANGES = {
    "eps_safe": (0.0, 1e6),
    "command_rate_hz": (0.0, 1000.0),
    "watchdog_periods": (0.0, 1000.0),
    "max_frame_age_s": (0.0, 3600.0),
    "hold_patience": (1, 100_000),
    "escape_steps": (1, 100_000),
}
LIVE = ("eps_safe", "watchdog_periods", "max_frame_age_s")  # settable at runtime
INPUTS = ("ee", "obs", "proposed", "assessment")
# MetaWorld's hand box: the shield used when no shield file is given (the twin's own limits)
TWIN_HAND_BOX = ShieldLimits(low=(-0.5, 0.4, 0.05), high=(0.5, 1.0, 0.5))


@dataclass
class ArbiterNodeConfig:
    recovery_checkpoint: str = ""
    # "policy": recovery_checkpoint's pi_rec runs where the gate fires; "hold": the arm holds
    # still there instead (declines the action: methods farm-hold, farm-qrisk-cal-hold);
    # "hold_then_policy": hold, and after hold_patience holds in a row run pi_rec for
    # escape_steps fired frames (farm-qrisk-cal-hold-rec, ``HoldPatience``);
    # "policy_or_hold": pi_rec where the score fires, else hold where the assessment's
    # hold_score exceeds its hold_eps (farm-runout-seq: a safety node with hand_motion)
    recovery: str = "policy"
    hold_patience: int = 5
    escape_steps: int = 5
    eps_safe: float = 0.3
    eps_safe_file: str = ""  # calibration/eps_safe.json of the task: overrides eps_safe
    command_rate_hz: float = 0.0  # republish the latest target (0: only on decisions)
    watchdog_periods: float = 5.0  # hold when an input is older (realtime; 0: off)
    # hold on a frame stamped further than this from the node's clock, past or future (0: off;
    # needs the stamps' clock: use_sim_time with the twin)
    max_frame_age_s: float = 0.0
    shield_file: str = ""  # config/shield.yaml ("" = MetaWorld's hand box)
    robot: str = "twin"  # the shield file's robot entry
    task: str = "FailureBench/BoundedPush-v0"
    target_topic: str = rc.TARGET_POSE
    base_frame: str = rc.BASE_FRAME
    # the robot's own mode (franka_ros2: /franka_robot_state_broadcaster/robot_state,
    # franka_msgs/msg/FrankaRobotState, robot_mode): hold in a reflex or user stop ("" = none)
    robot_state_topic: str = ""
    robot_state_type: str = "franka_msgs/msg/FrankaRobotState"
    robot_mode_field: str = "robot_mode"


RECOVERIES = ("policy", "hold", "hold_then_policy", "policy_or_hold")


def recovery_policy(c: ArbiterNodeConfig):
    """The recovery the arbiter runs where the gate fires (``ArbiterNodeConfig.recovery``)."""
    if c.recovery not in RECOVERIES:
        raise ValueError(f"recovery must be one of {RECOVERIES}, got {c.recovery!r}")
    if c.recovery.startswith("hold"):
        return hold_still(ACT)
    return recovery_actor(c)


def recovery_actor(c: ArbiterNodeConfig):
    """pi_rec of ``recovery_checkpoint``."""
    if not c.recovery_checkpoint:
        raise ValueError(
            f"recovery {c.recovery!r} needs recovery_checkpoint (or set recovery: hold)"
        )
    recovery, _, _ = load_actor_value(c.recovery_checkpoint)
    return recovery.eval()


def hold_patience(c: ArbiterNodeConfig) -> HoldPatience | None:
    """``recovery: hold_then_policy``'s escapes to pi_rec (None for the other recoveries)."""
    if c.recovery != "hold_then_policy":
        return None
    escape = RecoveryDecider(recovery_actor(c), c.eps_safe, ACT)
    return HoldPatience(None, c.hold_patience, c.escape_steps, escape)


class ArbiterNode(Node):
    """Eq. 11 on the graph; composable (``ArbiterNode(**node_kwargs)``)."""

    def __init__(self, node_name: str = "arbiter_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        fixed = [n for n in ArbiterNodeConfig.__dataclass_fields__ if n not in LIVE]
        self.cfg = c = declare_from_dataclass(self, ArbiterNodeConfig(), RANGES, read_only=fixed)
        use_eps_safe_file(self, c)
        self.decider = RecoveryDecider(recovery_policy(c), c.eps_safe, ACT)
        self.patience = hold_patience(c)
        self.hold_decider = (  # farm-runout-seq's holding member (its threshold: per frame)
            RecoveryDecider(hold_still(ACT), c.eps_safe, ACT)
            if c.recovery == "policy_or_hold"
            else None
        )
        hold_labels = rc.HOLD_ASSESSMENT_LABELS if self.hold_decider is not None else ()
        self.labels = (*rc.ASSESSMENT_LABELS, *hold_labels)
        limits = load_limits(c.shield_file, c.robot, c.task) if c.shield_file else TWIN_HAND_BOX
        self.shield = Shield(limits)
        self.pairer = ExactPairer(("obs", "proposed", "assessment"))
        self.decisions = self.replaced = self.holds = self.watchdog_holds = 0
        self.frame_age_holds = 0  # streaming ticks held because the last decision was too old
        self.last_target: PoseStamped | None = None
        self.hand: np.ndarray | None = None  # the measured end-effector position
        self.pose_ns = 0  # the newest measured pose's stamp: the present is no earlier
        self.seen: dict[str, float] = {}  # input -> steady time of its last message
        self.holding: list[str] = []  # the stale inputs while the watchdog holds
        self.outputs = FrameOutputs()
        reliable = QOS[rc.RELIABLE]
        self.pub_target = self.create_publisher(PoseStamped, c.target_topic, reliable)
        self.pub_gripper = self.create_publisher(JointState, rc.GRIPPER_COMMAND, reliable)
        self.pub_decision = self.create_publisher(JointState, rc.DECISION, reliable)
        self.pub_diag = self.create_publisher(DiagnosticArray, rc.DIAGNOSTICS, 10)
        for stream, topic in (("obs", rc.OBSERVATION), ("proposed", rc.PROPOSED_ACTION),
                              ("assessment", rc.SAFETY_ASSESSMENT)):  # fmt: skip
            self.create_subscription(JointState, topic, self._on(stream), reliable)
        self.create_subscription(PoseStamped, rc.EE_POSE, self._on_pose, QOS[rc.SENSOR])
        self.paused = False  # the robot's episode manager holds the arm between episodes
        self.robot_stopped = ""  # why the robot's own safety layer stopped it ("" = it did not)
        if c.robot_state_topic:  # a configured but missing type is a start-up error
            cls = message_class(c.robot_state_type)
            self.create_subscription(cls, c.robot_state_topic, self._on_robot_state,
                                     QOS[rc.SENSOR])  # fmt: skip
        self.create_subscription(Bool, rc.EPISODE_HOLD, self._on_episode_hold, QOS[rc.LATCHED])
        self.start_pose: np.ndarray | None = None  # paused: drive here (through the shield)
        self.create_subscription(PoseStamped, rc.EPISODE_START_POSE, self._on_start_pose,
                                 QOS[rc.LATCHED])  # fmt: skip
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # a stalled /clock must not stop it
        if c.command_rate_hz > 0:
            self.create_timer(1.0 / c.command_rate_hz, self._tick, clock=steady)
        self.create_timer(1.0, self._diagnose, clock=steady)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Live eps_safe / watchdog / frame-age changes (rclpy has checked types and ranges)."""
        for p in params:
            if p.name == "eps_safe":
                self.decider.eps_safe = float(p.value)
            if p.name in LIVE:
                setattr(self.cfg, p.name, float(p.value))
                self.get_logger().info(f"{p.name} = {p.value}")
        return SetParametersResult(successful=True)

    # -- inputs ---------------------------------------------------------------------------
    def _on(self, stream: str):
        callback = paired_callback(self.pairer, self.outputs, stream, self.decide)

        def on_message(msg: JointState) -> None:
            self.seen[stream] = time.monotonic()
            callback(msg)

        return on_message

    def _on_robot_state(self, msg) -> None:
        why = stopped_reason(int(getattr(msg, self.cfg.robot_mode_field)))
        if why and not self.robot_stopped:
            self.get_logger().error(f"holding: {why}")
        elif self.robot_stopped and not why:
            self.get_logger().info("the robot runs again: resuming")
        self.robot_stopped = why

    def _on_start_pose(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        xyz = np.array([p.x, p.y, p.z])
        ok = msg.header.frame_id == self.cfg.base_frame and np.isfinite(xyz).all()
        self.start_pose = xyz if ok else None  # another frame or none: the drive is over

    def _on_episode_hold(self, msg: Bool) -> None:
        if msg.data != self.paused:
            self.get_logger().info("episode paused: holding" if msg.data else "episode resumed")
            if self.patience is not None:
                self.patience.reset()  # a new episode does not inherit the last one's holds
        self.paused = bool(msg.data)

    def _on_pose(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        xyz = np.array([p.x, p.y, p.z])
        if msg.header.frame_id == self.cfg.base_frame and np.isfinite(xyz).all():
            self.hand = xyz
            self.seen["ee"] = time.monotonic()
            t = stamp_ns(msg.header.stamp)
            # newer, or a restarted source clock (more than 1 s back): start over from it
            self.pose_ns = (
                t if t > self.pose_ns or t < self.pose_ns - 1_000_000_000 else self.pose_ns
            )

    # -- Eq. 11 + shield --------------------------------------------------------------------
    def decide(self, frame: dict) -> None:
        stamp = frame["obs"].header.stamp
        try:
            obs = unpack_vector(frame["obs"], rc.OBS_LABELS)
            prop = unpack_vector(frame["proposed"], rc.PROPOSED_LABELS)
            assess = unpack_vector(frame["assessment"], self.labels)
        except VectorError as e:
            self.get_logger().warning(f"malformed frame, holding: {e}", throttle_duration_sec=2)
            self.holds += 1
            self.outputs.publish(*self._hold_outputs(stamp))
            return
        proposed, score, version = prop[:ACT], assess[0], prop[-1]
        d = self.decider.decide(obs[None], proposed[None], np.array([score]))
        why = self._hold_reason(obs, proposed, score, stamp)
        if self.hold_decider is not None and not why:  # pi_rec's decision, then the hold's
            if not np.isfinite(assess[4:6]).all():
                why = "non-finite hold_score / hold_eps (the action is not vetted)"
            else:
                self.hold_decider.eps_safe = float(assess[5])
                held = self.hold_decider.decide(obs[None], proposed[None], assess[4:5])
                d = first_fired([d, held], proposed[None])
        elif rc.HOLD_ASSESSMENT_LABELS[0] in frame["assessment"].name and not why:
            why = "the assessment has a hold_score (farm-runout-seq): set recovery policy_or_hold"
        if self.patience is not None and not why:  # only frames that can move the arm count
            d = self.patience.adjust(obs[None], proposed[None], d)
        executed = d.actions[0].astype(np.float64)
        hand = obs[0:3] if np.isfinite(obs[0:3]).all() else self.hand  # the frame's hand
        target, gripper = np.full(3, np.nan), math.nan  # the shield's hold: at the hand
        if not why:
            try:
                target, gripper = action_to_target(obs[0:3], executed)
            except CommandError as e:  # a non-finite recovery action
                why = str(e)
        if why:
            self.get_logger().warning(f"holding: {why}", throttle_duration_sec=2)
        hold = bool(why)
        if hold and self.hand is not None:
            hand = self.hand  # hold where the arm is now, not where an old frame saw it
        target, gripper, report = self.shield.apply(target, gripper, hand, stamp_ns(stamp), hold)
        if (hold or report.clipped) and target is not None and hand is not None:
            executed = target_to_action(hand, target, gripper)  # what the robot is sent
        self.decisions += 1
        self.replaced += int(d.replaced[0])
        self.holds += int(hold)
        values = [*proposed, *executed, float(d.replaced[0]), d.score[0], self.decider.eps_safe,
                  version, float(hold), float(report.clipped and not hold)]  # fmt: skip
        out = [(self.pub_decision, pack_vector(rc.DECISION_LABELS, values, stamp))]
        if target is not None:  # None: no position known to hold at (never a blind target)
            out += self._command(target, gripper, stamp)
        self.outputs.publish(*out)
        if self.holding:
            self.get_logger().info(f"fresh inputs again ({', '.join(self.holding)}): resuming")
            self.holding = []

    def _hold_reason(self, obs, proposed, score, stamp) -> str:
        """Why this frame must not move the arm ("" = it may)."""
        if self.robot_stopped:
            return self.robot_stopped
        if self.paused:
            return "the episode is paused (episode_node)"
        if not np.isfinite(obs).all():
            return "non-finite observation"
        if not np.isfinite(proposed).all():
            return "non-finite proposed action"
        if not np.isfinite(score):
            return "non-finite safety score (the action is not vetted)"
        if self.cfg.max_frame_age_s > 0:
            skew = self._age_s(stamp)
            if abs(skew) > self.cfg.max_frame_age_s:
                return f"frame stamped {skew:+.3f} s from now (limit {self.cfg.max_frame_age_s} s)"
        return ""

    def _command(self, target: np.ndarray, gripper: float, stamp) -> list:
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.cfg.base_frame
        msg.pose = pose_msg(target, GRIPPER_DOWN_XYZW)
        self.last_target = msg
        grip = pack_vector(rc.GRIPPER_COMMAND_LABELS, [gripper], stamp)
        return [(self.pub_gripper, grip), (self.pub_target, msg)]

    def _publish_hold(self, stamp) -> None:
        """A streaming tick's hold at the measured pose, sent now."""
        for pub, msg in self._hold_outputs(stamp):
            pub.publish(msg)

    def _hold_outputs(self, stamp) -> list:
        """Hold at the measured pose (shielded); nothing when no pose was ever measured."""
        if self.hand is None:
            return []
        target, gripper, _ = self.shield.apply(
            self.hand, math.nan, self.hand, stamp_ns(stamp), hold=True
        )
        return [] if target is None else self._command(target, gripper, stamp)

    # -- realtime: republish + watchdog ---------------------------------------------------
    def stale_inputs(self, now: float | None = None) -> list[str]:
        """Inputs older than ``watchdog_periods`` control periods (all of them before any)."""
        c = self.cfg
        if not (c.watchdog_periods > 0 and c.command_rate_hz > 0):
            return []
        limit = c.watchdog_periods / c.command_rate_hz
        now = time.monotonic() if now is None else now
        return [k for k in INPUTS if now - self.seen.get(k, -math.inf) > limit]

    def _tick(self) -> None:
        stale = self.stale_inputs()
        now = self.get_clock().now().to_msg()
        if self.paused or self.robot_stopped:  # between episodes, after a reflex: no decisions
            pose_fresh = "ee" not in stale
            if self.start_pose is not None and pose_fresh and not self.robot_stopped:
                # the episode manager's reset: one shielded step toward the start pose, open hand
                target, grip, _ = self.shield.apply(self.start_pose, -1.0, self.hand, stamp_ns(now))
                if target is not None:
                    for pub, msg in self._command(target, grip, now):
                        pub.publish(msg)
                    return
            self._publish_hold(now)
            return
        if stale and self.seen:  # started and then lost an input: hold
            if not self.holding:
                self.get_logger().error(f"stale inputs {stale}: holding at the measured pose")
            self.holding = stale
            self.watchdog_holds += 1
            self._publish_hold(now)
            return
        if self.last_target is None:
            return
        age = self._age_s(self.last_target.header.stamp)
        if self.cfg.max_frame_age_s > 0 and age > self.cfg.max_frame_age_s:
            # no fresh decision for too long (frames dropped or late): never stream an old
            # frame's target, hold at the measured pose (stamped now, so it is not old itself)
            self.frame_age_holds += 1
            self._publish_hold(now)
            return
        self.pub_target.publish(self.last_target)

    def _age_s(self, stamp) -> float:
        """Seconds from ``stamp`` to now (negative: from the future). Now is the node's clock,
        or the newest measured pose's stamp where that is later: an arbiter whose ``/clock``
        lags (its own backlog on the twin) must not take an old frame for a young one."""
        now = max(self.get_clock().now().nanoseconds, self.pose_ns)
        return (now - stamp_ns(stamp)) * 1e-9

    def _diagnose(self) -> None:
        level, message = DiagnosticStatus.OK, "ok"
        if self.robot_stopped:
            level, message = DiagnosticStatus.ERROR, self.robot_stopped
        elif self.holding:
            level, message = DiagnosticStatus.ERROR, f"holding: stale {', '.join(self.holding)}"
        values = {"decisions": self.decisions, "replaced": self.replaced, "holds": self.holds,
                  "watchdog_holds": self.watchdog_holds,
                  "frame_age_holds": self.frame_age_holds, "shield_commands": self.shield.commands,
                  **{f"shield_{k}": v for k, v in self.shield.counts.items()}}  # fmt: skip
        stamp = self.get_clock().now().to_msg()
        msg = diagnostics_message("farm/arbiter", "arbiter_node", message, values, stamp, level)
        self.pub_diag.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_node(ArbiterNode, args)
