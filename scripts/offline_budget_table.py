"""results/offline_budget/offline.csv: BC vs offline PPO for the headline's and the probe's budgets.

Both columns of one experiment come from its offline_report.json ``evaluation`` (same reset seeds).
"""

import json
from pathlib import Path

from failurebench_sim.atomic import write_csv

ROWS = []
for exp in ("headline", "offline_budget"):
    for report in sorted(Path("runs", exp).glob("*/offline_task/offline_report.json")):
        rep = json.loads(report.read_text())
        ev, ppo = rep.get("evaluation") or {}, rep["stages"].get("ppo", {})
        if "bc" not in ev:
            continue
        ROWS.append({
            "experiment": exp, "task": report.parts[2], "episodes": ev["bc"]["episodes"],
            "bc_normalized": round(ev["bc"]["normalized_return"], 2),
            "improved_normalized": round(ev["improved"]["normalized_return"], 2),
            "bc_success": ev["bc"]["success_rate"], "improved_success": ev["improved"]["success_rate"],
            "ope_initial": max(ppo.get("ope_initial", [float("nan")])),
            "ope_best": max(ppo.get("ope_best", [float("nan")])),
            "replacements": sum(ppo.get("replacements", [])),
            "critic_steps": rep["config"]["critic_steps"], "ppo_steps": rep["config"]["ppo_steps"],
        })  # fmt: skip
out = Path("results/offline_budget/offline.csv")
write_csv(out, ROWS)
print(out.read_text())
