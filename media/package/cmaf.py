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

import hashlib
import mmap
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from media.package.boxes import TRUN_CTO, Box, IsobmffError, find_all, iter_boxes, read_trun

FRAGMENTED_FLAGS = "+frag_keyframe+empty_moov+default_base_moof+cmaf"
"""FFmpeg's `-movflags` for a fragmented MP4 that `split_fragmented_mp4` cuts: a fragment
at every keyframe, an empty `moov` first, CMAF brands."""

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


def is_fragmented(path: str) -> bool:
    """Whether the MP4 file at `path` has fragments (a top-level `moof`); only box
    headers are read."""
    with open(path, "rb") as handle:
        return any(box.type == "moof" for box in iter_boxes(handle))


def fragmented_sample_count(path: str) -> int:
    """Samples of a fragmented MP4 file's track, from its `trun` headers (no media read):
    what a demux would count, at the cost of reading a few bytes per fragment. A file
    cut short raises `IsobmffError`."""
    if os.path.getsize(path) == 0:
        raise IsobmffError(f"{path} is empty: not an MP4 file")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                               access=mmap.ACCESS_READ) as data:
        _, fragments, _ = _layout(data)
        return sum(read_trun(data, trun).sample_count
                   for moof, _ in fragments for trun in find_all(data, "traf/trun", moof))


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


def placed_segment(segment: bytes, number: int, start_ticks: int) -> bytes:
    """A chunk's media segment placed on the title: its `mfhd` sequence number set to
    `number` (the segment's number in its track) and `start_ticks` (where the chunk
    starts on the title's timeline) added to every `tfdt`, so a chunk cut on its own
    gives the same segment as the whole rendition cut at once. Sizes do not change."""
    data = bytearray(segment)
    local = bytes(segment)
    moofs = [box for box in iter_boxes(local) if box.type == "moof"]
    if not moofs:
        raise IsobmffError("a media segment without a 'moof'")
    for moof in moofs:
        for mfhd in find_all(local, "mfhd", moof):
            struct.pack_into(">I", data, mfhd.payload_start + 4, number)
        for tfdt in find_all(local, "traf/tfdt", moof):
            version = data[tfdt.payload_start]
            (ticks,) = struct.unpack_from(">Q" if version else ">I", local, tfdt.payload_start + 4)
            ticks += start_ticks
            if not version and ticks >= 1 << 32:
                raise IsobmffError(f"decode time {ticks} does not fit a version 0 'tfdt'")
            struct.pack_into(">Q" if version else ">I", data, tfdt.payload_start + 4, ticks)
    return bytes(data)


_SEI_NAL_TYPES = (39, 40)
"""HEVC prefix and suffix SEI: x265 writes its option string (its CRF among them) into
the hvcC as an SEI, which no decoder configuration depends on."""
_VISUAL_ENTRY_FIELDS = 78
"""Bytes of a VisualSampleEntry before its child boxes (ISO 14496-12 12.1.3)."""
_NOT_CONFIGURATION = ("btrt",)
"""Sample entry boxes that describe the file rather than configure a decoder (a
chunk's own bit rates)."""


def sample_entry_key(init: bytes) -> str:
    """A digest of what a decoder is configured with from a video init segment: the
    track's timescale and its sample entry (codec, size, the avcC/hvcC/av1C parameter
    sets, colour), less the HEVC SEI arrays and the `btrt` bit rates. Chunks of one
    rendition with the same key play from one init segment; x264 makes equal keys only
    with `stitchable` (its PPS's pic_init_qp follows the CRF otherwise)."""
    moov = find_all(init, "moov")
    if not moov:
        raise IsobmffError("no 'moov' box: not an init segment")
    mdhd = find_all(init, "trak/mdia/mdhd", moov[0])
    stsd = find_all(init, "trak/mdia/minf/stbl/stsd", moov[0])
    if len(mdhd) != 1 or len(stsd) != 1:
        raise IsobmffError("an init segment has one track with one 'stsd'")
    version = init[mdhd[0].payload_start]
    at = mdhd[0].payload_start + (20 if version else 12)
    digest = hashlib.sha256(init[at:at + 4])
    entries = list(iter_boxes(init, stsd[0].payload_start + 8, stsd[0].end))
    if len(entries) != 1:
        raise IsobmffError(f"an init segment's 'stsd' has one sample entry; found {len(entries)}")
    entry = entries[0]
    children = entry.payload_start + _VISUAL_ENTRY_FIELDS
    digest.update(init[entry.start + 4:children])
    for box in iter_boxes(init, children, entry.end):
        if box.type == "hvcC":
            digest.update(b"hvcC" + _without_hevc_sei(init[box.payload_start:box.end]))
        elif box.type not in _NOT_CONFIGURATION:
            digest.update(init[box.start:box.end])
    return digest.hexdigest()[:16]


def _without_hevc_sei(config: bytes) -> bytes:
    """An HEVCDecoderConfigurationRecord with its SEI arrays left out."""
    if len(config) < 23:
        return config
    kept, offset = [], 23
    for _ in range(config[22]):
        nal_type = config[offset] & 0x3F
        (count,) = struct.unpack_from(">H", config, offset + 1)
        end = offset + 3
        for _ in range(count):
            (length,) = struct.unpack_from(">H", config, end)
            end += 2 + length
        if nal_type not in _SEI_NAL_TYPES:
            kept.append(config[offset:end])
        offset = end
    return config[:22] + bytes([len(kept)]) + b"".join(kept)
