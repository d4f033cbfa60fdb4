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


def test_a_resume_drives_to_the_start_pose_through_the_shield_then_runs():
    from geometry_msgs.msg import PoseStamped
    from graph_harness import checkpoint_params
    from rclpy.node import Node
    from std_msgs.msg import Bool
    from std_srvs.srv import Trigger

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, pose_msg
    from farm_bringup.nodes.episode_node import EpisodeNode
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    start = [0.05, 0.6, 0.2]
    arbiter_params = {**checkpoint_params("BoundedPush-v0")["arbiter_node"],
                      "command_rate_hz": 30.0, "use_sim_time": False}  # fmt: skip
    graph = Graph([(EpisodeNode, {"start_pose": start, "start_tolerance_m": 0.005}),
                   (ArbiterNode, arbiter_params)])  # fmt: skip
    peer = Node("robot_peer", context=graph.context)
    hand = [0.0, 0.6, 0.2]
    targets, holds = [], []
    pose_pub = peer.create_publisher(PoseStamped, rc.EE_POSE, QOS[rc.SENSOR])
    peer.create_subscription(PoseStamped, rc.TARGET_POSE, targets.append, QOS[rc.RELIABLE])
    peer.create_subscription(Bool, rc.EPISODE_HOLD, lambda m: holds.append(m.data), QOS[rc.LATCHED])
    resume = peer.create_client(Trigger, rc.EPISODE_RESUME)
    graph.add(peer)

    def publish_hand():
        msg = PoseStamped()
        msg.header.frame_id = rc.BASE_FRAME
        msg.header.stamp = peer.get_clock().now().to_msg()
        msg.pose = pose_msg(hand, (1.0, 0.0, 0.0, 0.0))
        pose_pub.publish(msg)

    try:
        assert wait_for(lambda: (publish_hand(), holds and holds[-1])[1], 10)
        assert resume.wait_for_service(5)
        assert wait_for(resume.call_async(Trigger.Request()).done, 10)
        # the arm is held at 5 cm from the start: the arbiter steps toward it, 2 cm at most
        n = len(targets)
        assert wait_for(lambda: (publish_hand(), len(targets) > n + 5)[1], 10)
        x = [t.pose.position.x for t in targets[n:]]
        assert max(x) == pytest.approx(0.02, abs=1e-6) and min(x) > 0  # the shield's max step
        assert holds[-1] is True  # not running before the arm is there
        hand[0] = 0.049  # the arm arrived
        assert wait_for(lambda: (publish_hand(), holds[-1] is False)[1], 10)
    finally:
        graph.close()
