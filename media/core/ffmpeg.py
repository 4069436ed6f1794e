"""The one way this project runs FFmpeg: an argv list, never a shell.

`run` logs the command line (shell-quoted, for copy and paste), passes `-nostdin`,
and raises `ToolFailed` with the tail of stderr when FFmpeg fails. Machine-readable
results (libvmaf's JSON log, the files written) are read afterwards; stderr is never
scraped for numbers.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from media.core.errors import ToolFailed

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 2000


def available_cores() -> int:
    """Cores this process (and the tools it starts) may run on: its CPU affinity where the
    platform tells it (a `taskset` or a container's cpuset can leave fewer than the
    machine has), else the machine's count. Thread counts of encoders, libvmaf and the
    DirectRunner's workers follow it."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the FFmpeg binary shipped by imageio-ffmpeg (has libx264 and libvmaf)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class ToolRun:
    """What a finished FFmpeg process left behind."""

    argv: tuple[str, ...]
    wall_s: float
    cpu_s: float
    """User + system CPU seconds of the process (and its threads)."""
    stderr: str


def ffmpeg_argv(*args: str) -> list[str]:
    """FFmpeg's argv with the options every run wants in front."""
    return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]


def run(
    argv: Sequence[str],
    timeout_s: float | None = None,
    hint: str | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> ToolRun:
    """Run a media tool; raise `ToolFailed` with stderr's tail if it fails or times out.

    `on_start`, if given, is called with the process once it has started (the fault
    hooks of `media.core.faults` use it to kill it).
    """
    argv = [str(a) for a in argv]
    log.debug("running: %s", shlex.join(argv))
    start = time.monotonic()
    with tempfile.TemporaryFile() as stderr_file:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_file
        )
        timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
        if timer:
            timer.start()
        try:
            if on_start is not None:
                on_start(proc)
            # wait4, not wait: it also gives the CPU seconds of this one child.
            _, status, rusage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr_file.seek(0)
        stderr = stderr_file.read().decode("utf-8", "replace")
    wall_s = time.monotonic() - start
    if proc.returncode != 0:
        timed_out = bool(timeout_s and wall_s >= timeout_s)
        if timed_out:
            stderr += f"\n(killed after the {timeout_s} s limit)"
        raise ToolFailed(
            argv, proc.returncode, stderr[-STDERR_TAIL_CHARS:], hint, timed_out=timed_out
        )
    return ToolRun(tuple(argv), wall_s, rusage.ru_utime + rusage.ru_stime, stderr)
