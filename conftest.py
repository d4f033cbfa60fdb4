"""Workspace-wide pytest setup: keep ROS 2 on loopback and give each run its own domain."""

import os
from pathlib import Path


def _load_env_file(path: Path) -> None:
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            os.environ[key.strip()] = value.strip()


_load_env_file(Path(__file__).parent / "config" / "ros_localhost.env")
# A domain of our own per test run (1..100) so parallel runs never cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("OMP_NUM_THREADS", "1")
