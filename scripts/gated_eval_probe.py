"""Return after fine-tuning with the gate on, as deployed, next to the policy alone.

The report's "return after fine-tuning" evaluates the fine-tuned task policy alone
(``stages.evaluate``). On the robot the policy never runs alone: the safety node and the
arbiter stay in the loop. For each task of a finished pipeline and each method it ran, this
evaluates the final policy on the evaluation's reset seeds (deterministic) alone and behind a
gate (a gated method's own, at the task's calibrated thresholds, C_H rolled out with the
fine-tuned policy itself; Uni-O4 behind the experiment's gated method's gate on that task), and
reports normalised return, IR-failure episodes and replaced actions. Uni-O4 behind the same gate shows what the gate alone
does to a policy that never trained with it. Writes results/gated_eval/<experiment>_s<seed>.csv.
    python scripts/gated_eval_probe.py --experiment farm_qrisk_g09_chosen --seed 5
"""

from __future__ import annotations

from farm_policies import load_policy
from farm_trainer.experiments.layout import run_dir, run_name, task_name
from farm_trainer.experiments.probe_cli import probe_parser, run_probe
from farm_trainer.online import evaluate_policy


def evaluate_run(ctx, method: str, seed: int, gate_method: str | None) -> dict:
    """``method``'s final policy of pipeline seed ``seed``, alone (``gate_method`` None) or
    behind ``gate_method``'s gate with C_H rolled out through that policy."""
    e = ctx.cfg.evaluation
    name = run_name(method, seed)
    path = ctx.path(f"online/{name}", f"{run_dir(method, seed)}/policy_final.safetensors")
    policy = load_policy(path)
    gate = ctx.gate(gate_method, policy.actor) if gate_method else None
    return evaluate_policy(policy, ctx.env_id, e.episodes, e.seed0,
                           action_filter=gate, max_steps=e.max_steps or 100_000)  # fmt: skip


def probe(ctx, gate_method: str | None) -> list[dict]:
    labels = {m: label for label, m in ctx.cfg.method_for.items()}
    rows = []
    gated = [m for m in ctx.cfg.run_methods if m != "unio4"]
    for_unio4 = gate_method or (gated[0] if len(gated) == 1 else "farm-qrisk-cal-hold")
    for seed in ctx.cfg.seeds:
        for method in ctx.cfg.run_methods:
            own = for_unio4 if method == "unio4" else method
            for gate in (None, own):
                r = evaluate_run(ctx, method, seed, gate)
                n = ctx.cfg.evaluation.episodes
                rows.append({"task": task_name(ctx.task), "seed": seed,
                             "method": labels.get(method, method), "ran": method,
                             "gate": gate or "", "episodes": n,
                             "normalized_return": round(r["normalized_return_mean"], 2),
                             "ir_failure_episodes": round(r["failure_rate"] * n),
                             "success_rate": round(r["success_rate"], 3),
                             "replaced": round(r.get("replaced_frac", 0.0), 4)})  # fmt: skip
                print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = probe_parser(__doc__)
    ap.add_argument(
        "--gate-method",
        help="the gate put in front of Uni-O4 (default: the experiment's one gated method on"
        " that task, else farm-qrisk-cal-hold)",
    )
    args = ap.parse_args()
    run_probe(args, lambda ctx: probe(ctx, args.gate_method), "results/gated_eval")


if __name__ == "__main__":
    main()
