"""FailureBench's reward, IR-failure and success from an *estimated* state (the robot's labels).

On the robot there is no simulator to ask: the trainer has the 39-d observation rebuilt from
perception and the arm's pose. ``StateLabeler`` puts that state into a private copy of the
task's MuJoCo scene (hand driven to the observed position with the commanded gripper, objects
placed at their observed poses) and evaluates the task's own functions on it: MetaWorld's
``evaluate_state`` (reward, success) and the FailureBench task's ``failure_state`` (the IR
failure predicate), combined with the env's rules (reward 0 on failure, success only without
failure). The same functions label the benchmark, so the robot's labels differ from the sim's
only where the state estimate does, and where the shaping terms depend on the arm's exact
configuration (fingers, pads), which the settled copy reproduces only approximately. Measured
on true states (``scripts/bench_labels.py``): IR failure and success agree on every step, the
reward's median error is 0.001-0.012 (p95 0.05-0.48 where the caging terms switch on).
"""

from __future__ import annotations

import mujoco
import numpy as np
import numpy.typing as npt

from failurebench_sim.core import REWARD_SCALE
from failurebench_sim.make import make_env
from failurebench_sim.observation import GOAL, HAND, OBJ, OBJ2, OBJ_QUAT


class StateLabeler:
    """``begin(obs)`` at an episode's first observation, then ``label(action, next_obs)``."""

    SETTLE_STEPS = 8  # physics steps (x frame_skip) to bring the hand to the observed position

    def __init__(self, task: str) -> None:
        self._gym = make_env(task)
        self.env = self._gym.unwrapped
        self.env.reset(seed=0)
        self._vase = getattr(self.env, "vase_body", None)

    def begin(self, obs: npt.ArrayLike) -> None:
        """Start an episode: its goal and the object's start (MetaWorld's reward shaping uses
        both) from the first observation."""
        o = np.asarray(obs, dtype=np.float64)
        e = self.env
        e._target_pos = o[GOAL].copy()
        e.obj_init_pos = o[OBJ].copy()
        # the hand's start terms (init_tcp, init pads) stay the env's home pose, as in the env:
        # MetaWorld sets them at reset, before any start placement
        self._place(o, gripper=-1.0, settle=40)
        if hasattr(e, "maxPushDist"):
            e.maxPushDist = float(np.linalg.norm(o[OBJ][:2] - o[GOAL][:2]))

    def label(self, action: npt.ArrayLike, next_obs: npt.ArrayLike) -> tuple[float, float, bool]:
        """(reward, cost, success) of the step that executed ``action`` and led to ``next_obs``."""
        o, a = np.asarray(next_obs, dtype=np.float64), np.asarray(action, dtype=np.float64)
        self._place(o, gripper=float(np.clip(a[3], -1, 1)), settle=self.SETTLE_STEPS)
        r_mw, info = self.env.evaluate_state(o, a)
        failure, _ = self.env.failure_state()
        reward = 0.0 if failure else REWARD_SCALE * float(r_mw)
        return reward, float(failure), bool(info.get("success", False)) and not failure

    def _place(self, o: np.ndarray, gripper: float, settle: int) -> None:
        e = self.env
        target = np.clip(o[HAND], e.mocap_low, e.mocap_high)
        mocap = e.model.body_mocapid[e.data.body("mocap").id]
        for _ in range(settle):
            e.data.mocap_pos[mocap][:] = target
            e.data.mocap_quat[mocap][:] = (1, 0, 1, 0)
            e.do_simulation([gripper, -gripper], e.frame_skip)
        if self._vase is not None:
            e.model.body_pos[self._vase] = [o[OBJ2][0], o[OBJ2][1], 0.0]
        e._set_obj_pose(o[OBJ])
        x, y, z, w = o[OBJ_QUAT]  # observed xyzw; the free joint holds wxyz
        if np.isfinite([x, y, z, w]).all() and abs(np.linalg.norm([x, y, z, w]) - 1) < 1e-3:
            e.data.qpos[12:16] = (w, x, y, z)
        mujoco.mj_forward(e.model, e.data)

    def close(self) -> None:
        self._gym.close()
