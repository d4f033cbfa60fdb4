"""The one atomic-write helper: temp file in the target's directory, fsync, ``os.replace``.

A reader never sees a half-written file; a killed writer leaves the previous version (or
nothing) and no stray temp file that a later glob would pick up.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, write_fn: Callable[[str], Any]) -> Path:
    """Call ``write_fn(tmp_path)``, fsync the temp file, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Strict JSON (NaN/inf become null; numpy scalars and arrays become numbers and lists)."""
    return write_text(path, json.dumps(_finite(obj), indent=indent, default=_default) + "\n")


def read_json_of_kind(path: str | os.PathLike, kind: str, what: str) -> dict[str, Any]:
    """The JSON object that ``write_json`` wrote with ``"kind": kind`` (the rest of its fields);
    ``ValueError`` naming ``what`` it should be where the file is unreadable or another kind."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the {what} {path}: {e}") from e
    if not isinstance(d, dict) or d.get("kind") != kind:
        raise ValueError(f"{path} is not a {what} ({kind})")
    return {k: v for k, v in d.items() if k != "kind"}


def write_csv(path: str | os.PathLike, rows: Sequence[dict], decimals: int | None = 4) -> Path:
    """``rows`` (dicts sharing keys) as CSV; floats rounded to ``decimals`` places."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(_round(r, decimals) for r in rows)

    return atomic_write(path, write)


def _round(row: dict, decimals: int | None) -> dict:
    if decimals is None:
        return row
    return {k: round(v, decimals) if isinstance(v, float) else v for k, v in row.items()}


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    return str(o)


def _finite(o: Any) -> Any:
    if isinstance(o, float | np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o
