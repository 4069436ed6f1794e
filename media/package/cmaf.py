"""Cut a fragmented MP4 into a CMAF init segment and media segments, by stream copy.

FFmpeg writes each rendition as one fragmented MP4 with a fragment at every IDR frame
(and we put an IDR at every segment boundary). `split_fragmented_mp4` cuts that file at
its fragments: `ftyp`+`moov` become the init segment, each `moof`+`mdat` pair a media
segment, prefixed with a CMAF `styp`. Samples are not touched.

One timing fix is made on the way: an encoder with B-frames delays decoding, so the
first frame's presentation time is its composition offset (two frames, say), not zero.
MP4 files hide that with an edit list, which Media Source players ignore in fragmented
files, putting video behind audio. CMAF allows signed composition offsets (`trun`
version 1), so we subtract the first frame's offset from every sample: the first frame
is presented at time 0 and every segment's earliest presentation time equals its
`tfdt`, in every rendition alike.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from media.package.boxes import TRUN_CTO, Box, IsobmffError, find_all, iter_boxes, read_trun

STYP = struct.pack(">I4s4sI4s4s4s", 28, b"styp", b"cmfs", 0, b"cmfs", b"msdh", b"msix")
"""CMAF segment type box, placed before each media segment's `moof`."""


@dataclass(frozen=True)
class SplitTrack:
    init: bytes
    segments: Sequence[bytes]
    presentation_shift_ticks: int
    """Composition offset removed from every sample (0 without B-frames)."""


def split_fragmented_mp4(data: bytes) -> SplitTrack:
    """Cut a fragmented MP4 (ftyp, moov, then moof+mdat pairs) into CMAF pieces."""
    init, fragments, shift = _layout(data)
    return SplitTrack(init, [_segment(data, moof, mdat, shift) for moof, mdat in fragments],
                      shift)


class FileSegments(Sequence[bytes]):
    """The media segments of a fragmented MP4 file, each read from the file when asked for.

    A rendition can be gigabytes; holding all its segments in memory made the packaging
    worker's memory grow with the title. Here only the boxes' positions are kept, and one
    segment at a time passes through memory. The file must stay in place while in use.
    """

    def __init__(self, path: str, fragments: list[tuple[Box, Box]], shift: int):
        self._path, self._fragments, self._shift = path, fragments, shift

    def __len__(self) -> int:
        return len(self._fragments)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        moof, mdat = self._fragments[index]
        with open(self._path, "rb") as handle:
            handle.seek(moof.start)
            data = handle.read(mdat.end - moof.start)
        moof, mdat = (Box(b.type, b.start - moof.start, b.payload_start - moof.start,
                          b.end - moof.start) for b in (moof, mdat))
        return _segment(data, moof, mdat, self._shift)


def split_fragmented_file(path: str) -> SplitTrack:
    """`split_fragmented_mp4` of a file, its segments read one at a time (`FileSegments`):
    only the box headers are read to find them."""
    if os.path.getsize(path) == 0:
        raise IsobmffError(f"{path} is empty: not an MP4 file")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                               access=mmap.ACCESS_READ) as data:
        init, fragments, shift = _layout(data)
    return SplitTrack(init, FileSegments(path, fragments, shift), shift)


def _layout(data) -> tuple[bytes, list[tuple[Box, Box]], int]:
    """(init segment, the moof+mdat pairs, the composition offset to remove)."""
    boxes = list(iter_boxes(data))
    moov_at = next((i for i, box in enumerate(boxes) if box.type == "moov"), None)
    if moov_at is None:
        raise IsobmffError("no 'moov' box: not an MP4 file")
    init = b"".join(data[b.start:b.end] for b in boxes[: moov_at + 1] if b.type in ("ftyp", "moov"))
    fragments = _fragments(data, boxes[moov_at + 1:])
    if not fragments:
        raise IsobmffError("no 'moof' box: the MP4 is not fragmented")
    return init, fragments, _first_composition_offset(data, fragments[0][0])


def _segment(data, moof: Box, mdat: Box, shift: int) -> bytes:
    """One CMAF media segment: styp, the moof (offsets shifted), the mdat."""
    moof_bytes = bytearray(data[moof.start:moof.end])
    if shift:
        _shift_composition_offsets(moof_bytes, shift)
    return STYP + bytes(moof_bytes) + data[mdat.start:mdat.end]


def _fragments(data: bytes, boxes: list[Box]) -> list[tuple[Box, Box]]:
    pairs: list[tuple[Box, Box]] = []
    pending: Box | None = None
    for box in boxes:
        if box.type == "moof":
            pending = box
        elif box.type == "mdat":
            if pending is None:
                raise IsobmffError(f"'mdat' at byte {box.start} has no 'moof' before it")
            pairs.append((pending, box))
            pending = None
    return pairs


def _first_composition_offset(data: bytes, moof: Box) -> int:
    truns = find_all(data, "traf/trun", moof)
    if not truns:
        raise IsobmffError("a 'moof' without a 'trun'")
    trun = read_trun(data, truns[0])
    if not trun.flags & TRUN_CTO or trun.sample_count == 0:
        return 0
    (cto,) = struct.unpack_from(">i" if trun.version else ">I", data, trun.field_at(0, TRUN_CTO))
    return cto


def _shift_composition_offsets(moof: bytearray, shift: int) -> None:
    """Subtract `shift` from every sample's composition offset; make each trun version 1."""
    local = bytes(moof)
    for box in find_all(local, "moof/traf/trun"):
        trun = read_trun(local, box)
        if not trun.flags & TRUN_CTO:
            raise IsobmffError("samples without composition offsets after ones with them")
        for i in range(trun.sample_count):
            pos = trun.field_at(i, TRUN_CTO)
            (cto,) = struct.unpack_from(">i" if trun.version else ">I", moof, pos)
            struct.pack_into(">i", moof, pos, cto - shift)
        moof[box.payload_start] = 1
