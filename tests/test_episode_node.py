"""The robot's episode manager over DDS: no episode state while paused, a mark pauses the arm."""

from __future__ import annotations

import time

import pytest
from graph_harness import Graph, wait_for

pytestmark = pytest.mark.ros


def test_episode_states_flow_only_while_running_and_a_mark_holds_the_arm():
    from geometry_msgs.msg import PoseArray
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool, String
    from std_srvs.srv import Trigger

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, ns_to_stamp, unpack_vector
    from farm_bringup.nodes.episode_node import EpisodeNode

    graph = Graph([(EpisodeNode, {"time_limit": 50, "goal": [0.5, 0.1, 0.02]})])
    peer = Node("episode_peer", context=graph.context)
    states, holds, events = [], [], []
    from diagnostic_msgs.msg import DiagnosticArray

    peer_events = events
    peer.create_subscription(JointState, rc.EPISODE_STATE, states.append, QOS[rc.SENSOR])
    peer.create_subscription(Bool, rc.EPISODE_HOLD, lambda m: holds.append(m.data), QOS[rc.LATCHED])
    peer.create_subscription(DiagnosticArray, rc.EPISODE_EVENTS, peer_events.append,
                             QOS[rc.RELIABLE])  # fmt: skip
    frames = peer.create_publisher(PoseArray, rc.OBJECT_POSES, QOS[rc.RELIABLE])
    marks = peer.create_publisher(String, rc.OPERATOR_MARK, QOS[rc.RELIABLE])
    resume = peer.create_client(Trigger, rc.EPISODE_RESUME)
    graph.add(peer)
    k = [0]

    def send(n):
        for _ in range(n):
            k[0] += 1
            msg = PoseArray()
            msg.header.stamp = ns_to_stamp(k[0] * 33_333_333)
            frames.publish(msg)
            time.sleep(0.02)

    try:
        assert wait_for(lambda: holds and holds[-1] is True, 10)  # paused until the scene is ready
        assert wait_for(lambda: frames.get_subscription_count() > 0, 10)
        send(5)
        assert not states
        assert resume.wait_for_service(5)
        done = resume.call_async(Trigger.Request())
        assert wait_for(done.done, 10) and done.result().success
        assert wait_for(lambda: holds[-1] is False, 5)
        send(10)
        assert wait_for(lambda: len(states) >= 8, 10)
        last = unpack_vector(states[-1], rc.EPISODE_LABELS)
        assert last[0] == 0 and last[2:].tolist() == pytest.approx([0.5, 0.1, 0.02])
        marks.publish(String(data="intervention"))
        assert wait_for(lambda: holds[-1] is True, 5)  # the arbiter holds until resumed
        assert wait_for(lambda: events, 5)  # the twin's event: the recorder closes the bag
        st = events[-1].status[0]
        kv = {k.key: k.value for k in st.values}
        assert (
            st.message == "ir_failure" and kv["reason"] == "intervention" and kv["episode"] == "0"
        )
        n = len(states)
        send(5)
        time.sleep(0.3)
        assert len(states) == n
    finally:
        graph.close()
