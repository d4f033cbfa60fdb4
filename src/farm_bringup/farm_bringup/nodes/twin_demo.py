"""``farm-twin-demo``: the README's main job — the node graph on the MuJoCo twin, headless.

Runs sim -> policy -> safety -> arbiter composed in one process, in lockstep with ground-truth
object poses, from the parameters in config/sim.yaml and the shipped checkpoints: a bounded
number of episodes with the task policy exploring (stochastic), once with the gate (the task's
calibrated eps_safe) and once without it (eps_safe = 1e6: the arbiter never switches), from the
same checkpoint and seeds. Prints every episode, the comparison, and writes ``summary.json``
and ``c_h.png`` to ``--out``. ``-p node.param:=value`` sets parameters as ``farm-graph run``
does (another method's gate, e.g. farm-runout-seq on Bounded Soccer: src/farm_bringup/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import QOS, stamp_ns, unpack_vector
from farm_bringup.demo_report import RunRecorder, summarize, write_outputs
from farm_bringup.graph import (
    NODES,
    Override,
    load_config,
    mode_overrides,
    node_params,
    parse_override,
    repo_config,
)
from farm_bringup.nodes.compose import ComposedGraph
from farm_safety_critic.runout import MAX_SCORE

GRAPH = ("sim_node", "policy_node", "safety_node", "arbiter_node")
NO_GATE_EPS = 1e6  # the top of the eps_safe range: C_H never exceeds it
NO_GATE_HOLD_EPS = MAX_SCORE  # runout_hold_eps's top: the clipped run-out score never exceeds it


class Recorder(Node):
    """Subscribes what the summary needs; keeps it in a ``RunRecorder``."""

    def __init__(self, **kwargs) -> None:
        super().__init__("farm_demo_recorder", **kwargs)
        self.rec = RunRecorder()
        rel = QOS[rc.RELIABLE]
        self.create_subscription(JointState, rc.EPISODE_STATE, self._state, rel)
        self.create_subscription(JointState, rc.DECISION, self._decision, rel)
        self.create_subscription(DiagnosticArray, rc.EPISODE_EVENTS, self._event, rel)

    def _state(self, msg: JointState) -> None:
        ep, step = unpack_vector(msg, ("episode", "step"))
        self.rec.episode_of[stamp_ns(msg.header.stamp)] = (int(ep), int(step))

    def _decision(self, msg: JointState) -> None:
        score, rep, eps = unpack_vector(msg, ("score", "replaced", "eps_safe"))
        self.rec.decisions[stamp_ns(msg.header.stamp)] = (score, rep > 0.5, eps)
        self.rec.arrivals.append(time.monotonic())

    def _event(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            kv = {k.key: k.value for k in st.values}
            self.rec.events.append(
                (st.message, int(kv["episode"]), int(kv["step"]), float(kv["return"]))
            )


def run_graph(params: dict[str, dict], timeout_s: float) -> RunRecorder:
    """One composed run until the twin's ``max_episodes`` are done."""
    graph = ComposedGraph([NODES[n] for n in GRAPH], params)
    try:
        recorder = graph.add(Recorder(context=graph.context))
        graph.spin(timeout_s, until=graph.finished)
        finished = graph.finished()
        graph.spin(1.0)  # the last frame's events and decision
        if not finished:
            raise TimeoutError(f"the graph did not finish within {timeout_s:.0f} s")
        return recorder.rec
    finally:
        graph.close()


