"""The experiment pipeline of one task: FailureBench data -> offline -> world model -> online.

Stages, in order (``STAGES``), each skipped when its output exists (resume at stage
granularity; an interrupted online run continues from its last checkpoint):

    data              data/{task_demos,recovery_demos,expert}.npz
    offline_task      offline_task/      Uni-O4 BC ensemble -> offline PPO (task demos)
    offline_recovery  offline_recovery/  the same pipeline on recovery demos
    failures          data/{failures,heldout}.npz   noisy roll-outs of the offline task policy
    world_model       world_model/world_model.safetensors   task demos + failures (Eq. 4-9)
    qrisk             world_model/qrisk.safetensors         Recovery RL's critic (recrl only)
    calibration       calibration/{calibration,latency}.json  held-out "failure within H"
                      (+ eps_safe.json: the per-task threshold when ``gate.eps_rule`` is set)
    online            online/<method>_s<seed>/  PPO from the SAME offline checkpoints
    evaluate          offline_task/eval_init.json, online/<run>/eval_final.json

Every stage appends a line to ``stage_log.jsonl`` (``status``: ran | skipped).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from farm_policies.checkpoint import atomic_write
from farm_trainer.experiments.config import ExperimentConfig

STAGES = (
    "data",
    "offline_task",
    "offline_recovery",
    "failures",
    "world_model",
    "qrisk",
    "calibration",
    "online",
    "evaluate",
)
STAGE_LOG = "stage_log.jsonl"


def log_line(msg: str) -> None:
    """Default progress log: stdout, flushed (the benchmark log is a file)."""
    print(msg, flush=True)


class PipelineError(RuntimeError):
    """A stage cannot run (missing input of an earlier stage, bad stage name)."""


def write_json(path: Path, obj: Any) -> None:
    """Atomic, strict-JSON write (NaN/inf become null)."""
    text = json.dumps(_finite(obj), indent=2, default=_default)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _finite(o: Any) -> Any:
    if isinstance(o, float | np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def task_name(task: str) -> str:
    """``FailureBench/BoundedPush-v0`` -> ``BoundedPush-v0`` (the run-directory name)."""
    return task.split("/")[-1]


def run_name(method: str, seed: int) -> str:
    return f"{method}_s{seed}"


class TaskPipeline:
    """All stages of one task under ``runs_dir/<experiment>/<task>/``."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        task: str,
        runs_dir: str | Path = "runs",
        progress: bool = False,
        log: Callable[[str], None] = log_line,
    ) -> None:
        from failurebench_sim.datasets import resolve_env_id

        self.cfg, self.task, self.env_id = cfg, task, resolve_env_id(task)
        self.root = Path(runs_dir) / cfg.name / task_name(task)
        self.progress, self.log = progress, log
        self.data_dir = self.root / "data"
        self.offline_task_dir = self.root / "offline_task"
        self.offline_recovery_dir = self.root / "offline_recovery"
        self.wm_dir = self.root / "world_model"
        self.calib_dir = self.root / "calibration"
        self.online_dir = self.root / "online"

    # ------------------------------------------------------------------ paths
    def data_path(self, name: str) -> Path:
        return self.data_dir / f"{name}.npz"

    @property
    def task_actor_path(self) -> Path:
        return self.offline_task_dir / "actor.safetensors"

    @property
    def recovery_actor_path(self) -> Path:
        return self.offline_recovery_dir / "actor.safetensors"

    @property
    def world_model_path(self) -> Path:
        return self.wm_dir / "world_model.safetensors"

    @property
    def qrisk_path(self) -> Path:
        return self.wm_dir / "qrisk.safetensors"

    @property
    def eps_safe_path(self) -> Path:
        return self.calib_dir / "eps_safe.json"

    @property
    def eps_safe(self) -> float:
        """C_H threshold: ``gate.eps_safe``, or the calibrated per-task value (``gate.eps_rule``)."""
        if self.cfg.gate.eps_rule is None:
            return self.cfg.gate.eps_safe
        self._require(self.eps_safe_path)
        return float(read_json(self.eps_safe_path)["eps_safe"])

    def run_dir(self, method: str, seed: int) -> Path:
        return self.online_dir / run_name(method, seed)

    def _require(self, *paths: Path) -> None:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise PipelineError(f"{self.task}: missing input(s) {missing}; run the earlier stages")

    # ------------------------------------------------------------------ driver
    def run(self, stages: Iterable[str] = STAGES) -> None:
        """Run the selected stages in pipeline order."""
        stages = set(stages)
        unknown = stages - set(STAGES)
        if unknown:
            raise PipelineError(f"unknown stage(s) {sorted(unknown)}; choose from {STAGES}")
        torch.set_num_threads(1)
        for stage in STAGES:
            if stage in stages:
                getattr(self, f"stage_{stage}")()

    def _step(self, stage: str, item: str, outputs: list[Path], fn: Callable[[], Any]) -> None:
        """Run ``fn`` unless all ``outputs`` exist; log the outcome to ``stage_log.jsonl``."""
        label = f"{task_name(self.task)} {stage}{'/' + item if item else ''}"
        if all(p.exists() for p in outputs):
            self._log_stage(stage, item, "skipped", 0.0)
            self.log(f"[pipeline] {label}: done already, skipped")
            return
        self.log(f"[pipeline] {label}: running")
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        self._log_stage(stage, item, "ran", dt)
        self.log(f"[pipeline] {label}: finished in {dt:.1f} s")

    def _log_stage(self, stage: str, item: str, status: str, seconds: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        row = {
            "stage": stage,
            "item": item,
            "status": status,
            "seconds": round(seconds, 3),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        with open(self.root / STAGE_LOG, "a") as f:
            f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ (a) data
    def stage_data(self) -> None:
        from failurebench_sim import datasets as ds

        d = self.cfg.data

        def demos() -> None:
            noise = ds.demo_noise(self.env_id) if d.demo_noise is None else d.demo_noise
            data = ds.collect(self.env_id, "expert", n_episodes=d.task_demos, noise_std=noise,
                              seed=d.seed, kind="task", progress=self.progress)  # fmt: skip
            ds.save_dataset(self.data_path("task_demos"), data)

        def recovery() -> None:
            data = ds.collect(self.env_id, "recovery", n_episodes=d.recovery_demos, seed=d.seed + 10_000,
                              start="near_failure", kind="recovery", progress=self.progress)  # fmt: skip
            ds.save_dataset(self.data_path("recovery_demos"), data)

        def expert() -> None:
            data = ds.collect(self.env_id, "expert", n_episodes=d.expert_episodes,
                              seed=d.seed + 900_000, kind="task", progress=self.progress)  # fmt: skip
            ds.save_dataset(self.data_path("expert"), data)

        self._step("data", "task_demos", [self.data_path("task_demos")], demos)
        self._step("data", "recovery_demos", [self.data_path("recovery_demos")], recovery)
        self._step("data", "expert", [self.data_path("expert")], expert)

    # ------------------------------------------------------------------ (b) offline
    def _offline(self, kind: str, demos: str, out: Path, overrides: dict[str, Any]) -> None:
        from failurebench_sim.datasets import load_dataset
        from farm_trainer.offline.pipeline import REPORT, OfflineConfig, run_offline

        def run() -> None:
            self._require(self.data_path(demos))
            cfg = OfflineConfig(kind=kind, progress=self.progress, **overrides)
            run_offline(load_dataset(self.data_path(demos)), out, cfg, task=self.env_id)
            (out / ".done").write_text("ok\n")

        self._step(
            f"offline_{kind}", "", [out / "actor.safetensors", out / REPORT, out / ".done"], run
        )

    def stage_offline_task(self) -> None:
        self._offline("task", "task_demos", self.offline_task_dir, dict(self.cfg.offline))

    def stage_offline_recovery(self) -> None:
        overrides = {**self.cfg.offline, **self.cfg.offline_recovery}
        self._offline("recovery", "recovery_demos", self.offline_recovery_dir, overrides)

    # ------------------------------------------------------------------ failure data
    def stage_failures(self) -> None:
        from failurebench_sim import datasets as ds

        d = self.cfg.data
        noise = ds.failure_noise(self.env_id) if d.failure_noise is None else d.failure_noise

        def collect(name: str, n: int, seed: int, start: str = "reset") -> Callable[[], None]:
            def run() -> None:
                if d.failure_policy == "offline":
                    from failurebench_sim.cli import CheckpointPolicy

                    self._require(self.task_actor_path)
                    policy: Any = CheckpointPolicy(self.task_actor_path)
                    policy_name = f"offline:{self.task_actor_path}"
                else:
                    policy, policy_name = "expert", "expert"
                data = ds.collect(self.env_id, policy, n_transitions=n, noise_std=noise, seed=seed,
                                  start=start, kind="failure", policy_name=policy_name,
                                  progress=self.progress)  # fmt: skip
                ds.save_dataset(self.data_path(name), data)

            return run

        self._step("failures", "failures", [self.data_path("failures")],
                   collect("failures", d.failure_transitions, d.seed + 20_000))  # fmt: skip
        if d.near_failure_transitions > 0:
            self._step("failures", "failures_near", [self.data_path("failures_near")],
                       collect("failures_near", d.near_failure_transitions, d.seed + 30_000,
                               start="near_failure"))  # fmt: skip
        self._step("failures", "heldout", [self.data_path("heldout")],
                   collect("heldout", d.heldout_transitions, d.seed + 500_000))  # fmt: skip

    # ------------------------------------------------------------------ (c) world model, Q-risk
    def stage_world_model(self) -> None:
        from failurebench_sim.datasets import load_dataset
        from farm_safety_critic.losses import LossConfig
        from farm_trainer.safety.train_world_model import (
            WorldModelTrainConfig,
            metrics_path,
            train_world_model,
        )

        wm = self.cfg.world_model

        def run() -> None:
            names = ("task_demos", "failures", "heldout")
            self._require(*(self.data_path(n) for n in names))
            overrides = dict(wm.train)
            if "loss" in overrides:
                overrides["loss"] = LossConfig(**overrides["loss"])
            tcfg = WorldModelTrainConfig(
                **{"gamma_risk": self.cfg.gate.gamma_risk, "eps_safe": self.cfg.gate.eps_safe,
                   "horizon": self.cfg.gate.horizon, **overrides}
            )  # fmt: skip
            train_world_model(
                self.safety_training_data(),
                wm.steps, wm.batch, wm.seed, self.world_model_path, tcfg,
                eval_dataset=load_dataset(self.data_path("heldout")), progress=self.progress,
                header={"task": self.env_id, "experiment": self.cfg.name},
            )  # fmt: skip

        out = [self.world_model_path, metrics_path(self.world_model_path)]
        self._step("world_model", "", out, run)

    def safety_training_data(self) -> list[Any]:
        """Task demos + failure data (+ near-failure-start failure data when configured)."""
        from failurebench_sim.datasets import load_dataset

        names = ["task_demos", "failures"]
        if self.cfg.data.near_failure_transitions > 0:
            names.append("failures_near")
        self._require(*(self.data_path(n) for n in names))
        return [load_dataset(self.data_path(n)) for n in names]

    def stage_qrisk(self) -> None:
        if "recrl" not in self.cfg.methods:
            return
        from failurebench_sim.datasets import load_dataset
        from farm_policies.checkpoint import load_actor_value
        from farm_trainer.safety.train_qrisk import QRiskTrainConfig, metrics_path, train_qrisk

        q = self.cfg.qrisk

        def run() -> None:
            self._require(self.task_actor_path, self.data_path("failures"))
            actor = load_actor_value(self.task_actor_path)[0].eval()
            tcfg = QRiskTrainConfig(**{"eps_safe": self.cfg.gate.qrisk_eps_safe,
                                       "label_horizon": self.cfg.gate.horizon, **q.train})  # fmt: skip
            train_qrisk(
                self.safety_training_data(),
                q.steps, q.batch, q.seed, self.qrisk_path, tcfg,
                policy=lambda obs: actor.act(obs, deterministic=True),
                eval_dataset=load_dataset(self.data_path("heldout")), progress=self.progress,
                header={"task": self.env_id, "experiment": self.cfg.name},
            )  # fmt: skip

        self._step("qrisk", "", [self.qrisk_path, metrics_path(self.qrisk_path)], run)

    # ------------------------------------------------------------------ (d) calibration
    def safety_gate(self, task_actor: Any = None, eps_safe: float | None = None):
        """FARM's SafetyGate (C_H, Eq. 10-11) over the offline task policy and recovery policy."""
        from farm_policies.checkpoint import load_actor_value
        from farm_safety_critic.gate import build_gate

        if task_actor is None:
            task_actor = load_actor_value(self.task_actor_path)[0].eval()
        g = self.cfg.gate
        eps = self.eps_safe if eps_safe is None else eps_safe
        return build_gate(self.world_model_path, task_actor, self.recovery_actor_path,
                          eps_safe=eps, horizon=g.horizon, gamma_risk=g.gamma_risk)  # fmt: skip

    def qrisk_gate(self):
        from farm_safety_critic.qrisk import build_qrisk_gate

        return build_qrisk_gate(
            self.qrisk_path, self.recovery_actor_path, eps_safe=self.cfg.gate.qrisk_eps_safe
        )

    def stage_calibration(self) -> None:
        def run() -> None:
            self._require(self.world_model_path, self.recovery_actor_path, self.task_actor_path,
                          self.data_path("heldout"), self.data_path("expert"))  # fmt: skip
            write_json(self.calib_dir / "calibration.json", self.calibrate())

        def run_qrisk() -> None:
            self._require(self.qrisk_path, self.data_path("heldout"), self.data_path("expert"))
            write_json(self.calib_dir / "qrisk.json", self.calibrate_qrisk())

        def latency() -> None:
            self._require(self.world_model_path, self.data_path("heldout"))
            write_json(self.calib_dir / "latency.json", self.gate_latency())

        def choose_eps() -> None:
            self._require(self.world_model_path, self.recovery_actor_path, self.task_actor_path,
                          self.data_path("heldout"), self.data_path("expert"))  # fmt: skip
            write_json(self.eps_safe_path, self.choose_eps_safe())

        if self.cfg.gate.eps_rule is not None:
            self._step("calibration", "eps_safe", [self.eps_safe_path], choose_eps)
        self._step("calibration", "scores", [self.calib_dir / "calibration.json"], run)
        if "recrl" in self.cfg.methods:
            self._step("calibration", "qrisk", [self.calib_dir / "qrisk.json"], run_qrisk)
        self._step("calibration", "latency", [self.calib_dir / "latency.json"], latency)

    def choose_eps_safe(self) -> dict[str, Any]:
        """``calibration.choose_eps_safe`` with C_H of the offline task policy (as the gate scores
        at the start of fine-tuning) on held-out noisy roll-outs and on the scripted expert."""
        from failurebench_sim.datasets import load_dataset
        from farm_safety_critic import calibration as cal

        g = self.cfg.gate
        heldout = load_dataset(self.data_path("heldout"))
        expert = load_dataset(self.data_path("expert"))
        gate = self.safety_gate(eps_safe=g.eps_safe)  # scores do not depend on the threshold
        return cal.choose_eps_safe(
            cal.score_dataset(gate.scores, heldout), cal.failure_within(heldout, g.horizon),
            cal.score_dataset(gate.scores, expert), **g.eps_rule,
        )  # fmt: skip

    def _score_report(self, scorer: Any, eps_safe: float) -> dict[str, Any]:
        """Scorer vs "IR failure within H" on held-out roll-outs + firing rate on the expert."""
        from failurebench_sim.datasets import load_dataset
        from farm_safety_critic import calibration as cal

        h = self.cfg.gate.horizon
        heldout = load_dataset(self.data_path("heldout"))
        expert = load_dataset(self.data_path("expert"))
        res = _calibration_or_error(lambda: cal.evaluate(scorer, heldout, h, eps_safe).as_dict())
        res["expert_firing_rate"] = cal.gate_firing_rate(
            scorer, expert.observations, expert.actions, eps_safe
        )
        return res

    def calibrate(self) -> dict[str, Any]:
        """World-model C_H: through the task policy (as the gate scores) and open-loop along the
        logged actions (the model alone), on held-out noisy roll-outs."""
        from failurebench_sim.datasets import load_dataset
        from farm_safety_critic import calibration as cal

        g = self.cfg.gate
        heldout = load_dataset(self.data_path("heldout"))
        gate = self.safety_gate()
        logged = cal.logged_action_c_h(gate.world_model, heldout, g.horizon, g.gamma_risk)
        labels = cal.failure_within(heldout, g.horizon)
        return {
            "horizon": g.horizon,
            "gamma_risk": g.gamma_risk,
            "heldout": {"n": len(heldout),
                        "n_failure_episodes": int(heldout.episode_failures().sum())},
            "world_model_c_h": self._score_report(gate.scores, gate.eps_safe),
            "world_model_logged_actions": _calibration_or_error(
                lambda: cal.calibrate(logged, labels, gate.eps_safe, g.horizon).as_dict()
            ),
        }  # fmt: skip

    def calibrate_qrisk(self) -> dict[str, Any]:
        """Recovery RL's Q_risk(s, logged a) against the same labels (ablation ``recrl``)."""
        return {"qrisk": self._score_report(self.qrisk_gate().scores, self.cfg.gate.qrisk_eps_safe)}

    def gate_latency(self, batches: tuple[int, ...] = (1, 16)) -> dict[str, Any]:
        """p50 / p99 wall time of one ``SafetyGate.__call__`` (torch.set_num_threads(1))."""
        from failurebench_sim.datasets import load_dataset

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            gate = self.safety_gate()
            obs_all = load_dataset(self.data_path("heldout")).observations
            actor = gate.task_policy
            rng = np.random.default_rng(0)
            out: dict[str, Any] = {"threads": 1, "calls": self.cfg.latency_calls}
            for b in batches:
                obs = obs_all[rng.integers(0, len(obs_all), b)]
                with torch.no_grad():
                    proposed = actor(torch.as_tensor(obs)).numpy()
                for _ in range(100):  # warm caches and the CPU clock before timing
                    gate(obs, proposed)
                times, replaced = [], 0
                for _ in range(self.cfg.latency_calls):
                    t0 = time.perf_counter()
                    d = gate(obs, proposed)
                    times.append(time.perf_counter() - t0)
                    replaced += int(d.replaced.sum())
                ms = 1e3 * np.asarray(times)
                out[f"batch{b}"] = {
                    "batch": b,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p99_ms": float(np.percentile(ms, 99)),
                    "replaced_frac": replaced / (b * self.cfg.latency_calls),
                }
            return out
        finally:
            torch.set_num_threads(threads)

    # ------------------------------------------------------------------ (e) online
    def make_filter(self, method: str, seed: int) -> Callable[[Any], Any] | None:
        """``make_filter(actor)`` for ``OnlineTrainer``; the gate sees the LIVE task actor."""
        if method == "unio4":
            return None
        if method == "farm":
            self._require(self.world_model_path, self.recovery_actor_path)
            return lambda actor: self.safety_gate(actor)
        if method == "recrl":
            self._require(self.qrisk_path, self.recovery_actor_path)
            return lambda actor: self.qrisk_gate()
        if method == "mppi":
            from farm_safety_critic.mppi import MPPIConfig, build_mppi_gate

            self._require(self.world_model_path)
            g = self.cfg.gate
            hp = {"eps_safe": self.eps_safe, "horizon": g.horizon, "gamma_risk": g.gamma_risk}
            mcfg = MPPIConfig(**{**hp, **g.mppi})
            return lambda actor: build_mppi_gate(self.world_model_path, actor, mcfg, seed, **hp)
        raise PipelineError(f"unknown method {method!r}")

    def stage_online(self, seeds: Iterable[int] | None = None) -> None:
        for seed in self.cfg.seeds if seeds is None else seeds:
            for method in self.cfg.methods:
                out = self.run_dir(method, seed)
                self._step("online", run_name(method, seed), [out / "policy_final.safetensors"],
                           lambda m=method, s=seed: self.online_run(m, s))  # fmt: skip

    def online_run(self, method: str, seed: int) -> dict[str, Any]:
        """One fine-tuning run; resumes from ``checkpoints/last.safetensors`` when present."""
        from farm_trainer.online import OnlineConfig, OnlineTrainer, PPOConfig

        self._require(self.task_actor_path)
        o = self.cfg.online
        out = self.run_dir(method, seed)
        cfg = OnlineConfig(
            env_id=self.env_id, total_steps=o.steps, n_envs=o.n_envs, seed=seed,
            out_dir=str(out), init=str(self.task_actor_path), checkpoint_every=o.checkpoint_every,
            method=method, progress=self.progress, tensorboard=o.tensorboard,
            ppo=PPOConfig(**o.ppo),
        )  # fmt: skip
        trainer = OnlineTrainer(cfg, make_filter=self.make_filter(method, seed))
        try:
            if trainer.resume():
                self.log(f"[pipeline]   resumed {out} at {trainer.counters['env_steps']} steps")
            return trainer.train()
        finally:
            trainer.close()

    # ------------------------------------------------------------------ evaluation
    def stage_evaluate(self, seeds: Iterable[int] | None = None) -> None:
        self._step("evaluate", "init", [self.offline_task_dir / "eval_init.json"],
                   lambda: self.evaluate(self.task_actor_path, self.offline_task_dir / "eval_init.json"))  # fmt: skip
        self._step("evaluate", "bc", [self.offline_task_dir / "eval_bc.json"],
                   lambda: self.evaluate(self.bc_actor_path(), self.offline_task_dir / "eval_bc.json"))  # fmt: skip
        for seed in self.cfg.seeds if seeds is None else seeds:
            for method in self.cfg.methods:
                run = self.run_dir(method, seed)
                self._step("evaluate", run_name(method, seed), [run / "eval_final.json"],
                           lambda r=run: self.evaluate(r / "policy_final.safetensors", r / "eval_final.json"))  # fmt: skip

    def bc_actor_path(self) -> Path:
        """The BC member that offline PPO improved into ``actor.safetensors`` (same seeds)."""
        report = read_json(self.offline_task_dir / "offline_report.json")
        member = int(((report.get("stages") or {}).get("ppo") or {}).get("chosen_member", 0))
        return self.offline_task_dir / f"bc_{member}.safetensors"

    def evaluate(self, policy_path: Path, out: Path) -> None:
        """Deterministic evaluation over ``evaluation.episodes`` fixed reset seeds."""
        from farm_policies import load_policy
        from farm_trainer.online import evaluate_policy

        self._require(policy_path)
        e = self.cfg.evaluation
        res = evaluate_policy(load_policy(policy_path), self.env_id, e.episodes, e.seed0,
                              max_steps=e.max_steps or 100_000)  # fmt: skip
        write_json(out, {"policy": str(policy_path), "seed0": e.seed0, **res})


def _calibration_or_error(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from farm_safety_critic.calibration import CalibrationError

    try:
        return fn()
    except CalibrationError as e:
        return {"error": str(e)}


def run_experiment(
    cfg: ExperimentConfig,
    runs_dir: str | Path = "runs",
    stages: Iterable[str] = STAGES,
    progress: bool = False,
    log: Callable[[str], None] = log_line,
    after_round: Callable[[], None] | None = None,
) -> list[TaskPipeline]:
    """Run the selected stages for every task of ``cfg``.

    The offline stages run task by task; then online runs (each followed by its evaluation)
    go seed-major, so a long experiment has a complete tasks x methods table for the first
    seed early. ``after_round()`` is called after each seed round (e.g. to refresh results).
    """
    stages = list(stages)
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise PipelineError(f"unknown stage(s) {sorted(unknown)}; choose from {STAGES}")
    pipes = [TaskPipeline(cfg, t, runs_dir, progress, log) for t in cfg.tasks]
    for pipe in pipes:
        pipe.root.mkdir(parents=True, exist_ok=True)
        write_json(pipe.root / "experiment_config.json", cfg.to_dict())
        pipe.run([s for s in stages if s not in ("online", "evaluate")])
    if "online" in stages or "evaluate" in stages:
        for seed in cfg.seeds:
            for pipe in pipes:
                if "online" in stages:
                    pipe.stage_online([seed])
                if "evaluate" in stages:
                    pipe.stage_evaluate([seed])
            if after_round is not None:
                after_round()
    return pipes
