"""Uni-O4 offline stage: Q/V critics -> V_MC -> dynamics (OPE) -> BC ensemble -> offline PPO.

Every stage writes its output into ``out_dir`` and is skipped on a re-run when that output
exists (resume). Outputs: ``q.safetensors`` (double Q + expectile V), ``value.safetensors``
(Monte-Carlo V, the online critic's initialisation), ``dynamics.safetensors``,
``bc_{i}.safetensors``, ``actor.safetensors`` (the policy handed to online fine-tuning, saved
together with the MC value net: the best-OPE improved member, or with ``handover='guarded'``
the result of ``offline.handover``, the improved member then kept in ``improved.safetensors``)
and ``offline_report.json``. The same pipeline trains the task policy and the
recovery policy (``kind='recovery'``, recovery demonstrations); see Sec. III-A of the paper.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from failurebench_sim.atomic import write_json
from farm_policies.actor import TanhGaussianActor, ValueNet
from farm_policies.checkpoint import (
    CheckpointError,
    instantiate,
    load_actor_value,
    load_checkpoint,
    save_checkpoint,
    save_policy,
)

from .bc_ensemble import build_ensemble, fit_bc_ensemble
from .data import Transitions, to_transitions
from .evaluation import evaluate_actor, make_eval_env, normalized_return
from .handover import choose_handover
from .model_return import (
    RewardEnsemble,
    fit_reward,
    model_returns,
    replay_bias,
    replay_error,
    replay_errors,
)
from .offline_ppo import OfflinePPO, OfflinePPOConfig
from .ope import OPE, DynamicsEnsemble, fit_dynamics
from .q_fitting import DoubleQ, IQLCritic, fit_iql
from .value_fitting import fit_value_mc, mc_returns

ACTOR = "actor.safetensors"
KINDS = ("task", "recovery")
HANDOVERS = ("ope", "guarded")
TOLERANCES = ("replay", "bias")
"""the guarded rule's tolerance: ``model_return.replay_error`` or ``replay_bias``"""
REPORT = "offline_report.json"


