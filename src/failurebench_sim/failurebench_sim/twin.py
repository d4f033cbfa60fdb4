"""The MuJoCo twin's core (no rclpy): one FailureBench env stepped by end-effector targets.

``Twin`` owns the env and turns every reset/step into a ``Frame``: what the real drivers would
publish (hand pose, finger positions, camera images) plus the twin-only ground truth (object
poses, goal, reward, cost, episode events). The ROS node (``nodes/sim_node.py``) only packs
frames into messages and commands into ``Twin.step`` calls.

Time: frame ``k`` (counted over all episodes, the first reset is frame 0) is stamped
``k * period_ns`` with ``period_ns = round(1e9 / control_rate_hz)``, so sim time advances
exactly one control period per step. Episodes: a terminated (IR failure) or truncated (timeout)
transition, or a successful one with ``reset_on_success``, ends the episode; the twin resets to
episode ``e`` with seed ``seed + e`` and the frame it returns is that reset frame (the finished
episode's last observation is kept in ``Frame.final_observation``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import numpy.typing as npt

import failurebench_sim  # noqa: F401  (registers the FailureBench env ids)
from failurebench_sim import ros_contract as rc
from failurebench_sim.command import CommandError, target_to_action
from failurebench_sim.core import MAX_EPISODE_STEPS, START_MODES
from failurebench_sim.datasets import resolve_env_id
from failurebench_sim.observation import FRAME_DIM, ObjectPose

CLOCK_MODES = ("realtime", "lockstep")
OBSERVATION_SOURCES = ("camera", "ground_truth")
# Franka's TCP pointing down in fr3_link0 (180 deg about x), x, y, z, w; the twin's hand
# does not rotate (MetaWorld actions are positions), so the EE pose carries this constant.
GRIPPER_DOWN_XYZW = (1.0, 0.0, 0.0, 0.0)
DEPTH_UNIT_M = 0.001  # 16UC1 depth in millimetres, 0 = no depth (as realsense2_camera)


class TwinError(ValueError):
    """An invalid twin configuration or a call the twin's state does not allow."""


@dataclass(frozen=True)
class SimConfig:
    """Everything the twin and its node are configured by (the node's parameters)."""

    task: str = "FailureBench/BoundedPush-v0"
    seed: int = 0
    clock_mode: str = "lockstep"
    observation_source: str = "ground_truth"
    control_rate_hz: float = 30.0
    camera_width: int = 640
    camera_height: int = 480
    time_limit: int = MAX_EPISODE_STEPS
    start: str = "default"
    reset_on_success: bool = False
    max_episodes: int = 0
    target_topic: str = rc.TARGET_POSE
    base_frame: str = rc.BASE_FRAME
    camera_frame: str = rc.CAMERA_OPTICAL_FRAME
    lockstep_resend_s: float = 1.0
    command_timeout_s: float = 0.5
    # fault injection (tests, benchmarks): drop / delay the observation source's messages
    observation_drop: float = 0.0
    observation_delay_s: float = 0.0

    def validate(self) -> SimConfig:
        """``self`` if every choice and number is valid, else ``TwinError``."""
        for name, value, allowed in (
            ("clock_mode", self.clock_mode, CLOCK_MODES),
            ("observation_source", self.observation_source, OBSERVATION_SOURCES),
            ("start", self.start, START_MODES),
        ):
            if value not in allowed:
                raise TwinError(f"{name} must be one of {allowed}, got {value!r}")
        if not (math.isfinite(self.control_rate_hz) and self.control_rate_hz > 0):
            raise TwinError(f"control_rate_hz must be > 0, got {self.control_rate_hz}")
        if min(self.camera_width, self.camera_height, self.time_limit) < 1:
            raise TwinError("camera_width, camera_height and time_limit must be >= 1")
        if self.max_episodes < 0 or self.seed < 0:
            raise TwinError("seed and max_episodes must be >= 0")
        if not 0.0 <= self.observation_drop <= 1.0 or not self.observation_delay_s >= 0.0:
            raise TwinError("observation_drop must be in [0, 1] and observation_delay_s >= 0")
        return self

    @property
    def period_ns(self) -> int:
        return int(round(1e9 / self.control_rate_hz))


