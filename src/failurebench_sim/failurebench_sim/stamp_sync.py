"""Pairing of messages from several topics by their header stamps (no rclpy).

The twin stamps every message of a frame with the frame's sim time, and each FARM node stamps
its outputs with the stamp of the frame they were computed from, so a node that needs several
inputs waits until all of them have arrived *for the same stamp* — DDS does not order messages
across topics, and pairing by arrival would mix frames. ``ExactPairer`` does that with bounded
memory; ``LatestBefore`` serves high-rate robot topics (the 1 kHz end-effector pose) whose
stamps never equal a camera frame's: the newest sample at or before the frame, if fresh enough.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any


class ExactPairer:
    """Collects values per stamp; ``add`` returns the complete set once every stream has one.

    Incomplete sets older than a completed one are dropped (their frame is gone) and counted in
    ``dropped``; at most ``max_pending`` stamps are kept. A stamp more than ``time_reset_ns``
    before the last completed one means the source's clock restarted (a restarted twin's sim
    time, a bag played again): the pairer starts over (counted in ``resets``) instead of
    refusing every frame until the new clock catches up.
    """

    def __init__(
        self, streams: Iterable[str], max_pending: int = 32, time_reset_ns: int = 5_000_000_000
    ) -> None:
        self.streams = tuple(streams)
        self.max_pending = int(max_pending)
        self.time_reset_ns = int(time_reset_ns)
        self._pending: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.last_completed = -1
        self.dropped = self.resets = 0

    def add(self, stream: str, stamp_ns: int, value: Any) -> dict[str, Any] | None:
        if stream not in self.streams:
            raise KeyError(f"unknown stream {stream!r}; expected one of {self.streams}")
        if stamp_ns <= self.last_completed - self.time_reset_ns:
            self.reset()
            self.resets += 1
        if stamp_ns <= self.last_completed:
            return None  # a late duplicate of a frame already decided
        slot = self._pending.setdefault(stamp_ns, {})
        slot[stream] = value
        if len(slot) < len(self.streams):
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
                self.dropped += 1
            return None
        del self._pending[stamp_ns]
        for old in [s for s in self._pending if s < stamp_ns]:
            del self._pending[old]
            self.dropped += 1
        self.last_completed = stamp_ns
        return slot

    def reset(self) -> None:
        self._pending.clear()
        self.last_completed = -1


class LatestBefore:
    """The newest value with stamp <= t from a bounded history (None if none or too old)."""

    def __init__(
        self, max_age_ns: int, maxlen: int = 256, time_reset_ns: int = 5_000_000_000
    ) -> None:
        self.max_age_ns = int(max_age_ns)
        self.time_reset_ns = int(time_reset_ns)
        self._hist: deque[tuple[int, Any]] = deque(maxlen=maxlen)

    def add(self, stamp_ns: int, value: Any) -> None:
        if self._hist and stamp_ns < self._hist[-1][0] - self.time_reset_ns:
            self._hist.clear()  # the source's clock restarted (see ExactPairer)
        if self._hist and stamp_ns < self._hist[-1][0]:
            return  # out of order: keep the history sorted
        self._hist.append((stamp_ns, value))

    def at(self, stamp_ns: int) -> Any | None:
        for s, v in reversed(self._hist):
            if s <= stamp_ns:
                return v if stamp_ns - s <= self.max_age_ns else None
        return None


class LatestPairer:
    """``ExactPairer``'s interface for inputs on clocks of their own (the robot's 1 kHz pose,
    an episode manager's state): each frame of the ``driver`` stream (the object poses, stamped
    with the camera image) is completed with every other stream's newest value stamped at or
    before it and at most ``max_age_ns`` older (``LatestBefore``). A frame whose other inputs
    have not all arrived waits (at most ``max_pending`` frames); completing one drops the older
    waiting ones (counted in ``dropped``)."""

    def __init__(self, driver: str, others: Iterable[str], max_age_ns: int,
                 max_pending: int = 8, time_reset_ns: int = 5_000_000_000) -> None:  # fmt: skip
        self.driver, self.others = driver, tuple(others)
        self.streams = (driver, *self.others)
        self.max_pending = int(max_pending)
        self.time_reset_ns = int(time_reset_ns)
        self._latest = {
            s: LatestBefore(max_age_ns, time_reset_ns=time_reset_ns) for s in self.others
        }
        self._pending: OrderedDict[int, Any] = OrderedDict()
        self.last_completed = -1
        self.dropped = self.resets = 0

    def add(self, stream: str, stamp_ns: int, value: Any) -> dict[str, Any] | None:
        if stream not in self.streams:
            raise KeyError(f"unknown stream {stream!r}; expected one of {self.streams}")
        if stream != self.driver:
            self._latest[stream].add(stamp_ns, value)
            return self._complete()
        if stamp_ns <= self.last_completed - self.time_reset_ns:
            self.reset()
            self.resets += 1
        if stamp_ns <= self.last_completed:
            return None
        self._pending[stamp_ns] = value
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.dropped += 1
        return self._complete()

    def _complete(self) -> dict[str, Any] | None:
        for stamp in sorted(self._pending, reverse=True):  # the newest frame that can complete
            values = {s: self._latest[s].at(stamp) for s in self.others}
            if all(v is not None for v in values.values()):
                frame = {self.driver: self._pending.pop(stamp), **values}
                for old in [s for s in self._pending if s < stamp]:
                    del self._pending[old]
                    self.dropped += 1
                self.last_completed = stamp
                return frame
        return None

    def reset(self) -> None:
        self._pending.clear()
        self.last_completed = -1
