"""Fixed RGB-D camera of the simulation twin (``fb_camera`` in assets/camera.xml).

Frames: the *base* frame is MetaWorld's world frame, which coincides with the Sawyer
``base`` body (pos 0, identity).  The optical frame follows REP 103 (z forward, x right,
y down); MuJoCo cameras look along -z with y up, so R_optical = R_mujoco @ diag(1, -1, -1).
Intrinsics: fy = (H / 2) / tan(fovy / 2), fx = fy (square pixels), principal point at the
image centre in pixel-centre coordinates, (cx, cy) = ((W - 1) / 2, (H - 1) / 2).
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import numpy.typing as npt

CAMERA_NAME = "fb_camera"
BASE_BODY = "base"
_MJ_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


class CameraError(RuntimeError):
    """Raised for an invalid camera configuration."""


class TwinCamera:
    """Lazily created offscreen renderer bound to one MuJoCo model/data pair."""

    def __init__(
        self, model: mujoco.MjModel, data: mujoco.MjData, width: int = 640, height: int = 480
    ) -> None:
        if width < 1 or height < 1:
            raise CameraError(f"camera size must be positive, got {width}x{height}")
        self.model, self.data = model, data
        self.width, self.height = int(width), int(height)
        self.cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA_NAME)
        if self.cam_id < 0:
            raise CameraError(f"model has no camera named {CAMERA_NAME!r}")
        self._renderer: mujoco.Renderer | None = None

    def _get_renderer(self) -> mujoco.Renderer:
        if self._renderer is None:
            vis = self.model.vis.global_
            vis.offwidth = max(vis.offwidth, self.width)
            vis.offheight = max(vis.offheight, self.height)
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        return self._renderer

    @staticmethod
    def _release_gl() -> None:
        """EGL: make no context current on this thread, so the next render may come from another
        thread (an executor's); an EGL context is current in one thread at a time."""
        if os.environ.get("MUJOCO_GL") == "egl":
            from mujoco import egl

            e = egl.EGL
            e.eglMakeCurrent(egl.EGL_DISPLAY, e.EGL_NO_SURFACE, e.EGL_NO_SURFACE, e.EGL_NO_CONTEXT)

    def render_rgbd(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
        """Return (rgb uint8 HxWx3, depth float32 HxW in metres along the optical axis)."""
        r = self._get_renderer()
        r.update_scene(self.data, camera=self.cam_id)
        rgb = r.render().copy()
        r.enable_depth_rendering()
        r.update_scene(self.data, camera=self.cam_id)
        depth = r.render().astype(np.float32)
        r.disable_depth_rendering()
        self._release_gl()
        return rgb, depth

    def intrinsics(self) -> npt.NDArray[np.float64]:
        """Pinhole matrix K from the camera's vertical field of view."""
        fovy = np.deg2rad(self.model.cam_fovy[self.cam_id])
        f = 0.5 * self.height / np.tan(0.5 * fovy)
        return np.array(
            [[f, 0.0, (self.width - 1) / 2.0], [0.0, f, (self.height - 1) / 2.0], [0, 0, 1.0]]
        )

    def pose_in_base(self) -> npt.NDArray[np.float64]:
        """4x4 pose of the optical frame expressed in the robot base frame."""
        t_world_cam = np.eye(4)
        t_world_cam[:3, :3] = self.data.cam_xmat[self.cam_id].reshape(3, 3) @ _MJ_TO_OPTICAL
        t_world_cam[:3, 3] = self.data.cam_xpos[self.cam_id]
        base = self.data.body(BASE_BODY)
        t_world_base = np.eye(4)
        t_world_base[:3, :3] = base.xmat.reshape(3, 3)
        t_world_base[:3, 3] = base.xpos
        return np.linalg.solve(t_world_base, t_world_cam)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def project(
    k: npt.NDArray[np.float64], t_base_cam: npt.NDArray[np.float64], p_base: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], float]:
    """Project a 3-D point in the base frame to (u, v) pixel coordinates and its z-depth."""
    p = np.linalg.solve(t_base_cam, np.r_[np.asarray(p_base, dtype=np.float64), 1.0])[:3]
    uv = (k @ p)[:2] / p[2]
    return uv, float(p[2])
