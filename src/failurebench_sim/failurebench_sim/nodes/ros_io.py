"""rclpy helpers every FARM node shares: QoS classes, stamps, named stamped vectors, parameters.

Nodes are thin adapters; what they repeat lives here once.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, Image, JointState

from failurebench_sim import ros_contract as rc

QOS = {
    rc.SENSOR: qos_profile_sensor_data,
    rc.RELIABLE: QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    rc.LATCHED: QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    ),
}


class VectorError(ValueError):
    """A named stamped vector lacks a label or carries a non-finite value where one is needed."""


def stamp_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (the key stamps are paired by)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def pack_vector(
    labels: Sequence[str], values: Iterable[float], stamp: Time, frame_id: str = ""
) -> JointState:
    """A named stamped vector (see ``ros_contract``): JointState with name/position only."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.name = list(labels)
    msg.position = [float(v) for v in values]
    if len(msg.name) != len(msg.position):
        raise VectorError(f"{len(msg.name)} labels for {len(msg.position)} values")
    return msg


def unpack_vector(msg: JointState, labels: Sequence[str]) -> np.ndarray:
    """The values of ``labels`` (in that order) from a named stamped vector, float64.

    Raises ``VectorError`` when a label is missing or the name/position lengths differ.
    """
    if len(msg.name) != len(msg.position):
        raise VectorError(f"vector has {len(msg.name)} labels but {len(msg.position)} values")
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [lab for lab in labels if lab not in index]
    if missing:
        raise VectorError(f"vector lacks labels {missing[:5]}{'...' if len(missing) > 5 else ''}")
    pos = msg.position
    return np.array([pos[index[lab]] for lab in labels], dtype=np.float64)


def descriptor(
    description: str,
    low: float | None = None,
    high: float | None = None,
    read_only: bool = False,
    integer: bool = False,
) -> ParameterDescriptor:
    """ParameterDescriptor with an optional range (rclpy rejects out-of-range sets itself)."""
    d = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None and high is not None:
        if integer:
            d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
    return d


def declare_from_dataclass(
    node: Node,
    cfg: Any,
    ranges: dict[str, tuple[float, float]] | None = None,
    docs: dict[str, str] | None = None,
    read_only: Iterable[str] = (),
    prefix: str = "",
) -> Any:
    """Declare one parameter per dataclass field (same name, the field's default, a range
    where given) and return a copy of ``cfg`` with the values the node was started with.

    Fields whose type is not a ROS parameter type (bool, int, float, str, list) are skipped;
    ``prefix`` declares ``<prefix>.<field>`` (a nested config, e.g. ``ppo.lr_actor``).
    """
    ranges, docs, read_only = ranges or {}, docs or {}, set(read_only)
    values = {}
    for f in dataclasses.fields(cfg):
        default = getattr(cfg, f.name)
        if not isinstance(default, bool | int | float | str | list | tuple):
            continue
        lo, hi = ranges.get(f.name, (None, None))
        desc = descriptor(
            docs.get(f.name, f.name.replace("_", " ")),
            lo,
            hi,
            read_only=f.name in read_only,
            integer=isinstance(default, int) and not isinstance(default, bool),
        )
        value = list(default) if isinstance(default, tuple) else default
        name = f"{prefix}.{f.name}" if prefix else f.name
        values[f.name] = node.declare_parameter(name, value, desc).value
        if isinstance(default, tuple):
            values[f.name] = tuple(values[f.name])
    return dataclasses.replace(cfg, **values)


def reject_unless(ok: bool, reason: str) -> SetParametersResult:
    """A parameter-callback result: accepted, or rejected with ``reason`` (old value kept)."""
    return SetParametersResult(successful=bool(ok), reason="" if ok else reason)


def finite(*xs: float) -> bool:
    return all(math.isfinite(float(x)) for x in xs)


def pose_msg(position: Sequence[float], quaternion_xyzw: Sequence[float]) -> Pose:
    """geometry_msgs/Pose from a position and a unit quaternion (x, y, z, w)."""
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in position)
    o = p.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quaternion_xyzw)
    return p


_ENCODINGS = {("uint8", 3): "rgb8", ("uint8", 1): "mono8", ("uint16", 1): "16UC1"}


