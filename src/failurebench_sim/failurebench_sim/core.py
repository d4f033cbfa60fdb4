"""FailureBenchEnv: the episode rules shared by the four tasks.

A FailureBench env is a MetaWorld Sawyer env (goal observable, random object/goal per
episode) plus an intervention-requiring (IR) failure set F.  Per step

    c_t = 1[s_{t+1} in F]                  (Safety-Gymnasium cost, info["cost"])
    r_t = 0 if c_t else r^MW_t / 10        (MetaWorld v2 reward scaled to [0, 1])
    terminated = c_t,  truncated = (t + 1 == T) and not c_t,  T = 200.

Success does not end the episode: the object resting at the goal keeps paying the
maximum r = 1 each step, so succeeding early out-scores lingering elsewhere, and because
r >= 0 with termination on failure, a failure never pays.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding

from failurebench_sim.camera import TwinCamera
from failurebench_sim.model_xml import build_model_xml

MAX_EPISODE_STEPS = 200
REWARD_SCALE = 0.1
START_MODES = ("default", "near_failure")
PARK_XYZ = (0.4, 0.45, 0.03)  # free table spot, outside every hazard and hand path


class FailureBenchError(RuntimeError):
    """Raised on misuse of a FailureBench env (bad action, bad option, stepping a done env)."""


class FailureBenchEnv:
    """Mixin placed before a MetaWorld ``SawyerXYZEnv`` subclass in the MRO.

    Subclasses set ``STOCK_XML``/``ADDITION_XML`` and implement ``failure_state`` and
    ``_place_near_failure``.  Observations are MetaWorld's 39-d goal-observable float64 vector.
    """

    STOCK_XML: str = ""
    ADDITION_XML: str = ""
    XML_EDITS: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        render_width: int = 640,
        render_height: int = 480,
        time_limit: int = MAX_EPISODE_STEPS,
        **kwargs: Any,
    ) -> None:
        if time_limit < 1:
            raise FailureBenchError(f"time_limit must be >= 1, got {time_limit}")
        super().__init__(**kwargs)
        self._partially_observable = False
        del self.sawyer_observation_space  # cached with a zero goal box during MetaWorld init
        self.observation_space = self.sawyer_observation_space
        self._set_task_called = True
        self._freeze_rand_vec = False
        self.seeded_rand_vec = True
        self.max_path_length = time_limit
        self.camera = TwinCamera(self.model, self.data, render_width, render_height)
        self._done = True
        self._setup_failure()

    @property
    def model_name(self) -> str:
        return build_model_xml(self.STOCK_XML, self.ADDITION_XML, self.XML_EDITS)

    # -- task hooks -------------------------------------------------------------------------
    def _setup_failure(self) -> None:
        """Precompute geom ids / boundary used by ``failure_state``."""

    def failure_state(self) -> tuple[bool, float]:
        """Return (in failure set F, signed distance to F; > 0 when safe)."""
        raise NotImplementedError

    def _randomize_scene(self) -> None:
        """Per-episode scene randomisation beyond MetaWorld's object/goal (uses np_random)."""

    def _place_near_failure(self) -> None:
        """Move the system to a state just outside F (``options={"start": "near_failure"}``)."""
        raise NotImplementedError

    # -- gymnasium API ----------------------------------------------------------------------
    def seed(self, seed: int) -> list[int]:
        self.np_random, _ = seeding.np_random(int(seed))
        self.action_space.seed(int(seed))
        self.observation_space.seed(int(seed))
        return [int(seed)]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
        """Reset; ``seed`` fixes every random draw of the episode (no global RNG is used)."""
        start = (options or {}).get("start", "default")
        if start not in START_MODES:
            raise FailureBenchError(f"options['start'] must be one of {START_MODES}, got {start!r}")
        if seed is not None:
            self.seed(seed)
        self.curr_path_length = 0
        self._did_see_sim_exception = False
        mujoco.mj_resetData(self.model, self.data)
        self.reset_model()
        self._randomize_scene()
        if start == "near_failure":
            self._set_obj_pose(PARK_XYZ)  # out of the hand's way while it is positioned
            self._place_near_failure()
        mujoco.mj_forward(self.model, self.data)
        self._prev_obs = self._get_curr_obs_combined_no_goal()
        obs = np.clip(
            self._get_obs(), self.observation_space.low, self.observation_space.high
        ).astype(np.float64)
        self._last_stable_obs = obs.copy()
        failure, distance = self.failure_state()
        self._done = False
        return obs, {"failure_distance": distance, "failure": failure, "start": start}

    def step(
        self, action: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (4,) or not np.all(np.isfinite(a)):
            raise FailureBenchError(f"action must be 4 finite floats, got shape {a.shape}: {a}")
        if self._done:
            raise FailureBenchError("episode is over (or never started): call reset() first")
        obs, r_mw, _, truncated, info = super().step(a)
        failure, distance = self.failure_state()
        reward = 0.0 if failure else REWARD_SCALE * float(r_mw)
        info.update(
            cost=float(failure),
            failure=failure,
            success=bool(info["success"]) and not failure,
            failure_distance=distance,
        )
        truncated = bool(truncated) and not failure
        self._done = failure or truncated
        return obs, reward, failure, truncated, info

    # -- fast paths for two MetaWorld internals (same results, ~2x fewer ms per step) --------
    def touching_object(self, object_geom_id: int) -> bool:
        """MetaWorld's pad-object contact-force test, vectorised over ``data.contact``."""
        n = self.data.ncon
        if n == 0:
            return False
        if not hasattr(self, "_pad_ids"):
            self._pad_ids = (
                self.model.geom("leftpad_geom").id,
                self.model.geom("rightpad_geom").id,
            )
        con = self.data.contact
        g1, g2, efc = con.geom1[:n], con.geom2[:n], con.efc_address[:n]
        with_obj = (g1 == object_geom_id) | (g2 == object_geom_id)
        forces = []
        for pad in self._pad_ids:
            mask = with_obj & ((g1 == pad) | (g2 == pad))
            forces.append(float(self.data.efc_force[efc[mask]].sum()) if mask.any() else 0.0)
        return 0 < forces[0] and 0 < forces[1]

    def _quat_xmat(self) -> npt.NDArray[np.float64]:
        """Rotation matrix (flat 9) of the object whose quaternion MetaWorld observes."""
        if not hasattr(self, "_obj_geom_id"):
            self._obj_geom_id = self.model.geom("objGeom").id
        return self.data.geom_xmat[self._obj_geom_id]

    def _get_quat_objects(self) -> npt.NDArray[np.float64]:
        """Scalar-last quaternion of ``_quat_xmat()``, equal to scipy's ``Rotation.from_matrix``."""
        return matrix_to_quat_xyzw(self._quat_xmat())

    # -- camera (simulation twin) -----------------------------------------------------------
    def render_rgbd(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
        """RGB (H, W, 3) uint8 and z-depth (H, W) float32 in metres from ``fb_camera``."""
        return self.camera.render_rgbd()

    def camera_intrinsics(self) -> npt.NDArray[np.float64]:
        """Pinhole K (3, 3) of ``fb_camera`` from its MuJoCo fovy."""
        return self.camera.intrinsics()

    def camera_pose_in_base(self) -> npt.NDArray[np.float64]:
        """T_base_optical (4, 4): REP 103 optical frame (z fwd, x right, y down) in base."""
        return self.camera.pose_in_base()

    def close(self) -> None:
        self.camera.close()
        super().close()

    # -- helpers for tasks ------------------------------------------------------------------
    def _settle_hand_at(self, pos: npt.ArrayLike, steps: int = 60) -> None:
        """Drive the mocap to ``pos`` (clipped to the hand box) and let the arm settle."""
        target = np.clip(np.asarray(pos, dtype=np.float64), self.mocap_low, self.mocap_high)
        mocap_id = self.model.body_mocapid[self.data.body("mocap").id]
        for _ in range(steps):
            self.data.mocap_pos[mocap_id][:] = target
            self.data.mocap_quat[mocap_id][:] = np.array([1, 0, 1, 0])
            self.do_simulation([-1, 1], self.frame_skip)

    def _set_obj_pose(self, pos: npt.ArrayLike, vel: npt.ArrayLike = (0.0, 0.0, 0.0)) -> None:
        """Set the object's free joint (qpos[9:12], qvel[9:12]) without moving anything else."""
        qpos, qvel = self.data.qpos.flat.copy(), self.data.qvel.flat.copy()
        qpos[9:12] = pos
        qvel[9:15] = 0.0
        qvel[9:12] = vel
        self.set_state(qpos, qvel)


def rect_signed_distance(p: npt.ArrayLike, centre: npt.ArrayLike, half: npt.ArrayLike) -> float:
    """Signed distance from 2-D point p to the border of an axis-aligned box (> 0 inside)."""
    d = np.abs(np.asarray(p)[:2] - np.asarray(centre)[:2]) - np.asarray(half)[:2]
    outside = np.linalg.norm(np.maximum(d, 0.0))
    return float(-outside if outside > 0 else -np.max(d))


def contact_between(data: mujoco.MjData, a: frozenset[int], b: frozenset[int]) -> bool:
    """True if any active contact pairs a geom of ``a`` with a geom of ``b``."""
    n = data.ncon
    if n == 0:
        return False
    g = data.contact.geom[:n]
    for g1, g2 in g:
        if (g1 in a and g2 in b) or (g1 in b and g2 in a):
            return True
    return False


def min_geom_distance(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    a: tuple[int, ...],
    b: tuple[int, ...],
    distmax: float = 0.5,
) -> float:
    """Smallest signed distance between any geom of ``a`` and any of ``b`` (capped at distmax)."""
    return float(
        min(mujoco.mj_geomDistance(model, data, i, j, distmax, None) for i in a for j in b)
    )


def matrix_to_quat_xyzw(xmat: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rotation matrix -> unit quaternion (x, y, z, w), scipy's branch and sign convention.

    MetaWorld observes ``Rotation.from_matrix(m).as_quat()``; this is the same Shepperd
    method without scipy's per-call overhead (it dominated the observation time).
    """
    m = np.asarray(xmat, dtype=np.float64).reshape(3, 3)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    decision = (m[0, 0], m[1, 1], m[2, 2], tr)
    choice = int(np.argmax(decision))
    q = np.empty(4)
    if choice != 3:
        i, j, k = choice, (choice + 1) % 3, (choice + 2) % 3
        q[i] = 1.0 - tr + 2.0 * m[i, i]
        q[j] = m[j, i] + m[i, j]
        q[k] = m[k, i] + m[i, k]
        q[3] = m[k, j] - m[j, k]
    else:
        q[0] = m[2, 1] - m[1, 2]
        q[1] = m[0, 2] - m[2, 0]
        q[2] = m[1, 0] - m[0, 1]
        q[3] = 1.0 + tr
    return q / np.linalg.norm(q)