@dataclass
class OfflineConfig:
    """Offline-stage hyper-parameters. Uni-O4 defaults unless noted (steps sized for a 2-core CPU)."""

    kind: str = "task"
    """'task' (task demos) or 'recovery' (recovery demos); only changes metadata and evaluation"""
    seed: int = 0
    gamma: float = 0.99
    reward_scale: float = 0.1
    """rewards are multiplied by this before fitting Q/V (Uni-O4 online 'number' scaling)"""
    obs_std_floor: float = 1e-2
    # BC ensemble (Uni-O4: 4 members, 256x3, lr 1e-4, batch 512, alpha_bc 0.1, 4e5 steps)
    num_policies: int = 4
    bc_steps: int = 20_000
    bc_hidden: int = 256
    bc_depth: int = 3
    bc_lr: float = 1e-4
    bc_batch_size: int = 512
    alpha_bc: float = 0.1
    bc_action_bound: float = 0.99
    # IQL Q/V (Uni-O4: Q 1024x2, V 512x3, 2e6 steps; here 256x3 for CPU)
    critic_steps: int = 20_000
    critic_hidden: int = 256
    critic_depth: int = 3
    critic_lr: float = 1e-4
    critic_batch_size: int = 512
    omega: float = 0.7
    tau: float = 0.005
    target_update_freq: int = 2
    # Monte-Carlo V (Uni-O4: 512x3, 2e6 steps; 256x3 here to match the online critic)
    value_steps: int = 10_000
    value_hidden: int = 256
    value_depth: int = 3
    value_lr: float = 1e-4
    # Dynamics ensemble for OPE (Uni-O4/MOBILE: 7 members, 200x4, lr 1e-3)
    dyn_members: int = 5
    dyn_hidden: int = 200
    dyn_depth: int = 3
    dyn_lr: float = 1e-3
    dyn_steps: int = 5_000
    dyn_batch_size: int = 256
    ope_states: int = 512
    ope_horizon: int = 10
    # Offline PPO (Uni-O4: 1e4 steps)
    ppo_steps: int = 2_000
    ppo_lr: float = 1e-4
    ppo_batch_size: int = 512
    clip: float = 0.25
    adv_omega: float = 0.7
    grad_clip: float = 0.5
    eval_step: int = 100
    # Hand-over to online fine-tuning (offline/handover.py)
    handover: str = "ope"
    """'ope': Uni-O4's rule, the improved member with the best OPE score; 'guarded': the improved
    policy only if a second evaluation (model returns, no shared critic) finds it better than
    the best BC member under every model member by more than that evaluation's error on the
    demonstrations, else that BC member"""
    reward_steps: int = 3_000
    """reward-ensemble fitting steps (guarded hand-over only)"""
    handover_horizon: int = 25
    handover_z: float = 1.645
    """one-sided confidence of the guarded rule's lower bound (1.645: 95 %)"""
    handover_tolerance: str = "replay"
    """what the lower bound must exceed: 'replay', the model returns' mean absolute error on
    replayed demonstration windows (the error of ONE return); 'bias', the size of their mean
    signed error (the systematic part, which two policies' returns share)"""
    # Short environment evaluation for the report
    eval_episodes: int = 5
    eval_max_steps: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.handover not in HANDOVERS:
            raise ValueError(f"handover must be one of {HANDOVERS}, got {self.handover!r}")
        if self.handover_z < 0:
            raise ValueError(f"handover_z must be >= 0, got {self.handover_z}")
        if self.handover_tolerance not in TOLERANCES:
            raise ValueError(
                f"handover_tolerance must be one of {TOLERANCES}, got {self.handover_tolerance!r}"
            )
        if self.num_policies < 1:
            raise ValueError(f"num_policies must be >= 1, got {self.num_policies}")
        for name in (
            "bc_steps",
            "critic_steps",
            "value_steps",
            "dyn_steps",
            "ppo_steps",
            "eval_step",
            "reward_steps",
            "handover_horizon",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _loss_summary(hist: list[float], tail: int = 100) -> dict[str, float]:
    return {"first": float(hist[0]), "last_mean": float(np.mean(hist[-tail:])), "steps": len(hist)}


class OfflinePipeline:
    """Runs (or resumes) the offline stage for one dataset into ``out_dir``."""

    def __init__(
        self,
        dataset: Any,
        out_dir: str | os.PathLike,
        config: OfflineConfig,
        task: str | None = None,
        env_fn: Callable[[], gym.Env] | None = None,
    ) -> None:
        self.cfg, self.task, self.env_fn = config, task, env_fn
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.data: Transitions = to_transitions(dataset, config.reward_scale, config.obs_std_floor)
        report_path = self.out / REPORT
        self.report: dict[str, Any] = (
            json.loads(report_path.read_text()) if report_path.exists() else {}
        )
        self.report.setdefault("stages", {})
        self.resumed: list[str] = []
        self.chosen_member = 0
        self.handed = "improved"
        """what ``actor.safetensors`` holds: 'improved' or 'bc_<member>'"""

    # -- helpers ---------------------------------------------------------------------------
    def header(self, stage: str) -> dict[str, Any]:
        return {
            "obs_dim": self.data.obs_dim,
            "act_dim": self.data.act_dim,
            "stage": stage,
            "kind": self.cfg.kind,
            "task": self.task,
            "gamma": self.cfg.gamma,
            "reward_scale": self.cfg.reward_scale,
            "seed": self.cfg.seed,
        }

    def path(self, name: str) -> Path:
        return self.out / name

    def save_report(self) -> None:
        write_json(self.path(REPORT), self.report)

    def _load_module(self, path: Path, name: str, cls: type[torch.nn.Module]) -> Any:
        """Module ``name`` of checkpoint ``path`` rebuilt as ``cls`` from its header config."""
        sd, header = load_checkpoint(path, self.data.obs_dim, self.data.act_dim)
        conf = {k: v for k, v in header["modules"][name]["config"].items() if k != "class"}
        module = cls(**conf)
        try:
            module.load_state_dict(sd[name])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: module {name!r} does not match {conf}: {e}") from e
        return module

    @staticmethod
    def _check_stage(path: Path, header: dict[str, Any], stage: str) -> None:
        """A resumed policy file must come from ``stage`` (not from another hand-over setting)."""
        found = header.get("meta", {}).get("stage")
        if found != stage:
            raise CheckpointError(
                f"{path} was written by stage {found!r}, not {stage!r} (an output directory of "
                "another offline.handover setting?): use a clean output directory"
            )

    def _seed(self, offset: int) -> int:
        seed = self.cfg.seed * 7919 + offset
        torch.manual_seed(seed)
        return seed

    # -- stages ----------------------------------------------------------------------------
    def critics(self) -> IQLCritic:
        """IQL double Q + expectile V -> q.safetensors."""
        cfg, path = self.cfg, self.path("q.safetensors")
        if path.exists():
            q = self._load_module(path, "q", DoubleQ)
            sd, header = load_checkpoint(path, self.data.obs_dim, self.data.act_dim)
            v = instantiate(sd, header, "v")
            self.resumed.append("critics")
            return IQLCritic(q=q, q_target=copy.deepcopy(q).requires_grad_(False), v=v)
        seed = self._seed(1)
        critic = IQLCritic.build(self.data, cfg.critic_hidden, cfg.critic_depth)
        t0 = time.time()
        hist = fit_iql(
            critic, self.data, cfg.critic_steps, cfg.gamma, cfg.omega, cfg.critic_lr,
            cfg.critic_batch_size, cfg.tau, cfg.target_update_freq, seed, cfg.progress,
        )  # fmt: skip
        save_checkpoint(
            path, {"q": critic.q, "v": critic.v}, {**self.header("critics"), "omega": cfg.omega}
        )
        self.report["stages"]["critics"] = {
            "q_loss": _loss_summary(hist["q_loss"]),
            "v_loss": _loss_summary(hist["v_loss"]),
            "seconds": time.time() - t0,
        }
        self.save_report()
        return critic

    def value(self, critic: IQLCritic) -> ValueNet:
        """V_MC by return regression -> value.safetensors; truncated tails bootstrap from IQL V."""
        cfg, path = self.cfg, self.path("value.safetensors")
        if path.exists():
            sd, header = load_checkpoint(path, self.data.obs_dim)
            self.resumed.append("value")
            return instantiate(sd, header, "value")
        seed = self._seed(2)
        data = self.data
        with torch.no_grad():
            tail = critic.v(data.next_obs).numpy()
        returns = mc_returns(
            data.rewards.numpy(),
            data.terminated.numpy() > 0,
            data.episode_end.numpy(),
            cfg.gamma,
            tail,
        )
        value = ValueNet(
            data.obs_dim,
            cfg.value_hidden,
            cfg.value_depth,
            obs_mean=data.obs_mean,
            obs_std=data.obs_std,
        )
        t0 = time.time()
        hist = fit_value_mc(
            value,
            data.obs,
            torch.as_tensor(returns),
            cfg.value_steps,
            cfg.value_lr,
            cfg.critic_batch_size,
            seed,
            cfg.progress,
        )
        header = {
            **self.header("value"),
            "target": "monte_carlo_return",
            "truncation": "bootstrap_iql_v",
        }
        save_checkpoint(path, {"value": value}, header)
        self.report["stages"]["value"] = {
            "loss": _loss_summary(hist),
            "return_mean": float(returns.mean()),
            "return_max": float(returns.max()),
            "seconds": time.time() - t0,
        }
        self.save_report()
        return value

    def dynamics(self) -> DynamicsEnsemble:
        """Dynamics ensemble for OPE -> dynamics.safetensors."""
        cfg, path = self.cfg, self.path("dynamics.safetensors")
        if path.exists():
            self.resumed.append("dynamics")
            return self._load_module(path, "dynamics", DynamicsEnsemble)
        seed = self._seed(3)
        model = DynamicsEnsemble.for_data(self.data, cfg.dyn_members, cfg.dyn_hidden, cfg.dyn_depth)
        t0 = time.time()
        hist = fit_dynamics(
            model, self.data, cfg.dyn_steps, cfg.dyn_lr, cfg.dyn_batch_size, seed, cfg.progress
        )
        save_checkpoint(path, {"dynamics": model}, self.header("dynamics"))
        self.report["stages"]["dynamics"] = {
            "loss": _loss_summary(hist),
            "seconds": time.time() - t0,
        }
        self.save_report()
        return model

    def bc(self) -> list[TanhGaussianActor]:
        """Jointly trained BC ensemble -> bc_{i}.safetensors."""
        cfg = self.cfg
        paths = [self.path(f"bc_{i}.safetensors") for i in range(cfg.num_policies)]
        if all(p.exists() for p in paths):
            self.resumed.append("bc")
            return [load_actor_value(p, self.data.obs_dim, self.data.act_dim)[0] for p in paths]
        seed = self._seed(4)
        actors = build_ensemble(self.data, cfg.num_policies, cfg.bc_hidden, cfg.bc_depth, seed)
        t0 = time.time()
        hist = fit_bc_ensemble(
            actors, self.data, cfg.bc_steps, cfg.bc_lr, cfg.bc_batch_size, cfg.alpha_bc,
            cfg.bc_action_bound, seed, cfg.progress,
        )  # fmt: skip
        for i, (actor, p) in enumerate(zip(actors, paths, strict=True)):
            save_policy(p, actor, meta={**self.header("bc"), "member": i}, seed=cfg.seed)
        self.report["stages"]["bc"] = {
            "loss": [_loss_summary(h) for h in hist],
            "seconds": time.time() - t0,
        }
        self.save_report()
        return actors

    def improve(
        self,
        actors: list[TanhGaussianActor],
        critic: IQLCritic,
        value: ValueNet,
        dynamics: DynamicsEnsemble,
    ) -> TanhGaussianActor:
        """Offline PPO with OPE-gated behaviour replacement -> actor.safetensors (or
        improved.safetensors for the guarded hand-over)."""
        cfg = self.cfg
        path = self.path("improved.safetensors" if cfg.handover == "guarded" else ACTOR)
        if cfg.handover == "ope":
            self.report["stages"].pop("handover", None)
        if path.exists():
            self.resumed.append("ppo")
            actor, _, header = load_actor_value(path, self.data.obs_dim, self.data.act_dim)
            self._check_stage(path, header, "offline_ppo")
            self.chosen_member = int(header.get("meta", {}).get("member", 0))
            return actor
        seed = self._seed(5)
        for p in critic.q.parameters():
            p.requires_grad_(False)
        ope = OPE.from_data(
            dynamics, critic.q.min_q, self.data, cfg.ope_states, cfg.ope_horizon, seed
        )
        ppo_cfg = OfflinePPOConfig(
            steps=cfg.ppo_steps, lr=cfg.ppo_lr, batch_size=cfg.ppo_batch_size, clip=cfg.clip,
            omega=cfg.adv_omega, grad_clip=cfg.grad_clip, eval_step=cfg.eval_step,
        )  # fmt: skip
        t0 = time.time()
        ppo = OfflinePPO(actors, critic.advantage, ope, ppo_cfg)
        hist = ppo.run(self.data, seed, cfg.progress)
        member, actor = ppo.best()
        self.chosen_member = member
        meta = {
            **self.header("offline_ppo"),
            "member": member,
            "ope_score": float(ppo.best_scores[member]),
        }
        save_policy(path, actor, value=value, meta=meta, seed=cfg.seed)
        losses = np.asarray(hist["loss"])
        self.report["stages"]["ppo"] = {
            "chosen_member": member,
            "ope_initial": ppo.initial_scores.tolist(),
            "ope_best": ppo.best_scores.tolist(),
            "ope_history": {"step": hist["ope_step"], "scores": hist["ope_scores"]},
            "replacements": ppo.replacements,
            "loss": {"first": losses[0].tolist(), "last_mean": losses[-100:].mean(0).tolist()},
            "seconds": time.time() - t0,
        }
        self.save_report()
        return actor

    def reward_model(self) -> RewardEnsemble:
        """Reward ensemble for the model-return evaluation -> reward.safetensors."""
        cfg, path = self.cfg, self.path("reward.safetensors")
        if path.exists():
            self.resumed.append("reward")
            return self._load_module(path, "reward", RewardEnsemble)
        seed = self._seed(6)
        model = RewardEnsemble.for_data(self.data, cfg.dyn_members, cfg.dyn_hidden)
        t0 = time.time()
        hist = fit_reward(model, self.data, cfg.reward_steps, cfg.dyn_lr, cfg.dyn_batch_size,
                          seed, cfg.progress)  # fmt: skip
        save_checkpoint(path, {"reward": model}, self.header("reward"))
        self.report["stages"]["reward"] = {"loss": _loss_summary(hist), "seconds": time.time() - t0}
        self.save_report()
        return model

    def handover(
        self,
        bc_actors: list[TanhGaussianActor],
        improved: TanhGaussianActor,
        value: ValueNet,
        dynamics: DynamicsEnsemble,
    ) -> TanhGaussianActor:
        """Guarded hand-over (``offline.handover``) -> actor.safetensors."""
        cfg, path = self.cfg, self.path(ACTOR)
        if cfg.handover == "ope":
            self.handed = "improved"
            return improved
        if path.exists():
            self.resumed.append("handover")
            saved, _, header = load_actor_value(path, self.data.obs_dim, self.data.act_dim)
            self._check_stage(path, header, "handover")
            meta = header["meta"]
            rule = meta.get("tolerance", "replay")  # files of before the rule existed: replay
            if rule != cfg.handover_tolerance:
                raise CheckpointError(
                    f"{path} was chosen with handover_tolerance {rule!r}, not"
                    f" {cfg.handover_tolerance!r}: use a clean output directory"
                )
            chosen = improved if meta["handover"] == "improved" else bc_actors[int(meta["member"])]
            if any(not torch.equal(a, b) for a, b in zip(saved.state_dict().values(),
                                                         chosen.state_dict().values(), strict=True)):  # fmt: skip
                raise CheckpointError(
                    f"{path} matches neither the improved policy nor its BC member"
                )
            self.handed = "improved" if chosen is improved else f"bc_{meta['member']}"
            return chosen
        reward = self.reward_model()
        t0 = time.time()
        rng = np.random.default_rng(self._seed(7))
        n = cfg.ope_states
        idx = rng.choice(len(self.data), size=n, replace=n > len(self.data))
        init = self.data.obs[torch.as_tensor(idx)]

        def returns(actor: TanhGaussianActor) -> torch.Tensor:
            return model_returns(actor, dynamics, reward, value, init, cfg.handover_horizon,
                                 cfg.gamma)  # fmt: skip

        errors = replay_errors(dynamics, reward, value, self.data, n, cfg.handover_horizon,
                               cfg.gamma, self._seed(8))  # fmt: skip
        replay, bias = replay_error(errors), replay_bias(errors)
        tolerance = replay if cfg.handover_tolerance == "replay" else bias
        decision = choose_handover([returns(a) for a in bc_actors], returns(improved),
                                   cfg.handover_z, tolerance)  # fmt: skip
        chosen = improved if decision.policy == "improved" else bc_actors[decision.bc_member]
        member = self.chosen_member if decision.policy == "improved" else decision.bc_member
        self.handed = "improved" if chosen is improved else f"bc_{member}"
        meta = {**self.header("handover"), "member": member, "handover": decision.policy,
                "tolerance": cfg.handover_tolerance}  # fmt: skip
        save_policy(path, chosen, value=value, meta=meta, seed=cfg.seed)
        self.report["stages"]["handover"] = {
            **decision.to_dict(), "tolerance_rule": cfg.handover_tolerance,
            "replay_error": replay, "replay_bias": bias, "seconds": time.time() - t0,
        }  # fmt: skip
        self.save_report()
        return chosen

    def evaluate(
        self,
        bc_actor: TanhGaussianActor,
        improved: TanhGaussianActor,
        handed: TanhGaussianActor | None = None,
    ) -> None:
        """Short deterministic evaluation of the chosen member before/after improvement, and of
        the handed-over policy where it is neither (another BC member)."""
        cfg = self.cfg
        if cfg.eval_episodes < 1:
            made = None
        elif self.env_fn is not None:
            made = (self.env_fn(), self.task or "custom")
        else:
            made = make_eval_env(self.task, cfg.seed) if self.task else None
        if made is None:
            self.report["evaluation"] = None
            return
        env, env_id = made
        options = (
            {"start": "near_failure"}
            if cfg.kind == "recovery" and env_id.startswith("FailureBench/")
            else None
        )
        demo_return = float(np.mean(self.data.episode_returns()))
        result: dict[str, Any] = {
            "env_id": env_id,
            "reset_options": options,
            "demo_return_mean": demo_return,
        }
        policies = [("bc", bc_actor), ("improved", improved)]
        if handed is not None and self.handed not in ("improved", f"bc_{self.chosen_member}"):
            policies.append(("handed_over", handed))
        if self.cfg.handover == "guarded":
            result["handed_over_policy"] = "improved" if self.handed == "improved" else "bc"
        for name, policy in policies:
            stats = evaluate_actor(
                policy, env, cfg.eval_episodes, 10_000 + cfg.seed * 100, options, cfg.eval_max_steps
            )
            stats["normalized_return"] = normalized_return(env_id, stats["return_mean"])
            stats["return_vs_demos"] = stats["return_mean"] / demo_return if demo_return else None
            result[name] = stats
        env.close()
        self.report["evaluation"] = result

    def run(self) -> dict[str, Any]:
        """All stages (skipping those already on disk); returns and writes the report."""
        t0 = time.time()
        d = self.data
        self.report.update(
            task=self.task,
            kind=self.cfg.kind,
            seed=self.cfg.seed,
            config=dataclasses.asdict(self.cfg),
            dataset={
                "transitions": len(d),
                "episodes": int(d.episode_end.sum()),
                "return_mean": float(np.mean(d.episode_returns())),
                "metadata": d.metadata,
            },
        )
        critic = self.critics()
        value = self.value(critic)
        dynamics = self.dynamics()
        actors = self.bc()
        bc_snapshots = [copy.deepcopy(a) for a in actors]  # improve() trains ``actors`` in place
        improved = self.improve(actors, critic, value, dynamics)
        handed = self.handover(bc_snapshots, improved, value, dynamics)
        self.evaluate(bc_snapshots[self.chosen_member], improved, handed)
        self.report["resumed_stages"] = self.resumed
        self.report["wall_time_s"] = time.time() - t0
        self.report["wall_time_total_s"] = (
            self.report.get("wall_time_total_s", 0.0) + time.time() - t0
        )
        self.save_report()
        return self.report


def run_offline(
    dataset: Any,
    out_dir: str | os.PathLike,
    config: OfflineConfig | None = None,
    task: str | None = None,
    env_fn: Callable[[], gym.Env] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the offline stage; see ``OfflinePipeline``."""
    return OfflinePipeline(dataset, out_dir, config or OfflineConfig(), task, env_fn).run()
