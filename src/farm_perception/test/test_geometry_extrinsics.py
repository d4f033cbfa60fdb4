import math

import numpy as np
import pytest

from farm_perception import extrinsics as ex
from farm_perception import geometry as g


def test_deproject_project_round_trip_with_twin_camera(twin):
    f = twin("BoundedPush")[0]
    rng = np.random.default_rng(0)
    uv = rng.uniform([0, 0], [639, 479], size=(50, 2))
    z = rng.uniform(0.3, 3.0, size=50)
    p_opt = g.deproject(f.k, uv, z)
    uv2, z2 = g.project(f.k, p_opt)
    np.testing.assert_allclose(uv2, uv, atol=1e-9)
    np.testing.assert_allclose(z2, z, atol=1e-12)
    p_base = g.transform(f.t_base_optical, p_opt)
    back = g.transform(g.invert(f.t_base_optical), p_base)
    np.testing.assert_allclose(back, p_opt, atol=1e-12)
    rays = g.PixelRays(f.k, f.t_base_optical, 640, 480)
    ij = uv.round().astype(int)
    direct = rays.points_at(ij[:, 1], ij[:, 0], z)
    np.testing.assert_allclose(
        direct, g.transform(f.t_base_optical, g.deproject(f.k, ij, z)), atol=1e-5
    )


def test_truth_projects_onto_its_depth_pixel(twin):
    """The object's true centre projects inside its blob; the pixel depth is a bit in front."""
    f = twin("BoundedPush")[0]
    uv, z = g.project(f.k, g.transform(g.invert(f.t_base_optical), f.positions[0]))
    d = f.depth_mm[int(round(uv[1])), int(round(uv[0]))] / 1000
    assert 0.0 < z - d < 0.03  # the puck's front surface, < its diameter in front of the centre


def test_committed_twin_calibration_matches_the_camera(twin, paths):
    f = twin("BoundedPush")[0]
    ext = ex.load(paths["calibration"])
    assert (ext.parent_frame, ext.child_frame) == ("fr3_link0", "camera_color_optical_frame")
    np.testing.assert_allclose(ext.matrix(), f.t_base_optical, atol=1e-9)


def test_extrinsics_file_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    e = ex.Extrinsics("base", "cam_optical", (0.1, -0.2, 0.3), tuple(q))
    ex.save(e, tmp_path / "c.yaml", "a comment")
    back = ex.load(tmp_path / "c.yaml")
    assert back == e
    m = back.matrix()
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    again = ex.Extrinsics.from_matrix(m, "base", "cam_optical")
    np.testing.assert_allclose(again.matrix(), m, atol=1e-12)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "parent_frame: a\nchild_frame: b\ntranslation: [0, 0, 0]\nquaternion_xyzw: [0, 0, 0, 2]\n",
            "unit",
        ),
        (
            "parent_frame: a\nchild_frame: b\ntranslation: [0, 0, 0]\n",
            "missing keys ['quaternion_xyzw']",
        ),
        (
            "parent_frame: a\nchild_frame: b\ntranslation: [.nan, 0, 0]\nquaternion_xyzw: [0, 0, 0, 1]\n",
            "finite",
        ),
        (
            "parent_frame: ''\nchild_frame: b\ntranslation: [0, 0, 0]\nquaternion_xyzw: [0, 0, 0, 1]\n",
            "frame name",
        ),
        (
            "parent_frame: a\nchild_frame: b\ntranslation: [0, 0]\nquaternion_xyzw: [0, 0, 0, 1]\n",
            "3 and",
        ),
        ("- just a list\n", "mapping"),
    ],
    ids=[
        "non-unit-quaternion",
        "missing-key",
        "nan",
        "empty-frame",
        "short-translation",
        "not-a-mapping",
    ],
)
def test_malformed_extrinsics_are_rejected_with_a_clear_error(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ex.ExtrinsicsError, match="bad.yaml") as info:
        ex.load(path)
    assert message in str(info.value)


def test_quaternion_conversions_agree():
    for angle in (0.0, 0.5, math.pi - 1e-3, math.pi):
        q = np.array([0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)])
        np.testing.assert_allclose(ex.matrix_to_quat(ex.quat_to_matrix(q)), q, atol=1e-9)
