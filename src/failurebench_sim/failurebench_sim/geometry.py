"""Hazard geometry read once from the XML assets (single source of truth for envs and policies).

All values are xy in MetaWorld's world (= robot base) frame, metres.
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


def _wall_box() -> tuple[Array, Array]:
    """The stock push-wall-v3 wall (body ``wall``), used unchanged."""
    body = _find(METAWORLD_ASSETS / "sawyer_xyz" / "sawyer_push_wall_v3.xml", "body", "wall")
    centre, half = _vec(body.get("pos"))[:2], _vec(body.find("geom").get("size"))[:2]
    return centre - half, centre + half


PUSH_BOUNDARY = boundary_of("bounded_push.xml")
SOCCER_BOUNDARY = boundary_of("bounded_soccer.xml")
WALL_LOW, WALL_HIGH = _wall_box()
VASE_RADIUS = float(
    _vec(_find(ASSET_DIR / "obstructed_push.xml", "geom", "fb_vase_geom").get("size"))[0]
)
