"""An append-only journal of executed transitions: nothing recorded is lost when a trainer dies.

One fixed-size binary record per transition (numpy structured dtype, little endian), written
with ``write`` + ``flush`` as it completes: once ``append`` returns, the record is in the OS and
survives a killed process (SIGKILL included; a power cut needs ``fsync_every``). A reader (or a
restarted trainer) ignores a torn trailing record, so the journal is always readable. The header
line names the record layout and the task, and a reader refuses any other layout.

``to_dataset`` turns a journal into the project's offline dataset (``failurebench_sim.datasets``),
so a run's executed transitions can feed the offline stage again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from failurebench_sim.datasets import FORMAT_VERSION, Dataset, DatasetFormatError, save_dataset
from farm_trainer.online.learner import Transition

MAGIC = b"FARMJRNL"
LAYOUT_VERSION = 1


def record_dtype(obs_dim: int, act_dim: int) -> np.dtype:
    """The on-disk record of one transition (``episode``/``step``: the frame it started at)."""
    return np.dtype([
        ("obs", "<f4", (obs_dim,)), ("proposed", "<f4", (act_dim,)), ("action", "<f4", (act_dim,)),
        ("reward", "<f4"), ("cost", "<f4"), ("score", "<f4"), ("terminated", "u1"),
        ("truncated", "u1"), ("replaced", "u1"), ("success", "u1"), ("policy_version", "<i8"),
        ("episode", "<i8"), ("step", "<i8"), ("stamp_ns", "<i8"), ("next_obs", "<f4", (obs_dim,)),
    ])  # fmt: skip


class JournalError(ValueError):
    """A journal file of another layout or task, or not a journal at all."""


class TransitionJournal:
    """Append transitions to ``path``; ``read()`` returns every complete record."""

    def __init__(
        self, path: str | os.PathLike, obs_dim: int, act_dim: int, task: str,
        fsync_every: int = 0,
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self.dtype = record_dtype(obs_dim, act_dim)
        self.task = task
        self.fsync_every = int(fsync_every)
        self.header = self._header_bytes()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            self._check_header()
            self._drop_torn_tail()
        else:
            with open(self.path, "wb") as f:
                f.write(self.header)
                f.flush()
                os.fsync(f.fileno())
        self._file = open(self.path, "ab")  # noqa: SIM115 (kept open: one write per transition)
        self.rows = self._count()
        self._since_sync = 0

    # -- format ---------------------------------------------------------------------------
    def _header_bytes(self) -> bytes:
        meta = {"layout": LAYOUT_VERSION, "task": self.task, "descr": str(self.dtype.descr)}
        line = MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n"
        return line + b" " * ((-len(line)) % 64)  # records start 64-byte aligned

    def _check_header(self) -> None:
        with open(self.path, "rb") as f:
            head = f.read(len(self.header))
        if head != self.header:
            raise JournalError(
                f"{self.path}: not a transition journal of this layout and task "
                f"(expected header {self.header[:120]!r}..., found {head[:120]!r}...)"
            )

    def _count(self) -> int:
        return (self.path.stat().st_size - len(self.header)) // self.dtype.itemsize

    def _drop_torn_tail(self) -> None:
        """A writer killed mid-record leaves a partial record: cut it (it was never complete)."""
        size = len(self.header) + self._count() * self.dtype.itemsize
        if self.path.stat().st_size != size:
            os.truncate(self.path, size)

    # -- writing --------------------------------------------------------------------------
    def append(self, tr: Transition, episode: int, step: int, stamp_ns: int = 0,
               success: bool = False) -> int:  # fmt: skip
        """Write one transition; returns its row index."""
        rec = np.zeros((), dtype=self.dtype)
        for name in ("obs", "proposed", "action", "reward", "cost", "score", "terminated",
                     "truncated", "replaced", "policy_version", "next_obs"):  # fmt: skip
            rec[name] = getattr(tr, name)
        rec["episode"], rec["step"], rec["stamp_ns"], rec["success"] = (
            episode, step, stamp_ns, success,
        )  # fmt: skip
        self._file.write(rec.tobytes())
        self._file.flush()
        self._since_sync += 1
        if self.fsync_every and self._since_sync >= self.fsync_every:
            os.fsync(self._file.fileno())
            self._since_sync = 0
        self.rows += 1
        return self.rows - 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    # -- reading --------------------------------------------------------------------------
    def read(self, start: int = 0) -> np.ndarray:
        """Records ``start`` .. end (a structured array; a torn tail is left out)."""
        if not self._file.closed:
            self._file.flush()
        return read_journal(self.path, self.dtype, len(self.header), start)


def read_journal(
    path: str | os.PathLike, dtype: np.dtype, offset: int, start: int = 0
) -> np.ndarray:
    size = os.path.getsize(path) - offset
    n = max(0, size // dtype.itemsize - start)
    return np.fromfile(path, dtype=dtype, count=n, offset=offset + start * dtype.itemsize)


def open_journal(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Every complete record of a journal file and its header (task, layout), read-only."""
    path = Path(path)
    with open(path, "rb") as f:
        line = f.readline()
    if not line.startswith(MAGIC):
        raise JournalError(f"{path}: not a FARM transition journal")
    try:
        meta = json.loads(line[len(MAGIC) :])
        if meta.get("layout") != LAYOUT_VERSION:
            raise JournalError(f"{path}: journal layout {meta.get('layout')} != {LAYOUT_VERSION}")
        descr = eval_descr(meta["descr"])
    except (ValueError, KeyError) as e:
        raise JournalError(f"{path}: unreadable journal header ({e})") from e
    header_len = len(line) + ((-len(line)) % 64)
    return read_journal(path, np.dtype(descr), header_len), meta


