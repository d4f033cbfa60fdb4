"""The Franka's own safety layer as an input: hold while the robot is in a reflex or stopped.

libfranka's robot mode (``franka::RobotMode``, published by franka_ros2's robot state
broadcaster as ``robot_mode``): after a reflex (a collision or a limit) or the user stop the arm
does not follow commands until franka_ros2's error recovery has run, so the arbiter holds,
reports ERROR and waits for the operator (``scripts/franka_recover.sh``: error-recovery action,
hardware component back to active, controllers switched back on).
"""

from __future__ import annotations

import importlib

ROBOT_MODES = {0: "other", 1: "idle", 2: "move", 3: "guiding", 4: "reflex", 5: "user_stopped",
               6: "automatic_error_recovery"}  # fmt: skip
STOPPED = {4, 5, 6}


def stopped_reason(mode: int) -> str:
    """Why the arm must be held in ``mode`` ("" when it may move)."""
    if int(mode) in STOPPED:
        return f"robot mode {ROBOT_MODES[int(mode)]}: run the error recovery (scripts/franka_recover.sh)"
    return ""


def message_class(type_name: str) -> type:
    """``pkg/msg/Type`` -> the Python message class (ImportError naming what is missing)."""
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ImportError(f"a message type is 'pkg/msg/Type', got {type_name!r}")
    module = importlib.import_module(f"{parts[0]}.msg")
    try:
        return getattr(module, parts[2])
    except AttributeError:
        raise ImportError(f"{parts[0]}.msg has no {parts[2]}") from None