@dataclass(frozen=True)
class StepOutcome:
    """The transition into a frame: the env's reward, cost and flags, and where it happened
    (``episode``, ``step`` = the 0-based index of the action within that episode)."""

    reward: float
    cost: float
    success: bool
    terminated: bool
    truncated: bool
    episode: int
    step: int
    from_time_ns: int = 0  # stamp of the frame the transition started from
    # stamp of the command that ran (realtime: the latest one, maybe an older frame's); -1: none
    # arrived in time and the twin held still
    command_time_ns: int = -1

    def vector(self) -> tuple[float, ...]:
        """Values in ``ros_contract.STEP_LABELS`` order (stamps as sec and nanosec: both exact
        in float64; a missing command as sec -1)."""
        sec, nsec = divmod(int(self.from_time_ns), 1_000_000_000)
        csec, cnsec = (-1, 0) if self.command_time_ns < 0 else divmod(self.command_time_ns, 10**9)
        fields = {**dataclasses.asdict(self), "from_sec": sec, "from_nanosec": nsec,
                  "command_sec": csec, "command_nanosec": cnsec}  # fmt: skip
        return tuple(float(fields[lab]) for lab in rc.STEP_LABELS)


@dataclass(frozen=True)
class EpisodeEvent:
    """One of ``ros_contract.EVENT_KINDS``; ``step`` = steps taken in the episode so far."""

    kind: str
    episode: int
    step: int
    ret: float


@dataclass(frozen=True)
class CameraFrame:
    """Aligned RGB-D of one frame: rgb (H, W, 3) uint8, depth (H, W) uint16 mm (0 = none)."""

    rgb: npt.NDArray[np.uint8]
    depth_mm: npt.NDArray[np.uint16]
    k: npt.NDArray[np.float64]
    t_base_optical: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """What the node publishes for one env state (see the module docstring for time)."""

    index: int  # frames so far over all episodes
    episode: int
    step: int  # steps taken in this episode (0 = just reset)
    sim_time_ns: int
    hand_pos: npt.NDArray[np.float64]  # obs[0:3]
    finger_positions: tuple[float, float]  # each half the claw distance (m)
    objects: tuple[ObjectPose, ...]  # the task's real objects, observation order
    goal: npt.NDArray[np.float64]  # obs[36:39]
    observation: npt.NDArray[np.float64]  # the env's own 39-d observation
    outcome: StepOutcome | None = None  # None on the first frame (no transition led to it)
    events: tuple[EpisodeEvent, ...] = ()
    camera: CameraFrame | None = None
    final_observation: npt.NDArray[np.float64] | None = None  # last obs of a finished episode
    last: bool = False  # max_episodes reached: the twin steps no further


def depth_to_mm(depth_m: npt.ArrayLike, far_m: float = math.inf) -> npt.NDArray[np.uint16]:
    """Metres -> uint16 millimetres, rounded; 0 where not finite, <= 0, >= far_m or too far."""
    d = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0) & (d < far_m)
    mm = np.rint(np.where(valid, d, 0.0) / DEPTH_UNIT_M)
    return np.where(mm <= np.iinfo(np.uint16).max, mm, 0).astype(np.uint16)


