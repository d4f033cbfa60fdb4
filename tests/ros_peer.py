"""A stand-alone rclpy process for the multi-process DDS tests: `talk` or `listen`.

python tests/ros_peer.py talk  TOPIC
python tests/ros_peer.py listen TOPIC COUNT   # prints one JSON line per message, then exits
"""

import json
import sys

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def talk(topic: str) -> None:
    node = rclpy.create_node("farm_test_talker")
    pub = node.create_publisher(JointState, topic, RELIABLE)
    count = 0

    def tick() -> None:
        nonlocal count
        msg = JointState(name=JOINTS, position=[0.1 * count + j for j in range(7)])
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = "base_link"
        pub.publish(msg)
        count += 1

    node.create_timer(0.05, tick)
    rclpy.spin(node)


def listen(topic: str, wanted: int) -> None:
    node = rclpy.create_node("farm_test_listener")
    got: list[dict] = []

    def on_msg(msg: JointState) -> None:
        got.append({"name": list(msg.name), "position": list(msg.position)})
        print(json.dumps({"frame_id": msg.header.frame_id, **got[-1]}), flush=True)

    node.create_subscription(JointState, topic, on_msg, RELIABLE)
    while rclpy.ok() and len(got) < wanted:
        rclpy.spin_once(node, timeout_sec=0.1)


if __name__ == "__main__":
    rclpy.init()
    try:
        if sys.argv[1] == "talk":
            talk(sys.argv[2])
        else:
            listen(sys.argv[2], int(sys.argv[3]))
    except KeyboardInterrupt:
        pass
    finally:
        rclpy.try_shutdown()
