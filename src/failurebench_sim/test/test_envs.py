"""FailureBench envs: API, failure predicates on constructed states, episode rules, seeding."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import failurebench_sim
from failurebench_sim import FailureBenchError, geometry
from failurebench_sim.core import rect_signed_distance

torch.set_num_threads(1)
PUSH, SOCCER, WALL, VASE = failurebench_sim.TASK_IDS


@pytest.fixture(scope="module")
def envs():
    made = {tid: gym.make(tid) for tid in failurebench_sim.TASK_IDS}
    yield made
    for e in made.values():
        e.close()


def test_registered_ids_and_spaces(envs):
    assert failurebench_sim.TASK_IDS == [
        "FailureBench/BoundedPush-v0",
        "FailureBench/BoundedSoccer-v0",
        "FailureBench/FragilePushWall-v0",
        "FailureBench/ObstructedPush-v0",
    ]
    for env in envs.values():
        assert env.action_space.shape == (4,)
        assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
        obs, info = env.reset(seed=3)
        assert obs.shape == (39,) and obs.dtype == np.float64
        assert env.observation_space.contains(obs)
        assert np.any(obs[36:39] != 0.0), "goal must be observable"
        assert info["failure_distance"] > 0 and not info["failure"]
        obs, r, term, trunc, info = env.step(np.zeros(4))
        assert {"cost", "failure", "success", "failure_distance"} <= set(info)
        assert isinstance(info["failure"], bool) and isinstance(info["success"], bool)
        assert info["cost"] == 0.0 and not term and not trunc and 0.0 <= r <= 1.0


def test_rect_signed_distance_hand_computed():
    c, h = np.array([0.0, 0.75]), np.array([0.1, 0.2])
    assert rect_signed_distance([0.0, 0.75], c, h) == pytest.approx(0.1)
    assert rect_signed_distance([0.07, 0.9], c, h) == pytest.approx(0.03)
    assert rect_signed_distance([0.13, 0.75], c, h) == pytest.approx(-0.03)
    assert rect_signed_distance([0.13, 0.99], c, h) == pytest.approx(-0.05)


def test_boundary_lines_surround_boundary_site(envs):
    for tid in (PUSH, SOCCER):
        u = envs[tid].unwrapped
        lo, hi = u.boundary
        m = u.model
        xmin = m.geom("fb_line_xmin")
        inner_left = m.body("fb_boundary_lines").pos[0] + xmin.pos[0] + xmin.size[0]
        assert inner_left == pytest.approx(lo[0], abs=1e-9)
        for name in ("xmin", "xmax", "ymin", "ymax"):
            g = m.geom(f"fb_line_{name}")
            assert g.contype[0] == 0 and g.conaffinity[0] == 0, "boundary must be visual-only"
        low, high = geometry.PUSH_BOUNDARY if tid == PUSH else geometry.SOCCER_BOUNDARY
        np.testing.assert_allclose(lo, low)
        np.testing.assert_allclose(hi, high)


@pytest.mark.parametrize("tid", [PUSH, SOCCER])
def test_object_outside_boundary_costs_and_terminates(envs, tid):
    env = envs[tid]
    env.reset(seed=0)
    u = env.unwrapped
    lo, hi = u.boundary
    z = u.obj_init_pos[2]
    u._set_obj_pose([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), z])
    assert u.failure_state() == (False, pytest.approx(min(hi - lo) / 2, abs=2e-3))
    u._set_obj_pose([hi[0] + 0.05, 0.5 * (lo[1] + hi[1]), z])
    obs, r, term, trunc, info = env.step(np.zeros(4))
    assert info["cost"] == 1.0 and info["failure"] and term and not trunc
    assert r == 0.0 and not info["success"]
    assert info["failure_distance"] == pytest.approx(-0.05, abs=5e-3)
    with pytest.raises(FailureBenchError, match="reset"):
        env.step(np.zeros(4))


def test_object_on_wall_costs_and_free_object_does_not(envs):
    env = envs[WALL]
    env.reset(seed=0)
    u = env.unwrapped
    lo, hi, z = geometry.WALL_LOW, geometry.WALL_HIGH, u.obj_init_pos[2]
    u._set_obj_pose([0.1, lo[1] - 0.02 - 0.01, z])  # 1 cm gap to the wall face
    failure, dist = u.failure_state()
    assert not failure and dist == pytest.approx(0.01, abs=1e-3)
    u._set_obj_pose([0.1, lo[1] - 0.02 + 0.002, z])  # pressed 2 mm into the wall
    assert u.failure_state()[0]
    env.reset(seed=0)  # hand parked 20 cm up; object slides at 1 m/s into the free end face
    u._set_obj_pose([lo[0] - 0.02 - 0.01, 0.5 * (lo[1] + hi[1]), z], [1.0, 0.0, 0.0])
    for _ in range(10):
        obs, r, term, trunc, info = env.step(np.zeros(4))
        if term:
            break
    assert term and info["cost"] == 1.0 and r == 0.0 and info["failure_distance"] <= 0.0


def test_wall_model_matches_geometry_and_sits_below_the_gripper_base(envs):
    """The XML edits took effect (low, deep wall), and at the drag height the gripper base
    passes above the wall top, so it cannot shield the object from the free end face."""
    env = envs[WALL]
    env.reset(seed=0)
    u = env.unwrapped
    m, d = u.model, u.data
    assert np.allclose(m.body("wall").pos, geometry.WALL_POS)
    assert all(np.allclose(m.geom_size[g], geometry.WALL_HALF) for g in u.wall_geoms)
    assert np.allclose(u.wall_box[0], geometry.WALL_LOW)
    assert np.allclose(u.wall_box[1], geometry.WALL_HIGH)
    u._settle_hand_at([geometry.WALL_LOW[0] - 0.1, 0.6, 0.05], steps=60)
    base = [
        g
        for g in range(m.ngeom)
        if m.geom_bodyid[g] == m.body("right_hand").id
        and (m.geom_contype[g] or m.geom_conaffinity[g])
    ]
    bottoms = []
    for g in base:
        rot = d.geom_xmat[g].reshape(3, 3)
        centre = d.geom_xpos[g] + rot @ m.geom_aabb[g][:3]
        bottoms.append(centre[2] - (np.abs(rot) @ m.geom_aabb[g][3:])[2])
    top = geometry.WALL_POS[2] + geometry.WALL_HALF[2]
    assert base and min(bottoms) > top + 0.01
    assert u.obj_init_pos[2] - m.geom_size[u.obj_geoms[0]][1] < top  # the object cannot pass over


def test_arm_resting_on_vase_costs(envs):
    env = envs[VASE]
    env.reset(seed=0)
    u = env.unwrapped
    vase = u.vase_pos
    assert u.failure_state()[0] is False and u.failure_state()[1] > 0.0
    u._settle_hand_at([vase[0], vase[1], 0.05], steps=60)  # lowered onto the vase top
    assert u.failure_state()[0]
    obs, r, term, trunc, info = env.step(np.array([0.0, 0.0, -1.0, 0.0]))
    assert term and info["cost"] == 1.0 and r == 0.0
    np.testing.assert_allclose(obs[11:14], vase)  # vase position in the 2nd-object slot


def test_truncation_at_time_limit():
    env = gym.make(PUSH, time_limit=5, max_episode_steps=None)
    env.reset(seed=1)
    for t in range(5):
        obs, r, term, trunc, info = env.step(np.zeros(4))
        assert not term and trunc == (t == 4)
    with pytest.raises(FailureBenchError):
        env.step(np.zeros(4))
    assert failurebench_sim.MAX_EPISODE_STEPS == 200
    env.close()


def test_bad_input_rejected(envs):
    env = envs[PUSH]
    env.reset(seed=0)
    with pytest.raises(FailureBenchError, match="4 finite"):
        env.step(np.zeros(3))
    with pytest.raises(FailureBenchError, match="4 finite"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(FailureBenchError, match="start"):
        env.reset(seed=0, options={"start": "bogus"})


def _positions(env, seed):
    obs, _ = env.reset(seed=seed)
    return np.r_[obs[4:7], obs[11:14], obs[36:39]]


def test_seeding_is_reproducible_and_ignores_global_rng(envs):
    for env in envs.values():
        np.random.seed(1)  # noqa: NPY002  (scramble the legacy global RNG on purpose)
        a = _positions(env, 7)
        np.random.seed(12345)  # noqa: NPY002
        np.random.uniform(size=100)  # noqa: NPY002
        b = _positions(env, 7)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, _positions(env, 8))
        env.reset()  # unseeded resets keep randomising
        goals = {tuple(np.round(_positions(env, s)[-3:], 6)) for s in range(5)}
        assert len(goals) == 5, "goal must not be frozen"


def test_seeding_matches_across_processes(envs):
    code = (
        "import json, gymnasium as gym, failurebench_sim, numpy as np\n"
        "np.random.seed(99)\n"
        "out = {}\n"
        "for t in failurebench_sim.TASK_IDS:\n"
        "    o, _ = gym.make(t).reset(seed=7)\n"
        "    out[t] = o.tolist()\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    other = json.loads(res.stdout.strip().splitlines()[-1])
    for tid, env in envs.items():
        np.testing.assert_array_equal(env.reset(seed=7)[0], np.array(other[tid]))


@pytest.mark.parametrize("tid", failurebench_sim.TASK_IDS)
def test_near_failure_start_is_safe_but_close(envs, tid):
    env = envs[tid]
    for seed in range(3):
        obs, info = env.reset(seed=seed, options={"start": "near_failure"})
        assert info["start"] == "near_failure" and not info["failure"]
        assert 0.0 < info["failure_distance"] < 0.06
        obs2, info2 = env.reset(seed=seed, options={"start": "near_failure"})
        np.testing.assert_array_equal(obs, obs2)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs(mode):
    venv = gym.make_vec(PUSH, num_envs=2, vectorization_mode=mode)
    obs, info = venv.reset(seed=[3, 4])
    assert obs.shape == (2, 39) and not np.allclose(obs[0], obs[1])
    for _ in range(3):
        obs, r, term, trunc, info = venv.step(np.zeros((2, 4), dtype=np.float32))
    assert obs.shape == (2, 39) and r.shape == (2,)
    np.testing.assert_array_equal(info["cost"], [0.0, 0.0])
    assert info["failure_distance"].shape == (2,)
    venv.close()
