"""Helpers for benchmarks: run a command, time it, and sample its memory and its
encoders' CPU time."""

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
    encoder_cpu_s: float = 0.0
    """CPU seconds (user + system) of the command's encoder processes (FFmpeg running
    libx264), as last sampled before each ended."""
    encode_span_s: float = 0.0
    """Seconds from the first sample that saw an encoder process to the last."""
    own_cpu_s: float = 0.0
    """CPU seconds (user + system) of the command's processes that are not FFmpeg tools
    (the Python process and any worker processes it starts), as last sampled."""

    def encoder_utilisation(self, cores: int | None = None) -> float:
        """Encoder CPU seconds over (the encode stage's wall seconds x cores)."""
        cores = cores or os.cpu_count() or 1
        return self.encoder_cpu_s / (self.encode_span_s * cores) if self.encode_span_s else 0.0


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (a thread's children are listed under it alone,
    and the runner starts FFmpeg from its worker threads)."""
    found = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
                found += [int(p) for p in handle.read().split()]
        except OSError:
            continue
    return found


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def _encoder_cpu_s(pid: int) -> float | None:
    """CPU seconds of `pid` if it is an FFmpeg process encoding with libx264, else None."""
    return _cpu_s_if(pid, lambda argv: (any(b"ffmpeg" in a for a in argv[:1])
                                        and b"libx264" in argv))


def _own_cpu_s(pid: int) -> float | None:
    """CPU seconds of `pid` itself (its threads, not its children) if it is not an FFmpeg
    tool (ffmpeg, ffprobe), else None."""
    return _cpu_s_if(pid, lambda argv: not os.path.basename(argv[0]).startswith(
        (b"ffmpeg", b"ffprobe")))


def _cpu_s_if(pid: int, wanted) -> float | None:
    """CPU seconds (user + system) of `pid` where `wanted(its argv)`, else None."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        # A process that has exited but is not yet reaped (a zombie) has no cmdline and
        # would pass for another kind: its time was sampled while it ran.
        if fields[0] == "Z" or argv == [b""] or not wanted(argv):
            return None
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


def _copy_timed(stream, log, start: float) -> None:
    """Copy `stream`'s lines to `log`, each prefixed with the seconds since `start`."""
    for line in iter(stream.readline, b""):
        log.write(b"%9.3f %s" % (time.monotonic() - start, line))
        log.flush()


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _tree(pid: int) -> list[tuple[int, bool]]:
    """`pid` and its descendants, each with whether its memory is its own: a child caught
    between its fork and its exec (its command line still its parent's) shares its
    parent's memory, which /proc reports as its own too, so it is not counted twice.
    (Catching Python's spawn of FFmpeg there counted a 358 MiB process twice.)"""
    found, todo = [], [(pid, None)]
    while todo:
        current, parent_cmdline = todo.pop()
        cmdline = _cmdline(current)
        found.append((current, parent_cmdline is None or cmdline != parent_cmdline))
        todo.extend((child, cmdline) for child in _children(current))
    return found


def run_measured(argv: list[str], log_path: str, env: dict | None = None,
                 interval_s: float = 0.2, timed_lines: bool = False) -> Measured:
    """Run `argv` to completion, logging its output to `log_path`; with `timed_lines`,
    each line of it prefixed with the seconds since the start (`%9.3f `)."""
    peak = {"hwm": 0, "tree": 0}
    encoders: dict[int, float] = {}
    own: dict[int, float] = {}
    span: list[float] = []
    with open(log_path, "wb") as log:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE if timed_lines else log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
        copier = threading.Thread(target=_copy_timed, args=(proc.stdout, log, start),
                                  daemon=True) if timed_lines else None
        if copier:
            copier.start()
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak["hwm"] = max(peak["hwm"], _rss_kib(proc.pid, "VmHWM"))
                tree = _tree(proc.pid)
                peak["tree"] = max(peak["tree"], sum(_rss_kib(p) for p, own_memory in tree
                                                     if own_memory))
                seen = False
                for pid, _ in tree:
                    cpu = _encoder_cpu_s(pid)
                    if cpu is not None:
                        encoders[pid] = max(encoders.get(pid, 0.0), cpu)
                        seen = True
                    cpu = _own_cpu_s(pid)
                    if cpu is not None:
                        own[pid] = max(own.get(pid, 0.0), cpu)
                if seen:
                    now = time.monotonic()
                    span[:] = [span[0] if span else now, now]
                done.wait(interval_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        wall = time.monotonic() - start
        done.set()
        sampler.join()
        if copier:
            copier.join()
    return Measured(wall, peak["hwm"] / 1024, peak["tree"] / 1024, proc.returncode,
                    sum(encoders.values()), span[1] - span[0] if span else 0.0,
                    sum(own.values()))
