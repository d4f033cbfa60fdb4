"""``episode_node``: the robot's episode manager (on the twin, sim_node owns episodes).

Publishes ``/farm/episode_state`` (episode, step, goal) for every object-poses frame, stamped
like it, while an episode runs; ends an episode at the operator's mark (``/farm/operator/mark``)
or the time limit and then pauses: ``/farm/episode/hold`` (std_msgs/Bool, latched) tells the
arbiter to hold the arm until the operator calls ``/farm/episode/resume`` (std_srvs/Trigger)
after restoring the scene; ``/farm/episode/pause`` holds at any time. The prompt and the
counts are in ``/diagnostics`` (``farm/episodes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import (
    QOS,
    declare_from_dataclass,
    diagnostics_message,
    episode_event_message,
    pack_vector,
    pose_msg,
    run_node,
)
from failurebench_sim.twin import GRIPPER_DOWN_XYZW
from farm_bringup.episodes import EpisodeFlow


@dataclass
class EpisodeNodeConfig:
    task: str = "FailureBench/FragilePushWall-v0"
    time_limit: int = 200  # steps (camera frames) per episode
    goal: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # base frame: MEASURE IT
    # where each episode starts: on resume the arbiter drives the arm there through the shield,
    # and the episode runs once the hand is within start_tolerance_m (NaN = start where it is)
    start_pose: list[float] = field(default_factory=lambda: [math.nan] * 3)
    start_tolerance_m: float = 0.01
    base_frame: str = rc.BASE_FRAME


class EpisodeNode(Node):
    def __init__(self, node_name: str = "episode_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        ranges = {"time_limit": (1, 100_000), "start_tolerance_m": (0.001, 0.1)}
        self.cfg = declare_from_dataclass(self, EpisodeNodeConfig(), ranges)
        if len(self.cfg.start_pose) != 3:
            raise ValueError(f"start_pose must be 3 numbers (NaN: none), got {self.cfg.start_pose}")
        self.start = (
            list(self.cfg.start_pose) if all(map(math.isfinite, self.cfg.start_pose)) else None
        )
        self.resetting = False  # driving to the start pose before the episode runs
        if len(self.cfg.goal) != 3:
            raise ValueError(
                f"goal must be 3 numbers (x, y, z in {self.cfg.base_frame}), got {self.cfg.goal}"
            )
        self.flow = EpisodeFlow(self.cfg.time_limit)
        reliable = QOS[rc.RELIABLE]
        self.pub_state = self.create_publisher(JointState, rc.EPISODE_STATE, QOS[rc.SENSOR])
        self.pub_hold = self.create_publisher(Bool, rc.EPISODE_HOLD, QOS[rc.LATCHED])
        self.pub_diag = self.create_publisher(DiagnosticArray, rc.DIAGNOSTICS, 10)
        self.pub_events = self.create_publisher(DiagnosticArray, rc.EPISODE_EVENTS, reliable)
        self.create_subscription(PoseArray, rc.OBJECT_POSES, self._on_frame, reliable)
        self.create_subscription(String, rc.OPERATOR_MARK, self._on_mark, reliable)
        self.pub_start = self.create_publisher(PoseStamped, rc.EPISODE_START_POSE, QOS[rc.LATCHED])
        self.create_subscription(PoseStamped, rc.EE_POSE, self._on_pose, QOS[rc.SENSOR])
        self.create_service(Trigger, rc.EPISODE_RESUME, self._service(self._resume))
        self.create_service(Trigger, rc.EPISODE_PAUSE, self._service(self.flow.pause))
        self.create_timer(1.0, self._diagnose)
        self._publish_hold()

    def _resume(self) -> None:
        """Run the episode, after the drive to the start pose when one is set."""
        if self.start is None or not self.flow.paused:
            self.flow.resume()
            return
        self.resetting = True
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = self.get_clock().now().to_msg(), self.cfg.base_frame
        msg.pose = pose_msg(self.start, GRIPPER_DOWN_XYZW)
        self.pub_start.publish(msg)
        self.flow.prompt = "driving to the start pose"

    def _on_pose(self, msg: PoseStamped) -> None:
        if not self.resetting or msg.header.frame_id != self.cfg.base_frame:
            return
        p = msg.pose.position
        if math.dist((p.x, p.y, p.z), self.start) <= self.cfg.start_tolerance_m:
            self.resetting = False
            self.pub_start.publish(PoseStamped())  # no frame id: the drive is over
            self.flow.resume()
            self._publish_hold()

    def _on_frame(self, msg: PoseArray) -> None:
        was = self.flow.paused
        at = self.flow.frame()
        if at is not None:
            values = [at[0], at[1], *self.cfg.goal]
            self.pub_state.publish(pack_vector(rc.EPISODE_LABELS, values, msg.header.stamp,
                                               self.cfg.base_frame))  # fmt: skip
        if self.flow.paused != was:
            if self.flow.last_end is not None and not was:
                self._end_event(msg.header.stamp)
            self._publish_hold()

    def _on_mark(self, msg: String) -> None:
        if self.flow.mark(msg.data.strip()):
            self._end_event(self.get_clock().now().to_msg())
            self._publish_hold()

    def _service(self, action):
        def handle(_request, response):
            action()
            self._publish_hold()
            response.success = True
            response.message = self.flow.prompt or f"episode {self.flow.episode} running"
            return response

        return handle

    def _end_event(self, stamp) -> None:
        """The twin's event for an ended episode (the recorder closes its bag on it)."""
        episode, steps, why = self.flow.last_end
        kind = "ir_failure" if why in ("ir_failure", "intervention") else "timeout"
        level = DiagnosticStatus.WARN if kind == "ir_failure" else DiagnosticStatus.OK
        self.pub_events.publish(episode_event_message(kind, episode, steps, float("nan"), stamp,
                                                      "episode_node", level, why))  # fmt: skip

    def _publish_hold(self) -> None:
        self.pub_hold.publish(Bool(data=self.flow.paused))
        if self.flow.prompt:
            self.get_logger().warning(f"episode {self.flow.episode}: {self.flow.prompt}")

    def _diagnose(self) -> None:
        f = self.flow
        values = {"episode": f.episode, "step": f.step, "paused": f.paused,
                  **{f"ended_{k}": v for k, v in f.ended.items()}}  # fmt: skip
        level = DiagnosticStatus.WARN if f.paused else DiagnosticStatus.OK
        msg = diagnostics_message("farm/episodes", "episode_node", f.prompt or "running", values,
                                  self.get_clock().now().to_msg(), level)  # fmt: skip
        self.pub_diag.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_node(EpisodeNode, args)
