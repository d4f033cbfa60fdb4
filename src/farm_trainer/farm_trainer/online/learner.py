"""The PPO learner fed by executed transitions, independent of where they come from.

``OnlineTrainer``'s vector-env loop is one producer of transitions; a trainer node fed by the
arbiter's decisions over ROS is another. Both hand a ``Rollout`` to ``PPOLearner.update``:
GAE on scaled rewards (bootstrap on truncation), the optional cost hook, the PPO update, and a
policy version that counts updates (every transition names the version that proposed it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from farm_policies import CheckpointError, TanhGaussianActor, ValueNet, instantiate
from farm_trainer.online.cost import CostHook
from farm_trainer.online.gae import compute_gae
from farm_trainer.online.ppo import PPOBatch, PPOConfig, PPOUpdater
from farm_trainer.online.rollout import Rollout, learned_field, policy_mask

LEARNER_KIND = "online_trainer"


@dataclass(frozen=True)
class Transition:
    """One executed step of one env (or of the robot)."""

    obs: np.ndarray
    proposed: np.ndarray  # the task policy's proposal
    action: np.ndarray  # what ran (the recovery action where ``replaced``)
    reward: float
    cost: float
    terminated: bool
    truncated: bool
    next_obs: np.ndarray
    replaced: bool = False
    score: float = float("nan")
    policy_version: int = 0


def rollout_from_transitions(transitions: Sequence[Transition]) -> Rollout:
    """A (T, 1) rollout of consecutive transitions of one stream (log-probs and values empty:
    ``PPOLearner.annotate`` fills them)."""
    if not transitions:
        raise ValueError("no transitions")
    t0 = transitions[0]
    ro = Rollout.empty(len(transitions), 1, int(np.size(t0.obs)), int(np.size(t0.action)))
    for t, tr in enumerate(transitions):
        ro.obs[t, 0], ro.next_obs[t, 0] = tr.obs, tr.next_obs
        ro.proposed[t, 0], ro.actions[t, 0] = tr.proposed, tr.action
        ro.rewards[t, 0], ro.costs[t, 0] = tr.reward, tr.cost
        ro.terminated[t, 0], ro.truncated[t, 0] = tr.terminated, tr.truncated
        ro.replaced[t, 0], ro.scores[t, 0] = tr.replaced, tr.score
    return ro


class PPOLearner:
    """Actor, critic, PPO optimisers, batch building, policy version, checkpoint state."""

    def __init__(
        self,
        actor: TanhGaussianActor,
        critic: ValueNet,
        config: PPOConfig | None = None,
        total_updates: int | None = None,
        cost_hook: CostHook | None = None,
    ) -> None:
        self.actor, self.critic = actor.train(), critic.train()
        self.cfg = config or PPOConfig()
        self.ppo = PPOUpdater(actor, critic, self.cfg, total_updates)
        self.cost_hook = cost_hook

    @property
    def policy_version(self) -> int:
        """Number of PPO updates applied to the actor (0 = the initial policy)."""
        return self.ppo.n_updates

    @torch.no_grad()
    def annotate(self, ro: Rollout) -> Rollout:
        """Fill log pi(a | s) of the learned actions (``PPOConfig.learn_actions``), V(s) and
        V(s') with the current networks (in place)."""
        T, n = ro.shape
        obs, actions = ro.flat("obs"), ro.flat(learned_field(self.cfg.learn_actions))
        ro.logp[:] = self.actor.log_prob(obs, actions).reshape(T, n).numpy()
        ro.values[:] = self.critic(obs).reshape(T, n).numpy()
        ro.next_values[:] = self.critic(ro.flat("next_obs")).reshape(T, n).numpy()
        return ro

    def make_batch(self, ro: Rollout) -> PPOBatch:
        """GAE on scaled rewards (less ``replaced_penalty`` where the gate replaced the action;
        bootstrap on truncation), then the cost hook, then flatten."""
        p = self.cfg
        rewards = (
            ro.rewards - p.replaced_penalty * ro.replaced if p.replaced_penalty else ro.rewards
        )
        adv, ret = compute_gae(
            rewards * p.reward_scale, ro.values, ro.next_values,
            ro.terminated, ro.truncated, p.gamma, p.gae_lambda,
        )  # fmt: skip
        cost_adv = None
        if self.cost_hook is not None:
            adv = self.cost_hook(ro, adv)
            cost_adv = getattr(self.cost_hook, "cost_advantages", None)
        return PPOBatch(
            obs=ro.flat("obs"), actions=ro.flat(learned_field(p.learn_actions)),
            logp=ro.flat("logp"),
            advantages=adv.reshape(-1), returns=ret.reshape(-1), values=ro.flat("values"),
            cost_advantages=None if cost_adv is None else cost_adv.reshape(-1),
            policy_mask=policy_mask(ro, p.learn_actions),
        )  # fmt: skip

    def update(self, ro: Rollout) -> dict[str, float]:
        """One PPO update on an annotated rollout; the policy version advances by one."""
        return self.ppo.update(self.make_batch(ro), hook=self.cost_hook)

    # ------------------------------------------------------------------ checkpoint state
    def modules(self) -> dict[str, Any]:
        """Tensors to save: networks, flattened optimiser states, a stateful cost hook."""
        out: dict[str, Any] = {"actor": self.actor, "value": self.critic}
        for name, sd in self.ppo.optimizer_states().items():
            out[f"opt_{name}"] = _flatten_optimizer(sd)[0]
        if isinstance(self.cost_hook, torch.nn.Module):
            out["cost_hook"] = self.cost_hook.state_dict()
        return out

    def header(self) -> dict[str, Any]:
        opt_meta = {n: _flatten_optimizer(sd)[1] for n, sd in self.ppo.optimizer_states().items()}
        return {"kind": LEARNER_KIND, "ppo_n_updates": self.ppo.n_updates, "optimizers": opt_meta}

    def load(self, sds: dict[str, Any], header: dict[str, Any]) -> None:
        """Restore what ``modules``/``header`` saved (raises CheckpointError on another kind)."""
        if header.get("kind") != LEARNER_KIND:
            raise CheckpointError("not an online-trainer checkpoint")
        self.actor.load_state_dict(instantiate(sds, header, "actor").state_dict())
        self.critic.load_state_dict(instantiate(sds, header, "value").state_dict())
        self.ppo.load_optimizer_states({
            name: _unflatten_optimizer(sds[f"opt_{name}"], meta)
            for name, meta in header["optimizers"].items()
        })  # fmt: skip
        if "cost_hook" in sds and isinstance(self.cost_hook, torch.nn.Module):
            self.cost_hook.load_state_dict(sds["cost_hook"])
        self.ppo.n_updates = int(header["ppo_n_updates"])


def _flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            (tensors if isinstance(v, Tensor) else scalars)[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in {**tensors, **meta["scalars"]}.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}
