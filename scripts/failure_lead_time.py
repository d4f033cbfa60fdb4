"""How many steps before an IR failure did the hand last come near the object?

For every held-out failure episode of ``runs/<experiment>/<task>/data/heldout.npz``: the number of
steps between the last step with the hand within ``--radius`` of the object (observation slots
0:3 = hand, 4:7 = object 1) and the first cost > 0 step. A failure decided by a push many steps
before it happens (a ball rolling off the table) is beyond what "failure within H steps" with a
small H can see in time. -1: the hand never came that close (e.g. the hand itself hit the wall).
Writes results/<experiment>/failure_lead_time.csv.

    python scripts/failure_lead_time.py --experiment headline_2e5
"""

import argparse
from pathlib import Path

import numpy as np

from failurebench_sim.atomic import write_csv
from failurebench_sim.datasets import load_dataset


def lead_times(path: Path, radius: float) -> list[int]:
    d = load_dataset(path)
    obs, costs = d.observations, d.costs
    ends = np.flatnonzero(d.terminated | d.truncated)
    out = []
    for s, e in zip(np.r_[0, ends[:-1] + 1], ends, strict=True):
        fail = np.flatnonzero(costs[s : e + 1] > 0)
        if not len(fail):
            continue
        f = s + fail[0]
        near = np.flatnonzero(
            np.linalg.norm(obs[s : f + 1, 0:3] - obs[s : f + 1, 4:7], axis=1) < radius
        )
        out.append(int(f - (s + near[-1])) if len(near) else -1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="headline_2e5")
    ap.add_argument("--radius", type=float, default=0.06)
    ap.add_argument("--horizon", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for path in sorted(Path("runs", args.experiment).glob("*/data/heldout.npz")):
        gaps = lead_times(path, args.radius)
        known = [g for g in gaps if g >= 0]
        rows.append({
            "task": path.parts[2], "failure_episodes": len(gaps), "hand_never_near": gaps.count(-1),
            f"lead_le_H{args.horizon}": sum(g <= args.horizon for g in known),
            f"lead_gt_H{args.horizon}": sum(g > args.horizon for g in known),
            "lead_steps": " ".join(map(str, sorted(gaps))),
        })  # fmt: skip
        print(rows[-1])
    out = Path("results", args.experiment, "failure_lead_time.csv")
    write_csv(out, rows)


if __name__ == "__main__":
    main()
