"""A tiny 1-D "move to target" env with a failure region, for tests and smoke runs.

x_{t+1} = x_t + 0.1 a, reward -|x - 0.5|, cost 1 and termination when x < -0.4 (the IR
failure), success when |x - 0.5| < 0.05, truncation after 20 steps. Registered as
``FARMToy/Reach1D-v0``. Obs = [x, 0.5 - x].
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

TOY_ID = "FARMToy/Reach1D-v0"
TARGET, FAIL_X, STEP, HORIZON = 0.5, -0.4, 0.1, 20


class ToyReachEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, TARGET - self.x], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.3, 0.2))
        return self._obs(), {}

    def step(self, action):
        self.x += STEP * float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        failure = self.x < FAIL_X
        success = abs(self.x - TARGET) < 0.05
        info = {"cost": float(failure), "failure": failure, "success": float(success)}
        return self._obs(), -abs(self.x - TARGET), failure, False, info


if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point=ToyReachEnv, max_episode_steps=HORIZON)
