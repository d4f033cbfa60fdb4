"""``farm-operator``: the operator's keyboard in a terminal — drive the arm, mark labels.

    i / k   +x / -x      j / l   +y / -y      u / o   +z / -z      space   gripper open/close
    F       mark IR failure      S   mark success      I   mark intervention
    R       resume (the scene is ready)      P   pause      q   quit

Movement keys publish a hand velocity (``geometry_msgs/Twist`` on ``/farm/teleop/twist``) that
the policy node turns into the action when it runs with ``action_source:=teleop`` (the real
YAML's ``demos`` overrides); a key counts as held for ``KEY_HOLD_S`` (terminal key repeat), and
the policy node stops the arm when the velocity stops arriving. Marks go out on
``/farm/operator/mark`` (std_msgs/String), which the trainer (the next transition's label) and
the robot's episode manager (the episode ends and pauses) both read; ``R`` resumes the next
episode once the scene is restored (``/farm/episode/resume``).
"""

from __future__ import annotations

import select
import sys
import termios
import time
import tty
from dataclasses import dataclass, field

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from rclpy.node import Node
from std_msgs.msg import Float32, String
from std_srvs.srv import Trigger

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import QOS

KEY_HOLD_S = 0.25
RATE_HZ = 20.0
SPEED = 0.05  # m/s per held key
MOVES = {"i": (1, 0, 0), "k": (-1, 0, 0), "j": (0, 1, 0), "l": (0, -1, 0),
         "u": (0, 0, 1), "o": (0, 0, -1)}  # fmt: skip
MARK_KEYS = {"F": "ir_failure", "S": "success", "I": "intervention"}
FLOW_KEYS = {"R": "resume", "P": "pause"}


@dataclass
class KeyState:
    """Which movement keys are held (pressed within ``KEY_HOLD_S``) and the gripper."""

    pressed: dict[str, float] = field(default_factory=dict)
    gripper: float = -1.0

    def press(self, key: str, now: float) -> str | None:
        """Record a key; returns the mark it asks for, ``"quit"``, or None."""
        if key in MOVES:
            self.pressed[key] = now
        elif key == " ":
            self.gripper = -self.gripper
        elif key in MARK_KEYS:
            return MARK_KEYS[key]
        elif key in FLOW_KEYS:
            return FLOW_KEYS[key]
        elif key in ("q", "\x03"):
            return "quit"
        return None

    def velocity(self, now: float, speed: float = SPEED) -> np.ndarray:
        v = np.zeros(3)
        for key, t in self.pressed.items():
            if now - t <= KEY_HOLD_S:
                v += MOVES[key]
        return speed * v


class Operator(Node):
    def __init__(self) -> None:
        super().__init__("farm_operator")
        self.pub_twist = self.create_publisher(Twist, rc.TELEOP_TWIST, QOS[rc.RELIABLE])
        self.pub_gripper = self.create_publisher(Float32, rc.TELEOP_GRIPPER, QOS[rc.RELIABLE])
        self.pub_mark = self.create_publisher(String, rc.OPERATOR_MARK, QOS[rc.RELIABLE])
        self.flow = {"resume": self.create_client(Trigger, rc.EPISODE_RESUME),
                     "pause": self.create_client(Trigger, rc.EPISODE_PAUSE)}  # fmt: skip

    def send(self, keys: KeyState, now: float) -> None:
        v = keys.velocity(now)
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.linear.z = (float(x) for x in v)
        self.pub_twist.publish(msg)
        self.pub_gripper.publish(Float32(data=float(keys.gripper)))

    def mark(self, mark: str) -> str:
        """A label mark (topic) or an episode-flow request (service)."""
        if mark not in self.flow:
            self.pub_mark.publish(String(data=mark))
            return f"marked {mark}"
        client = self.flow[mark]
        if not client.wait_for_service(timeout_sec=1.0):
            return f"{mark}: no episode manager (episode_node) is running"
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(self, future, timeout_sec=2.0)
        res = future.result()
        return f"{mark}: {res.message}" if res is not None else f"{mark}: no answer"


def main(args: list[str] | None = None) -> int:
    if not sys.stdin.isatty():
        print("farm-operator needs a terminal (keys are read one at a time)", file=sys.stderr)
        return 2
    rclpy.init(args=args)
    node, keys = Operator(), KeyState()
    print(__doc__.split("\n\n")[1], flush=True)
    old = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin.fileno())
        while rclpy.ok():
            ready, _, _ = select.select([sys.stdin], [], [], 1.0 / RATE_HZ)
            now = time.monotonic()
            if ready:
                what = keys.press(sys.stdin.read(1), now)
                if what == "quit":
                    break
                if what is not None:
                    print(node.mark(what), flush=True)
            node.send(keys, now)
            rclpy.spin_once(node, timeout_sec=0.0)
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, old)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
