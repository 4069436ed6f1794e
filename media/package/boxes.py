"""ISO BMFF (MP4) boxes: where they lie, and the fields of a fragment's track headers.

The one walk over boxes that everything here uses (`iter_boxes`, `find_all`), over
bytes or over a seekable file's box headers alone; the truncation check the inspection
makes of a source (`truncation`); and the tfhd, trun and trex fields that the reader
(`media.package.isobmff`), the CMAF cutter and the I-frame ranges need. Malformed input
raises `IsobmffError`, a `MediaError` that is also a `ValueError`.

    moof = find_box(segment, "moof")
    trun = read_trun(segment, find_box(segment, "traf/trun", moof))
"""

from __future__ import annotations

import itertools
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from media.core.errors import MediaError

__all__ = [
    "SAMPLE_IS_NON_SYNC",
    "TFHD_BASE_DATA_OFFSET",
    "TFHD_DEFAULT_BASE_IS_MOOF",
    "TFHD_DURATION",
    "TFHD_FLAGS",
    "TFHD_SIZE",
    "TRUN_CTO",
    "TRUN_DATA_OFFSET",
    "TRUN_DURATION",
    "TRUN_FIRST_FLAGS",
    "TRUN_FLAGS",
    "TRUN_SIZE",
    "Box",
    "IsobmffError",
    "Tfhd",
    "Trex",
    "Trun",
    "TruncatedBox",
    "find_all",
    "find_box",
    "full_box",
    "iter_boxes",
    "read_tfhd",
    "read_trex",
    "read_trun",
    "require_box",
    "trun_samples",
    "truncation",
    "unpack",
]

SAMPLE_IS_NON_SYNC = 0x00010000
"""The sample_is_non_sync_sample bit of ISO/IEC 14496-12 sample flags."""

# Optional fields of tfhd and trun, in stored order, each keyed by the flag bit that adds
# it (ISO/IEC 14496-12, 8.8.7 and 8.8.8).
TFHD_BASE_DATA_OFFSET, TFHD_DURATION, TFHD_SIZE, TFHD_FLAGS = 0x1, 0x8, 0x10, 0x20
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TFHD_FIELDS = ((TFHD_BASE_DATA_OFFSET, "Q"), (0x2, "I"), (TFHD_DURATION, "I"),
                (TFHD_SIZE, "I"), (TFHD_FLAGS, "I"))
TRUN_DATA_OFFSET, TRUN_FIRST_FLAGS = 0x1, 0x4
_TRUN_HEAD_FIELDS = ((TRUN_DATA_OFFSET, "i"), (TRUN_FIRST_FLAGS, "I"))
TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO = 0x100, 0x200, 0x400, 0x800
_TRUN_SAMPLE_FIELDS = ((TRUN_DURATION, "I"), (TRUN_SIZE, "I"), (TRUN_FLAGS, "I"), (TRUN_CTO, "I"))
_TRUN_V1_SAMPLE_FIELDS = (*_TRUN_SAMPLE_FIELDS[:3], (TRUN_CTO, "i"))
"""Version 1 trun composition offsets are signed."""
_MAX_BOXES = 100_000
"""Top-level boxes `truncation` walks at most (a fragmented two-hour title has ~7,000)."""


class IsobmffError(MediaError, ValueError):
    """The bytes are not the (fragmented) MP4 the reader expected."""

    hint = (
        "The MP4 is truncated or not a CMAF fragment. Re-create the segment (re-run the "
        "packaging step) and check that the file was written completely."
    )


class TruncatedBox(IsobmffError):
    """A box, or its header, runs past the end of what holds it."""

    def __init__(self, message: str, offset: int, box: Box | None = None):
        super().__init__(message)
        self.offset = offset
        """Where the box's header starts."""
        self.box = box
        """The box as its header declares it (None where the header itself is cut)."""


@dataclass(frozen=True)
class Box:
    """Where one box lies in a buffer; its payload is `data[payload_start:end]`."""

    type: str
    """Four-character code, e.g. 'moof'."""
    start: int
    """Offset of the box's first header byte."""
    payload_start: int
    """Offset just after the header (and after the 16-byte extended type of 'uuid')."""
    end: int
    """Offset just after the box."""


def unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    """struct.unpack_from, raising `IsobmffError` where the data ends too soon."""
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error as exc:
        raise IsobmffError(f"truncated box data at byte {offset}: {exc}") from None


def iter_boxes(data, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in `data[start:end]` (one level, not recursive).

    `data` is bytes (or a buffer such as an mmap), or a seekable binary file, of which
    only the box headers are read: a two-hour MP4's top-level boxes are found without
    reading its media. A box or header that runs past `end` raises `TruncatedBox`.
    """
    read = _header_reader(data)
    end = _length(data) if end is None else end
    offset = start
    while offset < end:
        head = read(offset, 32)
        if end - offset < 8 or len(head) < 8:
            raise TruncatedBox(f"truncated box header at byte {offset}", offset)
        size, raw_type = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            if end - offset < 16 or len(head) < 16:
                raise TruncatedBox(f"truncated box header at byte {offset}", offset)
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:  # the box runs to the end of its parent (or of the file)
            size = end - offset
        box_type = raw_type.decode("latin-1")
        if box_type == "uuid":
            header += 16
        claim = f"box '{box_type}' at byte {offset} claims {size} bytes; {end - offset} remain"
        if size < header:
            raise IsobmffError(f"{claim} (truncated or corrupt)")
        box = Box(box_type, offset, offset + header, offset + size)
        if box.end > end:
            raise TruncatedBox(f"{claim} (truncated or corrupt)", offset, box)
        yield box
        offset += size


def _header_reader(data) -> Callable[[int, int], bytes]:
    """read(offset, count): up to `count` bytes of `data` (bytes or a binary file) from
    `offset`."""
    if not hasattr(data, "read") or isinstance(data, mmap.mmap):
        return lambda offset, count: bytes(data[offset:offset + count])

    def read(offset: int, count: int) -> bytes:
        data.seek(offset)
        return data.read(count)

    return read


def _length(data) -> int:
    if not hasattr(data, "read") or isinstance(data, mmap.mmap):
        return len(data)
    return data.seek(0, os.SEEK_END)


def truncation(handle: BinaryIO) -> str:
    """Why an ISO BMFF file (MP4, MOV) looks cut short, or "" if it does not (or is not
    ISO BMFF), from an open seekable binary file: a top-level box that runs past the end
    of the file, or no `moov` (the index a writer adds when it finishes the file). Only
    box headers are read."""
    try:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        head = handle.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return ""
        seen = {box.type for box in itertools.islice(iter_boxes(handle, 0, size), _MAX_BOXES)}
    except TruncatedBox as exc:
        if exc.box is None:
            return f"it ends inside a box header at byte {exc.offset} of {size}"
        missing = exc.box.end - size
        return (
            f"its '{exc.box.type}' box needs {missing} more bytes than the file has "
            f"(the file is {size} bytes, about {100 * size / (size + missing):.0f} % of what "
            "it should be)"
        )
    except (OSError, ValueError):  # IsobmffError included: a structure not understood,
        return ""  # which the demuxer judges
    if "moov" not in seen:
        return "it has no 'moov' box (the index a writer adds when it finishes the file)"
    return ""


def find_all(data: bytes, path: str, parent: Box | None = None) -> list[Box]:
    """Every box at a slash-separated path, e.g. 'moov/trak/mdia/mdhd'."""
    first, _, rest = path.partition("/")
    level = iter_boxes(data, parent.payload_start, parent.end) if parent else iter_boxes(data)
    found = [box for box in level if box.type == first]
    if not rest:
        return found
    return [deep for box in found for deep in find_all(data, rest, box)]


def find_box(data: bytes, path: str, parent: Box | None = None) -> Box | None:
    """The first box at `path` (see `find_all`), or None."""
    found = find_all(data, path, parent)
    return found[0] if found else None


def require_box(data: bytes, path: str, parent: Box | None = None) -> Box:
    """`find_box`, raising `IsobmffError` where there is no such box."""
    box = find_box(data, path, parent)
    if box is None:
        where = f" in '{parent.type}'" if parent else ""
        raise IsobmffError(f"no '{path}' box{where}")
    return box


def _fields(
    data: bytes, offset: int, flags: int, table: tuple[tuple[int, str], ...]
) -> tuple[dict[int, int], int]:
    """The optional fields whose bits are set in `flags`, and the offset after them."""
    present = [(bit, code) for bit, code in table if flags & bit]
    fmt = ">" + "".join(code for _, code in present)
    values = unpack(fmt, data, offset)
    bits = [bit for bit, _ in present]
    return dict(zip(bits, values, strict=True)), offset + struct.calcsize(fmt)


def full_box(data: bytes, box: Box) -> tuple[int, int, int]:
    """(version, flags, offset of the body) of a FullBox."""
    (word,) = unpack(">I", data, box.payload_start)
    return word >> 24, word & 0xFFFFFF, box.payload_start + 4


class Tfhd(NamedTuple):
    """A track fragment header (ISO/IEC 14496-12 8.8.7)."""

    flags: int
    track_id: int
    fields: dict[int, int]
    """Its optional fields, by the flag bit that adds each (TFHD_SIZE, TFHD_FLAGS, ...)."""
    end: int
    """Offset just after its fields."""


def read_tfhd(data: bytes, tfhd: Box) -> Tfhd:
    _, flags, body = full_box(data, tfhd)
    (track_id,) = unpack(">I", data, body)
    fields, end = _fields(data, body + 4, flags, _TFHD_FIELDS)
    return Tfhd(flags, track_id, fields, end)


class Trun(NamedTuple):
    """Where the fields of a track run (ISO/IEC 14496-12 8.8.8) lie in its buffer."""

    version: int
    flags: int
    sample_count: int
    data_offset: int | None
    """Where the run's first sample's data starts, from the base (a CMAF moof's start)."""
    first_sample_flags: int | None
    records: int
    """Offset of the first sample's record."""
    record_size: int
    offsets: dict[int, int]
    """Flag bit (TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO) -> where that field lies in
    a record, for the fields present."""

    def field_at(self, sample: int, bit: int) -> int:
        """Offset of the field `bit` of sample `sample` (the run's first is 0)."""
        return self.records + sample * self.record_size + self.offsets[bit]


def trun_samples(data: bytes, trun: Trun) -> Iterator[dict[int, int]]:
    """Each sample's fields, by flag bit (composition offsets signed in a version 1 trun)."""
    table = _TRUN_V1_SAMPLE_FIELDS if trun.version == 1 else _TRUN_SAMPLE_FIELDS
    offset = trun.records
    for _ in range(trun.sample_count):
        sample, offset = _fields(data, offset, trun.flags, table)
        yield sample


def read_trun(data: bytes, trun: Box) -> Trun:
    version, flags, body = full_box(data, trun)
    (count,) = unpack(">I", data, body)
    head, records = _fields(data, body + 4, flags, _TRUN_HEAD_FIELDS)
    present = [bit for bit, _ in _TRUN_SAMPLE_FIELDS if flags & bit]
    return Trun(version, flags, count, head.get(TRUN_DATA_OFFSET), head.get(TRUN_FIRST_FLAGS),
                records, 4 * len(present), {bit: 4 * i for i, bit in enumerate(present)})


class Trex(NamedTuple):
    """A track's sample defaults for its fragments (trex, ISO/IEC 14496-12 8.8.3)."""

    duration: int
    size: int
    flags: int


def read_trex(data: bytes, track_id: int, moov: Box | None = None) -> Trex | None:
    """The sample defaults of track `track_id` from an init segment's trex, if it has one."""
    moov = moov or require_box(data, "moov")
    for trex in find_all(data, "mvex/trex", moov):
        _, _, body = full_box(data, trex)
        trex_track, _, duration, size, flags = unpack(">5I", data, body)
        if trex_track == track_id:
            return Trex(duration, size, flags)
    return None
