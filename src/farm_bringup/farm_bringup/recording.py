"""Episode recording: one rosbag2 MCAP bag per episode, plus an index (no rclpy).

Bags are written with ``rosbags`` (rosbag2 layout: ``metadata.yaml`` + ``.mcap``, message
definitions from the ROS 2 Kilted type store embedded as MCAP schemas), so ``ros2 bag info``,
``ros2 bag play`` and Foxglove open them. Messages arrive as serialized CDR (the recorder
subscribes raw) and are written without being decoded.

Crash safety: an episode is written under ``.partial/`` and renamed into place when it is
complete, and only then added to ``index.csv`` (rewritten atomically). A killed recorder
leaves every completed episode readable and indexed. The episode in progress is lost from the
bags (rosbags buffers the MCAP chunk in memory: measured, a killed writer leaves 0 bytes); its
executed transitions are in the trainer's journal, which loses nothing. A restarted recorder
clears ``.partial/`` and continues the episode numbering after the index.
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from failurebench_sim.atomic import write_csv

INDEX = "index.csv"
PARTIAL = ".partial"


@dataclass
class IndexRow:
    episode: int
    outcome: str  # ir_failure | timeout | success | stopped
    ret: float
    steps: int
    messages: int
    bytes: int
    file: str  # bag folder, relative to the recording folder
    recoveries: int = 0  # steps where the gate ran the recovery policy
    interventions: int = 0  # the operator's intervention marks


class EpisodeRecorder:
    """``write(topic, msgtype, t_ns, cdr)`` into the current episode's bag; ``end_episode``
    closes it, moves it into place and indexes it."""

    def __init__(self, out_dir: str | os.PathLike, prefix: str = "episode") -> None:
        from rosbags.typesys import Stores, get_typestore

        self.out = Path(out_dir)
        self.prefix = prefix
        partial = self.out / PARTIAL
        if partial.exists():
            shutil.rmtree(partial)  # a killed recorder's unfinished (empty) bag
        partial.mkdir(parents=True)
        self.typestore = get_typestore(Stores.ROS2_KILTED)
        self.rows: list[IndexRow] = read_index(self.out / INDEX)
        self.episode = max((r.episode for r in self.rows), default=-1) + 1
        self._writer = None
        self._connections: dict[str, object] = {}
        self.messages = 0

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def _name(self) -> str:
        return f"{self.prefix}_{self.episode:06d}"

    def _open(self) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        path = self.out / PARTIAL / self._name()
        if path.exists():  # left by a killed recorder: that episode was never completed
            shutil.rmtree(path)
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections, self.messages = {}, 0

    def write(self, topic: str, msgtype: str, t_ns: int, cdr: bytes) -> None:
        if self._writer is None:
            self._open()
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[topic] = conn
        self._writer.write(conn, int(t_ns), bytes(cdr))
        self.messages += 1

    def end_episode(self, outcome: str, ret: float = float("nan"), steps: int = 0,
                    recoveries: int = 0, interventions: int = 0) -> IndexRow | None:  # fmt: skip
        """Close the bag, move it into place, index it (None when nothing was recorded)."""
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        src, dst = self.out / PARTIAL / self._name(), self.out / self._name()
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(src, dst)
        size = sum(f.stat().st_size for f in dst.iterdir())
        row = IndexRow(self.episode, outcome, float(ret), int(steps), self.messages, size, dst.name,
                       int(recoveries), int(interventions))  # fmt: skip
        self.rows.append(row)
        write_csv(self.out / INDEX, [asdict(r) for r in self.rows], decimals=None)
        self.episode += 1
        return row

    def close(self) -> None:
        """Stop: the episode in progress is kept as a complete bag marked ``stopped``."""
        self.end_episode("stopped")


def read_index(path: str | os.PathLike) -> list[IndexRow]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [
            IndexRow(
                int(r["episode"]),
                r["outcome"],
                float(r["ret"]),
                int(r["steps"]),
                int(r["messages"]),
                int(r["bytes"]),
                r["file"],
                int(r.get("recoveries") or 0),  # indexes written before these columns
                int(r.get("interventions") or 0),
            )  # fmt: skip
            for r in csv.DictReader(f)
        ]
