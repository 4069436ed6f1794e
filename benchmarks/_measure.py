"""Helpers for benchmarks: run a command, time it, and sample its memory."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_mib: float
    """Peak resident memory of the command's own process (VmHWM)."""
    peak_tree_rss_mib: float
    """Largest sampled sum of resident memory of the process and all its descendants."""
    returncode: int


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(_children(current))
    return found


def run_measured(argv: list[str], log_path: str, env: dict | None = None,
                 interval_s: float = 0.2) -> Measured:
    """Run `argv` to completion, logging its output to `log_path`."""
    peak = {"hwm": 0, "tree": 0}
    with open(log_path, "wb") as log:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak["hwm"] = max(peak["hwm"], _rss_kib(proc.pid, "VmHWM"))
                peak["tree"] = max(peak["tree"], sum(_rss_kib(p) for p in _tree(proc.pid)))
                done.wait(interval_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        wall = time.monotonic() - start
        done.set()
        sampler.join()
    return Measured(wall, peak["hwm"] / 1024, peak["tree"] / 1024, proc.returncode)
