"""Bad frames never raise out of the estimator's callers; missing objects are held, then lost."""

import numpy as np
import pytest

from farm_perception import config as pc
from farm_perception.estimator import FRESH, HELD, MISSING, FrameError, PoseEstimator


@pytest.fixture
def setup(twin, paths):
    f = twin("BoundedPush")[0]
    tp = pc.load(paths["config"], "BoundedPush")
    return f, PoseEstimator(tp, f.k, f.t_base_optical, 640, 480, max_missed_frames=2)


def test_wrong_size_or_dtype_is_a_frame_error(setup):
    f, est = setup
    with pytest.raises(FrameError):
        est.update(f.rgb[:240], f.depth_mm)
    with pytest.raises(FrameError):
        est.update(f.rgb, f.depth_mm.astype(np.float32))
    with pytest.raises(FrameError):
        est.update(f.rgb[..., 0], f.depth_mm)


def test_all_zero_depth_gives_no_pose(setup):
    f, est = setup
    e = est.update(f.rgb, np.zeros_like(f.depth_mm))
    assert e.status == (MISSING,) and not e.complete and np.isnan(e.positions).all()


def test_missing_object_is_held_then_reported_missing(setup):
    f, est = setup
    first = est.update(f.rgb, f.depth_mm)
    assert first.status == (FRESH,)
    blank = f.rgb.copy()
    blank[f.depth_mm > 0] = (128, 128, 128)  # grey scene: no puck
    for _ in range(2):
        e = est.update(blank, f.depth_mm)
        assert e.status == (HELD,) and e.complete
        np.testing.assert_array_equal(e.positions, first.positions)
    e = est.update(blank, f.depth_mm)
    assert e.status == (MISSING,) and not e.complete
    assert est.miss().status == (MISSING,)
    est.reset()
    assert est.update(f.rgb, f.depth_mm).status == (FRESH,)


def test_unusable_frames_count_as_misses(setup):
    f, est = setup
    est.update(f.rgb, f.depth_mm)
    assert est.miss().status == (HELD,)
