"""Run logger: ``progress.csv`` (one flushed line per update) plus optional TensorBoard."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from failurebench_sim.atomic import atomic_write


def _fmt(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


class RunLogger:
    """Append rows to ``<out_dir>/progress.csv`` and scalars to TensorBoard.

    Columns are fixed by the first row (later unknown keys raise ``KeyError``). With
    ``truncate_after=(key, value)`` rows whose ``key`` exceeds ``value`` are dropped (atomic
    rewrite), so a resumed run continues the CSV from its checkpoint without duplicates.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        tensorboard: bool = True,
        truncate_after: tuple[str, float] | None = None,
        filename: str = "progress.csv",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / filename
        self.fieldnames: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.fieldnames = list(reader.fieldnames or [])
                rows = list(reader)
            if truncate_after is not None:
                key, limit = truncate_after
                kept = [r for r in rows if r.get(key, "") != "" and float(r[key]) <= limit]
                self._rewrite(kept)
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out_dir / "tb"))

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fieldnames)
                writer.writeheader()
                writer.writerows(rows)

        atomic_write(self.path, write)

    def log(self, row: Mapping[str, Any], step: int | None = None) -> None:
        """Append one row (one ``write`` call, flushed + fsynced) and mirror numbers to TB."""
        new_file = self.fieldnames is None
        if new_file:
            self.fieldnames = list(row)
        unknown = set(row) - set(self.fieldnames)
        if unknown:
            raise KeyError(f"columns {sorted(unknown)} not in {self.path.name} header")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fieldnames)
        if new_file:
            writer.writeheader()
        writer.writerow({k: _fmt(row.get(k)) for k in self.fieldnames})
        with open(self.path, "a", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
