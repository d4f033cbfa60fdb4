"""A tiny 2-D point-reaching task with noisy scripted demos, for offline-stage tests."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from farm_trainer.offline.pipeline import OfflineConfig


class PointReach(gym.Env):
    """2-D point, obs (pos, goal), a in [-1,1]^2, pos += 0.1 a; r = -|pos - goal|; success < 0.05."""

    observation_space = spaces.Box(-2, 2, (4,), np.float32)
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def __init__(self, horizon: int = 30) -> None:
        self.horizon = horizon

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.concatenate([self.pos, self.goal]).astype(np.float32)

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1, 1), -2, 2).astype(np.float32)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.goal))
        success = dist < 0.05
        info = {"success": success, "cost": 0.0}
        return self._obs(), -dist + 10.0 * success, success, self.t >= self.horizon, info


def demos(episodes: int = 20, noise: float = 0.3, seed: int = 0):
    from failurebench_sim.datasets import Dataset

    env, rng = PointReach(), np.random.default_rng(seed)
    cols = {
        k: []
        for k in (
            "observations",
            "actions",
            "rewards",
            "costs",
            "terminated",
            "truncated",
            "episode_ids",
            "next_observations",
        )
    }
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done = False
        while not done:
            a = np.clip(3.0 * (obs[2:] - obs[:2]) + noise * rng.standard_normal(2), -1, 1).astype(
                np.float32
            )
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(cols, (obs, a, r, 0.0, term, trunc, ep, nxt), strict=True):
                cols[k].append(v)
            obs, done = nxt, term or trunc
    dtypes = dict(
        rewards=np.float32, costs=np.float32, terminated=bool, truncated=bool, episode_ids=np.int64
    )
    arrays = {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in cols.items()}
    return Dataset(**arrays, metadata={"env_id": "PointReach", "kind": "task", "format_version": 1})


def tiny_config(**kw) -> OfflineConfig:
    base = dict(
        num_policies=2, bc_steps=300, bc_hidden=64, bc_depth=2, bc_lr=1e-3,
        critic_steps=200, critic_hidden=64, critic_depth=2, critic_lr=1e-3,
        value_steps=100, value_hidden=64, value_depth=2,
        dyn_steps=100, dyn_hidden=64, dyn_depth=2, dyn_members=3,
        ppo_steps=40, eval_step=10, ope_states=128, ope_horizon=5,
        bc_batch_size=128, critic_batch_size=128, ppo_batch_size=128,
        eval_episodes=3, progress=False,
    )  # fmt: skip
    return OfflineConfig(**{**base, **kw})
