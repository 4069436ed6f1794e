"""One source index in memory at a time, per process.

Opening an MP4 or MOV source makes libavformat read the container's whole sample table:
about 40 MB for a 2-hour title (510,000 video and audio samples), however few seconds
the reader then copies. Staging a chunk, an audio span or an inspection span opens the
source, seeks, copies its packets to a local file and closes it, in well under a second
of a task that then decodes for seconds. `one_source_index` lets one such read hold an
index at a time in the process, so a worker's memory does not grow with the title's
length times its threads; and the freed table goes back to the system (glibc would keep
it in its arenas, so the next index lands beside it instead of in its place).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator

__all__ = ["one_source_index"]

_ONE_AT_A_TIME = threading.RLock()
MMAP_THRESHOLD_BYTES = 256 * 1024
"""Allocations from this size up are mapped on their own and unmapped when freed (glibc
otherwise raises the threshold to the largest block freed, about an index's size)."""


@functools.cache
def _libc():
    """glibc's allocator controls, with the mmap threshold fixed; None elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD_BYTES)  # M_MMAP_THRESHOLD, which also stops it moving
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def one_source_index() -> Iterator[None]:
    """Hold the process's one slot for an opened source while the block runs (re-entrant:
    a read that reopens its source keeps the slot); then hand freed memory back."""
    libc = _libc()
    with _ONE_AT_A_TIME:
        try:
            yield
        finally:
            if libc is not None:
                libc.malloc_trim(0)
