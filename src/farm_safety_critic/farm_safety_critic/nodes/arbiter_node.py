"""``arbiter_node``: the recovery arbiter (Eq. 11) that commands the Cartesian controller.

Pairs each frame's observation, proposed action and safety assessment by stamp, asks the
``RecoveryDecider`` (which holds the fixed recovery policy) for the action to execute, turns it
into an end-effector target with ``command.action_to_target`` and publishes target + gripper
command stamped with the frame. A timer republishes the latest target at ``command_rate_hz``
(as streaming impedance clients do; 0 = only on decisions, for lockstep). Every decision (both
actions, which ran, score, eps_safe, policy version, hold) goes to ``/farm/decision``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from failurebench_sim import ros_contract as rc
from failurebench_sim.command import CommandError, action_to_target
from failurebench_sim.nodes.ros_io import (
    QOS,
    FrameOutputs,
    VectorError,
    declare_from_dataclass,
    pack_vector,
    paired_callback,
    pose_msg,
    run_node,
    unpack_vector,
)
from failurebench_sim.stamp_sync import ExactPairer
from failurebench_sim.twin import GRIPPER_DOWN_XYZW
from farm_policies.checkpoint import load_actor_value
from farm_safety_critic.calibration import read_eps_safe
from farm_safety_critic.decider import RecoveryDecider

ACT = len(rc.ACTION_LABELS)
RANGES = {"eps_safe": (0.0, 1e6), "command_rate_hz": (0.0, 1000.0)}


@dataclass
class ArbiterNodeConfig:
    recovery_checkpoint: str = ""
    eps_safe: float = 0.3
    eps_safe_file: str = ""  # calibration/eps_safe.json of the task: overrides eps_safe
    command_rate_hz: float = 0.0  # republish the latest target (0: only on decisions)
    target_topic: str = rc.TARGET_POSE
    base_frame: str = rc.BASE_FRAME


class ArbiterNode(Node):
    """Eq. 11 on the graph; composable (``ArbiterNode(**node_kwargs)``)."""

    def __init__(self, node_name: str = "arbiter_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.cfg = c = declare_from_dataclass(self, ArbiterNodeConfig(), RANGES)
        if c.eps_safe_file:
            c.eps_safe = read_eps_safe(c.eps_safe_file)
        recovery, _, _ = load_actor_value(c.recovery_checkpoint)
        self.decider = RecoveryDecider(recovery.eval(), c.eps_safe, ACT)
        self.pairer = ExactPairer(("obs", "proposed", "assessment"))
        self.decisions = self.replaced = self.holds = 0
        self.last_target: PoseStamped | None = None
        self.outputs = FrameOutputs()
        reliable = QOS[rc.RELIABLE]
        self.pub_target = self.create_publisher(PoseStamped, c.target_topic, reliable)
        self.pub_gripper = self.create_publisher(JointState, rc.GRIPPER_COMMAND, reliable)
        self.pub_decision = self.create_publisher(JointState, rc.DECISION, reliable)
        for stream, topic in (("obs", rc.OBSERVATION), ("proposed", rc.PROPOSED_ACTION),
                              ("assessment", rc.SAFETY_ASSESSMENT)):  # fmt: skip
            self.create_subscription(JointState, topic, self._on(stream), reliable)
        if c.command_rate_hz > 0:
            self.create_timer(1.0 / c.command_rate_hz, self._republish)

    def _on(self, stream: str):
        return paired_callback(self.pairer, self.outputs, stream, self.decide)

    def decide(self, frame: dict) -> None:
        stamp = frame["obs"].header.stamp
        try:
            obs = unpack_vector(frame["obs"], rc.OBS_LABELS)
            prop = unpack_vector(frame["proposed"], rc.PROPOSED_LABELS)
            assess = unpack_vector(frame["assessment"], rc.ASSESSMENT_LABELS)
        except VectorError as e:
            self.get_logger().warning(f"malformed frame, holding: {e}", throttle_duration_sec=2)
            self.holds += 1
            self.outputs.publish()
            return
        proposed, score, version = prop[:ACT], assess[0], prop[-1]
        d = self.decider.decide(obs[None], proposed[None], np.array([score]))
        executed = d.actions[0].astype(np.float64)
        hold = not (np.isfinite(obs).all() and np.isfinite(proposed).all())
        try:
            target, gripper = action_to_target(obs[0:3], executed)
        except CommandError:  # no finite hand position: keep the last target on the controller
            hold, target, gripper = True, None, 0.0
        self.decisions += 1
        self.replaced += int(d.replaced[0])
        self.holds += int(hold)
        values = [*proposed, *executed, float(d.replaced[0]), d.score[0], self.decider.eps_safe,
                  version, float(hold)]  # fmt: skip
        out = [(self.pub_decision, pack_vector(rc.DECISION_LABELS, values, stamp))]
        if target is not None:
            msg = PoseStamped()
            msg.header.stamp, msg.header.frame_id = stamp, self.cfg.base_frame
            msg.pose = pose_msg(target, GRIPPER_DOWN_XYZW)
            self.last_target = msg
            grip = pack_vector(rc.GRIPPER_COMMAND_LABELS, [gripper], stamp)
            out = [*out, (self.pub_gripper, grip), (self.pub_target, msg)]
        self.outputs.publish(*out)

    def _republish(self) -> None:
        if self.last_target is not None:
            self.pub_target.publish(self.last_target)


def main(args: list[str] | None = None) -> None:
    run_node(ArbiterNode, args)