def eval_descr(text: str) -> list:
    """A numpy ``dtype.descr`` from its ``str`` (literals only: ``ast.literal_eval``)."""
    import ast

    descr = ast.literal_eval(text)
    return [tuple(d) for d in descr]


def transitions(records: np.ndarray) -> list[Transition]:
    """Journal records back as ``Transition``s (order kept)."""
    return [
        Transition(
            obs=r["obs"].copy(),
            proposed=r["proposed"].copy(),
            action=r["action"].copy(),
            reward=float(r["reward"]),
            cost=float(r["cost"]),
            terminated=bool(r["terminated"]),
            truncated=bool(r["truncated"]),
            next_obs=r["next_obs"].copy(),
            replaced=bool(r["replaced"]),
            score=float(r["score"]),
            policy_version=int(r["policy_version"]),
        )  # fmt: skip
        for r in records
    ]


def to_dataset(records: np.ndarray, meta: dict, path: str | os.PathLike | None = None,
               kind: str = "online") -> Dataset:  # fmt: skip
    """The records as an offline ``Dataset`` (``kind``: ``online``, or ``task`` / ``recovery`` /
    ``failure`` for teleoperated demonstrations; episode ids renumbered in order; an episode cut
    by a trainer restart stays one episode). Saved atomically to ``path``."""
    if len(records) == 0:
        raise DatasetFormatError("the journal holds no transitions")
    ep = records["episode"].astype(np.int64)
    ids = np.cumsum(np.r_[0, np.diff(ep) != 0]).astype(np.int64)
    metadata = {
        "format_version": FORMAT_VERSION, "created_by": "farm_trainer.online.journal",
        "env_id": meta.get("task", ""), "kind": kind, "n_episodes": int(ids[-1]) + 1,
        "policy_versions": [int(records["policy_version"].min()),
                            int(records["policy_version"].max())],
        "replaced_steps": int(records["replaced"].sum()),
    }  # fmt: skip
    ds = Dataset(
        observations=records["obs"].astype(np.float32),
        actions=np.clip(records["action"], -1.0, 1.0).astype(np.float32),
        rewards=records["reward"].astype(np.float32), costs=records["cost"].astype(np.float32),
        terminated=records["terminated"].astype(bool), truncated=records["truncated"].astype(bool),
        episode_ids=ids, next_observations=records["next_obs"].astype(np.float32),
        metadata=metadata,
    )  # fmt: skip
    if path is not None:
        save_dataset(path, ds)
    return ds
