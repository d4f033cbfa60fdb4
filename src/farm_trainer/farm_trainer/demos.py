"""``farm-demos``: teleoperated demonstrations from the graph's journal to offline datasets.

Record (the graph with the human's actions, the gate off, no PPO: the real YAML's
``farm_graph.demos`` overrides; README "First day on a real FR3")::

    ros2 launch farm_bringup real_push_wall.launch.py demos:=true
    farm-operator                                       # drive (keyboard), mark, in a terminal

then turn the journal into the dataset format the offline stage reads::

    farm-demos export runs/real_push_wall/trainer/transitions.journal --kind task \\
        --out data/real_push_wall/task_demos.npz
    farm-train offline --task FragilePushWall-v0 --demos data/real_push_wall/task_demos.npz \
        --out runs/real_push_wall/offline

``--kind`` is the demonstration type: ``task`` (the task done well), ``recovery`` (from a
near-failure state back to safety) or ``failure`` (IR failures, for the world model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from failurebench_sim.datasets import KINDS, DatasetFormatError
from farm_trainer.online.journal import JournalError, open_journal, to_dataset


def export(journal: str | Path, kind: str, out: str | Path):
    """The journal's transitions as a dataset of ``kind`` written to ``out``."""
    if kind not in KINDS:
        raise DatasetFormatError(f"kind must be one of {KINDS}, got {kind!r}")
    records, meta = open_journal(journal)
    return to_dataset(records, meta, out, kind=kind)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="farm-demos", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="a transition journal -> an offline dataset (.npz)")
    e.add_argument("journal", type=Path)
    e.add_argument("--kind", required=True, choices=KINDS)
    e.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        ds = export(a.journal, a.kind, a.out)
    except (OSError, JournalError, DatasetFormatError) as err:
        print(f"farm-demos: {err}", file=sys.stderr)
        return 2
    m = ds.metadata
    print(
        f"wrote {a.out}: {len(ds.actions)} transitions, {m['n_episodes']} episodes, kind {a.kind}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