class Twin:
    """One FailureBench env behind the frame/command interface (module docstring)."""

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = (cfg or SimConfig()).validate()
        self.camera = self.cfg.observation_source == "camera"
        self.env = gym.make(
            resolve_env_id(self.cfg.task),
            max_episode_steps=self.cfg.time_limit,
            time_limit=self.cfg.time_limit,
            render_width=self.cfg.camera_width,
            render_height=self.cfg.camera_height,
        )
        base = self.env.unwrapped
        self.n_objects = len(base._get_pos_objects()) // 3
        model = base.model
        self._far_m = float(model.stat.extent * model.vis.map.zfar) * (1 - 1e-6)
        self.frame: Frame | None = None
        self._index = 0
        self._return = 0.0
        self._succeeded = False
        self._episodes_done = 0

    # -- episodes ---------------------------------------------------------------------------
    def episode_seed(self, episode: int) -> int:
        return self.cfg.seed + int(episode)

    def reset(self, seed: int | None = None) -> Frame:
        """Start over at episode 0 (reset seed ``seed``, default ``cfg.seed``), frame 0."""
        if seed is not None:
            self.cfg = dataclasses.replace(self.cfg, seed=int(seed)).validate()
        self._index, self._episodes_done = 0, 0
        self.frame = self._reset_episode(0)
        return self.frame

    def _reset_episode(
        self,
        episode: int,
        outcome: StepOutcome | None = None,
        events: tuple[EpisodeEvent, ...] = (),
        final_obs: npt.NDArray[np.float64] | None = None,
    ) -> Frame:
        obs, _ = self.env.reset(seed=self.episode_seed(episode), options={"start": self.cfg.start})
        self._return, self._succeeded = 0.0, False
        events = (*events, EpisodeEvent("reset", episode, 0, 0.0))
        return self._frame(obs, episode, 0, outcome, events, final_obs)

    @property
    def finished(self) -> bool:
        return self.frame is not None and self.frame.last

    # -- stepping ---------------------------------------------------------------------------
    def step(
        self, target_xyz: npt.ArrayLike, gripper: float, command_time_ns: int | None = None
    ) -> Frame:
        """Apply the command for the current frame; the next frame (a reset frame on episode end).

        The action is ``target_to_action(current_frame.hand_pos, target_xyz, gripper)`` in the
        env's action dtype (float32): a float32 action sent as ``action_to_target`` comes back
        bit-exact (the round-trip error, ~1e-14, is far below float32's resolution), so the
        env runs the very trajectory a direct ``env.step(action)`` would. Raises
        ``CommandError`` on a non-finite command (the env is left untouched).
        ``command_time_ns``: the command's stamp (default: the current frame's, as in lockstep).
        """
        if self.frame is None:
            raise TwinError("call reset() first")
        action = target_to_action(self.frame.hand_pos, target_xyz, gripper)
        return self.step_action(action, command_time_ns)

    def step_action(self, action: npt.ArrayLike, command_time_ns: int | None = None) -> Frame:
        """``step`` with the env action itself (tests, in-process loops)."""
        f = self.frame
        if f is None or f.last:
            raise TwinError("call reset() first" if f is None else "max_episodes reached")
        action = np.asarray(action, dtype=self.env.action_space.dtype)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._index += 1
        self._return += float(reward)
        success = bool(info.get("success", False))
        outcome = StepOutcome(
            float(reward),
            float(info.get("cost", float(terminated))),
            success,
            bool(terminated),
            # an episode the twin ends at its first success is cut short: a truncation
            bool(truncated) or (success and self.cfg.reset_on_success and not terminated),
            f.episode,
            f.step,
            f.sim_time_ns,
            f.sim_time_ns if command_time_ns is None else int(command_time_ns),
        )
        steps = f.step + 1
        events = []
        if success and not self._succeeded:
            self._succeeded = True
            events.append(EpisodeEvent("success", f.episode, steps, self._return))
        if terminated:
            events.append(EpisodeEvent("ir_failure", f.episode, steps, self._return))
        elif truncated:
            events.append(EpisodeEvent("timeout", f.episode, steps, self._return))
        ended = terminated or truncated or (success and self.cfg.reset_on_success)
        if not ended:
            self.frame = self._frame(obs, f.episode, steps, outcome, tuple(events))
            return self.frame
        self._episodes_done += 1
        if self.cfg.max_episodes and self._episodes_done >= self.cfg.max_episodes:
            frame = self._frame(obs, f.episode, steps, outcome, tuple(events))
            self.frame = dataclasses.replace(frame, last=True, final_observation=frame.observation)
        else:
            self.frame = self._reset_episode(f.episode + 1, outcome, tuple(events), obs)
        return self.frame

    # -- frames -----------------------------------------------------------------------------
    def _frame(
        self,
        obs: npt.NDArray[np.float64],
        episode: int,
        step: int,
        outcome: StepOutcome | None,
        events: tuple[EpisodeEvent, ...],
        final_obs: npt.NDArray[np.float64] | None = None,
    ) -> Frame:
        base = self.env.unwrapped
        claws = base.data.body("rightclaw").xpos - base.data.body("leftclaw").xpos
        half = float(np.linalg.norm(claws)) / 2.0
        obs = np.asarray(obs, dtype=np.float64).copy()
        objects = tuple(
            ObjectPose(
                tuple(float(x) for x in obs[4 + 7 * i : 7 + 7 * i]),
                tuple(float(x) for x in obs[7 + 7 * i : 11 + 7 * i]),
            )
            for i in range(self.n_objects)
        )
        return Frame(
            index=self._index,
            episode=episode,
            step=step,
            sim_time_ns=self._index * self.cfg.period_ns,
            hand_pos=obs[0:3].copy(),
            finger_positions=(half, half),
            objects=objects,
            goal=obs[2 * FRAME_DIM :].copy(),
            observation=obs,
            outcome=outcome,
            events=events,
            camera=self._render() if self.camera else None,
            final_observation=final_obs,
        )

    def _render(self) -> CameraFrame:
        base = self.env.unwrapped
        rgb, depth = base.render_rgbd()
        return CameraFrame(
            rgb,
            depth_to_mm(depth, self._far_m),
            base.camera_intrinsics(),
            base.camera_pose_in_base(),
        )

    def close(self) -> None:
        self.env.close()


