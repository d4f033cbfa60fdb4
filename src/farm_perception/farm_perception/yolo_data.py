"""A YOLO detection dataset rendered from the twin, labelled by MuJoCo's segmentation.

Every image is a FailureBench scene under its (noisy) scripted expert, so the gripper
approaches, cages and occludes the objects; its boxes are the objects' *visible* pixels from
MuJoCo's segmentation rendering (object id per pixel), written in the ultralytics YOLO format
(``images/<split>/*.jpg``, ``labels/<split>/*.txt``: ``class xc yc w h`` normalised, and
``data.yaml``). Domain randomisation per image: object colours jittered inside their colour
band, table and floor tints, light direction and intensity, camera pose jitter around the
calibrated extrinsics, distractor objects on the table, image noise and blur. Splits use
disjoint seeds; an image is a pure function of (split, index), so generation resumes where it
stopped.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from farm_perception import config as pc

TASKS = ("BoundedPush", "BoundedSoccer", "FragilePushWall", "ObstructedPush")
SPLIT_SEEDS = {"train": 100_000, "val": 200_000, "test": 300_000}  # disjoint seed ranges
MIN_VISIBLE_PX = 20  # an object with fewer visible pixels is not labelled (fully occluded)


class LabelFormatError(ValueError):
    pass


def class_names(config: str | Path) -> tuple[str, ...]:
    """Class names by class id over every task of perception.yaml (ids must be 0..n-1)."""
    ids: dict[int, str] = {}
    for task in TASKS:
        for o in pc.load(config, task).objects:
            if ids.setdefault(o.class_id, o.label) != o.label:
                raise pc.PerceptionConfigError(
                    f"class id {o.class_id}: {ids[o.class_id]} vs {o.label}"
                )
    if sorted(ids) != list(range(len(ids))):
        raise pc.PerceptionConfigError(f"class ids must be 0..n-1, got {sorted(ids)}")
    return tuple(ids[i] for i in range(len(ids)))


# -- labels -----------------------------------------------------------------------------------
def boxes_from_ids(
    geom_ids: npt.NDArray[np.integer],
    classes: Mapping[int, Iterable[int]],
    min_pixels: int = MIN_VISIBLE_PX,
) -> list[tuple[int, int, int, int, int]]:
    """(class, x0, y0, x1, y1) of each class's visible pixels (x1, y1 exclusive) in a per-pixel
    geom id image (-1: no geom); classes with fewer than ``min_pixels`` get no box."""
    out = []
    for cls, geoms in sorted(classes.items()):
        mask = np.isin(geom_ids, np.fromiter(geoms, dtype=np.int64))
        if int(mask.sum()) < min_pixels:
            continue
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        out.append((int(cls), int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    return out


def yolo_lines(boxes: Sequence[tuple[int, int, int, int, int]], width: int, height: int) -> str:
    """The label file for ``boxes``: ``class xc yc w h`` normalised to the image, 6 decimals."""
    lines = []
    for c, x0, y0, x1, y1 in boxes:
        xc, yc = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        lines.append(f"{c} {xc:.6f} {yc:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def read_labels(path: str | Path, n_classes: int) -> npt.NDArray[np.float64]:
    """A YOLO label file as (n, 5) [class, xc, yc, w, h]; ``LabelFormatError`` naming the file
    and line on anything malformed (field count, non-numbers, class ids, values outside 0..1)."""
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        parts = line.split()
        if len(parts) != 5:
            raise LabelFormatError(f"{where}: want 'class xc yc w h', got {len(parts)} fields")
        try:
            c, *box = (float(p) for p in parts)
        except ValueError:
            raise LabelFormatError(f"{where}: not numbers: {line!r}") from None
        if not (c.is_integer() and 0 <= c < n_classes):
            raise LabelFormatError(f"{where}: class {parts[0]} not in 0..{n_classes - 1}")
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in box) or min(box[2:]) <= 0:
            raise LabelFormatError(f"{where}: box values must be in (0, 1], got {box}")
        rows.append([c, *box])
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


# -- domain randomisation -----------------------------------------------------------------------
@dataclass(frozen=True)
class Randomization:
    """Ranges of the per-image randomisation (all on by default)."""

    hue: float = 0.015  # object hue jitter (fraction of the colour circle: ~5 OpenCV H units)
    saturation: float = 0.15  # relative
    value: float = 0.2  # relative
    tint: float = 0.25  # table / floor / background tint (relative per channel)
    light_dir_deg: float = 25.0
    light_intensity: tuple[float, float] = (0.6, 1.3)
    camera_shift_m: float = 0.01
    camera_tilt_deg: float = 1.5
    distractors: tuple[int, int] = (0, 4)
    noise_sigma: tuple[float, float] = (0.0, 6.0)
    blur_probability: float = 0.3


def _jitter_rgb(rgb: np.ndarray, rng: np.random.Generator, r: Randomization) -> np.ndarray:
    h, s, v = colorsys.rgb_to_hsv(*np.clip(rgb, 0, 1))
    h = (h + rng.uniform(-r.hue, r.hue)) % 1.0
    s = float(np.clip(s * (1 + rng.uniform(-r.saturation, r.saturation)), 0, 1))
    v = float(np.clip(v * (1 + rng.uniform(-r.value, r.value)), 0, 1))
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def _small_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    half = math.radians(rng.uniform(0, max_deg)) / 2
    return np.r_[math.cos(half), math.sin(half) * axis]  # wxyz


class SceneRandomizer:
    """Applies one draw of ``Randomization`` to a model (and restores the original)."""

    def __init__(self, model, object_geoms: Iterable[int], cam_id: int, r: Randomization) -> None:
        self.model, self.cam_id, self.r = model, cam_id, r
        self.object_geoms = np.array(sorted(object_geoms), dtype=np.int64)
        self._saved = {k: getattr(model, k).copy() for k in
                       ("geom_rgba", "mat_rgba", "light_dir", "light_diffuse",
                        "cam_pos", "cam_quat")}  # fmt: skip
        # an object's colour: its own rgba, or its material's (textured: a tint multiplier)
        mats = model.geom_matid[self.object_geoms]
        self.object_mats = np.unique(mats[mats >= 0])
        self.plain_geoms = self.object_geoms[mats < 0]

    def apply(self, rng: np.random.Generator) -> None:
        import mujoco

        m, r, s = self.model, self.r, self._saved
        self.restore()
        for g in self.plain_geoms:
            m.geom_rgba[g, :3] = _jitter_rgb(s["geom_rgba"][g, :3], rng, r)
        others = np.setdiff1d(np.arange(m.ngeom), self.object_geoms)
        m.geom_rgba[others, :3] = np.clip(s["geom_rgba"][others, :3] * self._tint(rng), 0, 1)
        for k in range(m.nmat):
            own = k in self.object_mats
            rgb = (
                _jitter_rgb(s["mat_rgba"][k, :3], rng, r)
                if own
                else s["mat_rgba"][k, :3] * self._tint(rng)
            )
            m.mat_rgba[k, :3] = np.clip(rgb, 0, 1)
        for i in range(m.nlight):
            q = _small_rotation(rng, r.light_dir_deg)
            d = np.zeros(3)
            mujoco.mju_rotVecQuat(d, s["light_dir"][i], q)
            m.light_dir[i] = d
            m.light_diffuse[i] = np.clip(
                s["light_diffuse"][i] * rng.uniform(*r.light_intensity), 0, 1
            )
        c = self.cam_id
        m.cam_pos[c] = s["cam_pos"][c] + rng.uniform(-r.camera_shift_m, r.camera_shift_m, 3)
        q = np.zeros(4)
        mujoco.mju_mulQuat(q, _small_rotation(rng, r.camera_tilt_deg), s["cam_quat"][c])
        m.cam_quat[c] = q

    def _tint(self, rng: np.random.Generator) -> np.ndarray:
        return 1 + rng.uniform(-self.r.tint, self.r.tint, size=3)

    def restore(self) -> None:
        for k, v in self._saved.items():
            getattr(self.model, k)[:] = v


def draw_distractors(rng: np.random.Generator, n: int, centre: np.ndarray,
                     keep_away: Sequence[np.ndarray], half_extent=(0.25, 0.15)) -> list[tuple]:  # fmt: skip
    """``n`` visual-only boxes, spheres and cylinders (random colours, sizes, yaw) on the table
    around ``centre`` (world frame), at least 8 cm from every point of ``keep_away``: the
    ``mjv_initGeom`` arguments of each."""
    import mujoco

    kinds = (
        mujoco.mjtGeom.mjGEOM_BOX,
        mujoco.mjtGeom.mjGEOM_SPHERE,
        mujoco.mjtGeom.mjGEOM_CYLINDER,
    )
    out: list[tuple] = []
    for _ in range(n * 10):
        if len(out) == n:
            break
        size = rng.uniform(0.012, 0.035, 3)
        xy = centre[:2] + rng.uniform(-1, 1, 2) * np.asarray(half_extent)
        pos = np.r_[xy, centre[2] + size[2]]
        if any(np.linalg.norm(pos[:2] - np.asarray(k)[:2]) < 0.08 for k in keep_away):
            continue
        yaw = rng.uniform(0, math.pi)
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, np.array([math.cos(yaw), 0.0, 0.0, math.sin(yaw)]))
        rgba = np.r_[rng.uniform(0, 1, 3), 1.0].astype(np.float32)
        out.append((kinds[rng.integers(len(kinds))], size, pos, rot, rgba))
    return out


def add_geoms(scene, geoms: Sequence[tuple]) -> int:
    """Append visual-only geoms (``draw_distractors``) to a rendered scene; how many fit."""
    import mujoco

    added = 0
    for kind, size, pos, rot, rgba in geoms:
        if scene.ngeom >= scene.maxgeom:
            break
        g = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(g, kind, size, pos, rot, rgba)
        g.segid = scene.ngeom  # segmentation colour = scene index (no model object behind it)
        g.objtype, g.objid = mujoco.mjtObj.mjOBJ_UNKNOWN, -1
        scene.ngeom += 1
        added += 1
    return added


def degrade(rgb: np.ndarray, rng: np.random.Generator, r: Randomization) -> np.ndarray:
    """Sensor noise and, sometimes, blur (defocus / motion), as a real camera adds them."""
    import cv2

    out = rgb.astype(np.float32)
    if rng.random() < r.blur_probability:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    out += rng.normal(0, rng.uniform(*r.noise_sigma), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


# -- generation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedImage:
    rgb: npt.NDArray[np.uint8]
    boxes: list[tuple[int, int, int, int, int]]
    depth_m: npt.NDArray[np.float32]
    positions: dict[int, npt.NDArray[np.float64]]  # class -> true position (world frame)
    observation: npt.NDArray[np.float64]  # the env's observation (hand, object slots: base frame)


class TwinImageSource:
    """Renders randomised labelled images of one task (one env and renderer, reused)."""

    def __init__(self, task: str, config: str | Path, width: int = 640, height: int = 480,
                 r: Randomization = Randomization()) -> None:  # fmt: skip
        import gymnasium
        import mujoco

        import failurebench_sim  # noqa: F401  (registers the envs)
        from failurebench_sim import policies

        self.task, self.r = task, r
        self.env = gymnasium.make(f"FailureBench/{task}-v0")
        self.base = self.env.unwrapped
        self.policy = policies.get(f"FailureBench/{task}-v0", "expert")
        model = self.base.model
        self.specs = pc.load(config, task).objects
        self.classes = {o.class_id: np.flatnonzero(model.geom_bodyid == model.body(o.twin_body).id)
                        for o in self.specs}  # fmt: skip
        self.cam_id = self.base.camera.cam_id
        geoms = np.concatenate(list(self.classes.values()))
        self.randomizer = SceneRandomizer(model, geoms, self.cam_id, r)
        self.renderer = mujoco.Renderer(model, height, width)
        self.width, self.height = width, height

    def close(self) -> None:
        self.randomizer.restore()
        self.renderer.close()
        self.env.close()

    def render(self, seed: int, randomize: bool = True) -> RenderedImage:
        """The scene ``seed`` steps into a noisy expert episode (seeded), randomised or not."""
        import mujoco

        rng = np.random.default_rng(seed)
        obs, _ = self.env.reset(seed=int(seed))
        self.policy.reset()
        noise = rng.uniform(0.0, 0.6)
        for _ in range(int(rng.integers(0, 160))):
            a = self.policy.act(obs)
            a[:3] += rng.normal(0, noise, 3)
            obs, _, terminated, truncated, _ = self.env.step(np.clip(a, -1, 1))
            if terminated or truncated:
                break
        m, d, r = self.base.model, self.base.data, self.renderer
        if randomize:
            self.randomizer.apply(rng)
        else:
            self.randomizer.restore()
        mujoco.mj_forward(m, d)
        positions = {c: d.xpos[m.geom_bodyid[g[0]]].copy() for c, g in self.classes.items()}
        n = int(rng.integers(self.r.distractors[0], self.r.distractors[1] + 1)) if randomize else 0
        table = np.r_[np.mean([p[:2] for p in positions.values()], axis=0), 0.0]
        keep_away = [*positions.values(), d.body("hand").xpos.copy()]
        distractors = draw_distractors(rng, n, table, keep_away)

        def scene(_kind: str):
            r.update_scene(d, camera=self.cam_id)
            add_geoms(r.scene, distractors)
            return r.render()

        rgb = scene("rgb").copy()
        r.enable_depth_rendering()
        depth = scene("depth").astype(np.float32)
        r.disable_depth_rendering()
        r.enable_segmentation_rendering()
        ids = scene("seg")
        r.disable_segmentation_rendering()
        geom_ids = np.where(ids[..., 1] == mujoco.mjtObj.mjOBJ_GEOM, ids[..., 0], -1)
        if randomize:
            rgb = degrade(rgb, rng, self.r)
        return RenderedImage(
            rgb, boxes_from_ids(geom_ids, self.classes), depth, positions, np.asarray(obs, float)
        )


def generate(out: str | Path, counts: Mapping[str, int], config: str | Path, width: int = 640,
             height: int = 480, progress: bool = True) -> dict[str, int]:  # fmt: skip
    """Write (or complete) the dataset under ``out``; returns images written per split.
    Image ``i`` of a split is task ``TASKS[i % 4]`` rendered from seed ``SPLIT_SEEDS[split] + i``;
    an image whose label file exists is kept (labels are written last, atomically)."""
    import cv2
    from tqdm import tqdm

    from failurebench_sim.atomic import atomic_write, write_text

    out = Path(out)
    names = class_names(config)
    write_text(out / "data.yaml", "".join([
        f"path: {out.resolve()}\n", "train: images/train\n", "val: images/val\n",
        "test: images/test\n", f"names: {dict(enumerate(names))}\n"]))  # fmt: skip
    todo = [(s, i) for s, n in counts.items() for i in range(n)
            if not (out / "labels" / s / f"{s}_{i:06d}.txt").exists()]  # fmt: skip
    written = {s: 0 for s in counts}
    sources: dict[str, TwinImageSource] = {}
    try:
        for split, i in tqdm(todo, desc="rendering", disable=not progress):
            task = TASKS[i % len(TASKS)]
            if task not in sources:
                sources[task] = TwinImageSource(task, config, width, height)
            img = sources[task].render(SPLIT_SEEDS[split] + i)
            stem = f"{split}_{i:06d}"
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img.rgb, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, 92])  # fmt: skip
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for {stem}")
            atomic_write(
                out / "images" / split / f"{stem}.jpg",
                lambda p, b=jpg: Path(p).write_bytes(b.tobytes()),
            )
            write_text(out / "labels" / split / f"{stem}.txt", yolo_lines(img.boxes, width, height))
            written[split] += 1
    finally:
        for s in sources.values():
            s.close()
    return written
