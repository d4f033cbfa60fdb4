"""The arbiter over DDS: recovery exactly when C_H > eps_safe, never a score of another frame."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from graph_harness import CHECKPOINTS, Graph, checkpoint_params

pytestmark = pytest.mark.ros
TASK = "BoundedPush-v0"
EPS = 0.2
PERIOD = 33_333_333  # frame stamps 30 Hz apart (the shield's speed limit reads them)

if not (CHECKPOINTS / TASK / "recovery.safetensors").exists():
    pytest.skip("shipped checkpoints missing", allow_module_level=True)


def test_arbiter_pairs_by_stamp_and_switches_exactly_above_eps():
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, ns_to_stamp, pack_vector, unpack_vector
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    graph = Graph([(ArbiterNode, {**checkpoint_params(TASK)["arbiter_node"], "eps_safe": EPS})])
    peer = Node("arbiter_peer", context=graph.context)
    rel = QOS[rc.RELIABLE]
    pubs = {t: peer.create_publisher(JointState, t, rel)
            for t in (rc.OBSERVATION, rc.PROPOSED_ACTION, rc.SAFETY_ASSESSMENT)}  # fmt: skip
    decisions, targets, done = {}, {}, threading.Event()
    n = 12

    def on_decision(msg):
        decisions[msg.header.stamp.nanosec // PERIOD] = unpack_vector(msg, rc.DECISION_LABELS)
        if len(decisions) == n:
            done.set()

    peer.create_subscription(JointState, rc.DECISION, on_decision, rel)
    peer.create_subscription(PoseStamped, rc.TARGET_POSE,
                             lambda m: targets.setdefault(m.header.stamp.nanosec // PERIOD, m),
                             rel)  # fmt: skip
    graph.add(peer)
    import time

    deadline = time.time() + 10
    arbiter = graph.nodes[0]
    while time.time() < deadline and (
        any(p.get_subscription_count() == 0 for p in pubs.values())
        or arbiter.pub_decision.get_subscription_count() == 0
        or arbiter.pub_target.get_subscription_count() == 0
    ):
        time.sleep(0.05)
    time.sleep(1.0)  # the readers' side of discovery completes a little after the writers'
    rng = np.random.default_rng(0)
    obs = {k: np.r_[[0.0, 0.6, 0.1], rng.uniform(-0.1, 0.1, 36)] for k in range(1, n + 1)}
    scores = {k: (0.05 if k % 3 else 0.5) if k != 7 else EPS for k in obs}  # EPS itself: no switch
    proposed = {k: np.array([k / 100, 0.0, 0.0, 0.5]) for k in obs}

    # the proposed action lags one frame: frame k+1's observation and score arrive before
    # frame k's action, so pairing by arrival would mix frames
    def send(topic, labels, values, k):
        pubs[topic].publish(pack_vector(labels, values, ns_to_stamp(k * PERIOD)))

    for k in range(1, n + 2):
        if k <= n:
            send(rc.OBSERVATION, rc.OBS_LABELS, obs[k], k)
            send(rc.SAFETY_ASSESSMENT, rc.ASSESSMENT_LABELS, [scores[k], EPS, 3, 0.1], k)
        if k > 1:
            send(rc.PROPOSED_ACTION, rc.PROPOSED_LABELS, [*proposed[k - 1], 3], k - 1)
        time.sleep(0.01)  # one frame at a time: a burst would overrun the depth-10 history
    assert done.wait(timeout=20), f"decisions for {sorted(decisions)}"
    graph.close()
    assert sorted(decisions) == list(range(1, n + 1))
    col = {name: i for i, name in enumerate(rc.DECISION_LABELS)}
    for k, d in decisions.items():
        assert d[col["proposed_dx"]] == pytest.approx(k / 100)  # its own frame's action
        assert d[col["score"]] == pytest.approx(scores[k])  # and its own frame's score
        assert bool(d[col["replaced"]]) == (scores[k] > EPS)
        executed = d[[col[f"executed_{a}"] for a in rc.ACTION_LABELS]]
        if scores[k] <= EPS:
            np.testing.assert_allclose(executed, proposed[k], atol=1e-6)
        else:
            assert not np.allclose(executed, proposed[k])
        assert d[col["policy_version"]] == 3
        t = targets[k].pose.position
        np.testing.assert_allclose([t.x, t.y, t.z], obs[k][:3] + 0.01 * executed[:3], atol=1e-6)


def test_watchdog_holds_at_the_measured_pose_and_resumes_and_the_shield_clips():
    import time

    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, ns_to_stamp, pack_vector, pose_msg
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    params = {**checkpoint_params(TASK)["arbiter_node"], "eps_safe": 1e6, "command_rate_hz": 30.0,
              "watchdog_periods": 3.0}  # fmt: skip
    graph = Graph([(ArbiterNode, params)])
    (arbiter,) = graph.nodes
    peer = Node("watchdog_peer", context=graph.context)
    rel = QOS[rc.RELIABLE]
    pubs = {t: peer.create_publisher(JointState, t, rel)
            for t in (rc.OBSERVATION, rc.PROPOSED_ACTION, rc.SAFETY_ASSESSMENT)}  # fmt: skip
    pose_pub = peer.create_publisher(PoseStamped, rc.EE_POSE, QOS[rc.SENSOR])
    targets, levels = [], []
    peer.create_subscription(PoseStamped, rc.TARGET_POSE, lambda m: targets.append(
        (time.monotonic(), np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z]))),
        rel)  # fmt: skip
    peer.create_subscription(DiagnosticArray, rc.DIAGNOSTICS, lambda m: levels.extend(
        s.level for s in m.status if s.name == "farm/arbiter"), 10)  # fmt: skip
    graph.add(peer)
    hand = np.array([0.05, 0.6, 0.15])
    deadline = time.time() + 10
    while time.time() < deadline and any(p.get_subscription_count() == 0 for p in pubs.values()):
        time.sleep(0.05)
    time.sleep(0.5)

    def frame(k: int, action=(0.5, 0.0, 0.0, 0.0), with_obs: bool = True) -> None:
        stamp = ns_to_stamp(k * PERIOD)
        pose = PoseStamped(pose=pose_msg(hand, (1.0, 0.0, 0.0, 0.0)))
        pose.header.stamp, pose.header.frame_id = stamp, rc.BASE_FRAME
        pose_pub.publish(pose)
        if with_obs:
            obs = np.r_[hand, np.zeros(36)]
            pubs[rc.OBSERVATION].publish(pack_vector(rc.OBS_LABELS, obs, stamp))
            pubs[rc.PROPOSED_ACTION].publish(pack_vector(rc.PROPOSED_LABELS, [*action, 0], stamp))
            pubs[rc.SAFETY_ASSESSMENT].publish(
                pack_vector(rc.ASSESSMENT_LABELS, [0.0, 1e6, 0, 0.1], stamp)
            )
        time.sleep(1 / 30)

    try:
        for k in range(1, 31):
            frame(k)
        moving = targets[-1][1]
        np.testing.assert_allclose(moving, hand + [0.005, 0, 0], atol=1e-9)  # the decision's
        t_stop = time.monotonic()
        for k in range(31, 61):  # the pose keeps coming, the decision inputs stop
            frame(k, with_obs=False)
        held = [(t, x) for t, x in targets if t > t_stop and np.allclose(x, hand)]
        assert held, "no hold at the measured pose"
        assert held[0][0] - t_stop < 1.0  # limit 3 periods (100 ms) + one tick; slack for CI
        assert DiagnosticStatus.ERROR in levels
        n_before = len(targets)
        for k in range(61, 76):
            frame(k, action=(1.0, 0.0, 0.0, 0.0))  # fresh inputs: resumes by itself
        np.testing.assert_allclose(targets[-1][1], hand + [0.01, 0, 0], atol=1e-9)
        assert len(targets) > n_before and arbiter.holding == []
        # the shield: a hand (jumping) outside the workspace box gets its target at the box edge
        hand = np.array([0.6, 0.6, 0.15])
        for k in range(76, 80):
            frame(k)
        assert targets[-1][1][0] == pytest.approx(0.5)  # MetaWorld's hand box edge
        assert arbiter.shield.counts["box"] >= 1
    finally:
        peer.destroy_node()
        graph.close()


def test_bad_inputs_hold_and_bad_parameters_are_refused():
    """The arbiter rows of the bad-input catalogue (README): each holds at the hand, never
    moves the arm, never raises; parameters out of range, of the wrong type or read-only are
    refused with a reason and the old value kept."""
    import time

    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from failurebench_sim import ros_contract as rc
    from failurebench_sim.nodes.ros_io import QOS, ns_to_stamp, pack_vector, unpack_vector
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    graph = Graph([(ArbiterNode, {**checkpoint_params(TASK)["arbiter_node"], "eps_safe": 1e6})])
    (arbiter,) = graph.nodes
    peer = Node("bad_input_peer", context=graph.context)
    rel = QOS[rc.RELIABLE]
    pubs = {t: peer.create_publisher(JointState, t, rel)
            for t in (rc.OBSERVATION, rc.PROPOSED_ACTION, rc.SAFETY_ASSESSMENT)}  # fmt: skip
    got = {}
    peer.create_subscription(JointState, rc.DECISION, lambda m: got.setdefault(
        stamp_key(m), ("decision", unpack_vector(m, ("hold", "executed_dx")))), rel)  # fmt: skip
    targets = {}
    peer.create_subscription(PoseStamped, rc.TARGET_POSE, lambda m: targets.setdefault(
        stamp_key(m), m.pose.position.x), rel)  # fmt: skip
    graph.add(peer)

    def stamp_key(m):
        return m.header.stamp.sec * 10**9 + m.header.stamp.nanosec

    deadline = time.time() + 10
    while time.time() < deadline and any(p.get_subscription_count() == 0 for p in pubs.values()):
        time.sleep(0.05)
    time.sleep(0.5)
    hand = [0.05, 0.6, 0.15]
    good_obs = np.r_[hand, np.zeros(36)]

    def send(k, obs=good_obs, action=(1.0, 0, 0, 0), score=0.0, obs_labels=rc.OBS_LABELS):
        stamp = ns_to_stamp(k)
        pubs[rc.OBSERVATION].publish(pack_vector(obs_labels, obs, stamp))
        pubs[rc.PROPOSED_ACTION].publish(pack_vector(rc.PROPOSED_LABELS, [*action, 0], stamp))
        pubs[rc.SAFETY_ASSESSMENT].publish(
            pack_vector(rc.ASSESSMENT_LABELS, [score, 1, 0, 0], stamp)
        )
        time.sleep(0.05)

    T = 10**9
    cases = {  # stamp -> (what, expect a hold)
        1 * T: ("good frame", False),
        2 * T: ("NaN score", True),
        3 * T: ("inf in the observation", True),
        4 * T: ("NaN in the proposed action", True),
        5 * T: ("good frame", False),
    }
    try:
        send(1 * T)
        send(2 * T, score=float("nan"))
        send(3 * T, obs=np.r_[hand, [np.inf], np.zeros(35)])
        send(4 * T, action=(float("nan"), 0, 0, 0))
        send(5 * T)
        send(6 * T, obs=good_obs[:20], obs_labels=rc.OBS_LABELS[:20])  # wrong length: no decision
        assert all(p.get_subscription_count() for p in pubs.values())
        deadline = time.time() + 10
        while time.time() < deadline and len(got) < len(cases):
            time.sleep(0.05)
        for k, (what, hold) in cases.items():
            assert k in got, what
            assert bool(got[k][1][0]) == hold, what
            assert targets[k] == pytest.approx(hand[0] + (0.0 if hold else 0.01)), what
        # parameters: refused with the old value kept
        for name, value in (("eps_safe", -1.0), ("eps_safe", "high"), ("watchdog_periods", 1e9),
                            ("recovery_checkpoint", "/tmp/other.safetensors")):  # fmt: skip
            (res,) = arbiter.set_parameters([Parameter(name, value=value)])
            assert not res.successful and res.reason, (name, value)
        assert arbiter.decider.eps_safe == 1e6
        (res,) = arbiter.set_parameters([Parameter("eps_safe", value=0.25)])
        assert res.successful and arbiter.decider.eps_safe == 0.25  # live
        # a frame stamped far from the node's clock (here: system time) holds once checked
        arbiter.set_parameters([Parameter("max_frame_age_s", value=1.0)])
        send(7 * T)
        now = time.time_ns()
        send(now)
        deadline = time.time() + 10
        while time.time() < deadline and not (7 * T in got and now in got):
            time.sleep(0.05)
        assert bool(got[7 * T][1][0]) and not bool(got[now][1][0])
    finally:
        peer.destroy_node()
        graph.close()


def test_a_robot_reflex_holds_until_the_robot_runs_again():
    from graph_harness import wait_for
    from rclpy.node import Node
    from std_msgs.msg import UInt8

    from failurebench_sim.nodes.ros_io import QOS
    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    params = {**checkpoint_params(TASK)["arbiter_node"], "robot_state_topic": "/test/robot_mode",
              "robot_state_type": "std_msgs/msg/UInt8", "robot_mode_field": "data"}  # fmt: skip
    graph = Graph([(ArbiterNode, params)])
    arbiter = graph.nodes[0]
    peer = Node("robot_mode_peer", context=graph.context)
    pub = peer.create_publisher(UInt8, "/test/robot_mode", QOS["sensor"])
    graph.add(peer)
    obs, proposed = np.zeros(39), np.zeros(4)
    try:
        assert wait_for(lambda: pub.get_subscription_count() > 0, 10)
        pub.publish(UInt8(data=2))  # move
        time.sleep(0.3)
        assert arbiter._hold_reason(obs, proposed, 0.0, arbiter.get_clock().now().to_msg()) == ""
        assert wait_for(lambda: (pub.publish(UInt8(data=4)), arbiter.robot_stopped)[1], 10)
        why = arbiter._hold_reason(obs, proposed, 0.0, arbiter.get_clock().now().to_msg())
        assert "reflex" in why
        assert wait_for(lambda: not (pub.publish(UInt8(data=1)), arbiter.robot_stopped)[1], 10)
    finally:
        graph.close()


def test_a_configured_robot_state_type_that_is_missing_is_a_start_up_error():
    import rclpy
    from graph_harness import fresh_domain
    from rclpy.parameter import Parameter

    from farm_safety_critic.nodes.arbiter_node import ArbiterNode

    params = {**checkpoint_params(TASK)["arbiter_node"], "robot_state_topic": "/x",
              "robot_state_type": "franka_msgs_missing/msg/RobotState"}  # fmt: skip
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    try:
        with pytest.raises(ImportError):
            ArbiterNode(context=context,
                        parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    finally:
        rclpy.try_shutdown(context=context)
