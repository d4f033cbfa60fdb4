"""Online PPO fine-tuning (Uni-O4 online stage) with a pluggable action filter (FARM gate).

Each step the task policy proposes a_task ~ pi_task(.|s); the ``ActionFilter`` decides the
executed action (Eq. 11: the task action, or e.g. the recovery action when C_H > eps_safe).
PPO then learns on the EXECUTED transitions: the stored old log-prob and the ratio both use
log pi(a_executed | s), so replaced (recovery) transitions enter the task policy's update as
off-policy samples whose ratio the PPO clip bounds. This is what "pi_task is updated with the
same PPO objective using advantages computed from these safety-filtered transitions" requires.
``PPOConfig.learn_actions = "proposed"`` takes the ratio on the task policy's proposal instead
(Recovery RL's relabelling: the recovery is part of the environment the task policy acts in).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from failurebench_sim.atomic import write_json
from failurebench_sim.command import hold_still_if_nonfinite
from failurebench_sim.episodes import episode_success
from failurebench_sim.normalize import normalized_return_or_none
from farm_policies import (
    CheckpointError,
    TanhGaussianActor,
    ValueNet,
    instantiate,
    load_actor_value,
    load_checkpoint,
    save_checkpoint,
    save_policy,
)
from farm_policies.checkpoint import policy_header
from farm_safety_critic.filter import ActionFilter, PassThrough
from farm_trainer.logging_utils import RunLogger
from farm_trainer.online.cost import CostHook
from farm_trainer.online.envs import make_env, make_vector_env, real_next_obs, step_info
from farm_trainer.online.learner import PPOLearner
from farm_trainer.online.ppo import PPOBatch, PPOConfig
from farm_trainer.online.rollout import Rollout, learned_field

CHECKPOINT_NAME = "last.safetensors"
POLICY_NAME = "policy_final.safetensors"
INIT_CANDIDATES = (
    "task_policy.safetensors",
    "policy.safetensors",
    "actor.safetensors",
    "best.safetensors",
)


@dataclass
class OnlineConfig:
    """Online stage settings; ``ppo.batch_size`` env steps (over all envs) per update."""

    env_id: str = "FailureBench/BoundedPush-v0"
    total_steps: int = 200_000
    n_envs: int = 4
    seed: int = 0
    out_dir: str = "runs/online"
    init: str | None = None
    checkpoint_every: int = 10
    vectorization: str = "sync"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hidden: int = 256
    depth: int = 3
    method: str = "unio4"
    progress: bool = True
    tensorboard: bool = True
    ppo: PPOConfig = field(default_factory=PPOConfig)

    @property
    def steps_per_env(self) -> int:
        return max(1, self.ppo.batch_size // self.n_envs)

    @property
    def total_updates(self) -> int:
        return max(1, math.ceil(self.total_steps / (self.steps_per_env * self.n_envs)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OnlineConfig:
        d = dict(d)
        ppo = PPOConfig(**d.pop("ppo", {}))
        names = {f.name for f in fields(cls)}
        return cls(ppo=ppo, **{k: v for k, v in d.items() if k in names})


def resolve_init(path: str | Path) -> Path:
    """A policy checkpoint file, or a directory holding one (``INIT_CANDIDATES`` or a single
    ``*.safetensors``)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"--init {path} is neither a file nor a directory")
    for name in INIT_CANDIDATES:
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    raise CheckpointError(
        f"cannot pick a policy in {path}: expected one of {INIT_CANDIDATES} or exactly one "
        f"*.safetensors, found {[p.name for p in found]}"
    )


def load_value(path: str | Path, obs_dim: int | None = None) -> ValueNet:
    """The ``ValueNet`` in a checkpoint (module ``value``, else the only ValueNet module)."""
    sds, header = load_checkpoint(path)
    mods = header.get("modules", {})
    names = ["value"] if "value" in sds else [
        n for n, m in mods.items() if (m.get("config") or {}).get("class") == "ValueNet"
    ]  # fmt: skip
    if len(names) != 1:
        raise CheckpointError(f"{path}: expected one ValueNet module, found {names}")
    value = instantiate(sds, header, names[0])
    if not isinstance(value, ValueNet) or (obs_dim is not None and value.obs_dim != obs_dim):
        raise CheckpointError(
            f"{path}: module {names[0]!r} is not a ValueNet for obs_dim={obs_dim}"
        )
    return value