def finetune(
    config: Path,
    task: str,
    steps: int,
    seed: int,
    out: Path,
    start: str = "default",
    record: bool = True,
    timeout_s: float = 3600.0,
    overrides: Sequence[Override] = (),
    **trainer: object,
) -> dict:
    """Online FARM (or the gate ``overrides`` set) through the graph (lockstep, ground truth) on
    the shipped checkpoints until the trainer has ``steps`` transitions; prints each PPO update.
    Returns the trainer's last row, its checkpoint and the recording index."""
    names = (*GRAPH, "trainer_node", *(("recorder_node",) if record else ()))
    sections = load_config(config)
    overrides = [*mode_overrides(task, "lockstep", "ground_truth"), *overrides]
    params = {n: node_params(sections, n, overrides, config.parent) for n in names}
    params["sim_node"].update(max_episodes=0, seed=seed, start=start)
    params["policy_node"].update(deterministic=False, seed=seed)
    params["trainer_node"].update(output_dir=str(out / "trainer"), seed=seed, **trainer)
    if record:
        params["recorder_node"].update(output_dir=str(out / "recording"))
    graph = ComposedGraph([NODES[n] for n in names], params)
    t0, shown = time.perf_counter(), [0]
    try:
        node = next(n for n in graph.nodes if n.get_name() == "trainer_node")
        lrn = node.learner

        def progress() -> bool:
            row = node.last_row
            if row and row["update"] != shown[0]:
                shown[0] = row["update"]
                print(f"update {row['update']:>4}  steps {row['env_steps']:>7}  episodes "
                      f"{row['episodes']:>5}  IR failures {row['ir_failure_episodes']:>4}  return "
                      f"{row['ep_return']:7.2f}  replaced {row['replaced_frac']:6.1%}  "
                      f"kl {row.get('kl', float('nan')):.4f}", flush=True)  # fmt: skip
            return lrn.counters["transitions"] >= steps

        graph.spin(timeout_s, until=progress)
        wall = time.perf_counter() - t0
        result = {"counters": dict(lrn.counters), "last_row": dict(node.last_row),
                  "checkpoint": str(lrn.out / "checkpoints" / "last.safetensors"),
                  "journal": str(lrn.journal.path), "wall_s": wall,
                  "steps_per_s": lrn.counters["transitions"] / wall}  # fmt: skip
    finally:
        graph.close()
    if record:
        from farm_bringup.recording import INDEX, read_index

        result["recording_index"] = str(out / "recording" / INDEX)
        result["recorded_episodes"] = len(read_index(out / "recording" / INDEX))
    return result


def graph_params(
    config: Path,
    task: str,
    episodes: int,
    seed: int,
    eps: float | None,
    start: str = "default",
    checkpoint: str | None = None,
    overrides: Sequence[Override] = (),
) -> dict:
    """The demo graph's parameters: ``config`` with the lockstep / ground-truth mode, then
    ``overrides``; ``eps`` (when given) on safety and arbiter, and at ``NO_GATE_EPS`` no hold
    from farm-runout-seq's holding member either."""
    sections = load_config(config)
    overrides = [*mode_overrides(task, "lockstep", "ground_truth"), *overrides]
    params = {n: node_params(sections, n, overrides, config.parent) for n in GRAPH}
    params["sim_node"].update(max_episodes=episodes, seed=seed, start=start)
    params["policy_node"].update(deterministic=False, seed=seed)
    if checkpoint:  # e.g. the fine-tuned policy: the proposer and Eq. 10's rollout policy
        params["policy_node"]["checkpoint"] = params["safety_node"]["checkpoint"] = checkpoint
    for n in ("safety_node", "arbiter_node"):
        if eps is not None:
            params[n].update(eps_safe=eps, eps_safe_file="")
    if eps is not None and eps >= NO_GATE_EPS:
        params["safety_node"]["runout_hold_eps"] = NO_GATE_HOLD_EPS
    return params


