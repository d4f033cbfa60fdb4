"""sim_node in its own process over DDS: lockstep stepping by stamped commands, sim time,
ground truth, QoS, bad commands; realtime mode's wall-clock rate (loose bounds only)."""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState

import failurebench_sim
from failurebench_sim import ros_contract as rc
from failurebench_sim.command import action_to_target
from failurebench_sim.nodes.ros_io import QOS, pack_vector, stamp_ns
from failurebench_sim.twin import SimConfig, Twin

pytestmark = pytest.mark.ros

SEED, TIME_LIMIT, RATE_HZ = 11, 25, 30.0
PERIOD_NS = round(1e9 / RATE_HZ)


def _start_node(*params: str) -> subprocess.Popen:
    env = dict(os.environ)
    src = str(Path(failurebench_sim.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "failurebench_sim.nodes.sim_node", "--ros-args"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def _action(k: int) -> np.ndarray:
    """The peer's deterministic action for frame k (the reference twin replays it)."""
    return np.random.default_rng(1000 + k).uniform(-1, 1, 4)


class Peer:
    """Stands in for the arbiter: answers each new EE pose with a target + gripper command."""

    def __init__(self, name: str):
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node(name, context=self.ctx)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.answering = True
        self.poses: dict[int, PoseStamped] = {}
        self.pose_count = 0
        self.answered: list[int] = []
        self.clock: list[int] = []
        self.objects: dict[int, PoseArray] = {}
        self.gt_objects: dict[int, PoseArray] = {}
        self.steps: dict[int, JointState] = {}
        self.events: list[tuple[int, str, dict]] = []
        n = self.node
        self.pub_target = n.create_publisher(PoseStamped, rc.TARGET_POSE, QOS[rc.RELIABLE])
        self.pub_gripper = n.create_publisher(JointState, rc.GRIPPER_COMMAND, QOS[rc.RELIABLE])
        n.create_subscription(PoseStamped, rc.EE_POSE, self._on_pose, QOS[rc.SENSOR])
        n.create_subscription(Clock, rc.CLOCK, lambda m: self.clock.append(stamp_ns(m.clock)), 10)
        keep = self._keep
        n.create_subscription(PoseArray, rc.TWIN_OBJECT_POSES, keep(self.objects), QOS[rc.RELIABLE])
        n.create_subscription(PoseArray, rc.OBJECT_POSES, keep(self.gt_objects), QOS[rc.RELIABLE])
        n.create_subscription(JointState, rc.TWIN_STEP, keep(self.steps), QOS[rc.RELIABLE])
        n.create_subscription(DiagnosticArray, rc.EPISODE_EVENTS, self._on_event, QOS[rc.RELIABLE])

    @staticmethod
    def _keep(store: dict):
        return lambda m: store.setdefault(stamp_ns(m.header.stamp), m)

    def _on_event(self, msg: DiagnosticArray) -> None:
        s = msg.status[0]
        self.events.append(
            (stamp_ns(msg.header.stamp), s.message, {v.key: v.value for v in s.values})
        )

    def _on_pose(self, msg: PoseStamped) -> None:
        self.pose_count += 1
        t = stamp_ns(msg.header.stamp)
        self.poses[t] = msg
        if self.answering and t not in self.answered:
            self.answer(t)

    def latest(self) -> int:
        return max(self.poses)

    def command(self, t: int, action: np.ndarray) -> tuple[PoseStamped, JointState]:
        p = self.poses[t].pose.position
        target, g = action_to_target([p.x, p.y, p.z], action)
        msg = PoseStamped()
        msg.header.stamp = self.poses[t].header.stamp
        msg.header.frame_id = rc.BASE_FRAME
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = target
        return msg, pack_vector(rc.GRIPPER_COMMAND_LABELS, [g], msg.header.stamp)

    def answer(self, t: int) -> None:
        target, gripper = self.command(t, _action(len(self.answered)))
        self.answered.append(t)
        self.pub_target.publish(target)
        self.pub_gripper.publish(gripper)

    def spin_until(self, cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            self.executor.spin_once(timeout_sec=0.02)
        return cond()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture(scope="class")
def lockstep():
    proc = _start_node(
        "clock_mode:=lockstep",
        "observation_source:=ground_truth",
        f"seed:={SEED}",
        f"time_limit:={TIME_LIMIT}",
        f"control_rate_hz:={RATE_HZ}",
        "lockstep_resend_s:=0.2",
    )
    peer = Peer("twin_test_peer")
    try:
        assert peer.spin_until(lambda: len(peer.answered) >= 40, 40.0), _stop(proc)
        peer.answering = False
        yield peer, proc
    finally:
        peer.close()
        _stop(proc)


def _replay(peer: Peer) -> tuple[Twin, list]:
    """An in-process twin stepped with the peer's commands; the frame of each answered stamp."""
    twin = Twin(SimConfig(seed=SEED, time_limit=TIME_LIMIT, control_rate_hz=RATE_HZ))
    frames = [twin.reset()]
    for k in range(len(peer.answered)):
        frames.append(twin.step(*action_to_target(frames[-1].hand_pos, _action(k))))
    return twin, frames


class TestLockstep:
    """One lockstep ground-truth node and a peer answering its first 40 frames."""

    def test_lockstep_clock_and_frames_advance_one_period_per_command(self, lockstep):
        peer, _ = lockstep
        n = len(peer.answered)
        peer.spin_until(lambda: len(peer.poses) > n and len(peer.steps) >= n, 5.0)
        stamps = sorted(peer.poses)
        assert stamps == [k * PERIOD_NS for k in range(len(stamps))]  # no gaps, one period each
        assert len(stamps) == len(peer.answered) + 1  # one new frame per answered frame
        clock = sorted(set(peer.clock))
        assert clock == stamps and peer.clock == sorted(peer.clock)  # /clock never goes back
        assert sorted(peer.steps) == stamps[1:]  # one step outcome per transition
        kinds = [(k, v["episode"], v["step"]) for _, k, v in peer.events]
        assert ("timeout", "0", str(TIME_LIMIT)) in kinds and ("reset", "1", "0") in kinds

    def test_lockstep_ground_truth_matches_an_in_process_twin(self, lockstep):
        peer, _ = lockstep
        _, frames = _replay(peer)
        for t, frame in zip(peer.answered, frames, strict=False):
            assert frame.sim_time_ns == t
            published = peer.objects[t]
            assert peer.gt_objects[t].poses == published.poses
            assert published.header.frame_id == rc.BASE_FRAME
            assert len(published.poses) == len(frame.objects) == 1
            for pose, ob in zip(published.poses, frame.objects, strict=True):
                p, q = pose.position, pose.orientation
                assert (p.x, p.y, p.z) == ob.position
                assert (q.x, q.y, q.z, q.w) == ob.quaternion_xyzw
            p = peer.poses[t].pose.position
            assert (p.x, p.y, p.z) == tuple(frame.hand_pos)
            if frame.outcome is not None:
                step = peer.steps[t]
                vector = dict(zip(step.name, step.position, strict=True))
                assert vector == dict(zip(rc.STEP_LABELS, frame.outcome.vector(), strict=True))

    def test_ee_pose_is_best_effort_and_commands_reliable(self, lockstep):
        peer, _ = lockstep
        (info,) = peer.node.get_publishers_info_by_topic(rc.EE_POSE)
        assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        subs = [
            i
            for i in peer.node.get_subscriptions_info_by_topic(rc.TARGET_POSE)
            if i.node_name == "sim_node"
        ]
        assert subs and subs[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE

    def test_lockstep_waits_for_both_valid_commands(self, lockstep):
        peer, proc = lockstep
        t = peer.latest()
        seen = peer.pose_count
        assert peer.spin_until(lambda: peer.pose_count >= seen + 2, 3.0)  # re-sent, same stamp
        target, gripper = peer.command(t, np.array([1.0, 0.0, 0.0, 0.5]))
        nan_target, wrong_frame = peer.command(t, np.zeros(4))[0], peer.command(t, np.zeros(4))[0]
        nan_target.pose.position.x = math.nan
        wrong_frame.header.frame_id = "world"
        wrong_labels = pack_vector(["grip"], [1.0], target.header.stamp)
        stale = pack_vector(
            rc.GRIPPER_COMMAND_LABELS, [1.0], peer.poses[t - PERIOD_NS].header.stamp
        )
        for msg in (nan_target, wrong_frame):
            peer.pub_target.publish(msg)
        for msg in (wrong_labels, stale):
            peer.pub_gripper.publish(msg)
        peer.pub_target.publish(target)  # a target alone does not step
        peer.spin_until(lambda: False, 0.6)
        assert peer.latest() == t and proc.poll() is None
        peer.pub_gripper.publish(gripper)
        assert peer.spin_until(lambda: peer.latest() == t + PERIOD_NS, 5.0)
        twin, frames = _replay(peer)
        assert frames[-1].sim_time_ns == t
        p = peer.poses[t + PERIOD_NS].pose.position
        expected = twin.step(*action_to_target(frames[-1].hand_pos, [1.0, 0.0, 0.0, 0.5]))
        assert (p.x, p.y, p.z) == tuple(expected.hand_pos)  # the valid command ran, not the NaN
        assert proc.poll() is None


def test_realtime_mode_steps_at_about_the_control_rate():
    proc = _start_node("clock_mode:=realtime", "control_rate_hz:=20.0", f"seed:={SEED}")
    peer = Peer("twin_test_realtime_peer")
    peer.answering = False
    try:
        assert peer.spin_until(lambda: len(peer.clock) >= 3, 30.0), _stop(proc)
        n0, t0 = len(peer.clock), time.monotonic()
        peer.spin_until(lambda: False, 1.5)
        rate = (len(peer.clock) - n0) / (time.monotonic() - t0)
        assert 5.0 < rate < 40.0  # 20 Hz wanted; loose bounds for a loaded 2-core box
        diffs = np.diff(peer.clock)
        assert (diffs == round(1e9 / 20.0)).all()
        first, last = (peer.poses[min(peer.poses)], peer.poses[max(peer.poses)])
        moved = abs(last.pose.position.x - first.pose.position.x)
        assert moved < 0.01  # no command: the twin holds still
    finally:
        peer.close()
        _stop(proc)


def test_camera_mode_publishes_aligned_rgbd_with_camera_info():
    proc = _start_node(
        "observation_source:=camera", "camera_width:=64", "camera_height:=48", "seed:=3"
    )
    peer = Peer("twin_test_camera_peer")
    peer.answering = False
    got: dict[str, object] = {}
    n = peer.node
    for topic, kind, qos in (
        (rc.COLOR_IMAGE, Image, rc.SENSOR),
        (rc.DEPTH_IMAGE, Image, rc.SENSOR),
        (rc.COLOR_INFO, CameraInfo, rc.LATCHED),
        (rc.DEPTH_INFO, CameraInfo, rc.LATCHED),
    ):
        n.create_subscription(kind, topic, lambda m, t=topic: got.setdefault(t, m), QOS[qos])
    try:
        assert peer.spin_until(lambda: len(got) == 4, 30.0), _stop(proc)
        color, depth = got[rc.COLOR_IMAGE], got[rc.DEPTH_IMAGE]
        assert (color.encoding, color.height, color.width, color.step) == ("rgb8", 48, 64, 192)
        assert (depth.encoding, depth.height, depth.width, depth.step) == ("16UC1", 48, 64, 128)
        mm = np.frombuffer(bytes(depth.data), dtype=np.uint16)
        assert 300 < np.median(mm[mm > 0]) < 3000  # millimetres: a table about a metre away
        info = got[rc.COLOR_INFO]
        assert info.header.frame_id == color.header.frame_id == rc.CAMERA_OPTICAL_FRAME
        assert info.header.stamp == color.header.stamp == depth.header.stamp
        twin = Twin(SimConfig(observation_source="camera", camera_width=64, camera_height=48))
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), twin.reset().camera.k)
        assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
        assert got[rc.DEPTH_INFO].k.tolist() == info.k.tolist()
        (pub,) = n.get_publishers_info_by_topic(rc.COLOR_IMAGE)
        assert pub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    finally:
        peer.close()
        _stop(proc)