def initial_networks(
    obs_dim: int,
    act_dim: int,
    init: str | Path | None = None,
    hidden: int = 256,
    depth: int = 3,
    actor: TanhGaussianActor | None = None,
    critic: ValueNet | None = None,
) -> tuple[TanhGaussianActor, ValueNet]:
    """The actor and critic online fine-tuning starts from: given ones, else ``init``'s (a
    policy checkpoint, its ``value`` module or a ``value.safetensors`` beside it), else fresh; a
    fresh critic shares the actor's fixed (offline) observation normalisation."""
    if actor is None and init:
        path = resolve_init(init)
        actor, init_critic, _ = load_actor_value(path, obs_dim, act_dim)
        if init_critic is None and (path.parent / "value.safetensors").is_file():
            init_critic = load_value(path.parent / "value.safetensors", obs_dim)
        critic = critic or init_critic
    if actor is None:
        actor = TanhGaussianActor(obs_dim, act_dim, hidden, depth)
    if (actor.obs_dim, actor.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"actor dims ({actor.obs_dim}, {actor.act_dim}) != env ({obs_dim}, {act_dim})"
        )
    if critic is None:
        norm = actor.normalizer
        critic = ValueNet(
            obs_dim, actor.hidden, actor.depth, actor.activation,
            obs_mean=norm.obs_mean, obs_std=norm.obs_std,
        )  # fmt: skip
    return actor.train(), critic.train()


