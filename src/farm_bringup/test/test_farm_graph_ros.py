"""farm-graph over DDS: the real sim_node as a child process (and composed), /clock seen by a
subscriber, the duration honoured, a crashing node turned into a non-zero exit."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rosgraph_msgs.msg import Clock

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import stamp_ns

pytestmark = pytest.mark.ros

SIM_YAML = Path(__file__).resolve().parents[3] / "config" / "sim.yaml"
SIM_ONLY = [
    "--nodes", "sim_node", "-p", "sim_node.clock_mode:=realtime",
    "-p", "sim_node.observation_source:=ground_truth",
]  # fmt: skip


def _farm_graph(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "farm_bringup.cli", "run", "--config", str(SIM_YAML), *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _watch_clock(proc: subprocess.Popen, timeout: float, enough: int = 0) -> list[int]:
    """Every /clock stamp until ``proc`` exits, ``timeout`` passes or ``enough`` arrived."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("farm_graph_test_clock", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    stamps: list[int] = []
    node.create_subscription(Clock, rc.CLOCK, lambda m: stamps.append(stamp_ns(m.clock)), 10)
    end = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
            if enough and len(stamps) >= enough:
                break
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return stamps


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


@pytest.mark.parametrize("mode", ["processes", "composed"])
def test_sim_node_runs_for_the_duration_and_the_clock_advances(mode):
    duration = (
        10.0 if mode == "processes" else 3.0
    )  # a loaded 2-core box starts a process in seconds
    proc = _farm_graph("--mode", mode, "--duration", str(duration), *SIM_ONLY)
    stamps = _watch_clock(proc, timeout=duration + 40)
    code, out = _finish(proc)
    assert code == 0, out
    assert len(stamps) >= 3 and stamps[-1] > stamps[0], out  # sim time moves at 30 Hz
    assert all(b >= a for a, b in zip(stamps, stamps[1:], strict=False)), "clock went back"


def test_a_node_that_dies_makes_the_run_fail():
    proc = _farm_graph("--duration", "60", *SIM_ONLY, "-p", "sim_node.clock_mode:=bogus")
    start = time.monotonic()
    code, out = _finish(proc)
    assert code == 1, out
    assert "sim_node exited with status" in out and time.monotonic() - start < 45


def test_sigterm_stops_the_children_and_exits_zero():
    proc = _farm_graph(*SIM_ONLY)  # no duration: runs until signalled
    assert len(_watch_clock(proc, timeout=40, enough=3)) >= 3
    proc.terminate()
    code, out = _finish(proc)
    assert code == 0, out
    assert "started sim_node" in out and "did not exit" not in out


def test_the_yaml_graph_flows_from_observation_to_command_as_processes():
    """config/sim.yaml as the launch file reads it: sim -> policy -> safety -> arbiter, each an OS
    process; every frame's observation gets a proposed action, a score, a decision and a target
    stamped with the same frame."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float32

    from failurebench_sim.nodes.ros_io import QOS

    # a domain of its own: a twin left over from another test must not feed this graph frames
    domain = (int(os.environ.get("ROS_DOMAIN_ID", "0")) + 37) % 100 + 1
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain)}
    proc = _farm_graph("--mode", "processes", "--duration", "60", "--clock-mode", "lockstep",
                       "--observation-source", "ground_truth", env=env)  # fmt: skip
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("farm_graph_flow_probe", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    seen: dict[str, dict[int, object]] = {k: {} for k in ("obs", "proposed", "assess", "decision",
                                                          "target")}  # fmt: skip
    rel = QOS[rc.RELIABLE]
    for key, msg_type, topic in (("obs", JointState, rc.OBSERVATION),
                                 ("proposed", JointState, rc.PROPOSED_ACTION),
                                 ("assess", JointState, rc.SAFETY_ASSESSMENT),
                                 ("decision", JointState, rc.DECISION),
                                 ("target", PoseStamped, rc.TARGET_POSE)):  # fmt: skip
        node.create_subscription(
            msg_type, topic, lambda m, k=key: seen[k].setdefault(stamp_ns(m.header.stamp), m), rel
        )
    scores: list[float] = []
    node.create_subscription(Float32, rc.SAFETY_SCORE, lambda m: scores.append(m.data), rel)
    end = time.monotonic() + 90
    try:
        # the probe's readers match the five topics one by one: count frames seen on all of them
        while proc.poll() is None and time.monotonic() < end and len(_common(seen)) < 30:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        proc.send_signal(2)
    code, out = _finish(proc)
    common = _common(seen)
    assert len(common) >= 30, out[-3000:]
    assert code == 0, out[-3000:]
    assert scores and all(s >= 0 for s in scores)
    for stamp in sorted(common):
        t = seen["target"][stamp]
        assert t.header.frame_id == rc.BASE_FRAME
        obs = list(seen["obs"][stamp].position)
        d = dict(zip(seen["decision"][stamp].name, seen["decision"][stamp].position, strict=True))
        executed = [d[f"executed_{a}"] for a in ("dx", "dy", "dz")]
        p = t.pose.position
        assert [p.x, p.y, p.z] == pytest.approx(
            [h + 0.01 * max(-1, min(1, e)) for h, e in zip(obs[:3], executed, strict=True)],
            abs=1e-9,
        )


def _common(seen: dict[str, dict[int, object]]) -> set[int]:
    """Stamps seen on every probed topic."""
    return set.intersection(*(set(v) for v in seen.values()))
