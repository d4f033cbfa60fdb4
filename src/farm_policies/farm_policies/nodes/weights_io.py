"""Live task-policy weights on the graph: the subscription the policy and safety nodes share."""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import UInt8MultiArray

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import QOS
from farm_policies.live import LivePolicy, WeightUpdateError
from farm_policies.weights import decode_weights, encode_weights


def weights_message(state, version: int) -> UInt8MultiArray:
    """A push of ``state`` (an actor's state_dict) as ``version``."""
    return UInt8MultiArray(data=encode_weights(state, version))


def subscribe_weights(node: Node, live: LivePolicy) -> None:
    """Swap ``live``'s weights on every valid push (between callbacks, so between frames); keep
    the old ones on a bad push and log why. Counts go to ``node.weight_updates`` / ``.rejected``."""
    node.weight_updates = node.weight_rejects = 0

    def on_weights(msg: UInt8MultiArray) -> None:
        try:
            live.update(*decode_weights(bytes(msg.data)))
        except WeightUpdateError as e:
            node.weight_rejects += 1
            node.get_logger().warning(f"weight push rejected, keeping v{live.version}: {e}")
            return
        node.weight_updates += 1
        node.get_logger().info(f"task policy weights v{live.version}")

    node.create_subscription(UInt8MultiArray, rc.POLICY_WEIGHTS, on_weights, QOS[rc.LATCHED])
