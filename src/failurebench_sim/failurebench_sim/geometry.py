"""Hazard geometry (single source of truth for envs, policies and tests).

Boundaries and the vase are read once from our XML assets; the Fragile Push Wall wall is defined
here and written into the stock push-wall-v3 XML by ``wall_xml_edits``. All values are in
MetaWorld's world (= robot base) frame, metres (``WALL_LOW`` / ``WALL_HIGH``: xy corners).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import numpy.typing as npt

from failurebench_sim.model_xml import ASSET_DIR, METAWORLD_ASSETS

Array = npt.NDArray[np.float64]


def _vec(text: str) -> Array:
    return np.array([float(v) for v in text.split()])


def _find(path: Path, tag: str, name: str) -> ET.Element:
    for el in ET.parse(path).getroot().iter(tag):
        if el.get("name") == name:
            return el
    raise ValueError(f"no <{tag} name={name!r}> in {path}")


def boundary_of(asset: str) -> tuple[Array, Array]:
    """(low, high) xy corners of site ``fb_boundary`` in ``assets/<asset>``."""
    site = _find(ASSET_DIR / asset, "site", "fb_boundary")
    centre, half = _vec(site.get("pos"))[:2], _vec(site.get("size"))[:2]
    return centre - half, centre + half


_PUSH_WALL_XML = METAWORLD_ASSETS / "sawyer_xyz" / "sawyer_push_wall_v3.xml"


def wall_xml_edits(pos: Array, half: Array) -> tuple[tuple[str, str], ...]:
    """``build_model_xml`` edits that move/resize the stock push-wall-v3 wall (body ``wall``,
    both of its box geoms) to centre ``pos`` and half-size ``half`` (xyz, metres)."""
    body = _find(_PUSH_WALL_XML, "body", "wall")
    size = body.find("geom").get("size")

    def fmt(v: Array) -> str:
        return " ".join(f"{x:g}" for x in v)

    return (
        (f'<body name="wall" pos="{body.get("pos")}">', f'<body name="wall" pos="{fmt(pos)}">'),
        (f'size="{size}"', f'size="{fmt(half)}"'),
    )


PUSH_BOUNDARY = boundary_of("bounded_push.xml")
SOCCER_BOUNDARY = boundary_of("bounded_soccer.xml")
SOCCER_EXITS = (0, 1, 2)
"""the borders (0 x-, 1 x+, 2 y-, 3 y+) Soccer's ball can leave by: the far (y+) border is the
table wall behind the goal"""
_TASK_BOUNDARIES = {"BoundedPush-v0": (*PUSH_BOUNDARY, (0, 1, 2, 3)),
                    "BoundedSoccer-v0": (*SOCCER_BOUNDARY, SOCCER_EXITS)}  # fmt: skip


def boundary_of_task(env_id: str) -> tuple[Array, Array, tuple[int, ...]]:
    """(low, high, exits) of the allowed rectangle of a bounded task and the borders an object
    can leave it by (``FailureBench/`` optional)."""
    name = env_id.split("/")[-1]
    if name not in _TASK_BOUNDARIES:
        raise ValueError(
            f"{env_id} has no boundary rectangle; bounded tasks: {sorted(_TASK_BOUNDARIES)}"
        )
    return _TASK_BOUNDARIES[name]


# Fragile Push Wall: the stock wall (pos 0.1 0.75 0.06, half 0.12 0.01 0.06) lowered to 6 cm, so the
# gripper base (bottom z ~0.08 at the drag height) passes over it and cannot shield the object
# from the free (-x) end face, and deepened to 8 cm, so that face is a long stretch to pass.
WALL_POS = np.array([0.1, 0.75, 0.03])
WALL_HALF = np.array([0.12, 0.04, 0.03])
WALL_LOW, WALL_HIGH = WALL_POS[:2] - WALL_HALF[:2], WALL_POS[:2] + WALL_HALF[:2]
VASE_RADIUS = float(
    _vec(_find(ASSET_DIR / "obstructed_push.xml", "geom", "fb_vase_geom").get("size"))[0]
)
