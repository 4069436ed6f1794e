"""Storage through Beam's FileSystems: local paths and gs:// alike.

Writes go to a temporary name beside the final one and are then renamed, so a reader
never sees half an object and a retried bundle rewrites the same names (invariant 4).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from media.core.source_index import forget_kept_source
from media.ingest.imf.storage import LOCAL, use_remote_storage
from transforms.metrics import BYTES_WRITTEN

_TMP_SUFFIX = ".partial"
_MIME_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".js": "text/javascript",
}
_COPY_BLOCK = 8 << 20


class ReleasesKeptSource:
    """Mixed into a DoFn that stages spans of sources: the source its reads kept open
    (`media.core.source_index.opened_source`) is closed at the end of each bundle, so a
    worker holds a title's index (about 20 MB at 2 hours) while a stage reads the title,
    not through the stages after it."""

    def finish_bundle(self):
        forget_kept_source()


def is_local(uri: str) -> bool:
    return FileSystems.get_scheme(uri) in (None, "file")


def local_path(uri: str) -> str:
    return uri.removeprefix("file://")


@contextmanager
def open_source(uri: str) -> Iterator[str | BinaryIO]:
    """A local path for local files (FFmpeg and PyAV read them directly), else a
    seekable file object from FileSystems, which reads only the byte ranges asked for."""
    if is_local(uri):
        yield local_path(uri)
        return
    handle = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        yield handle
    finally:
        handle.close()


def exists(uri: str) -> bool:
    return FileSystems.exists(uri)


def size_of(uri: str) -> int:
    return FileSystems.match([uri])[0].metadata_list[0].size_in_bytes


def read_bytes(uri: str) -> bytes:
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def read_json(uri: str) -> dict:
    return json.loads(read_bytes(uri).decode("utf-8"))


def write_bytes(uri: str, data: bytes) -> None:
    """Write `data` to `uri` atomically (temporary name, then rename)."""
    _write_atomic(uri, io.BytesIO(data))
    BYTES_WRITTEN.inc(len(data))


def write_json(uri: str, value: object) -> None:
    write_bytes(uri, (json.dumps(value, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def upload(local_file: str, uri: str) -> None:
    """Copy a local file to `uri` atomically."""
    with open(local_file, "rb") as handle:
        _write_atomic(uri, handle)
        BYTES_WRITTEN.inc(handle.tell())


def download(uri: str, local_file: str) -> None:
    if is_local(uri):
        shutil.copyfile(local_path(uri), local_file)
        return
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as src, \
            open(local_file, "wb") as dst:
        shutil.copyfileobj(src, dst, _COPY_BLOCK)


def _write_atomic(uri: str, stream: BinaryIO) -> None:
    # A temporary name of its own per write: two writers of one name (a retried bundle
    # beside the first try, two rejects of one title) must not rename each other's file.
    tmp = f"{uri}.{uuid.uuid4().hex[:12]}{_TMP_SUFFIX}"
    if is_local(uri):
        os.makedirs(os.path.dirname(os.path.abspath(local_path(uri))), exist_ok=True)
    mime = _MIME_TYPES.get(os.path.splitext(uri)[1].lower(), "application/octet-stream")
    try:
        with FileSystems.create(tmp, mime_type=mime,
                                compression_type=CompressionTypes.UNCOMPRESSED) as out:
            shutil.copyfileobj(stream, out, _COPY_BLOCK)
        if is_local(uri):
            os.replace(local_path(tmp), local_path(uri))
        else:
            FileSystems.rename([tmp], [uri])
    except BaseException:
        # A retry writes under another temporary name: leave no half-written one behind.
        with contextlib.suppress(Exception):
            FileSystems.delete([tmp])
        raise


def delete_tree(uri: str) -> None:
    """Delete everything under a folder or prefix (missing is fine)."""
    if is_local(uri):
        shutil.rmtree(local_path(uri), ignore_errors=True)
        return
    prefix = uri.rstrip("/") + "/"
    matched = FileSystems.match([prefix + "**"])[0].metadata_list
    if matched:
        FileSystems.delete([m.path for m in matched])


def matching(pattern: str) -> list[str]:
    """The objects whose names match a glob (`folder/*.json`), sorted; none is fine."""
    found = FileSystems.match([pattern])[0].metadata_list
    return sorted(m.path for m in found)


def delete(uri: str) -> None:
    if exists(uri):
        FileSystems.delete([uri])


class FileSystemsStorage:
    """The IMF readers' `Storage` (media.ingest.imf.storage) over Beam's FileSystems:
    local paths and gs:// alike."""

    def size(self, uri: str) -> int | None:
        if is_local(uri):
            return LOCAL.size(local_path(uri))
        try:
            found = FileSystems.match([uri])[0].metadata_list
        except Exception:  # a missing object raises, differently per filesystem
            return None
        files = [m for m in found if m.path.rstrip("/") == uri.rstrip("/")]
        return files[0].size_in_bytes if files else None

    def open(self, uri: str) -> BinaryIO:
        if is_local(uri):
            return LOCAL.open(local_path(uri))
        try:
            return FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # filesystems raise errors of their own
            raise OSError(f"{uri}: {exc}") from exc

    def canonical(self, uri: str) -> str:
        return os.path.realpath(uri) if "://" not in uri else uri.rstrip("/")


# Workers that run any stage read IMF track files in object storage through FileSystems.
use_remote_storage(FileSystemsStorage())
