"""Shared twin renders (rendering costs ~0.2 s a frame: each task's frames are made once)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from farm_perception import config as pc
from farm_perception.twin_frames import render_frames

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "perception.yaml"
CALIBRATION = ROOT / "config" / "calibration" / "twin_camera.yaml"
SEEDS = (0, 1)  # not the fitting seeds (10, 11, 12)
STEPS = (0, 35, 60)  # reset; gripper over / caging the object; dragging it


@functools.cache
def twin_frames(task: str) -> tuple:
    return tuple(render_frames(pc.load(CONFIG, task), SEEDS, STEPS))


@pytest.fixture(scope="session")
def twin():
    """``twin(task)`` -> the task's rendered frames (cached for the session)."""
    return twin_frames


@pytest.fixture(scope="session")
def paths():
    return {"config": CONFIG, "calibration": CALIBRATION}
