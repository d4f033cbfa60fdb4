"""Real ROS 2 (rclpy + Fast DDS) between two OS processes, confined to loopback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PEER = Path(__file__).with_name("ros_peer.py")
pytestmark = pytest.mark.ros


def test_environment_keeps_dds_on_this_machine():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 0 <= int(os.environ["ROS_DOMAIN_ID"]) <= 101


def test_two_processes_exchange_joint_states_over_dds():
    topic = "/farm_test/joint_states"
    talker = subprocess.Popen([sys.executable, str(PEER), "talk", topic])
    try:
        out = subprocess.run(
            [sys.executable, str(PEER), "listen", topic, "3"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        talker.terminate()
        talker.wait(timeout=10)
    messages = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(messages) == 3
    for msg in messages:
        assert msg["frame_id"] == "base_link"
        assert msg["name"] == [f"fr3_joint{i}" for i in range(1, 8)]
        base = msg["position"][0]
        assert msg["position"] == pytest.approx([base + j for j in range(7)])
