"""Eye-to-hand calibration recovers a known camera pose from synthetic pose pairs."""

import json

import numpy as np
import pytest

from farm_perception import extrinsics
from farm_perception.hand_eye import HandEyeError, main, solve


def _pose(rng, shift, max_deg):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = np.deg2rad(rng.uniform(-max_deg, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.eye(4)
    t[:3, :3] = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
    t[:3, 3] = shift + rng.uniform(-0.15, 0.15, 3)
    return t


def _pairs(rng, n, noise_mm=0.0, noise_deg=0.0):
    t_base_cam = _pose(rng, np.array([0.9, 0.0, 0.6]), 180)
    t_gripper_marker = _pose(rng, np.array([0.0, 0.0, 0.05]), 20)
    grippers, markers = [], []
    for _ in range(n):
        g = _pose(rng, np.array([0.5, 0.0, 0.3]), 40)
        m = np.linalg.inv(t_base_cam) @ g @ t_gripper_marker
        if noise_mm or noise_deg:  # marker detection noise: a small rotation and shift
            r = _pose(rng, np.zeros(3), noise_deg)
            r[:3, 3] = rng.normal(0, noise_mm / 1e3, 3)
            m = m @ r
        grippers.append(g)
        markers.append(m)
    return t_base_cam, t_gripper_marker, grippers, markers


def _errors(a, b):
    d = np.linalg.inv(a) @ b
    ang = np.degrees(np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1)))
    return 1e3 * np.linalg.norm(a[:3, 3] - b[:3, 3]), ang


def test_recovers_a_known_transform_without_noise():
    rng = np.random.default_rng(0)
    t_base_cam, t_gripper_marker, g, m = _pairs(rng, 15)
    res = solve(g, m)
    mm, deg = _errors(res.t_base_cam, t_base_cam)
    assert mm < 1.0 and deg < 0.1
    mm, deg = _errors(res.t_gripper_marker, t_gripper_marker)
    assert mm < 1.0 and deg < 0.1
    assert res.residual_mm < 1e-3


def test_reports_its_residual_with_noise():
    rng = np.random.default_rng(1)
    t_base_cam, _, g, m = _pairs(rng, 20, noise_mm=1.0, noise_deg=0.2)
    res = solve(g, m)
    mm, deg = _errors(res.t_base_cam, t_base_cam)
    assert 0.3 < res.residual_mm < 10.0  # the noise shows in the residual
    assert mm < 5.0 and deg < 0.5


def test_bad_inputs_are_clear_errors():
    rng = np.random.default_rng(2)
    _, _, g, m = _pairs(rng, 6)
    with pytest.raises(HandEyeError, match="at least"):
        solve(g[:2], m[:2])
    with pytest.raises(HandEyeError, match="gripper poses but"):
        solve(g, m[:-1])
    m[0] = np.full((4, 4), np.nan)
    with pytest.raises(HandEyeError, match="finite 4x4"):
        solve(g, m)


def test_the_cli_writes_the_extrinsics_perception_reads(tmp_path):
    rng = np.random.default_rng(3)
    t_base_cam, _, g, m = _pairs(rng, 12)
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([{"t_base_gripper": a.tolist(), "t_cam_marker": b.tolist()}
                                 for a, b in zip(g, m, strict=True)]))  # fmt: skip
    out = tmp_path / "camera.yaml"
    assert main([str(pairs), "--out", str(out)]) == 0
    ext = extrinsics.load(out)
    assert ext.parent_frame == "fr3_link0"
    mm, deg = _errors(ext.matrix(), t_base_cam)
    assert mm < 1.0 and deg < 0.1
