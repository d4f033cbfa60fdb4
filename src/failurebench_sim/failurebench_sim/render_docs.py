"""Render the README pictures: each task at reset(seed=0), twin camera | top view.

MUJOCO_GL=egl python -m failurebench_sim.render_docs --out src/failurebench_sim/docs
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gymnasium as gym
import matplotlib.image
import mujoco
import numpy as np

import failurebench_sim
from failurebench_sim.atomic import atomic_write

TOP_CAMERA = "topview"  # MetaWorld's overhead camera, x right / y up in the image


def render_task(env_id: str, width: int = 256, height: int = 192, seed: int = 0) -> np.ndarray:
    """(H, 2W, 3) uint8: the fb_camera RGB next to MetaWorld's top view."""
    env = gym.make(env_id, render_width=width, render_height=height)
    env.reset(seed=seed)
    u = env.unwrapped
    rgb, _ = u.render_rgbd()
    with mujoco.Renderer(u.model, height, width) as r:
        r.update_scene(u.data, camera=TOP_CAMERA)
        top = r.render().copy()
    env.close()
    return np.concatenate([rgb, top], axis=1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs"))
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for env_id in failurebench_sim.TASK_IDS:
        name = env_id.split("/")[1].split("-")[0].lower()
        image = render_task(env_id)
        atomic_write(a.out / f"{name}.png", lambda tmp, im=image: _save_png(tmp, im))
        print(a.out / f"{name}.png")


if __name__ == "__main__":
    main()


def _save_png(path: str, image: np.ndarray) -> None:
    matplotlib.image.imsave(path, image, format="png")
    os.chmod(path, 0o644)
