"""Runs the graph as one OS process per node and stops it cleanly.

The graph stops at ``duration``, on SIGINT/SIGTERM, or as soon as any node exits (a node
that finished its work, e.g. sim_node after ``max_episodes``, ends the run). Children get
SIGINT (rclpy's clean shutdown), then SIGTERM, then SIGKILL. The exit code is 1 when a node
exited on its own with a non-zero status, else 0.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

POLL_S = 0.1


def _log(text: str) -> None:
    print(f"[farm-graph] {text}", file=sys.stderr, flush=True)


def _stop(procs: Mapping[str, subprocess.Popen], grace_s: float) -> None:
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs.values() if p.poll() is None]
        if not alive:
            return
        for p in alive:
            p.send_signal(sig)
        deadline = time.monotonic() + wait_s
        for p in alive:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for name, p in procs.items():
        if p.poll() is None:
            _log(f"{name} (pid {p.pid}) did not exit")


def run_processes(
    commands: Mapping[str, Sequence[str]],
    duration: float | None = None,
    env: Mapping[str, str] | None = None,
    grace_s: float = 10.0,
) -> int:
    """Start every command, wait for the end of the run, stop the rest; the exit code."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen] = {}
    early: dict[str, int] = {}
    try:
        for name, command in commands.items():
            procs[name] = subprocess.Popen(list(command), env=None if env is None else dict(env))
            _log(f"started {name} (pid {procs[name].pid})")
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            early = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
            if early:
                break
            stop.wait(POLL_S)
    finally:
        _stop(procs, grace_s)
        for s, handler in previous.items():
            signal.signal(s, handler)
    for name, code in early.items():
        _log(f"{name} exited with status {code}; stopped the graph")
    return 1 if any(code != 0 for code in early.values()) else 0
