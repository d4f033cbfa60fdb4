"""``recorder_node``: every episode of the graph to its own MCAP bag (``recording.EpisodeRecorder``).

Subscribes the graph's topics *raw* (serialized CDR, never decoded) with the QoS their
publishers use, and writes each message with its receive time (system clock), like ``ros2 bag record``. An
episode's bag ends at the twin's (or the episode manager's) ``ir_failure`` / ``timeout`` event
on ``/farm/episode_events`` (the event itself is the bag's last message); the next message
opens the next one. Camera images are large
(921 kB per 640x480 frame): ``camera_every`` keeps one in N colour frames and ``record_depth``
adds the aligned depth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float32, String
from visualization_msgs.msg import MarkerArray

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import (
    QOS,
    VectorError,
    declare_from_dataclass,
    run_node,
    unpack_vector,
)
from farm_bringup.recording import EpisodeRecorder

# (topic, message class, QoS class) recorded by default
TOPICS = (
    (rc.EE_POSE, PoseStamped, rc.SENSOR),
    (rc.GRIPPER_STATE, JointState, rc.SENSOR),
    (rc.OBJECT_POSES, PoseArray, rc.RELIABLE),
    (rc.TWIN_OBJECT_POSES, PoseArray, rc.RELIABLE),
    (rc.EPISODE_STATE, JointState, rc.SENSOR),
    (rc.OBSERVATION, JointState, rc.RELIABLE),
    (rc.PROPOSED_ACTION, JointState, rc.RELIABLE),
    (rc.SAFETY_SCORE, Float32, rc.RELIABLE),
    (rc.SAFETY_ASSESSMENT, JointState, rc.RELIABLE),
    (rc.SAFETY_TRAJECTORY, MarkerArray, rc.RELIABLE),
    (rc.DECISION, JointState, rc.RELIABLE),
    (rc.TARGET_POSE, PoseStamped, rc.RELIABLE),
    (rc.GRIPPER_COMMAND, JointState, rc.RELIABLE),
    (rc.OPERATOR_MARK, String, rc.RELIABLE),
    (rc.TWIN_STEP, JointState, rc.RELIABLE),
    (rc.TWIN_FINAL_OBSERVATION, JointState, rc.RELIABLE),
    (rc.COLOR_INFO, CameraInfo, rc.LATCHED),
)
ENDS = ("ir_failure", "timeout")


def ros_type_name(cls: type) -> str:
    """``sensor_msgs/msg/JointState`` for a generated message class."""
    module = cls.__module__.split(".")
    return f"{module[0]}/msg/{cls.__name__}"


@dataclass
class RecorderNodeConfig:
    output_dir: str = "runs/recording"
    camera_every: int = 10  # record one colour frame in N (0: none)
    record_depth: bool = False


class RecorderNode(Node):
    """Composable (``RecorderNode(**node_kwargs)``); ``recorder`` is the ``EpisodeRecorder``."""

    def __init__(self, node_name: str = "recorder_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        ranges = {"camera_every": (0, 10_000)}
        self.cfg = c = declare_from_dataclass(self, RecorderNodeConfig(), ranges,
                                              read_only=("output_dir",))  # fmt: skip
        self.recorder = EpisodeRecorder(c.output_dir)
        self.frames = 0
        for topic, cls, qos in TOPICS:
            self._record(topic, cls, qos)
        if c.camera_every:
            self._record(rc.COLOR_IMAGE, Image, rc.SENSOR, every=c.camera_every)
        if c.record_depth:
            self._record(rc.DEPTH_INFO, CameraInfo, rc.LATCHED)
            self._record(rc.DEPTH_IMAGE, Image, rc.SENSOR, every=max(1, c.camera_every))
        self.create_subscription(
            DiagnosticArray, rc.EPISODE_EVENTS, self._on_event, QOS[rc.RELIABLE]
        )
        # per-episode counts for the index: the gate's recoveries, the operator's interventions
        self.recoveries = self.interventions = 0
        self.create_subscription(JointState, rc.DECISION, self._count_decision, QOS[rc.RELIABLE])
        self.create_subscription(String, rc.OPERATOR_MARK, self._count_mark, QOS[rc.RELIABLE])
        self.get_logger().info(f"recording episodes to {c.output_dir}")

    def _record(self, topic: str, cls: type, qos: str, every: int = 1) -> None:
        msgtype, count = ros_type_name(cls), [0]

        def on_message(data: bytes) -> None:  # (rclpy's EventsExecutor passes no MessageInfo)
            count[0] += 1
            if (count[0] - 1) % every == 0:
                self.recorder.write(topic, msgtype, time.time_ns(), data)

        self.create_subscription(cls, topic, on_message, QOS[qos], raw=True)

    def _count_decision(self, msg: JointState) -> None:
        try:
            self.recoveries += int(unpack_vector(msg, ("replaced",))[0] > 0.5)
        except VectorError:
            pass

    def _count_mark(self, msg: String) -> None:
        self.interventions += int(msg.data.strip() == "intervention")

    def _on_event(self, msg: DiagnosticArray) -> None:
        """Record the event in the episode it ends, then end the episode's bag."""
        self.recorder.write(rc.EPISODE_EVENTS, ros_type_name(DiagnosticArray), time.time_ns(),
                            serialize_message(msg))  # fmt: skip
        for st in msg.status:
            if st.message in ENDS:
                kv = {k.key: k.value for k in st.values}
                outcome = kv.get("reason", st.message)  # the robot's episode manager says why
                row = self.recorder.end_episode(outcome, float(kv.get("return", "nan")),
                                                int(kv.get("step", 0)), self.recoveries,
                                                self.interventions)  # fmt: skip
                self.recoveries = self.interventions = 0
                if row is not None:
                    self.get_logger().info(
                        f"episode {row.episode} ({row.outcome}): {row.messages} messages, "
                        f"{row.bytes / 1e3:.0f} kB -> {row.file}"
                    )

    def destroy_node(self) -> None:
        if hasattr(self, "recorder"):  # a node that failed during __init__ has none
            self.recorder.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(RecorderNode, args)


if __name__ == "__main__":
    main()
