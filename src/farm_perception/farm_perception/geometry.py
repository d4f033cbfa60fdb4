"""Pinhole geometry: pixels + aligned depth <-> 3-D points, optical frame (REP 103) <-> base.

Conventions: K is the 3x3 pinhole matrix of the colour camera with pixel-centre coordinates
(pixel (u, v) covers [u - 0.5, u + 0.5]); depth is z-depth along the optical axis (what
realsense2_camera's aligned 16UC1 image holds, in millimetres); ``t_base_optical`` is the 4x4
pose of the optical frame in the base frame, so ``p_base = T @ [p_optical, 1]``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
MM = 1e-3  # metres per depth unit of a 16UC1 image


class GeometryError(ValueError):
    """A camera matrix, transform or image shape is malformed."""


def check_k(k: npt.ArrayLike) -> Array:
    """K as a float64 (3, 3) array; raises GeometryError unless it is a finite pinhole matrix."""
    k = np.asarray(k, dtype=np.float64)
    if k.shape == (9,):
        k = k.reshape(3, 3)
    if k.shape != (3, 3) or not np.isfinite(k).all():
        raise GeometryError(f"K must be a finite 3x3 matrix, got shape {k.shape}")
    if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0.0, 0.0, 1.0]):
        raise GeometryError(f"K is not a pinhole matrix: {k.tolist()}")
    return k


def deproject(k: npt.ArrayLike, uv: npt.ArrayLike, depth_m: npt.ArrayLike) -> Array:
    """Pixels (..., 2) with z-depths (...) in metres -> points (..., 3) in the optical frame."""
    k = check_k(k)
    uv, z = np.asarray(uv, dtype=np.float64), np.asarray(depth_m, dtype=np.float64)
    x = (uv[..., 0] - k[0, 2]) / k[0, 0] * z
    y = (uv[..., 1] - k[1, 2]) / k[1, 1] * z
    return np.stack([x, y, z], axis=-1)


def project(k: npt.ArrayLike, p_optical: npt.ArrayLike) -> tuple[Array, Array]:
    """Points (..., 3) in the optical frame -> (pixels (..., 2), z-depths (...))."""
    k, p = check_k(k), np.asarray(p_optical, dtype=np.float64)
    z = p[..., 2]
    u = k[0, 0] * p[..., 0] / z + k[0, 2]
    v = k[1, 1] * p[..., 1] / z + k[1, 2]
    return np.stack([u, v], axis=-1), z


def transform(t: npt.ArrayLike, p: npt.ArrayLike) -> Array:
    """Apply a 4x4 rigid transform to points (..., 3)."""
    t, p = np.asarray(t, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return p @ t[:3, :3].T + t[:3, 3]


def invert(t: npt.ArrayLike) -> Array:
    """Inverse of a 4x4 rigid transform."""
    t = np.asarray(t, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = t[:3, :3].T
    out[:3, 3] = -t[:3, :3].T @ t[:3, 3]
    return out


class PixelRays:
    """Per-pixel viewing rays of one camera, in the base frame, for a whole image at once.

    A pixel's point is ``origin + depth * ray``, since ``ray`` is R @ K^-1 [u, v, 1] (its
    optical-z component is 1, so depth scales it exactly).
    """

    def __init__(self, k: npt.ArrayLike, t_base_optical: npt.ArrayLike, width: int, height: int):
        self.k, self.t = check_k(k), np.asarray(t_base_optical, dtype=np.float64)
        if self.t.shape != (4, 4) or not np.isfinite(self.t).all():
            raise GeometryError(f"T_base_optical must be a finite 4x4 matrix, got {self.t.shape}")
        self.width, self.height = int(width), int(height)
        v, u = np.mgrid[0:height, 0:width]
        dirs = deproject(self.k, np.stack([u, v], axis=-1), np.ones((height, width)))
        self.rays = (dirs @ self.t[:3, :3].T).astype(np.float32)  # (H, W, 3)
        self.origin = self.t[:3, 3].astype(np.float32)

    def points(self, depth_m: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(H, W, 3) base-frame points of a z-depth image in metres (0 depth -> the origin)."""
        return self.origin + depth_m[..., None] * self.rays

    def points_at(self, rows: npt.ArrayLike, cols: npt.ArrayLike, depth_m: npt.ArrayLike) -> Array:
        """Base-frame points (N, 3) of selected pixels with their depths in metres."""
        d = np.asarray(depth_m, dtype=np.float64)[:, None]
        return self.origin.astype(np.float64) + d * self.rays[rows, cols].astype(np.float64)

    def inside(self, depth_m: npt.NDArray[np.float32], low: Array, high: Array) -> np.ndarray:
        """Boolean (H, W): pixels with valid depth whose base-frame point lies in [low, high]."""
        ok = depth_m > 0
        for axis in range(3):
            c = self.origin[axis] + depth_m * self.rays[..., axis]
            ok &= (c >= low[axis]) & (c <= high[axis])
        return ok
