"""Twin camera: intrinsics from fovy, optical-frame pose, and projection of known points."""

import gymnasium as gym
import numpy as np
import pytest

import failurebench_sim
from failurebench_sim.camera import project


@pytest.fixture(scope="module")
def env():
    e = gym.make(failurebench_sim.TASK_IDS[0], render_width=160, render_height=120)
    yield e
    e.close()


def test_intrinsics_and_pose(env):
    u = env.unwrapped
    k = u.camera_intrinsics()
    fovy = np.deg2rad(u.model.cam_fovy[u.camera.cam_id])
    assert k[1, 1] == pytest.approx(60.0 / np.tan(fovy / 2)) and k[0, 0] == k[1, 1]
    assert (k[0, 2], k[1, 2]) == (79.5, 59.5)
    t = u.camera_pose_in_base()
    r = t[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert r[2, 2] < 0 and r[1, 2] < 0, "optical z looks down and back towards the robot"
    assert r[2, 1] < 0, "optical y (image down) points down in the world"


def test_known_points_project_to_matching_depth(env):
    u = env.unwrapped
    obs, _ = env.reset(seed=2)
    rgb, depth = u.render_rgbd()
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    k, t = u.camera_intrinsics(), u.camera_pose_in_base()
    puck_top = obs[4:7] + np.array([0.0, 0.0, 0.02])
    table = np.array([0.3, 0.85, 0.0])
    for point, tol in ((puck_top, 0.01), (table, 0.005)):
        uv, z = project(k, t, point)
        col, row = np.round(uv).astype(int)
        assert 0 <= col < 160 and 0 <= row < 120
        assert depth[row, col] == pytest.approx(z, abs=tol)
    uv, _ = project(k, t, puck_top)
    col, row = np.round(uv).astype(int)
    assert rgb[row, col, 0] > rgb[row, col, 2], "the red puck is seen at its projected pixel"