def override_arg(text: str) -> tuple[str, Override]:
    """``-p``'s value: the text as given and its parsed override (argparse's usage error on a
    malformed one, with the reason)."""
    try:
        return text, parse_override(text)
    except (ValueError, yaml.YAMLError) as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="farm-twin-demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="FailureBench/BoundedPush-v0")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--start",
        default="near_failure",
        choices=("default", "near_failure"),
        help="episode start; near_failure (default) starts next to the failure set, where the "
        "gate has work to do (from the default start the shipped Bounded Push policy rarely "
        "fails within a few episodes)",
    )
    ap.add_argument("--config", type=Path, default=None, help="default: config/sim.yaml")
    ap.add_argument("--out", type=Path, default=Path("results/twin_demo"))
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument(
        "--finetune-steps",
        type=int,
        default=0,
        help="first fine-tune online (FARM, lockstep, the trainer and recorder nodes) for this "
        "many steps from the default start, then compare with the fine-tuned policy",
    )
    ap.add_argument("--batch-steps", type=int, default=1024, help="PPO batch when fine-tuning")
    ap.add_argument("-p", "--set", dest="overrides", action="append", default=[],
                    type=override_arg, metavar="NODE.PARAM:=VALUE",
                    help="a parameter, as farm-graph run -p (repeat it)")  # fmt: skip
    a = ap.parse_args(argv)
    overrides = [o for _, o in a.overrides]
    config = a.config or repo_config()
    runs, tuned = {}, None
    if a.finetune_steps:
        print(f"== fine-tuning {a.task} online for {a.finetune_steps} steps (FARM through the "
              f"graph; PPO every {a.batch_steps})")  # fmt: skip
        tuned = finetune(config, a.task, a.finetune_steps, a.seed, a.out / "finetune",
                         overrides=overrides, batch_steps=a.batch_steps)  # fmt: skip
        c = tuned["counters"]
        print(f"fine-tuned to policy v{c['update']} in {tuned['wall_s']:.0f} s "
              f"({tuned['steps_per_s']:.0f} steps/s): {c['episodes']} episodes, "
              f"{c['ir_failure_episodes']} with an IR failure; recording index "
              f"{tuned['recording_index']} ({tuned['recorded_episodes']} episodes)")  # fmt: skip
    for label, eps in (("gate", None), ("no_gate", NO_GATE_EPS)):
        params = graph_params(config, a.task, a.episodes, a.seed, eps, a.start,
                              tuned["checkpoint"] if tuned else None, overrides)  # fmt: skip
        t0 = time.perf_counter()
        rec = run_graph(params, a.timeout)
        wall = time.perf_counter() - t0
        s = summarize(rec.episodes())
        s["wall_s"], s["steps_per_s"] = wall, len(rec.decisions) / wall
        s["steady_steps_per_s"] = rec.steady_rate()
        s["eps_safe"] = float(rec.score_trace()["eps_safe"][0]) if rec.decisions else None
        runs[label] = (s, rec)
        print(f"\n== {label} (eps_safe {s['eps_safe']:g}): {a.episodes} episodes in {wall:.1f} s")
        print(f"{'ep':>3} {'return':>8} {'success':>7} {'IR fail':>7} {'replaced':>8}")
        for e in s["per_episode"]:
            print(f"{e['episode']:>3} {e['ret']:8.2f} {e['success']!s:>7} "
                  f"{e['ir_failure']!s:>7} {e['replaced']:>8}")  # fmt: skip
    g, n = runs["gate"][0], runs["no_gate"][0]
    print(f"\nIR failures with the gate {g['ir_failures']}/{g['episodes']}, without "
          f"{n['ir_failures']}/{n['episodes']}; return {g['return_mean']:.2f} vs "
          f"{n['return_mean']:.2f}; recovery ran on {g['replaced_frac']:.1%} of steps")  # fmt: skip
    summary = {"task": a.task, "episodes": a.episodes, "seed": a.seed, "start": a.start,
               "config": str(config), "finetune": tuned,
               "overrides": [text for text, _ in a.overrides],
               "gate": g, "no_gate": n}  # fmt: skip
    write_outputs(a.out, summary, runs["gate"][1].score_trace())
    print(f"wrote {a.out / 'summary.json'} and {a.out / 'c_h.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