def image_msg(array: np.ndarray, stamp: Time, frame_id: str, encoding: str = "") -> Image:
    """sensor_msgs/Image of an (H, W) or (H, W, C) array (rgb8, mono8, 16UC1 by dtype)."""
    a = np.ascontiguousarray(array)
    channels = 1 if a.ndim == 2 else a.shape[2]
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = encoding or _ENCODINGS[(a.dtype.name, channels)]
    msg.is_bigendian = int(
        a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big")
    )
    msg.step = int(a.strides[0])
    msg.data = a.tobytes()
    return msg


def camera_info_msg(
    k: np.ndarray, width: int, height: int, stamp: Time, frame_id: str
) -> CameraInfo:
    """sensor_msgs/CameraInfo of an undistorted pinhole camera (plumb_bob, D = 0, P = [K | 0])."""
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = k.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
    return msg


class FrameOutputs:
    """Publishes a frame's outputs and keeps them, so a re-sent frame (the twin re-sends in
    lockstep until it gets a command) can be answered again for a node that missed them."""

    def __init__(self) -> None:
        self._last: list[tuple[Any, Any]] = []

    def publish(self, *pairs: tuple[Any, Any]) -> None:
        """``(publisher, message)`` pairs, published in order."""
        self._last = list(pairs)
        self.republish()

    def republish(self) -> None:
        for pub, msg in self._last:
            pub.publish(msg)


def paired_callback(pairer, outputs: FrameOutputs, stream: str, handle):
    """Subscription callback: add ``msg`` to ``pairer`` (``stamp_sync.ExactPairer``) as
    ``stream``; call ``handle(frame)`` once every stream has the frame's stamp, and answer a
    re-sent frame already handled with the outputs kept in ``outputs``."""

    def callback(msg) -> None:
        stamp = stamp_ns(msg.header.stamp)
        frame = pairer.add(stream, stamp, msg)
        if frame is None and stamp == pairer.last_completed:
            outputs.republish()  # a re-sent frame: a downstream node may have missed it
        elif frame is not None:
            handle(frame)

    return callback


def run_node(make_node, args: list[str] | None = None, until: str | None = None) -> None:
    """A node's ``main``: init rclpy with ``args``, spin ``make_node()`` until Ctrl-C (or until
    the node's future attribute ``until`` completes), clean up."""
    import rclpy
    from rclpy.exceptions import ParameterException

    rclpy.init(args=args)
    node = None
    try:
        try:
            node = make_node()
        except (ParameterException, ValueError, OSError, RuntimeError, ImportError) as e:
            # a bad parameter, file or checkpoint: one clear line and exit status 2, no traceback
            name = getattr(make_node, "__name__", "node")
            print(f"[{name}] cannot start: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        if until is None:
            rclpy.spin(node)
        else:
            rclpy.spin_until_future_complete(node, getattr(node, until))
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def episode_event_message(kind: str, episode: int, step: int, ret: float, stamp,
                          hardware_id: str, level: int = DiagnosticStatus.OK,
                          reason: str = "") -> DiagnosticArray:  # fmt: skip
    """An ``/farm/episode_events`` message (``ros_contract.EVENT_KINDS``; ``reason``: why the
    robot's episode manager ended an episode, when it says more than the kind)."""
    values = [KeyValue(key="episode", value=str(episode)), KeyValue(key="step", value=str(step)),
              KeyValue(key="return", value=repr(float(ret)))]  # fmt: skip
    if reason:
        values.append(KeyValue(key="reason", value=reason))
    status = DiagnosticStatus(level=level, name="farm/episode", message=kind,
                              hardware_id=hardware_id, values=values)  # fmt: skip
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg


def diagnostics_message(
    name: str,
    hardware_id: str,
    message: str,
    values: dict[str, Any],
    stamp: Time,
    level: int = DiagnosticStatus.OK,
) -> DiagnosticArray:
    """A ``/diagnostics`` message with one status; floats as 4 significant digits."""
    kv = [KeyValue(key=k, value=f"{v:.4g}" if isinstance(v, float) else str(v))
          for k, v in values.items()]  # fmt: skip
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=kv)  # fmt: skip
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg
