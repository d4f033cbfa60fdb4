"""The vectorised MetaWorld internals in FailureBenchEnv give MetaWorld's own results."""

import gymnasium as gym
import numpy as np
import pytest
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from scipy.spatial.transform import Rotation

from failurebench_sim import TASK_IDS, policies
from failurebench_sim.core import matrix_to_quat_xyzw


def test_matrix_to_quat_matches_scipy() -> None:
    for m in Rotation.random(2000, random_state=0).as_matrix():
        np.testing.assert_allclose(
            matrix_to_quat_xyzw(m), Rotation.from_matrix(m).as_quat(), atol=1e-12
        )


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_fast_paths_match_metaworld(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    stock = next(c for c in type(env).__mro__ if c.__module__.startswith("metaworld.envs"))
    expert, rng = policies.get(env_id, "expert"), np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    for _ in range(120):
        action = np.clip(expert.act(obs) + rng.normal(0.0, 0.3, 4), -1.0, 1.0)
        obs, _, terminated, truncated, _ = env.step(action)
        obj_id = env._get_id_main_object()
        assert env.touching_object(obj_id) == SawyerXYZEnv.touching_object(env, obj_id)
        # two code paths (ours vs scipy's): equal up to rounding, which differs by CPU
        np.testing.assert_allclose(
            env._get_quat_objects()[:4], stock._get_quat_objects(env)[:4], rtol=1e-12, atol=1e-15
        )
        if terminated or truncated:
            break
    env.close()
