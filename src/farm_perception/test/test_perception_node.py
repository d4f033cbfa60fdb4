"""perception_node over DDS: one rendered colour + depth pair + camera_info -> a PoseArray with
the image's stamp in the base frame, matching the twin's truth; bad images are dropped."""

import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")


def test_node_publishes_object_poses_with_the_image_stamp(twin, paths):
    from geometry_msgs.msg import PoseArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, camera_info_msg, image_msg
    from farm_perception.nodes.perception_node import PerceptionNode

    f = twin("ObstructedPush")[0]
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    params = [
        Parameter("task", value="ObstructedPush"),
        Parameter("config_file", value=str(paths["config"])),
        Parameter("extrinsics_file", value=str(paths["calibration"])),
        Parameter("publish_overlay", value=True),
    ]
    node = PerceptionNode(context=ctx, parameter_overrides=params)
    peer = rclpy.create_node("perception_test_peer", context=ctx)
    got, overlays = [], []
    peer.create_subscription(PoseArray, rc.OBJECT_POSES, got.append, QOS[rc.RELIABLE])
    peer.create_subscription(Image, rc.DETECTIONS_IMAGE, overlays.append, QOS[rc.SENSOR])
    pub_info = peer.create_publisher(CameraInfo, rc.COLOR_INFO, QOS[rc.LATCHED])
    pub_color = peer.create_publisher(Image, rc.COLOR_IMAGE, QOS[rc.SENSOR])
    pub_depth = peer.create_publisher(Image, rc.DEPTH_IMAGE, QOS[rc.SENSOR])
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.add_node(peer)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    try:
        from builtin_interfaces.msg import Time

        frame = rc.CAMERA_OPTICAL_FRAME
        deadline = time.monotonic() + 20
        sec = 100
        while not got and time.monotonic() < deadline:
            stamp = Time(sec=sec, nanosec=12345)
            pub_info.publish(camera_info_msg(f.k, 640, 480, stamp, frame))
            bad_stamp = Time(sec=sec + 1000, nanosec=1)  # wrong encoding: dropped, no crash
            pub_color.publish(image_msg(f.rgb, bad_stamp, frame, encoding="bgr8"))
            pub_depth.publish(image_msg(f.depth_mm, bad_stamp, frame))
            small = Time(sec=sec + 2000, nanosec=1)  # wrong size: dropped
            pub_color.publish(image_msg(f.rgb[:100], small, frame))
            pub_depth.publish(image_msg(f.depth_mm[:100], small, frame))
            foreign = Time(sec=sec + 3000, nanosec=1)  # an unknown frame id: dropped
            pub_color.publish(image_msg(f.rgb, foreign, "camera_link"))
            pub_depth.publish(image_msg(f.depth_mm, foreign, "camera_link"))
            time.sleep(0.05)
            pub_color.publish(image_msg(f.rgb, stamp, frame))
            pub_depth.publish(image_msg(f.depth_mm, stamp, frame))
            time.sleep(0.5)
            sec += 1
        assert got, "no PoseArray received"
        msg = got[0]
        assert msg.header.frame_id == rc.BASE_FRAME
        assert msg.header.stamp.sec >= 100 and msg.header.stamp.nanosec == 12345
        pos = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])
        assert pos.shape == (2, 3)
        assert np.linalg.norm(pos - f.positions, axis=1).max() < 0.025
        assert all(p.orientation.w == 1.0 for p in msg.poses)
        assert node.stats["dropped"] >= 1  # the bad pairs were dropped, the node kept running
        assert all(m.header.stamp.sec < 1000 for m in got)  # none of them produced poses
    finally:
        ex.shutdown()
        node.destroy_node()
        peer.destroy_node()
        rclpy.try_shutdown(context=ctx)
        spin.join(timeout=5)
