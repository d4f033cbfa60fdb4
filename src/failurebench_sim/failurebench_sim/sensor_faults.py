"""Sensor fault injection for the twin: drop or delay the observation source's messages.

A real camera drops frames (USB bandwidth, a busy driver) and delivers some late; the twin can
do both on purpose so the graph's reaction (holds, never actions from old frames) is tested.
One ``offer`` per frame; ``due`` gives what is to be published now, in stamp order.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class SensorFaultError(ValueError):
    pass


@dataclass
class SensorFaults:
    """Drop each frame with probability ``drop_fraction``; publish the rest ``delay_ns`` of the
    frame clock after their stamp (0: at once). Seeded: the same frames drop on every run."""

    drop_fraction: float = 0.0
    delay_ns: int = 0
    seed: int = 0
    offered: int = 0
    dropped: int = 0
    _queue: deque = field(default_factory=deque)
    _rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.drop_fraction) and 0.0 <= self.drop_fraction <= 1.0):
            raise SensorFaultError(f"drop_fraction must be in [0, 1], got {self.drop_fraction}")
        if self.delay_ns < 0:
            raise SensorFaultError(f"delay must be >= 0, got {self.delay_ns} ns")
        self._rng = np.random.default_rng(self.seed)

    @property
    def active(self) -> bool:
        return self.drop_fraction > 0 or self.delay_ns > 0

    def offer(self, stamp_ns: int, item: Any) -> None:
        """A frame stamped ``stamp_ns`` (``item``: whatever the caller publishes for it)."""
        self.offered += 1
        if self.drop_fraction > 0 and self._rng.random() < self.drop_fraction:
            self.dropped += 1
            return
        self._queue.append((int(stamp_ns), item))

    def due(self, now_ns: int) -> list[Any]:
        """The frames whose delay has passed at ``now_ns`` (oldest first)."""
        out = []
        while self._queue:
            stamp, item = self._queue[0]
            if now_ns - stamp < self.delay_ns:
                break
            out.append(item)
            self._queue.popleft()
        return out
