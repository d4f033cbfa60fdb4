"""Storage of one on-policy rollout of the vector env (T steps x n_envs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

LEARN_ACTIONS = {"executed": "actions", "proposed": "proposed", "own": "actions"}
"""``PPOConfig.learn_actions`` -> the rollout field PPO's ratio is taken on"""


def learned_field(learn_actions: str) -> str:
    """The rollout field holding the actions PPO learns on: ``executed`` (what ran: a recovery
    action enters as an off-policy sample), ``proposed`` (the task policy's own proposal;
    the recovery is then part of the environment, Recovery RL's action relabelling) or ``own``
    (what ran, the policy loss then only on the steps the task policy's action ran:
    ``policy_mask``)."""
    try:
        return LEARN_ACTIONS[learn_actions]
    except KeyError:
        raise ValueError(
            f"learn_actions must be one of {sorted(LEARN_ACTIONS)}, got {learn_actions!r}"
        ) from None


@dataclass
class Rollout:
    """Executed transitions; ``actions`` are executed (possibly replaced), ``proposed`` are the
    task policy's proposals, ``logp`` is log pi_old(a | s) of the learned actions
    (``learned_field``). All arrays are (T, n, ...)."""

    obs: np.ndarray
    next_obs: np.ndarray  # real next observation (final obs on episode end)
    proposed: np.ndarray
    actions: np.ndarray
    logp: np.ndarray
    rewards: np.ndarray  # raw environment reward
    costs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    replaced: np.ndarray
    scores: np.ndarray
    values: np.ndarray  # V(s_t) at collection time
    next_values: np.ndarray  # V(s_{t+1}) at collection time
    policy_version: np.ndarray  # (T, n) int: the task-policy version that proposed the action

    @classmethod
    def empty(cls, T: int, n: int, obs_dim: int, act_dim: int) -> Rollout:
        f = lambda *s: np.zeros((T, n, *s), dtype=np.float32)  # noqa: E731
        b = lambda: np.zeros((T, n), dtype=bool)  # noqa: E731
        return cls(
            obs=f(obs_dim), next_obs=f(obs_dim), proposed=f(act_dim), actions=f(act_dim),
            logp=f(), rewards=f(), costs=f(), terminated=b(), truncated=b(), replaced=b(),
            scores=np.full((T, n), np.nan, dtype=np.float32), values=f(), next_values=f(),
            policy_version=np.zeros((T, n), dtype=np.int64),
        )  # fmt: skip

    @property
    def shape(self) -> tuple[int, int]:
        return self.rewards.shape

    def flat(self, name: str) -> Tensor:
        """Field ``name`` as a float tensor with the (T, n) axes merged."""
        x = getattr(self, name)
        T, n = self.shape
        return torch.as_tensor(x.reshape(T * n, *x.shape[2:]), dtype=torch.float32)


def policy_mask(ro: Rollout, learn_actions: str) -> Tensor | None:
    """(T * n,) 1.0 where PPO's policy loss counts a step, 0.0 where not; None: every step.
    ``own``: only steps whose executed action was the task policy's (not replaced by the gate);
    they still enter the value loss and GAE."""
    if learn_actions != "own":
        return None
    return torch.as_tensor(~ro.replaced.reshape(-1), dtype=torch.float32)
