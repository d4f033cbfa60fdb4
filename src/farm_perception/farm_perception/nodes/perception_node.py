"""perception_node: colour + aligned depth + camera_info -> object poses in the base frame.

Pairs colour and depth by exact header stamp, runs ``PoseEstimator`` and publishes
``/farm/object_poses`` (PoseArray, base frame, the image's stamp) when every object of the task
has a pose (fresh or held), an optional overlay image, and diagnostics once a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import (
    QOS,
    declare_from_dataclass,
    diagnostics_message,
    image_msg,
    pose_msg,
    run_node,
    stamp_ns,
)
from farm_perception import config as pc
from farm_perception import extrinsics
from farm_perception.estimator import IDENTITY_XYZW, FrameError, PoseEstimator
from farm_perception.overlay import draw
from farm_perception.yolo import make_detector

ENCODINGS = {"rgb8": (np.uint8, 3), "16UC1": (np.uint16, 1)}
PENDING = 8  # unpaired images kept per stream


@dataclass(frozen=True)
class PerceptionNodeConfig:
    task: str = "BoundedPush"
    config_file: str = str(pc.DEFAULT_PATH)
    extrinsics_file: str = str(pc.DEFAULT_PATH.parent / "calibration" / "twin_camera.yaml")
    max_missed_frames: int = 5
    min_area: int = 30
    publish_overlay: bool = False
    base_frame: str = rc.BASE_FRAME
    detector: str = "color"  # color | yolo | fused
    yolo_model: str = ""  # YOLOv8 ONNX model (yolo, fused)
    yolo_conf: float = 0.25
    yolo_every: int = 1  # fused: YOLO on one frame in N, its boxes reused between


RANGES = {
    "max_missed_frames": (0, 1000),
    "min_area": (1, 100000),
    "yolo_conf": (0.0, 1.0),
    "yolo_every": (1, 100),
}
DOCS = {
    "task": "FailureBench task whose objects are tracked (perception.yaml key)",
    "config_file": "perception.yaml: colour bands and objects per task",
    "extrinsics_file": "calibration YAML: optical frame pose in the base frame",
    "max_missed_frames": "frames an undetected object keeps its last pose",
    "min_area": "smallest blob (pixels) accepted as an object",
    "publish_overlay": "publish the detections drawn on the colour image",
    "base_frame": "frame of the published poses (must match the calibration's parent)",
    "detector": "color (HSV bands) | yolo (YOLOv8 ONNX) | fused (YOLO boxes refined by the "
    "colour mask, the colour filter where YOLO misses)",
    "yolo_model": "the YOLOv8 ONNX model (detector yolo or fused)",
    "yolo_conf": "YOLO score threshold",
    "yolo_every": "fused: run YOLO on one frame in N and reuse its boxes on the frames between",
}


def to_array(msg: Image) -> np.ndarray:
    """A numpy view of an rgb8 / 16UC1 image; ValueError on other encodings or sizes."""
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding {msg.encoding!r} (want rgb8 or 16UC1)")
    dtype, ch = ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row = msg.width * ch * dt.itemsize
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f"{msg.encoding} {msg.width}x{msg.height}: step/data too short")
    a = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    a = a.reshape(msg.height, msg.step)[:, :row].view(dt).reshape(msg.height, msg.width, ch)
    a = a.astype(dtype, copy=False)
    return a[..., 0] if ch == 1 else a


class PerceptionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception_node", **kwargs)
        self.cfg = declare_from_dataclass(self, PerceptionNodeConfig(), RANGES, DOCS)
        task = pc.load(self.cfg.config_file, self.cfg.task)
        self.task = pc.TaskPerception(task.task, task.objects, self.cfg.min_area, task.kernel)
        self.ext = extrinsics.load(self.cfg.extrinsics_file)
        if self.ext.parent_frame != self.cfg.base_frame:
            raise extrinsics.ExtrinsicsError(
                f"calibration parent {self.ext.parent_frame!r} != base_frame {self.cfg.base_frame!r}"
            )
        self.detector = make_detector(self.cfg.detector, self.task.objects, self.task.min_area,
                                      self.task.kernel, self.cfg.yolo_model, self.cfg.yolo_conf,
                                      self.cfg.yolo_every)  # fmt: skip
        self.estimator: PoseEstimator | None = None
        self._k: tuple | None = None
        self._color: dict[int, Image] = {}
        self._depth: dict[int, Image] = {}
        self.stats = {"frames": 0, "published": 0, "dropped": 0, "latency_ms": 0.0}
        self.misses = {o.label: 0 for o in self.task.objects}
        info_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        sensor = QOS[rc.SENSOR]
        # images: best effort like the driver, but only the newest two kept: a frame that waited
        # behind a slow one is older than the next (a deeper queue only adds latency)
        latest = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(Image, rc.COLOR_IMAGE, self._on_color, latest)
        self.create_subscription(Image, rc.DEPTH_IMAGE, self._on_depth, latest)
        self.create_subscription(CameraInfo, rc.COLOR_INFO, self._on_info, info_qos)
        self.pub_poses = self.create_publisher(PoseArray, rc.OBJECT_POSES, QOS[rc.RELIABLE])
        self.pub_overlay = (
            self.create_publisher(Image, rc.DETECTIONS_IMAGE, sensor)
            if self.cfg.publish_overlay
            else None
        )
        self.pub_diag = self.create_publisher(DiagnosticArray, rc.DIAGNOSTICS, QOS[rc.RELIABLE])
        self.create_timer(1.0, self._publish_diagnostics)

    # -- inputs ---------------------------------------------------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        key = (tuple(msg.k), msg.width, msg.height)
        if key == self._k:
            return
        try:
            self.estimator = PoseEstimator(
                self.task,
                np.reshape(msg.k, (3, 3)),
                self.ext.matrix(),
                msg.width,
                msg.height,
                self.cfg.max_missed_frames,
                self.detector,
            )
            self._k = key
        except ValueError as e:
            self._warn(f"camera_info rejected: {e}")

    def _on_color(self, msg: Image) -> None:
        self._pair(msg, self._color, self._depth, color_first=True)

    def _on_depth(self, msg: Image) -> None:
        self._pair(msg, self._depth, self._color, color_first=False)

    def _pair(self, msg: Image, mine: dict, other: dict, color_first: bool) -> None:
        key = stamp_ns(msg.header.stamp)
        match = other.pop(key, None)
        if match is None:
            mine[key] = msg
            while len(mine) > PENDING:
                mine.pop(min(mine))
            return
        for old in [k for k in other if k < key]:  # older unpaired frames will never pair
            other.pop(old)
        self._process(*((msg, match) if color_first else (match, msg)))

    # -- one frame ------------------------------------------------------------------------
    def _process(self, color: Image, depth: Image) -> None:
        t0 = time.perf_counter()
        self.stats["frames"] += 1
        if self.estimator is None:
            self._drop("no camera_info yet")
            return
        try:
            rgb, depth_mm = to_array(color), to_array(depth)
            if color.encoding != "rgb8" or depth.encoding != "16UC1":
                raise ValueError(f"encodings {color.encoding}/{depth.encoding}, want rgb8/16UC1")
            frames = {color.header.frame_id, depth.header.frame_id}
            if frames != {self.ext.child_frame}:  # aligned depth shares the colour frame
                raise ValueError(f"image frames {sorted(frames)}, the calibration is for "
                                 f"{self.ext.child_frame!r}")  # fmt: skip
            est = self.estimator.update(rgb, depth_mm)
        except (ValueError, FrameError) as e:
            self.estimator.miss()
            self._drop(str(e))
            return
        for o, s in zip(self.task.objects, est.status, strict=True):
            self.misses[o.label] += s != "fresh"
        if est.complete:
            out = PoseArray(poses=[pose_msg(p, IDENTITY_XYZW) for p in est.positions])
            out.header.stamp, out.header.frame_id = color.header.stamp, self.cfg.base_frame
            self.pub_poses.publish(out)
            self.stats["published"] += 1
        if self.pub_overlay is not None:
            img = draw(rgb, est, self.task)
            self.pub_overlay.publish(image_msg(img, color.header.stamp, color.header.frame_id))
        self.stats["latency_ms"] = 1000 * (time.perf_counter() - t0)

    def _drop(self, why: str) -> None:
        self.stats["dropped"] += 1
        self._warn(f"frame dropped: {why}")

    def _warn(self, text: str) -> None:
        self.get_logger().warning(text, throttle_duration_sec=5.0)

    def _publish_diagnostics(self) -> None:
        s = self.stats
        rate = s["published"] / max(s["frames"], 1)
        level = DiagnosticStatus.OK if rate > 0.5 or not s["frames"] else DiagnosticStatus.WARN
        values = {**s, "detection_rate": rate, **{f"misses/{k}": v for k, v in self.misses.items()}}
        msg = diagnostics_message(
            "farm_perception: perception_node", self.cfg.task,
            f"published {s['published']}/{s['frames']} frames", values,
            self.get_clock().now().to_msg(), level,
        )  # fmt: skip
        self.pub_diag.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_node(PerceptionNode, args)


if __name__ == "__main__":
    main()
