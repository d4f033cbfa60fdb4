"""``policy_node``: task-policy inference on the graph (a thin adapter around ``LivePolicy``).

For each frame (stamp t) it pairs the end-effector pose, the gripper state, the object poses and
the episode state stamped t (``ExactPairer``), rebuilds FailureBench's 39-d observation with the
shared ``ObservationBuilder`` and publishes the observation and the proposed action, both
stamped t. A non-finite or malformed input holds still (zero action, counted) and never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped, Twist
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32

from failurebench_sim import ros_contract as rc
from failurebench_sim.make import make_env
from failurebench_sim.nodes.ros_io import (
    QOS,
    FrameOutputs,
    VectorError,
    declare_from_dataclass,
    pack_vector,
    paired_callback,
    run_node,
    unpack_vector,
)
from failurebench_sim.observation import (
    ObjectPose,
    ObservationBuilder,
    ObservationError,
    gripper_opening,
)
from failurebench_sim.stamp_sync import ExactPairer, LatestPairer
from farm_policies.live import LivePolicy
from farm_policies.nodes.weights_io import subscribe_weights
from farm_policies.teleop import HUMAN_VERSION, TeleopCommand

STREAMS = ("ee", "gripper", "objects", "episode")


@dataclass
class PolicyNodeConfig:
    task: str = "FailureBench/BoundedPush-v0"
    checkpoint: str = ""
    deterministic: bool = True
    seed: int = 0
    # teleop: a human's velocity replaces the policy's action (demonstrations, farm-operator)
    action_source: str = "policy"  # policy | teleop
    teleop_twist_topic: str = rc.TELEOP_TWIST  # geometry_msgs/Twist (spacenav: /spacenav/twist)
    teleop_gripper_topic: str = rc.TELEOP_GRIPPER  # std_msgs/Float32, -1 open .. 1 closed
    teleop_max_speed: float = 0.1  # m/s
    teleop_period_s: float = 1.0 / 30  # the control period an action spans
    # exact: every input stamped like the frame (the twin); latest_before: the object poses
    # (the camera frame) take the newest pose, gripper and episode state at or before their
    # stamp, at most max_input_age_s older (the robot's 1 kHz state, an episode manager)
    pairing: str = "exact"
    max_input_age_s: float = 0.1


RANGES = {"seed": (0, 2**31 - 1), "teleop_max_speed": (0.0, 1.0), "teleop_period_s": (0.001, 1.0),
          "max_input_age_s": (0.001, 10.0)}  # fmt: skip
SOURCES = ("policy", "teleop")
PAIRINGS = ("exact", "latest_before")


def observation_from(builder: ObservationBuilder, inputs: dict) -> np.ndarray:
    """The 39-d observation from one frame's paired messages (raises on malformed input)."""
    ee: PoseStamped = inputs["ee"]
    episode = unpack_vector(inputs["episode"], rc.EPISODE_LABELS)
    fingers = unpack_vector(inputs["gripper"], rc.FINGER_JOINTS)
    if int(episode[1]) == 0:  # first frame of an episode: previous half = current
        builder.reset()
    p = ee.pose.position
    objects = [
        ObjectPose(
            (o.position.x, o.position.y, o.position.z),
            (o.orientation.x, o.orientation.y, o.orientation.z, o.orientation.w),
        )
        for o in inputs["objects"].poses
    ]
    return builder((p.x, p.y, p.z), gripper_opening(float(fingers.sum())), objects, episode[2:5])


class PolicyNode(Node):
    """Proposes pi_task's action for every frame; composable (``PolicyNode(**node_kwargs)``)."""

    def __init__(self, node_name: str = "policy_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.cfg = declare_from_dataclass(self, PolicyNodeConfig(), RANGES)
        if self.cfg.action_source not in SOURCES:
            raise ValueError(
                f"action_source must be one of {SOURCES}, got {self.cfg.action_source!r}"
            )
        self.teleop = None
        if self.cfg.action_source == "teleop":
            self.teleop = TeleopCommand(self.cfg.teleop_max_speed)
            self.create_subscription(Twist, self.cfg.teleop_twist_topic, self._on_twist,
                                     QOS[rc.RELIABLE])  # fmt: skip
            self.create_subscription(Float32, self.cfg.teleop_gripper_topic,
                                     lambda m: self.teleop.set_gripper(m.data), QOS[rc.RELIABLE])  # fmt: skip
        self.policy = LivePolicy.from_checkpoint(self.cfg.checkpoint, self.cfg.seed)
        env = make_env(self.cfg.task)
        self.builder = ObservationBuilder.for_env(env)
        env.close()
        if self.cfg.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {self.cfg.pairing!r}")
        self.pairer = (
            ExactPairer(STREAMS)
            if self.cfg.pairing == "exact"
            else LatestPairer(
                "objects", ("ee", "gripper", "episode"), int(self.cfg.max_input_age_s * 1e9)
            )  # fmt: skip
        )
        subscribe_weights(self, self.policy)
        self.held = 0
        self.outputs = FrameOutputs()
        self.pub_obs = self.create_publisher(JointState, rc.OBSERVATION, QOS[rc.RELIABLE])
        self.pub_action = self.create_publisher(JointState, rc.PROPOSED_ACTION, QOS[rc.RELIABLE])
        sensor, reliable = QOS[rc.SENSOR], QOS[rc.RELIABLE]
        self.create_subscription(PoseStamped, rc.EE_POSE, self._on("ee"), sensor)
        self.create_subscription(JointState, rc.GRIPPER_STATE, self._on("gripper"), sensor)
        self.create_subscription(PoseArray, rc.OBJECT_POSES, self._on("objects"), reliable)
        # per-frame state, like the pose: best effort, so one lost sample never holds back the
        # frames after it (a reliable reader waits for the repair: measured p99 ~270 ms with the
        # camera's images on the same link, 43 ms best effort)
        self.create_subscription(JointState, rc.EPISODE_STATE, self._on("episode"), sensor)

    def _on_twist(self, msg: Twist) -> None:
        v = (msg.linear.x, msg.linear.y, msg.linear.z)
        if not self.teleop.set_velocity(v, self.get_clock().now().nanoseconds * 1e-9):
            self.get_logger().warning(f"teleop velocity ignored: {v}", throttle_duration_sec=2)

    def _on(self, stream: str):
        return paired_callback(self.pairer, self.outputs, stream, self.act)

    def act(self, frame: dict) -> None:
        stamp = frame["objects"].header.stamp
        try:
            obs = observation_from(self.builder, frame)
        except (ObservationError, VectorError, ValueError) as e:
            self.get_logger().warning(
                f"bad frame input, holding still: {e}", throttle_duration_sec=2
            )
            obs = np.full(len(rc.OBS_LABELS), np.nan)
        action, held = self.policy.act(obs, self.cfg.deterministic)
        if self.teleop is not None:  # the human's action (the policy still tracks the obs)
            now = self.get_clock().now().nanoseconds * 1e-9
            action, held = self.teleop.action(now, self.cfg.teleop_period_s), held
            if held:
                action = np.zeros_like(action)
        self.held += int(held)
        version = self.policy.version if self.teleop is None else HUMAN_VERSION
        self.outputs.publish(
            (self.pub_obs, pack_vector(rc.OBS_LABELS, obs, stamp, rc.BASE_FRAME)),
            (self.pub_action, pack_vector(rc.PROPOSED_LABELS, [*action, version], stamp)),
        )


def main(args: list[str] | None = None) -> None:
    run_node(PolicyNode, args)
