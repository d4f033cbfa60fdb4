"""results/levers/: issue 17's ablation table, one row per lever, from the experiments' results.

Each online row compares a FARM variant with Uni-O4 run in the SAME experiment (same offline
checkpoints and seeds): IR-failure episodes during fine-tuning as a ratio of Uni-O4's, the
normalised return after fine-tuning minus Uni-O4's, the gate's precision / recall for "IR failure
within H" at the eps_safe used online (held-out roll-outs; mean over pipeline seeds), and
online env steps/s. The offline row (the guarded hand-over) comes from
results/offline_handover/handover.csv. Regenerate every input with the command in its row, then:
    python scripts/levers_table.py
"""

from __future__ import annotations

import csv
import functools
import json
import math
from pathlib import Path

from failurebench_sim.atomic import atomic_write, write_csv, write_text

TASKS = ("BoundedPush-v0", "BoundedSoccer-v0", "FragilePushWall-v0", "ObstructedPush-v0")
SHORT = {"BoundedPush-v0": "Push", "BoundedSoccer-v0": "Soccer", "FragilePushWall-v0": "Wall",
         "ObstructedPush-v0": "Obstructed"}  # fmt: skip
# (lever, experiment, method, command)
LEVERS = (
    ("FARM as in the paper (headline, 3 pipeline-0 online seeds)", "headline_2e5", "farm",
     "scripts/headline_2e5.sh"),
    ("120k failure transitions for the world model (1e5 steps)", "farm_data120k", "farm",
     "farm-train pipeline --config config/experiments/farm_data120k.yaml"),
    ("constraint target looks ahead (Soccer only)", "farm_lookahead", "farm",
     "scripts/lookahead_probe.sh"),
    ("eps_safe steered online by a PI rule (farm-pid)", "farm_eps_pid", "farm-pid",
     "farm-train pipeline --config config/experiments/farm_eps_pid.yaml"),
    ("recovery holds still: declines the risky action (farm-hold)", "farm_hold", "farm-hold",
     "farm-train pipeline --config config/experiments/farm_hold.yaml"),
    ("farm-hold + look-ahead constraint targets (Soccer only)", "farm_hold_lookahead",
     "farm-hold", "farm-train pipeline --config config/experiments/farm_hold_lookahead.yaml"),
    ("FARM, pipeline seed 1 of paper_tables", "farm_refresh", "farm",
     "farm-train pipeline --config config/experiments/farm_refresh.yaml"),
    ("world model refreshed online on the IR failures, AUC-guarded (farm-refresh; seed 1)",
     "farm_refresh", "farm-refresh",
     "farm-train pipeline --config config/experiments/farm_refresh.yaml"),
    ("farm-refresh + eps_safe re-chosen after each refresh (farm-refresh-cal; Wall, seed 1)",
     "farm_refresh_cal", "farm-refresh-cal",
     "farm-train pipeline --config config/experiments/farm_refresh_cal.yaml"
     " --tasks FragilePushWall-v0"),
    ("gate on the mean C_H of 3 world models (farm-ens; seed 1)", "farm_ens", "farm-ens",
     "farm-train pipeline --config config/experiments/farm_ens.yaml"),
    ("eps_safe steered online by a PI rule (farm-pid; seed 1)", "farm_ens_pid", "farm-pid",
     "farm-train pipeline --config config/experiments/farm_ens_pid.yaml"),
    ("farm-ens + farm-pid: the ensemble gate under the PI rule (farm-ens-pid; seed 1)",
     "farm_ens_pid", "farm-ens-pid",
     "farm-train pipeline --config config/experiments/farm_ens_pid.yaml"),
    ("farm-pid with a 10 % target instead of 5 % (seed 1)", "farm_pid_rate10", "farm-pid",
     "farm-train pipeline --config config/experiments/farm_pid_rate10.yaml"),
    ("FARM, pipeline seeds 1-2 of paper_tables (headline_pid)", "headline_pid", "farm",
     "farm-train pipeline --config config/experiments/headline_pid.yaml --seeds 1 2"),
    ("farm-pid, the chosen setting, pipeline seeds 1-2 (headline_pid)", "headline_pid",
     "farm-pid", "farm-train pipeline --config config/experiments/headline_pid.yaml --seeds 1 2"),
    ("Rec-RL's Q-risk gate alone (recrl; seeds 1-2; FARM there: the headline_pid row)",
     "farm_qrisk", "recrl", "farm-train pipeline --config config/experiments/farm_qrisk.yaml"),
    ("recovery where C_H or Q-risk fires (farm-qrisk; seeds 1-2)", "farm_qrisk", "farm-qrisk",
     "farm-train pipeline --config config/experiments/farm_qrisk.yaml"),
    ("farm-qrisk under farm-pid's PI rule (farm-qrisk-pid; seeds 1-2)", "farm_qrisk",
     "farm-qrisk-pid", "farm-train pipeline --config config/experiments/farm_qrisk.yaml"),
    ("FARM, pipeline seeds 0-2 (headline_qrisk)", "headline_qrisk", "farm",
     "farm-train pipeline --config config/experiments/headline_qrisk.yaml --ray --workers 2"),
    ("farm-qrisk, the chosen setting, pipeline seeds 0-2 (headline_qrisk)", "headline_qrisk",
     "farm-qrisk",
     "farm-train pipeline --config config/experiments/headline_qrisk.yaml --ray --workers 2"),
    ("farm-qrisk-pid, pipeline seeds 0-2 (headline_qrisk)", "headline_qrisk", "farm-qrisk-pid",
     "farm-train pipeline --config config/experiments/headline_qrisk.yaml --ray --workers 2"),
    ("farm-qrisk at FARM's alarm budget, both thresholds chosen per task (farm-qrisk-cal)",
     "farm_qrisk_cal", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_qrisk_cal.yaml --ray --workers 2"),
    ("farm-qrisk-cal at farm-qrisk's own alarm budget (farm_qrisk_cal_matched)",
     "farm_qrisk_cal_matched", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_qrisk_cal_matched.yaml --ray"
     " --workers 2"),
    ("farm-qrisk with Q-risk trained at gamma_safe 0.9 instead of 0.8 (farm_qrisk_g09)",
     "farm_qrisk_g09", "farm-qrisk",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09.yaml --ray --workers 2"),
    ("Rec-RL's Q-risk gate alone at gamma_safe 0.9 (recrl; farm_qrisk_g09)",
     "farm_qrisk_g09", "recrl",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09.yaml --ray --workers 2"),
    ("farm-qrisk (gamma_safe 0.9), PPO's ratio on the proposed action of replaced steps"
     " (ppo.learn_actions: proposed)", "farm_qrisk_g09_proposed", "farm-qrisk",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_proposed.yaml --ray"
     " --workers 2"),
    ("farm-qrisk (gamma_safe 0.9), Q-risk's threshold lowered per task until the gate catches"
     " 90 % of held-out failures within 10 steps (farm-qrisk-cal, recall rule)",
     "farm_qrisk_g09_recall", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_recall.yaml --ray"
     " --workers 2"),
    ("the recall rule at 95 % (Soccer only: the other tasks' thresholds are the 90 % rule's)",
     "farm_qrisk_g09_recall95", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_recall95.yaml"
     " --tasks BoundedSoccer-v0 --ray --workers 2"),
    ("farm-qrisk-cal (recall rule) with both critics trained on cost 1 from the hand's last"
     " approach to the object up to the failure (last_touch_costs; Push and Soccer: the object"
     " run out)", "farm_qrisk_g09_touch", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_touch.yaml --ray"
     " --workers 2"),
    ("the same, the arm holding still where the gate fires (farm-qrisk-cal-hold; Push and"
     " Soccer)", "farm_qrisk_g09_touch", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_touch.yaml --ray"
     " --workers 2"),
    ("farm-qrisk-cal-hold with the usual constraint targets (the failure step)",
     "farm_qrisk_g09_hold", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_hold.yaml --ray"
     " --workers 2"),
    ("farm-qrisk-cal-hold everywhere, run-out targets on Soccer only (the per-task choice of"
     " session 19, made on seeds 0-2; seeds 3-4 out of sample: task_overrides)",
     "farm_qrisk_g09_pertask", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_pertask.yaml --ray"
     " --workers 2"),
    ("Fragile Push Wall only: the recovery policy where the gate fires (farm-qrisk-cal),"
     " seeds 0-4 (3-4 out of sample)", "farm_qrisk_g09_wall_recovery", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_hold.yaml --seeds 3 4"
     " --tasks FragilePushWall-v0 --ray --workers 2; the same --config"
     " config/experiments/farm_qrisk_g09_wall_recovery.yaml --report-only"),
    ("Fragile Push Wall only: the arm holding still there (farm-qrisk-cal-hold), the same"
     " runs' matched alternative", "farm_qrisk_g09_wall_recovery", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_hold.yaml --seeds 3 4"
     " --tasks FragilePushWall-v0 --ray --workers 2; the same --config"
     " config/experiments/farm_qrisk_g09_wall_recovery.yaml --report-only"),
    ("the chosen setting (session 21): the per-task choice with pi_rec on Wall instead of"
     " holding still (farm-chosen, method_for)", "farm_qrisk_g09_chosen", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_chosen.yaml --ray"
     " --workers 2"),
    ("the chosen setting from the guarded offline hand-over (offline.handover: guarded; every"
     " unit after the offline stage made again; pipeline seed 2 only)",
     "farm_qrisk_g09_chosen_guarded", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_chosen_guarded.yaml --ray"
     " --workers 2"),
    ("farm-qrisk-cal-hold with PPO's policy loss on the task policy's own actions only"
     " (ppo.learn_actions: own; pipeline seed 3 only)", "farm_qrisk_g09_hold_own",
     "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_hold_own.yaml --ray"
     " --workers 2"),
    ("least intervention: where the holding gate fires, the largest of 3/4, 1/2, 1/4 of the"
     " proposed motion it accepts (farm-qrisk-cal-least; pipeline seed 5 only)",
     "farm_qrisk_g09_least", "farm-least",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_least.yaml --ray"
     " --workers 2"),
    ("hold still, then after 5 held steps in a row 5 steps of the recovery policy"
     " (farm-qrisk-cal-hold-rec; pipeline seeds 5-6)",
     "farm_qrisk_g09_holdrec", "farm-holdrec",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_holdrec.yaml --ray"
     " --workers 2"),
    ("Soccer's gate at the fewest held-out alarms that catch 90 % of failures within 10 steps,"
     " both thresholds searched (anyof_rule c_h_grid; pipeline seeds 5-7)",
     "farm_qrisk_g09_fewest", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_fewest.yaml --ray"
     " --workers 2"),
    ("the chosen setting on Soccer alone, pipeline seeds 5-9 (8-9 new; the reference of the"
     " next row)", "farm_qrisk_g09_soccer", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_soccer.yaml --seeds 8 9"
     " --ray --workers 2"),
    ("Soccer: PPO on the task policy's proposals where the gate held the arm (ppo.learn_actions:"
     " proposed; seeds 5-7, then 8-9 out of sample)", "farm_qrisk_g09_soccer_proposed",
     "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_soccer_proposed.yaml"
     " --ray --workers 2"),
    ("Push and Obstructed: the same (ppo.learn_actions: proposed under the holding gate;"
     " seeds 5-7)", "farm_qrisk_g09_proposed_hold", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_proposed_hold.yaml --ray"
     " --workers 2"),
    ("Soccer: the chosen setting with the paper's failure-data scale, 100k + 100k failure /"
     " near-failure transitions instead of 60k + 60k (seeds 5-7)",
     "farm_qrisk_g09_soccer_data200k", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_qrisk_g09_soccer_data200k.yaml"
     " --seeds 5 6 7 --ray --workers 2"),
    ("Soccer: pi_rec where the ball's roll, extrapolated from its last step, reaches the border"
     " (farm-runout, runout_eps 0.7; least-squares decay, every border an exit; seeds 5-9)",
     "farm_runout_soccer", "farm-runout",
     "farm-train pipeline --config config/experiments/farm_runout_soccer.yaml --ray --workers 2"),
    ("Soccer: holding still there instead, at half the room (farm-runout-hold, runout_eps 0.5;"
     " seeds 5-6)", "farm_runout_soccer_hold", "farm-runout-hold",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_hold.yaml --ray"
     " --workers 2"),
    ("Soccer: pi_rec where the ball leaves within 40 steps by the fixed run-out model (median"
     " decay, exits; farm-runout, runout_eps 1.0; seeds 5-9)", "farm_runout_soccer_h40",
     "farm-runout",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_h40.yaml --ray"
     " --workers 2"),
    ("Soccer: the push declined before it runs where the ball it would kick leaves within 40"
     " steps (farm-runout-ahead: ObjectMotion + the run-out score, median decay; seeds 5-9)",
     "farm_runout_soccer_ahead", "farm-runout-ahead",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_ahead.yaml --ray"
     " --workers 2"),
    ("Soccer: pi_rec on the run-out (farm-runout), else the arm held where a state of the next"
     " 5 steps predicted for the task policy leaves within 40 steps (farm-runout-seq:"
     " ObjectMotion + HandMotion; seeds 5-9)", "farm_runout_soccer_seq", "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_seq.yaml --ray"
     " --workers 2"),
    ("the same, held where a predicted state rolls over half the room (runout_hold_eps 0.5;"
     " chosen on seed 5, seeds 6-9 out of sample)", "farm_runout_soccer_seq05", "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_seq05.yaml --ray"
     " --workers 2"),
    ("Soccer: the chosen gate's return on 100 evaluation episodes instead of 20 (online runs"
     " reused; seeds 5-11)", "farm_runout_soccer_eval100", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_eval100.yaml"),
    ("Soccer: farm-runout-seq (hold at 0.5) on 100 evaluation episodes (online runs reused;"
     " seeds 5-11)", "farm_runout_soccer_eval100", "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_eval100.yaml"),
    ("Soccer: farm-runout-seq (hold at 0.5) with 1.0 taken off the reward where the gate"
     " replaced the action, PPO on the proposals (ppo.replaced_penalty, learn_actions:"
     " proposed; seeds 5-9)", "farm_runout_soccer_seq05_penalty", "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_seq05_penalty.yaml"
     " --ray --workers 2"),
    ("the same on 100 evaluation episodes (seeds 5-9)", "farm_runout_soccer_penalty_eval100",
     "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_penalty_eval100.yaml"),
    ("Soccer: the chosen gate on two new pipeline seeds (10-11, all out of sample)",
     "farm_runout_soccer_seq05_new", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_seq05_new.yaml --ray"
     " --workers 2"),
    ("Soccer: farm-runout-seq (hold at 0.5) on the same two new seeds",
     "farm_runout_soccer_seq05_new", "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_seq05_new.yaml --ray"
     " --workers 2"),
    ("Soccer: the chosen gate on four more new pipeline seeds (12-15, all out of sample; 100"
     " evaluation episodes)", "farm_runout_soccer_more", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_more.yaml --ray"
     " --workers 2"),
    ("Soccer: farm-runout-seq (hold at 0.5) on the same four seeds", "farm_runout_soccer_more",
     "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_more.yaml --ray"
     " --workers 2"),
    ("Soccer: the chosen gate with dual-clip PPO (ppo.dual_clip 3; seeds 12-15, all but the"
     " gated runs reused)", "farm_runout_soccer_dualclip", "farm-qrisk-cal-hold",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_dualclip.yaml --ray"
     " --workers 2"),
    ("Soccer: farm-runout-seq (hold at 0.5) with dual-clip PPO (seeds 12-15)",
     "farm_runout_soccer_dualclip", "farm-runout-seq",
     "farm-train pipeline --config config/experiments/farm_runout_soccer_dualclip.yaml --ray"
     " --workers 2"),
    ("Obstructed: the chosen setting (farm-qrisk-cal-hold) on two new pipeline seeds (8-9, all"
     " out of sample)", "farm_obstructed_more", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_obstructed_more.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the chosen setting on six new pipeline seeds (10-15, all out of sample; 100"
     " evaluation episodes)", "farm_obstructed_new", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_obstructed_new.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: holding still with dual-clip PPO (ppo.dual_clip 3; seeds 10-15, all but the"
     " gated runs reused)", "farm_obstructed_dualclip", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_obstructed_dualclip.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: pi_rec where the gate fires (farm-qrisk-cal) with dual-clip PPO (seeds 10-15)",
     "farm_obstructed_dualclip_rec", "farm-qrisk-cal",
     "farm-train pipeline --config config/experiments/farm_obstructed_dualclip_rec.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the holding gate's thresholds raised online while it replaces more than 20 %"
     " of an update's actions (farm-qrisk-cal-hold-steer; seeds 10-15)", "farm_obstructed_steer",
     "farm-qrisk-cal-hold-steer",
     "farm-train pipeline --config config/experiments/farm_obstructed_steer.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the same at a 30 % target (seeds 10-15, the target chosen on them)",
     "farm_obstructed_steer30", "farm-qrisk-cal-hold-steer",
     "farm-train pipeline --config config/experiments/farm_obstructed_steer30.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the chosen setting on three new pipeline seeds (16-18, all out of sample)",
     "farm_obstructed_confirm", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_obstructed_confirm.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the steered holding gate at 30 %, first confirmation (seeds 16-18, all out of"
     " sample)", "farm_obstructed_confirm", "farm-qrisk-cal-hold-steer",
     "farm-train pipeline --config config/experiments/farm_obstructed_confirm.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the steered holding gate at 30 %, second confirmation (seeds 19-21, all out of"
     " sample)", "farm_obstructed_confirm2", "farm-qrisk-cal-hold-steer",
     "farm-train pipeline --config config/experiments/farm_obstructed_confirm2.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
    ("Obstructed: the holding gate with PPO's policy loss on the task policy's own actions only"
     " (ppo.learn_actions: own; seeds 10-15)", "farm_obstructed_own", "farm-chosen",
     "farm-train pipeline --config config/experiments/farm_obstructed_own.yaml --tasks"
     " ObstructedPush-v0 --ray --workers 2"),
)  # fmt: skip
LEDGER = Path("results/ledger")
SINGLE_MODEL_GATES = ("farm", "farm-pid", "farm-hold")
"""methods whose gate is the experiment's one world model at its calibrated eps_safe (the
precision / recall of calibration.json); the others' are reported in their own sections"""


@functools.cache
def runs_as(exp: str, task: str, method: str) -> str:
    """The registry method that ``method`` (a label of the experiment's ``method_for``, or a
    registry name) runs on ``task``."""
    from farm_trainer.experiments.config import load_config

    path = Path("config/experiments", f"{exp}.yaml")
    return load_config(path).for_task(task).method_of(method) if path.exists() else method


def read_summary(exp: str) -> dict[tuple[str, str], dict[str, str]]:
    path = Path("results", exp, "summary.csv")
    if not path.exists():
        return {}
    with path.open() as f:
        return {(r["task"], r["method"]): r for r in csv.DictReader(f)}


def gate_metrics(exp: str, task: str) -> tuple[float, float] | None:
    """Mean precision and recall of the world-model gate over the experiment's pipelines."""
    path = Path("results", exp, "calibration.json")
    if not path.exists():
        return None
    cal = json.loads(path.read_text())
    rows = [v["world_model_c_h"] for k, v in cal.items()
            if k.split("/")[0] == task and "precision" in (v or {}).get("world_model_c_h", {})]  # fmt: skip
    if not rows:
        return None
    return (
        sum(r["precision"] for r in rows) / len(rows),
        sum(r["recall"] for r in rows) / len(rows),
    )


@functools.cache
def anyof_metrics(exp: str, task: str, method: str) -> tuple[float, float, int | str] | None:
    """Mean precision and recall over pipeline seeds of an any-of gate whose two thresholds the
    calibration chose together (``calibration/anyof_eps.json``, found through the ledger as the
    report finds runs), and the look-ahead L of their label "IR failure within L steps" (the
    rule's ``recall_within``; "" where it is H). In sample: the thresholds were chosen on the same
    held-out roll-outs. None where a seed's choice is not in the ledger."""
    from farm_trainer.experiments.config import load_config, seed_configs
    from farm_trainer.experiments.context import ANYOF_UNIT
    from farm_trainer.experiments.layout import TaskLayout
    from farm_trainer.experiments.ledger import ledger_sources
    from farm_trainer.experiments.records import resolve
    from farm_trainer.methods import calibrates_anyof

    path = Path("config/experiments", f"{exp}.yaml")
    if not path.exists():
        return None
    found = []
    for sub in seed_configs(load_config(path)):
        if task not in sub.tasks:
            continue
        mine = sub.for_task(task)
        if not calibrates_anyof(mine.method_of(method)) or mine.gate.anyof_rule is None:
            return None
        book = TaskLayout(LEDGER, sub.name, task)
        unit, rel = ANYOF_UNIT
        for source in ledger_sources(mine, book, unit):
            where, rec = resolve(source, unit)
            chosen = where.root / rel
            if rec is not None and rec.get("state") == "done" and chosen.exists():
                found.append(json.loads(chosen.read_text()))
                break
        else:
            return None
    if not found:
        return None
    within = mine.gate.anyof_rule.get("recall_within", mine.gate.horizon)
    window = "" if within == mine.gate.horizon else int(within)
    return (sum(f["precision"] for f in found) / len(found),
            sum(f["recall"] for f in found) / len(found), window)  # fmt: skip


def count_ratio_interval(ours: dict, base: dict) -> tuple[float | str, float | str]:
    """95 % interval of a ratio of IR-failure episode counts from counting (Poisson) noise
    alone: ratio x exp(+-1.96 sqrt(1/a + 1/b)) on the counts summed over seeds. Seed-to-seed
    variation, which one pipeline seed cannot show, comes on top."""
    a = float(ours["ir_failure_episodes_mean"]) * int(ours["seeds_found"])
    b = float(base["ir_failure_episodes_mean"]) * int(base["seeds_found"])
    if a <= 0 or b <= 0:
        return "", ""
    ratio, half = a / b, 1.96 * math.sqrt(1 / a + 1 / b)
    return round(ratio * math.exp(-half), 2), round(ratio * math.exp(half), 2)


def return_diff_se(ours: dict, base: dict) -> float | str:
    """Standard error of the Δreturn over pipeline seeds, unpaired (conservative: the two
    methods share each seed's offline checkpoints): sqrt((s_a^2 + s_b^2) / (n - 1)) from the
    summaries' population stds; "" with one seed."""
    n = int(ours["seeds_found"])
    if n < 2 or int(base["seeds_found"]) != n:
        return ""
    var = float(ours["return_after_std"]) ** 2 + float(base["return_after_std"]) ** 2
    return round(math.sqrt(var / (n - 1)), 1)


@functools.cache
def read_runs(exp: str) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """results/<exp>/runs.csv (one row per online run) by (task, method), then seed; empty
    for an experiment whose report predates it."""
    path = Path("results", exp, "runs.csv")
    if not path.exists():
        return {}
    out: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            out.setdefault((r["task"], r["method"]), {})[r["seed"]] = r
    return out


def paired(exp: str, task: str, method: str) -> dict | None:
    """``method`` against Uni-O4 seed by seed (each pipeline seed's runs share its offline
    checkpoints): the mean Δreturn ± the s.e. of the per-seed differences, a paired t-test's
    two-sided p, and the per-seed IR-failure ratios. None without runs.csv or 2 paired seeds."""
    runs = read_runs(exp)
    ours, base = runs.get((task, method), {}), runs.get((task, "unio4"), {})
    seeds = sorted(set(ours) & set(base), key=int)
    if len(seeds) < 2:
        return None
    diffs = [float(ours[s]["return_after"]) - float(base[s]["return_after"]) for s in seeds]
    from scipy import stats

    ratios = [float(ours[s]["ir_failure_episodes"]) / float(base[s]["ir_failure_episodes"])
              if float(base[s]["ir_failure_episodes"]) > 0 else math.inf for s in seeds]  # fmt: skip
    return {"seeds": seeds, "diffs": diffs, "diff": sum(diffs) / len(diffs),
            "se": float(stats.sem(diffs)), "p": float(stats.ttest_1samp(diffs, 0.0).pvalue),
            "ratios": ratios}  # fmt: skip


PROVENANCE = Path("results/provenance/summary.csv")
"""``scripts/provenance_audit.py``: per experiment and method, task-seeds whose run started
from the same offline production as Uni-O4's"""


@functools.cache
def provenance() -> dict[tuple[str, str], dict[str, str]]:
    """``PROVENANCE`` by (experiment, method), read once; empty when it is not there."""
    if not PROVENANCE.exists():
        return {}
    with PROVENANCE.open() as f:
        return {(r["experiment"], r["method"]): r for r in csv.DictReader(f)}


def same_init(exp: str, method: str) -> str:
    """``same/all`` task-seeds of ``method`` that started from Uni-O4's offline production
    (``?`` where unknown counts; "" where the experiment predates the ledger)."""
    row = provenance().get((exp, method))
    if row is None:
        return ""
    same, diff, unknown = (int(row[k]) for k in ("same", "different", "unknown"))
    return f"{same}/{same + diff + unknown}" + (f" ({unknown} ?)" if unknown else "")


def online_row(lever: str, exp: str, method: str, command: str) -> dict | None:
    """One lever's row (a per-task choice is one experiment too: ``task_overrides``)."""
    summary = read_summary(exp)
    if not summary:
        return None
    row: dict = {"lever": lever, "experiment": exp, "method": method}
    ratios = []
    for task in TASKS:
        ours, base = summary.get((task, method)), summary.get((task, "unio4"))
        s = SHORT[task]
        if not ours or not base or ours["seeds_complete"] != ours["seeds_found"]:
            row.update({f"{s}_ratio": "", f"{s}_ratio_lo": "", f"{s}_ratio_hi": "",
                        f"{s}_return_diff": "", f"{s}_return_diff_se": "",
                        f"{s}_return_paired": "", f"{s}_ratio_worst_seed": "",
                        f"{s}_precision": "", f"{s}_recall": "", f"{s}_label_within": ""})  # fmt: skip
            continue
        ratio = float(ours["ir_failure_episodes_mean"]) / float(base["ir_failure_episodes_mean"])
        ratios.append(ratio)
        lo, hi = count_ratio_interval(ours, base)
        gate = gate_metrics(exp, task) if runs_as(exp, task, method) in SINGLE_MODEL_GATES else None
        window = ""
        if gate is None and (anyof := anyof_metrics(exp, task, method)) is not None:
            *gate, window = anyof
        pair = paired(exp, task, method)
        row.update({
            f"{s}_ratio": round(ratio, 2), f"{s}_ratio_lo": lo, f"{s}_ratio_hi": hi,
            f"{s}_return_diff": round(float(ours["return_after_mean"])
                                      - float(base["return_after_mean"]), 1),
            f"{s}_return_diff_se": return_diff_se(ours, base) if pair is None
            else round(pair["se"], 1),
            f"{s}_return_paired": "" if pair is None else "p",
            f"{s}_ratio_worst_seed": "" if pair is None else round(max(pair["ratios"]), 2),
            f"{s}_precision": "" if gate is None else round(gate[0], 3),
            f"{s}_recall": "" if gate is None else round(gate[1], 2),
            f"{s}_label_within": window,
        })  # fmt: skip
        row["seeds"] = ours["seeds_found"]
        row.setdefault("steps_per_s", [])
        row["steps_per_s"].append(float(ours["steps_per_s_mean"]))
    sps = row.pop("steps_per_s", [])
    row["mean_ratio"] = round(sum(ratios) / len(ratios), 2) if ratios else ""
    row["steps_per_s"] = round(sum(sps) / len(sps)) if sps else ""
    row["same_init"] = same_init(exp, method)
    row["command"] = command
    return row


FROZEN = Path("results/levers/frozen.csv")
"""rows whose experiment's runs are lost (results/paper_tables_seed0/README.md): kept as they
were generated, placed before the row of the same experiment's successor"""


FROZEN_MARK = " (frozen: its runs are lost)"


def frozen_rows() -> list[dict]:
    if not FROZEN.exists():
        return []
    with FROZEN.open() as f:
        return [{**r, "lever": r["lever"] + FROZEN_MARK} for r in csv.DictReader(f)]


def probe_cell(row: dict | None, key: str = "failures_with_recovery") -> str:
    """``failures/episodes (of them: key)`` of a recovery_probe row."""
    if row is None:
        return ""
    return f"{row['ir_failure_episodes']}/{row['episodes']} ({row[key]})"


VARIANTS = (("farm", "learned", "FARM + π_rec"), ("farm", "scripted", "FARM + scripted rule"),
            ("farm", "hold", "FARM + hold still"), ("recrl", "learned", "Rec-RL + π_rec"),
            ("farm-qrisk", "learned", "farm-qrisk + π_rec"))  # fmt: skip
"""(method, recovery, label): what runs where the gate fires, in the probe's second table"""


def _anyof_cell(r: dict | None) -> str:
    """``ROC-AUC / precision / recall`` ("—" where not measured: the 2-fold rows have no AUC)."""
    if r is None:
        return "—"
    auc = f"{float(r['roc_auc']):.3f}" if r["roc_auc"] else "—"
    return f"{auc} / {r['precision']} / {r['recall']}"


def anyof_table(paths: list[Path]) -> list[str]:
    """``scripts/anyof_probe.py``: C_H, Q-risk and the any-of score on held-out roll-outs."""
    lines = ["", "## C_H, Q-risk and farm-qrisk's any-of score (`scripts/anyof_probe.py`)", "",
             "Held-out noisy roll-outs, logged actions; ROC-AUC / precision / recall for an IR",
             "failure within L steps, at the thresholds used online (C_H: the calibrated",
             "ε_safe; Q-risk: `gate.qrisk_eps_safe`; farm-qrisk-cal: the pair its calibration",
             "chose, in-sample, and \"2-fold\": chosen on the held-out episodes of one parity and",
             "scored on the other, both ways pooled, with FARM's C_H chosen the same way)."]  # fmt: skip
    for path in paths:
        exp, seed = path.stem.rsplit("_s", 1)
        seed = f"{seed} ({exp})"
        with path.open() as f:
            rows = list(csv.DictReader(f))
        ls = list(dict.fromkeys(r["label_within"] for r in rows))
        lines += ["", "| pipeline seed | task | score | " + " | ".join(f"L = {x}" for x in ls)
                  + " |", "|---|---|---|" + "---|" * len(ls)]  # fmt: skip
        for task, score in dict.fromkeys((r["task"], r["score"]) for r in rows):
            by = {r["label_within"]: r for r in rows if (r["task"], r["score"]) == (task, score)}
            cells = [_anyof_cell(by.get(x)) for x in ls]
            lines.append(
                f"| {seed} | {SHORT.get(task, task)} | {score} | " + " | ".join(cells) + " |"
            )
    return lines


def probe_tables(paths: list[Path]) -> list[str]:
    """The recovery probe's two tables: failures by ε_safe (FARM + π_rec), and by what runs
    where the gate fires (at the calibrated ε_safe)."""
    lines = ["", "## Where the failures under the gate happen (`scripts/recovery_probe.py`)", "",
             "The offline task policy exploring (stochastic), the same reset seeds per row:",
             "IR-failure episodes / episodes without a gate, under FARM's gate at the calibrated",
             "ε_safe and at 0.3 × it (about farm-pid's); in brackets how many of them had the",
             "recovery running on the failure step or the 10 before (the rest the gate missed).",
             "", "| pipeline seed | task | no gate | gate at ε_safe | gate at 0.3 ε_safe |",
             "|---|---|---|---|---|"]  # fmt: skip
    rows = {}
    for path in paths:
        with path.open() as f:
            rows[path.stem.rsplit("_s", 1)[1]] = [
                {"method": "farm", "recovery": "learned", **r} for r in csv.DictReader(f)
            ]
    for seed, ps in rows.items():
        for task in dict.fromkeys(p["task"] for p in ps):
            by = {float(p["eps_scale"]): p for p in ps if p["task"] == task
                  and p["method"] == "farm" and p["recovery"] == "learned"}  # fmt: skip
            cells = [probe_cell(by.get(k)) for k in (0.0, 1.0, 0.3)]
            lines.append(f"| {seed} | {SHORT.get(task, task)} | " + " | ".join(cells) + " |")
    lines += ["", "What runs where the gate fires, at the calibrated ε_safe (exploration noise",
              "seeded per episode, so the variants differ only where their actions do). In",
              "brackets the failures whose failing step was the recovery's own action. If",
              "holding still or the scripted demonstrator fails as often as π_rec, the state",
              "was lost when the gate fired: the gate fires too late, not the recovery is weak.",
              "", "| pipeline seed | task | " + " | ".join(v[2] for v in VARIANTS) + " |",
              "|---|---|" + "---|" * len(VARIANTS)]  # fmt: skip
    for seed, ps in rows.items():
        timed = [p for p in ps if p.get("failures_during_recovery") not in ("", None)]
        for task in dict.fromkeys(p["task"] for p in timed):
            by = {(p["method"], p["recovery"]): p for p in timed
                  if p["task"] == task and float(p["eps_scale"]) == 1.0}  # fmt: skip
            if len(by) < 2:
                continue
            cells = [probe_cell(by.get(v[:2]), "failures_during_recovery") for v in VARIANTS]
            lines.append(f"| {seed} | {SHORT.get(task, task)} | " + " | ".join(cells) + " |")
    return lines


def prec_rec_cell(row: dict, task: str) -> str:
    """``precision / recall``, with ``(L=10)`` where the label looks further than H (the
    any-of rows' recall rule)."""
    if row[f"{task}_precision"] == "":
        return ""
    window = row.get(f"{task}_label_within", "")
    mark = f" (L={window})" if window != "" else ""
    return f"{row[f'{task}_precision']} / {row[f'{task}_recall']}{mark}"


def ratio_cell(row: dict, task: str) -> str:
    """``ratio (lo-hi)`` when the row has the counting-noise interval (frozen rows do not)."""
    ratio, lo, hi = (row.get(f"{task}_ratio{k}", "") for k in ("", "_lo", "_hi"))
    return f"{ratio} ({lo}–{hi})" if lo not in ("", None) else str(ratio)


def return_cell(row: dict, task: str) -> str:
    """``Δreturn ± s.e.`` when the row has the s.e. (one seed and frozen rows do not)."""
    diff, se = row.get(f"{task}_return_diff", ""), row.get(f"{task}_return_diff_se", "")
    mark = " p" if row.get(f"{task}_return_paired") else ""
    return f"{diff} ± {se}{mark}" if se not in ("", None) else str(diff)


def paired_table(rows: list[dict]) -> list[str]:
    """Seed by seed, for the rows whose experiment has runs.csv: each pipeline seed's failure
    ratio, and the paired Δreturn with its t-test."""
    lines = ["", "## Seed by seed (`results/<experiment>/runs.csv`)", "",
             "Each pipeline seed's IR-failure ratio to Uni-O4 (both from that seed's offline",
             "checkpoints), and the Δreturn paired over seeds: mean ± s.e. of the per-seed",
             "differences, with a paired t-test's two-sided p (3 seeds: only a large, steady",
             "difference reaches p < 0.05).", "",
             "| lever | experiment | task | ratio per seed | Δreturn per seed | paired Δreturn | p |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["lever"].endswith(FROZEN_MARK):  # its experiment's runs.csv: the successor runs
            continue
        for task in TASKS:
            pair = paired(r["experiment"], task, r["method"])
            if pair is None:
                continue
            lines.append(
                f"| {r['lever']} | `{r['experiment']}` | {SHORT[task]} | "
                + " / ".join(f"{x:.2f}" for x in pair["ratios"])
                + " | "
                + " / ".join(f"{x:+.1f}" for x in pair["diffs"])
                + f" | {pair['diff']:+.1f} ± {pair['se']:.1f} | {pair['p']:.2f} |"
            )
    return lines


def tradeoff_figure(rows: list[dict], path: Path) -> None:
    """Per task, every lever as a point: IR-failure ratio to Uni-O4 (x) against Δreturn (y, ±
    s.e. where known), numbered as in levers.md; the goal region (ratio < 1, Δreturn ≥ −2)
    shaded. A lever that helps one task and hurts another shows as points on both sides."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(4.2 * len(TASKS), 4.2), sharey=True)
    for ax, task in zip(axes, TASKS, strict=True):
        t = SHORT[task]
        ax.fill_between([0, 1], -2, 40, color="tab:green", alpha=0.08, lw=0)
        ax.axhline(-2, color="tab:green", lw=0.8, ls="--")
        ax.axvline(1, color="grey", lw=0.8, ls=":")
        for i, r in enumerate(rows, start=1):
            x, y = r.get(f"{t}_ratio", ""), r.get(f"{t}_return_diff", "")
            if x in ("", None) or y in ("", None):
                continue
            se = r.get(f"{t}_return_diff_se", "")
            chosen = r["experiment"] == "farm_qrisk_g09_chosen"
            ax.errorbar(float(x), float(y), yerr=float(se) if se not in ("", None) else None,
                        fmt="*" if chosen else "o", ms=11 if chosen else 4, capsize=2,
                        color="tab:red" if chosen else "tab:blue", alpha=0.9 if chosen else 0.5)  # fmt: skip
            ax.annotate(str(i), (float(x), float(y)), fontsize=6, xytext=(2, 2),
                        textcoords="offset points")  # fmt: skip
        ax.set_title(t)
        ax.set_xlabel("IR-failure episodes / Uni-O4's")
        ax.set_xlim(0, 1.3)
        ax.set_ylim(-30, 20)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Δ normalised return vs Uni-O4")
    fig.suptitle("Issue 17 levers: failures against return per task (numbers: rows of levers.md;"
                 " star: the chosen setting; green: both goals)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def main() -> None:
    rows = [r for r in (online_row(*lever) for lever in LEVERS) if r]
    at = next((i for i, r in enumerate(rows) if r["experiment"] == "farm_eps_pid"), len(rows))
    rows[at:at] = frozen_rows()
    out = Path("results/levers")
    write_csv(out / "levers.csv", rows)
    tradeoff_figure(rows, out / "tradeoff.png")
    head = ["#", "lever", "experiment", "seeds", *(f"{SHORT[t]}" for t in TASKS), "mean",
            *(f"Δreturn {SHORT[t]}" for t in TASKS),
            *(f"prec/rec {SHORT[t]}" for t in TASKS), "steps/s", "same init"]  # fmt: skip
    lines = [
        "# Issue 17 levers: IR-failure episodes as a ratio of Uni-O4's in the same experiment",
        "",
        "Generated by `python scripts/levers_table.py` from `results/<experiment>/summary.csv` and",
        "`calibration.json`. Δreturn: normalised return after fine-tuning minus Uni-O4's, ± its",
        "standard error over pipeline seeds (with 2+ seeds): paired (marked p) where the",
        "experiment's runs.csv gives each seed's runs, else unpaired (conservative).",
        "prec/rec: the gate's precision / recall for an IR failure within H on held-out roll-outs",
        "at the ε_safe used online; for the any-of gates whose two thresholds were chosen together",
        "(farm-qrisk-cal*), the mean over pipeline seeds of that choice's own figures",
        "(`calibration/anyof_eps.json`, in sample), marked (L=10) where the rule's label is an IR",
        "failure within 10 steps instead of H. Goals: mean ratio ≤ 0.35 and < 1 on every task; Δreturn ≥ −2;",
        "precision ≥ 0.2. In brackets: the ratio's 95 % interval from counting noise alone",
        "(Poisson, on the failure counts summed over seeds); the spread between pipeline seeds",
        "comes on top (seed 0 against seed 1 of FARM: 0.77 / 0.64, 0.85 / 0.77, 0.39 / 0.58,",
        "0.43 / 0.54).",
        "same init: task-seeds whose run started from the same offline production as Uni-O4's",
        "in the table (`scripts/provenance_audit.py`; empty: the experiment predates the",
        "ledger). A row below all/all compares methods from different offline checkpoints on",
        "the rest: the ledger once kept a finished Uni-O4 run while the offline stage it came",
        "from was rebuilt for a new method (fixed: `records.production`).",
        "",
        "![failures against return per task](tradeoff.png)",
        "",
        "`tradeoff.png`: each row's failure ratio against its Δreturn, per task (points labelled",
        "with the row's #; the shaded band meets both online goals).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for i, r in enumerate(rows, start=1):
        cells = [str(i), r["lever"], f"`{r['experiment']}`", str(r.get("seeds", ""))]
        cells += [ratio_cell(r, SHORT[t]) for t in TASKS] + [str(r["mean_ratio"])]
        cells += [return_cell(r, SHORT[t]) for t in TASKS]
        cells += [prec_rec_cell(r, SHORT[t]) for t in TASKS]
        cells += [str(r["steps_per_s"]), str(r.get("same_init", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += paired_table(rows)
    lines += ["", "| lever | command |", "|---|---|"]
    lines += [f"| {r['lever']} | `{r['command']}` |" for r in rows]
    probe = Path("results/horizon_probe/paper_tables_s0.csv")
    if probe.exists():
        with probe.open() as f:
            hs = list(csv.DictReader(f))
        lines += ["", "## Gate horizon H chosen on held-out data (`scripts/horizon_probe.py`)", "",
                  "ROC-AUC / precision / recall for an IR failure within H, at the ε_safe that",
                  "`gate.eps_rule` picks for that H (* = its alarm budgets cannot be met); best",
                  "precision anywhere on the ε grid in brackets. Paper_tables pipeline seed 0.", "",
                  "| task | " + " | ".join(f"H = {h['horizon']}" for h in hs
                                          if h["task"] == hs[0]["task"]) + " |",
                  "|---|" + "---|" * sum(h["task"] == hs[0]["task"] for h in hs)]  # fmt: skip
        for task in dict.fromkeys(h["task"] for h in hs):
            cells = [f"{float(h['roc_auc']):.3f} / {float(h['precision']):.2f} / "
                     f"{float(h['recall']):.2f}{'' if h['budgets_met'] == 'True' else '*'} "
                     f"({float(h['best_precision_on_grid']):.2f})"
                     for h in hs if h["task"] == task]  # fmt: skip
            lines.append(f"| {SHORT.get(task, task)} | " + " | ".join(cells) + " |")
    ens = Path("results/ensemble_probe/paper_tables_s1.csv")
    if ens.exists():
        with ens.open() as f:
            es = list(csv.DictReader(f))
        scores = list(dict.fromkeys(e["score"] for e in es))
        lines += ["", "## An ensemble of world models (`scripts/ensemble_probe.py`)", "",
                  "ROC-AUC / precision / recall at the `gate.eps_rule` threshold of each score",
                  "(3 world models: paper_tables' and 2 more with other seeds; best precision on",
                  "the ε grid in brackets). Paper_tables pipeline seed 1.", "",
                  "| task | " + " | ".join(scores) + " |", "|---|" + "---|" * len(scores)]  # fmt: skip
        for task in dict.fromkeys(e["task"] for e in es):
            cells = [f"{float(e['roc_auc']):.3f} / {float(e['precision']):.2f} / "
                     f"{float(e['recall']):.2f} ({float(e['best_precision_on_grid']):.2f})"
                     for e in es if e["task"] == task]  # fmt: skip
            lines.append(f"| {SHORT.get(task, task)} | " + " | ".join(cells) + " |")
    probes = sorted(Path("results/recovery_probe").glob("paper_tables_s*.csv"))
    if probes:
        lines += probe_tables(probes)
    anyof = sorted(Path("results/anyof_probe").glob("*_s*.csv"))
    if anyof:
        lines += anyof_table(anyof)
    handover = Path("results/offline_handover/handover.md")
    if handover.exists():
        lines += ["", "## Offline: the guarded hand-over (`results/offline_handover/`)", "",
                  handover.read_text().strip()]  # fmt: skip
    write_text(out / "levers.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
