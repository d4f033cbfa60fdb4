"""``sim_node``: the MuJoCo twin on the ROS graph (a thin adapter around ``twin.Twin``).

Publishes what realsense2_camera and franka_ros2 publish (names, encodings, QoS from
``ros_contract``) plus ``/clock`` and the twin's ground truth, every message of a frame stamped
with the frame's sim time; steps on end-effector targets (PoseStamped) + gripper commands.
lockstep: frame k+1 follows once a target and a gripper command stamped t_k arrived (frame k is
re-published, without its step outcome and events, every ``lockstep_resend_s`` of wall time
until then). realtime: a steady-clock timer steps at ``control_rate_hz`` with the latest command.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState

from failurebench_sim import ros_contract as rc
from failurebench_sim.command import CommandError
from failurebench_sim.nodes.ros_io import (
    QOS,
    VectorError,
    camera_info_msg,
    declare_from_dataclass,
    episode_event_message,
    image_msg,
    ns_to_stamp,
    pack_vector,
    pose_msg,
    run_node,
    stamp_ns,
    unpack_vector,
)
from failurebench_sim.sensor_faults import SensorFaults
from failurebench_sim.twin import (
    GRIPPER_DOWN_XYZW,
    CommandLatch,
    EpisodeEvent,
    Frame,
    SimConfig,
    Twin,
)

RANGES = {
    "seed": (0, 2**31 - 1),
    "control_rate_hz": (1.0, 200.0),
    "camera_width": (16, 4096),
    "camera_height": (16, 4096),
    "time_limit": (1, 100_000),
    "max_episodes": (0, 10_000_000),
    "lockstep_resend_s": (0.01, 60.0),
    "command_timeout_s": (0.001, 60.0),
    "observation_drop": (0.0, 1.0),
    "observation_delay_s": (0.0, 60.0),
}
DOCS = {
    "task": "FailureBench env id (or short name, e.g. BoundedPush-v0)",
    "seed": "reset seed of episode 0; episode e uses seed + e",
    "clock_mode": "realtime (wall-clock timer) | lockstep (step when frame's command arrives)",
    "observation_source": "camera (render RGB-D) | ground_truth (publish object poses)",
    "control_rate_hz": "steps per second of sim time (and of wall time in realtime mode)",
    "time_limit": "steps per episode before a timeout",
    "start": "episode start: default | near_failure",
    "reset_on_success": "also end the episode at its first success",
    "max_episodes": "stop after this many episodes (0 = unlimited)",
    "target_topic": "end-effector target (geometry_msgs/PoseStamped, base frame)",
    "lockstep_resend_s": "lockstep: re-publish the frame after this much wall time w/o command",
    "command_timeout_s": "realtime: hold still when the latest target is older (sim time)",
    "observation_drop": "fault injection: drop this fraction of the observation source's "
    "frames (camera images, or object poses in ground_truth)",
    "observation_delay_s": "fault injection: publish those frames this late (sim time)",
}
LEVELS = {"ir_failure": DiagnosticStatus.WARN}


class SimNode(Node):
    """The twin node; composable (``SimNode(**node_kwargs)``), ``finished`` completes at the
    end of ``max_episodes``."""

    def __init__(self, node_name: str = "sim_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        names = [f.name for f in dataclasses.fields(SimConfig)]
        self.cfg = declare_from_dataclass(self, SimConfig(), RANGES, DOCS, read_only=names)
        self.cfg.validate()
        self.twin = Twin(self.cfg)
        self.latch = CommandLatch(timeout_ns=int(self.cfg.command_timeout_s * 1e9))
        self.finished = Future()
        self.steps = 0
        self.faults = SensorFaults(
            self.cfg.observation_drop, int(self.cfg.observation_delay_s * 1e9), self.cfg.seed
        )
        if self.faults.active:
            self.get_logger().warning(
                f"fault injection: dropping {self.cfg.observation_drop:.0%} of the observation "
                f"frames, delaying the rest {self.cfg.observation_delay_s:g} s"
            )

        sensor, reliable, latched = QOS[rc.SENSOR], QOS[rc.RELIABLE], QOS[rc.LATCHED]
        pub = self.create_publisher
        self.pub_clock = pub(ClockMsg, rc.CLOCK, 10)
        self.pub_step = pub(JointState, rc.TWIN_STEP, reliable)
        self.pub_final = pub(JointState, rc.TWIN_FINAL_OBSERVATION, reliable)
        self.pub_events = pub(DiagnosticArray, rc.EPISODE_EVENTS, reliable)
        self.pub_pose = pub(PoseStamped, rc.EE_POSE, sensor)
        self.pub_gripper = pub(JointState, rc.GRIPPER_STATE, sensor)
        self.pub_episode = pub(JointState, rc.EPISODE_STATE, reliable)
        self.pub_truth = pub(PoseArray, rc.TWIN_OBJECT_POSES, reliable)
        if self.cfg.observation_source == "ground_truth":
            self.pub_objects = pub(PoseArray, rc.OBJECT_POSES, reliable)
        else:
            self.pub_infos = [pub(CameraInfo, t, latched) for t in (rc.COLOR_INFO, rc.DEPTH_INFO)]
            self.pub_color = pub(Image, rc.COLOR_IMAGE, sensor)
            self.pub_depth = pub(Image, rc.DEPTH_IMAGE, sensor)

        self.create_subscription(PoseStamped, self.cfg.target_topic, self._on_target, reliable)
        self.create_subscription(JointState, rc.GRIPPER_COMMAND, self._on_gripper, reliable)

        steady = Clock(clock_type=ClockType.STEADY_TIME)  # never sim time: we publish /clock
        if self.cfg.clock_mode == "realtime":
            period, tick = 1.0 / self.cfg.control_rate_hz, self._realtime_tick
        else:
            period, tick = min(0.1, self.cfg.lockstep_resend_s / 2), self._resend_tick
        self.timer = self.create_timer(period, tick, clock=steady)
        self._publish(self.twin.reset())
        self.get_logger().info(
            f"{self.cfg.task} seed {self.cfg.seed}: {self.cfg.clock_mode}, "
            f"{self.cfg.observation_source}, {self.cfg.control_rate_hz:g} Hz"
        )

    def destroy_node(self) -> None:
        """Also closes the twin (its env and renderer), composed or not."""
        if hasattr(self, "twin"):  # a node that failed during __init__ has none
            self.twin.close()
        super().destroy_node()

    # -- commands ---------------------------------------------------------------------------
    def _reject(self, why: str) -> None:
        self.get_logger().warning(f"ignored command: {why}", throttle_duration_sec=2.0)

    def _on_target(self, msg: PoseStamped) -> None:
        if msg.header.frame_id != self.cfg.base_frame:
            return self._reject(f"target frame {msg.header.frame_id!r} != {self.cfg.base_frame!r}")
        p = msg.pose.position
        try:
            self.latch.offer_target(stamp_ns(msg.header.stamp), (p.x, p.y, p.z))
        except CommandError as e:
            return self._reject(str(e))
        self._lockstep_step()

    def _on_gripper(self, msg: JointState) -> None:
        try:
            (g,) = unpack_vector(msg, rc.GRIPPER_COMMAND_LABELS)
            self.latch.offer_gripper(stamp_ns(msg.header.stamp), g)
        except (VectorError, CommandError) as e:
            return self._reject(str(e))
        self._lockstep_step()

    # -- stepping ---------------------------------------------------------------------------
    def _lockstep_step(self) -> None:
        frame = self.twin.frame
        if self.cfg.clock_mode != "lockstep" or frame is None or frame.last:
            return
        command = self.latch.for_stamp(frame.sim_time_ns)
        if command is not None:
            self._step(*command)

    def _realtime_tick(self) -> None:
        frame = self.twin.frame
        if frame is not None and not frame.last:
            self._step(*self.latch.latest(frame.sim_time_ns, frame.hand_pos))

    def _resend_tick(self) -> None:
        frame = self.twin.frame
        if frame is not None and not frame.last:
            if time.monotonic() - self._published_at >= self.cfg.lockstep_resend_s:
                self._publish(frame, state_only=True)

    def _step(self, target: np.ndarray, gripper: float) -> None:
        try:
            frame = self.twin.step(target, gripper, self.latch.used_ns)
        except CommandError as e:
            return self._reject(str(e))
        self.steps += 1
        self._publish(frame)
        if frame.last:
            self.timer.cancel()
            self.get_logger().info(
                f"{self.cfg.max_episodes} episodes done after {frame.index} steps"
            )
            self.finished.set_result(frame.index)

    # -- publishing (order: clock, outcome, events, robot state, objects, images last) --------
    def _publish(self, f: Frame, state_only: bool = False) -> None:
        stamp, base = ns_to_stamp(f.sim_time_ns), self.cfg.base_frame
        self.pub_clock.publish(ClockMsg(clock=stamp))
        if not state_only:
            if f.outcome is not None:
                self.pub_step.publish(pack_vector(rc.STEP_LABELS, f.outcome.vector(), stamp))
            if f.final_observation is not None:
                final = pack_vector(rc.OBS_LABELS, f.final_observation, stamp, base)
                self.pub_final.publish(final)
            for event in f.events:
                self.pub_events.publish(self._event_msg(event, stamp))
        pose = PoseStamped(pose=pose_msg(f.hand_pos, GRIPPER_DOWN_XYZW))
        pose.header.stamp, pose.header.frame_id = stamp, base
        self.pub_pose.publish(pose)
        self.pub_gripper.publish(pack_vector(rc.FINGER_JOINTS, f.finger_positions, stamp, base))
        episode = (f.episode, f.step, *f.goal)
        self.pub_episode.publish(pack_vector(rc.EPISODE_LABELS, episode, stamp, base))
        objects = PoseArray(poses=[pose_msg(o.position, o.quaternion_xyzw) for o in f.objects])
        objects.header.stamp, objects.header.frame_id = stamp, base
        self.pub_truth.publish(objects)
        if not state_only or not self.faults.active:  # a resend is not a new frame to drop
            self.faults.offer(f.sim_time_ns, self._observation_messages(f, objects, stamp))
        for messages in self.faults.due(f.sim_time_ns):
            for p, m in messages:
                p.publish(m)
        self.latch.expect(f.sim_time_ns)
        self._published_at = time.monotonic()

    def _observation_messages(self, f: Frame, objects: PoseArray, stamp) -> list:
        """What the observation source publishes for a frame: (publisher, message) pairs."""
        if self.cfg.observation_source == "ground_truth":
            return [(self.pub_objects, objects)]
        if f.camera is None:
            return []
        cam, frame_id = f.camera, self.cfg.camera_frame
        h, w = cam.depth_mm.shape
        info = camera_info_msg(cam.k, w, h, stamp, frame_id)
        return [
            *((p, info) for p in self.pub_infos),
            (self.pub_color, image_msg(cam.rgb, stamp, frame_id)),
            (self.pub_depth, image_msg(cam.depth_mm, stamp, frame_id)),
        ]

    @staticmethod
    def _event_msg(e: EpisodeEvent, stamp) -> DiagnosticArray:
        level = LEVELS.get(e.kind, DiagnosticStatus.OK)
        return episode_event_message(e.kind, e.episode, e.step, e.ret, stamp,
                                     "failurebench_twin", level)  # fmt: skip


def main(args: list[str] | None = None) -> None:
    run_node(SimNode, args, until="finished")  # ends after max_episodes


if __name__ == "__main__":
    main()