FUTURE_NS = 5_000_000_000  # a command stamped this far after the frame is another clock's


@dataclass
class CommandLatch:
    """The end-effector target and gripper command the next step uses, keyed by stamp (ns).

    lockstep: after ``expect(t)`` (frame ``t`` published), ``for_stamp(t)`` gives the pair once
    both commands stamped ``t`` have arrived (the first of each wins; other stamps are ignored).
    realtime: ``latest(t, hand)`` gives the newest target unless it is older than
    ``timeout_ns`` or stamped after ``t`` (then hold: target = hand) and the newest gripper
    command (0 before any). Commands stamped more than ``FUTURE_NS`` after the current frame
    are ignored: a sender still on a restarted twin's old clock would otherwise pin the latch.
    """

    timeout_ns: int = 500_000_000
    target: tuple[int, npt.NDArray[np.float64]] | None = None
    gripper: tuple[int, float] | None = None
    expected_ns: int | None = None
    used_ns: int = -1  # stamp of the target the last for_stamp / latest returned (-1: held)
    _pending: dict[str, object] = field(default_factory=dict)

    def expect(self, stamp_ns: int) -> None:
        """Collect lockstep commands for ``stamp_ns`` from now on (drops those for others)."""
        if int(stamp_ns) == self.expected_ns:
            return
        self.expected_ns = int(stamp_ns)
        self._pending.clear()

    def offer_target(self, stamp_ns: int, xyz: npt.ArrayLike) -> bool:
        """Store a target; False if ignored (stale/duplicate); ``CommandError`` if not finite."""
        v = np.asarray(xyz, dtype=np.float64)
        if v.shape != (3,) or not np.isfinite(v).all():
            raise CommandError(f"target must be 3 finite numbers, got {v!r}")
        return self._offer("target", int(stamp_ns), v)

    def offer_gripper(self, stamp_ns: int, value: float) -> bool:
        """Store a gripper command; as ``offer_target``."""
        if not math.isfinite(float(value)):
            raise CommandError(f"gripper command must be finite, got {value!r}")
        return self._offer("gripper", int(stamp_ns), float(value))

    def _offer(self, kind: str, stamp_ns: int, value: object) -> bool:
        if self.expected_ns is not None and stamp_ns > self.expected_ns + FUTURE_NS:
            return False  # stamped by another clock (a sender that has not seen a restart)
        newest = getattr(self, kind)
        if newest is None or stamp_ns >= newest[0]:
            setattr(self, kind, (stamp_ns, value))
        if stamp_ns != self.expected_ns or kind in self._pending:
            return False
        self._pending[kind] = value
        return True

    def for_stamp(self, stamp_ns: int) -> tuple[npt.NDArray[np.float64], float] | None:
        """(target, gripper) when both lockstep commands for ``stamp_ns`` are in, else None."""
        if stamp_ns != self.expected_ns or len(self._pending) < 2:
            return None
        target, gripper = self._pending["target"], self._pending["gripper"]
        self.expect(-1)
        self.used_ns = int(stamp_ns)
        return target, gripper  # type: ignore[return-value]

    def latest(
        self, stamp_ns: int, hand_pos: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], float]:
        """The realtime command for the frame stamped ``stamp_ns`` (see the class docstring)."""
        target, self.used_ns = np.asarray(hand_pos, dtype=np.float64), -1
        if self.target is not None and 0 <= stamp_ns - self.target[0] <= self.timeout_ns:
            target, self.used_ns = self.target[1], self.target[0]
        return target, (0.0 if self.gripper is None else self.gripper[1])