class OnlineTrainer:
    """Collect ``ppo.batch_size`` executed transitions, run a PPO update, log, checkpoint.

    ``action_filter`` (or ``make_filter(actor)`` for filters that need the live task actor,
    e.g. FARM's gate) chooses the executed actions; ``cost_hook`` sees every rollout's costs
    and returns the advantages PPO uses (PPO-Lagrangian and similar).
    """

    def __init__(
        self,
        config: OnlineConfig,
        action_filter: ActionFilter | None = None,
        cost_hook: CostHook | None = None,
        env_fns: list[Callable[[], gym.Env]] | None = None,
        actor: TanhGaussianActor | None = None,
        critic: ValueNet | None = None,
        make_filter: Callable[[TanhGaussianActor], ActionFilter] | None = None,
    ) -> None:
        self.cfg = cfg = config
        torch.manual_seed(cfg.seed)
        if env_fns is None:
            env_fns = [lambda: make_env(cfg.env_id, **cfg.env_kwargs) for _ in range(cfg.n_envs)]
        if len(env_fns) != cfg.n_envs:
            raise ValueError(f"got {len(env_fns)} env_fns for n_envs={cfg.n_envs}")
        self.envs = make_vector_env(env_fns, cfg.vectorization)
        self.obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        self.act_dim = int(np.prod(self.envs.single_action_space.shape))
        self.actor, self.critic = self._init_networks(actor, critic)
        self.learner = PPOLearner(self.actor, self.critic, cfg.ppo, cfg.total_updates, cost_hook)
        self.ppo = self.learner.ppo
        self.action_filter = (
            make_filter(self.actor) if make_filter else (action_filter or PassThrough())
        )
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_path = self.out_dir / "checkpoints" / CHECKPOINT_NAME
        self.counters = {
            "update": 0, "env_steps": 0, "episodes": 0, "ir_failure_episodes": 0,
            "failure_steps": 0, "successes": 0, "replaced_actions": 0, "nonfinite_actions": 0,
        }  # fmt: skip
        self.logger: RunLogger | None = None
        self._obs: np.ndarray | None = None

    @property
    def cost_hook(self) -> CostHook | None:
        """The learner's cost hook (settable after construction, e.g. by the method registry)."""
        return self.learner.cost_hook

    @cost_hook.setter
    def cost_hook(self, hook: CostHook | None) -> None:
        self.learner.cost_hook = hook

    # ---------------------------------------------------------------- setup
    def _init_networks(
        self, actor: TanhGaussianActor | None, critic: ValueNet | None
    ) -> tuple[TanhGaussianActor, ValueNet]:
        cfg = self.cfg
        return initial_networks(
            self.obs_dim, self.act_dim, cfg.init, cfg.hidden, cfg.depth, actor, critic
        )

    def _reset_envs(self) -> None:
        """Seed from (seed, update) so a resumed run restarts episodes deterministically."""
        n = self.cfg.n_envs
        self._obs, _ = self.envs.reset(seed=self.cfg.seed + 10_007 * self.counters["update"])
        self._ep_return = np.zeros(n)
        self._ep_cost = np.zeros(n, dtype=bool)
        self._ep_success = np.zeros(n, dtype=bool)

    # ---------------------------------------------------------------- rollout
    @torch.no_grad()
    def collect(self) -> tuple[Rollout, dict[str, Any]]:
        """Run ``steps_per_env`` vector steps; return the rollout and per-update episode stats."""
        T, n = self.cfg.steps_per_env, self.cfg.n_envs
        ro = Rollout.empty(T, n, self.obs_dim, self.act_dim)
        finished: dict[str, list[float]] = {"return": [], "ir_failure": [], "success": []}
        learned = getattr(ro, learned_field(self.cfg.ppo.learn_actions))  # a view into ro
        for t in range(T):
            obs = np.asarray(self._obs, dtype=np.float32).reshape(n, self.obs_dim)
            obs_t = torch.as_tensor(obs)
            proposed = self.actor.act(obs_t).numpy()
            decision = self.action_filter(obs, proposed).validate(n, self.act_dim)
            executed, n_bad = hold_still_if_nonfinite(np.clip(decision.actions, -1.0, 1.0))
            self.counters["nonfinite_actions"] += n_bad
            ro.obs[t], ro.proposed[t], ro.actions[t] = obs, proposed, executed
            ro.logp[t] = self.actor.log_prob(obs_t, torch.as_tensor(learned[t])).numpy()
            ro.values[t] = self.critic(obs_t).numpy()
            next_obs, reward, term, trunc, info = self.envs.step(executed)
            cost = step_info(info, "cost", n)
            success = step_info(info, "success", n) > 0
            ro.next_obs[t] = real_next_obs(next_obs, info).reshape(n, self.obs_dim)
            ro.rewards[t], ro.costs[t] = reward, cost
            ro.terminated[t], ro.truncated[t] = term, trunc
            ro.replaced[t], ro.scores[t] = decision.replaced, decision.score
            self._ep_return += reward
            self._ep_cost |= cost > 0
            self._ep_success |= success
            ro.policy_version[t] = self.learner.policy_version
            for i in np.flatnonzero(np.logical_or(term, trunc)):
                finished["return"].append(float(self._ep_return[i]))
                finished["ir_failure"].append(float(self._ep_cost[i]))
                finished["success"].append(
                    float(episode_success(self._ep_success[i], self._ep_cost[i]))
                )
                self._ep_return[i], self._ep_cost[i], self._ep_success[i] = 0.0, False, False
            self._obs = next_obs
        ro.next_values[:] = self.critic(ro.flat("next_obs")).reshape(T, n).numpy()
        c = self.counters
        c["env_steps"] += T * n
        c["episodes"] += len(finished["return"])
        c["ir_failure_episodes"] += int(sum(finished["ir_failure"]))
        c["successes"] += int(sum(finished["success"]))
        c["failure_steps"] += int((ro.costs > 0).sum())
        c["replaced_actions"] += int(ro.replaced.sum())
        return ro, finished

    def make_batch(self, ro: Rollout) -> PPOBatch:
        """``PPOLearner.make_batch``: GAE, the cost hook, flattened."""
        return self.learner.make_batch(ro)

    # ---------------------------------------------------------------- loop
    def train(self, max_updates: int | None = None) -> dict[str, Any]:
        """Train until ``total_steps`` (or ``max_updates`` more updates, to simulate a stop)."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        if self.logger is None:
            self.logger = RunLogger(
                self.out_dir, cfg.tensorboard, ("update", self.counters["update"])
            )
        self._write_config()
        if self._obs is None:
            self._reset_envs()
        bar = tqdm(total=cfg.total_steps, initial=min(self.counters["env_steps"], cfg.total_steps),
                   disable=not cfg.progress, unit="step", dynamic_ncols=True)  # fmt: skip
        done_updates, last_row = 0, {}
        while self.counters["update"] < cfg.total_updates and (
            max_updates is None or done_updates < max_updates
        ):
            t0 = time.perf_counter()
            ro, finished = self.collect()
            t_collect = time.perf_counter() - t0
            observe = getattr(self.action_filter, "observe_episodes", None)
            if observe is not None:  # a filter that adapts to the episodes' outcomes
                observe(finished["ir_failure"])
            learn = getattr(self.action_filter, "observe_rollout", None)
            if learn is not None:  # a filter that learns from the executed transitions
                learn(ro)
            stats = self.learner.update(ro)
            self.counters["update"] += 1
            done_updates += 1
            last_row = self._row(ro, finished, stats, t_collect, time.perf_counter() - t0)
            self.logger.log(last_row, step=self.counters["env_steps"])
            bar.update(ro.rewards.size)
            bar.set_postfix(
                ret=f"{last_row['ep_return']:.1f}", irf=self.counters["ir_failure_episodes"]
            )
            if self.counters["update"] % cfg.checkpoint_every == 0:
                self.save()
        bar.close()
        if self.counters["update"] >= cfg.total_updates:
            self.save()
            save_policy(self.out_dir / POLICY_NAME, self.actor, self.critic,
                        meta=self._meta(), seed=cfg.seed)  # fmt: skip
        return {**self.counters, **last_row}

    def _row(self, ro: Rollout, fin: dict[str, list[float]], stats: dict[str, float],
             t_collect: float, t_total: float) -> dict[str, Any]:  # fmt: skip
        c = self.counters
        mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
        row: dict[str, Any] = {
            "update": c["update"], "env_steps": c["env_steps"], "episodes": c["episodes"],
            "ir_failure_episodes": c["ir_failure_episodes"], "failure_steps": c["failure_steps"],
            "ep_return": mean(fin["return"]),
            "ep_return_normalized": self._normalized(mean(fin["return"])),
            "success_rate": mean(fin["success"]), "ir_failure_rate": mean(fin["ir_failure"]),
            "episodes_this_update": len(fin["return"]),
            "replaced_frac": float(ro.replaced.mean()),
            "replaced_frac_total": c["replaced_actions"] / max(c["env_steps"], 1),
            "score_mean": float(np.nanmean(ro.scores)) if np.isfinite(ro.scores).any() else float("nan"),
            "cost_mean": float(ro.costs.mean()),
            "steps_per_s": ro.rewards.size / max(t_collect, 1e-9),
            "update_s": t_total,
            **stats,
        }  # fmt: skip
        hook_stats = getattr(self.cost_hook, "last_stats", None) or {}
        row.update({f"cost_hook/{k}": v for k, v in hook_stats.items()})
        filter_stats = getattr(self.action_filter, "last_stats", None) or {}
        row.update({f"filter/{k}": v for k, v in filter_stats.items()})
        return row

    def _normalized(self, raw: float) -> float:
        norm = normalized_return_or_none(self.cfg.env_id, raw) if math.isfinite(raw) else None
        return float("nan") if norm is None else float(norm)

    def _meta(self) -> dict[str, Any]:
        return {"stage": "online", "method": self.cfg.method, "env_id": self.cfg.env_id,
                "reward_scale": self.cfg.ppo.reward_scale, **self.counters}  # fmt: skip

    def _write_config(self) -> None:
        write_json(self.out_dir / "config.json", self.cfg.to_dict())

    # ---------------------------------------------------------------- checkpoints
    def save(self, path: str | Path | None = None) -> Path:
        """The learner's state (networks, optimisers, cost hook), torch RNG and counters."""
        path = Path(path or self.ckpt_path)
        modules = {**self.learner.modules(), "rng": {"torch": torch.get_rng_state()}}
        if isinstance(self.action_filter, torch.nn.Module):  # a filter with state (its buffers)
            modules["action_filter"] = self.action_filter.state_dict()
        header = {
            **policy_header(self.actor, self._meta(), self.cfg.seed),
            **self.learner.header(),
            "counters": dict(self.counters),
            "config": self.cfg.to_dict(),
        }
        return save_checkpoint(path, modules, header)

    def resume(self, path: str | Path | None = None) -> bool:
        """Restore from ``path`` (default: the run's last checkpoint); False if there is none."""
        path = Path(path or self.ckpt_path)
        if not path.exists():
            return False
        sds, header = load_checkpoint(path, self.obs_dim, self.act_dim)
        try:
            self.learner.load(sds, header)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from e
        torch.set_rng_state(sds["rng"]["torch"])
        if "action_filter" in sds and isinstance(self.action_filter, torch.nn.Module):
            self.action_filter.load_state_dict(sds["action_filter"])
        self.counters.update({k: int(v) for k, v in header["counters"].items()})
        self._obs = None
        if self.logger is not None:
            self.logger.close()
        self.logger = RunLogger(
            self.out_dir, self.cfg.tensorboard, ("update", self.counters["update"])
        )
        return True

    def close(self) -> None:
        self.envs.close()
        if self.logger is not None:
            self.logger.close()
