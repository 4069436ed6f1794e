"""One source index in memory at a time, per process.

Opening an MP4 or MOV source makes libavformat read the container's whole sample table:
about 40 MB for a 2-hour title (510,000 video and audio samples), however few seconds
the reader then copies. Staging a chunk, an audio span or an inspection span opens the
source, seeks, copies its packets to a local file and closes it, in well under a second
of a task that then decodes for seconds. `one_source_index` lets one such read hold an
index at a time in the process, so a worker's memory does not grow with the title's
length times its threads; and the freed table goes back to the system (glibc would keep
it in its arenas, so the next index lands beside it instead of in its place).

`opened_source` keeps that one index: a local source stays open for the next read of the
same file (same path, size and modification time), which seeks it instead of reading the
index again. Reading a 2-hour MP4's index costs 0.03-0.06 CPU s, paid by every chunk and
inspection span of the title: a cost per chunk that grew with the title.
A file object (a remote source's FileSystems handle, which its caller closes) is opened
for its read alone, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import av

__all__ = ["forget_kept_source", "one_source_index", "opened_source"]

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


class _Kept:
    """The process's one source kept open: its key and container (None: none)."""

    key: tuple | None = None
    container = None


def _key(source: str | BinaryIO, options: Mapping[str, str]) -> tuple | None:
    """What names a local source's contents; None for a file object, or a path that is
    gone or unreadable (FFmpeg's open then says so, as it always has)."""
    if not isinstance(source, str):
        return None
    try:
        stat = os.stat(source)
    except OSError:
        return None
    return (os.path.realpath(source), stat.st_size, stat.st_mtime_ns, stat.st_ino,
            tuple(sorted(options.items())))


def _drop() -> None:
    container, _Kept.key, _Kept.container = _Kept.container, None, None
    if container is not None:
        container.close()


@contextlib.contextmanager
def opened_source(source: str | BinaryIO, options: Mapping[str, str], *,
                  reuse: bool = True) -> Iterator[av.container.InputContainer]:
    """`source` opened for reading, holding the process's one slot (`one_source_index`).

    A local path with `reuse` gets the container the last read of the same file left
    open, wherever that read left it: the caller seeks before it reads (`reuse=False`
    where it reads from wherever a fresh open starts). A read that fails drops it. A file
    object is opened and closed here, and the kept container stays as it was."""
    with one_source_index():
        key = _key(source, options)
        if key is None:
            with av.open(source, mode="r", options=dict(options)) as container:
                yield container
            return
        if not reuse or _Kept.key != key:
            _drop()
            _Kept.container = av.open(source, mode="r", options=dict(options))
            _Kept.key = key
        try:
            yield _Kept.container
        except BaseException:
            _drop()
            raise


def forget_kept_source() -> None:
    """Close the source kept open, if any (a test's teardown; a worker's end)."""
    with _ONE_AT_A_TIME:
        _drop()
