"""Where a package's files are read from: the local disk by default, or anything that can
tell a file's size and open it for reading (the pipeline passes one backed by Beam's
FileSystems for gs:// packages). Paths are joined with '/' whatever the store."""

from __future__ import annotations

import os
import posixpath
from typing import BinaryIO, Protocol


class Storage(Protocol):
    def size(self, uri: str) -> int | None:
        """Bytes of the file at `uri`; None when there is no file there."""

    def open(self, uri: str) -> BinaryIO:
        """The file opened for binary reading (seekable); OSError when it cannot be."""

    def canonical(self, uri: str) -> str:
        """One spelling per file (two ASSETMAPs given twice are read once)."""


class LocalStorage:
    def size(self, uri: str) -> int | None:
        return os.path.getsize(uri) if os.path.isfile(uri) else None

    def open(self, uri: str) -> BinaryIO:
        return open(uri, "rb")

    def canonical(self, uri: str) -> str:
        return os.path.realpath(uri)


LOCAL = LocalStorage()

_remote: list[Storage] = []
"""The store for URIs that are not local paths, as the pipeline registers it
(`use_remote_storage`): Beam's FileSystems, which this package does not import."""


def use_remote_storage(storage: Storage) -> None:
    """Read every non-local URI (gs://...) through `storage` from now on."""
    _remote[:] = [storage]


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def storage_for(uri: str) -> Storage:
    """The local disk for a local path, else the registered remote store."""
    if is_local(uri):
        return LOCAL
    if not _remote:
        raise OSError(f"{uri}: no store is registered for remote files "
                      "(media.ingest.imf.storage.use_remote_storage)")
    return _remote[0]


def read_head(storage: Storage, uri: str, limit: int) -> bytes:
    """At most `limit` bytes from the start of the file."""
    with storage.open(uri) as handle:
        return handle.read(limit)


def join(folder: str, relative: str) -> str:
    return posixpath.join(folder, relative)


def parent(uri: str) -> str:
    return posixpath.dirname(uri)
