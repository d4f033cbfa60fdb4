"""Rendered twin frames with ground truth, for deriving bands and measuring accuracy.

Runs a FailureBench task under its scripted expert (so the gripper approaches, cages and
drags the object, occluding it) and, at chosen steps, renders the twin camera's colour and
aligned depth (uint16 mm, as realsense2_camera publishes it) with the objects' true poses from
the observation slots and, optionally, each object's pixels from MuJoCo's segmentation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from farm_perception.config import TaskPerception
from farm_perception.geometry import MM

OBJ_SLOT, OBJ_STRIDE = 4, 7  # obs[4:7] object 1 position, obs[7:11] its quaternion, then object 2


@dataclass(frozen=True)
class TwinFrame:
    task: str
    seed: int
    step: int
    rgb: npt.NDArray[np.uint8]
    depth_mm: npt.NDArray[np.uint16]
    k: npt.NDArray[np.float64]
    t_base_optical: npt.NDArray[np.float64]
    positions: npt.NDArray[np.float64]  # (n, 3) true object positions (observation slots)
    quaternions: npt.NDArray[np.float64]  # (n, 4) xyzw from the observation
    hand: npt.NDArray[np.float64]
    masks: dict[str, npt.NDArray[np.bool_]] | None = None  # label -> true visible pixels


def depth_to_mm(depth_m: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """Metres -> uint16 mm, rounded; 0 (= no depth) where not finite, <= 0 or out of range."""
    d = np.asarray(depth_m, dtype=np.float64)
    mm = np.rint(np.where(np.isfinite(d) & (d > 0), d, 0.0) / MM)
    return np.where(mm <= np.iinfo(np.uint16).max, mm, 0).astype(np.uint16)


def env_id(task: str) -> str:
    return f"FailureBench/{task}-v0"


def render_frames(
    task: TaskPerception,
    seeds: Iterable[int],
    steps: Sequence[int],
    segmentation: bool = False,
) -> Iterator[TwinFrame]:
    """Frames of ``task`` at ``steps`` (env steps after reset) of each seeded expert episode."""
    import gymnasium
    import mujoco

    import failurebench_sim  # noqa: F401  (registers the envs)
    from failurebench_sim import policies

    env = gymnasium.make(env_id(task.task))
    base = env.unwrapped
    policy = policies.get(env_id(task.task), "expert")
    seg = None
    if segmentation:
        seg = mujoco.Renderer(base.model, base.camera.height, base.camera.width)
        seg.enable_segmentation_rendering()
    n = len(task.objects)
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=int(seed))
            policy.reset()
            for t in range(max(steps) + 1):
                if t in steps:
                    rgb, depth = base.render_rgbd()
                    slots = [obs[OBJ_SLOT + OBJ_STRIDE * i :][:OBJ_STRIDE] for i in range(n)]
                    masks = None if seg is None else _masks(seg, base, task)
                    yield TwinFrame(
                        task=task.task,
                        seed=int(seed),
                        step=t,
                        rgb=rgb,
                        depth_mm=depth_to_mm(depth),
                        k=base.camera_intrinsics(),
                        t_base_optical=base.camera_pose_in_base(),
                        positions=np.array([s[:3] for s in slots]),
                        quaternions=np.array([s[3:7] for s in slots]),
                        hand=obs[:3].copy(),
                        masks=masks,
                    )
                obs, *_ = env.step(policy.act(obs))
    finally:
        if seg is not None:
            seg.close()
        env.close()


def _masks(seg, base, task: TaskPerception) -> dict[str, npt.NDArray[np.bool_]]:
    import mujoco

    model = base.model
    seg.update_scene(base.data, camera=base.camera.cam_id)
    ids = seg.render()
    geom = ids[..., 1] == mujoco.mjtObj.mjOBJ_GEOM
    out = {}
    for spec in task.objects:
        body = model.body(spec.twin_body).id
        geoms = np.flatnonzero(model.geom_bodyid == body)
        out[spec.label] = geom & np.isin(ids[..., 0], geoms)
    return out
