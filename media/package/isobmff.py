"""A small reader for CMAF (fragmented ISO BMFF / MP4) files, in plain Python.

It reads what packaging needs and nothing more: from an init segment the track's
timescale, sample entry and codec configuration (`read_init` → `InitInfo`); from a
media segment its decode time, duration, sample count and whether it starts with a
sync sample (`read_fragment` → `FragmentInfo`). Sample data (mdat) is never copied.
Malformed input raises `IsobmffError`, a `MediaError` that is also a `ValueError`.

    info = read_init(Path("init.mp4").read_bytes())
    frag = read_fragment(Path("seg-00001.m4s").read_bytes(), info)
    frag.base_decode_ticks / info.timescale  # start of the segment, seconds
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
    "FragmentInfo",
    "InitInfo",
    "IsobmffError",
    "Tfhd",
    "Trex",
    "Trun",
    "TruncatedBox",
    "find_all",
    "find_box",
    "iter_boxes",
    "read_fragment",
    "read_init",
    "read_tfhd",
    "read_trex",
    "read_trun",
    "truncation",
]

SAMPLE_IS_NON_SYNC = 0x00010000
"""The sample_is_non_sync_sample bit of ISO/IEC 14496-12 sample flags."""

_VISUAL_ENTRY_HEADER = 78
"""Bytes of a VisualSampleEntry before its child boxes (avcC, pasp, btrt, ...)."""
_DECODER_CONFIGS = {"avcC": "avc_config", "hvcC": "hevc_config", "av1C": "av1_config"}
"""Decoder configuration boxes of a visual sample entry → the InitInfo field of its payload."""
_MPEG4_AUDIO = 0x40
"""esds objectTypeIndication of MPEG-4 Audio (AAC and its kin)."""
_AUDIO_ENTRY_HEADER = 28
"""Bytes of a (version 0) AudioSampleEntry before its child boxes (esds, ...)."""

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


@dataclass(frozen=True)
class InitInfo:
    """What an init segment says about its single track."""

    track_id: int
    timescale: int
    """Ticks per second of the track's media timeline (mdhd)."""
    handler: str
    """'vide' or 'soun' (hdlr handler_type)."""
    codec_fourcc: str
    """Sample entry type: 'avc1', 'avc3', 'hvc1', 'mp4a', ..."""
    width: int = 0
    """Coded width in pixels from the visual sample entry (tkhd's when the entry says 0)."""
    height: int = 0
    avc_config: bytes | None = None
    """Raw payload of the avcC box (AVCDecoderConfigurationRecord), for H.264 tracks."""
    hevc_config: bytes | None = None
    """Raw payload of the hvcC box (HEVCDecoderConfigurationRecord), for hvc1/hev1 tracks."""
    av1_config: bytes | None = None
    """Raw payload of the av1C box (AV1CodecConfigurationRecord), for av01 tracks."""
    channels: int = 0
    sample_rate_hz: int = 0
    audio_object_type: int | None = None
    """MPEG-4 audio object type from the esds AudioSpecificConfig (2 = AAC-LC)."""
    default_sample_duration: int | None = None
    """trex default, in ticks, used when neither trun nor tfhd gives durations."""
    default_sample_flags: int | None = None
    """trex default sample flags."""


@dataclass(frozen=True)
class FragmentInfo:
    """What a media segment (one or more moof+mdat pairs) says about its samples."""

    base_decode_ticks: int
    """baseMediaDecodeTime (tfdt) of the first fragment, in the track's timescale."""
    duration_ticks: int
    """Sum of all sample durations in the segment."""
    sample_count: int
    first_sample_is_sync: bool
    earliest_presentation_ticks: int
    """Smallest decode time + composition offset of any sample (edit lists not applied)."""


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
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


def _require(data: bytes, path: str, parent: Box | None = None) -> Box:
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
    values = _unpack(fmt, data, offset)
    bits = [bit for bit, _ in present]
    return dict(zip(bits, values, strict=True)), offset + struct.calcsize(fmt)


def _full_box(data: bytes, box: Box) -> tuple[int, int, int]:
    """(version, flags, offset of the body) of a FullBox."""
    (word,) = _unpack(">I", data, box.payload_start)
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
    _, flags, body = _full_box(data, tfhd)
    (track_id,) = _unpack(">I", data, body)
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


def read_trun(data: bytes, trun: Box) -> Trun:
    version, flags, body = _full_box(data, trun)
    (count,) = _unpack(">I", data, body)
    head, records = _fields(data, body + 4, flags, _TRUN_HEAD_FIELDS)
    present = [bit for bit, _ in _TRUN_SAMPLE_FIELDS if flags & bit]
    return Trun(version, flags, count, head.get(TRUN_DATA_OFFSET), head.get(TRUN_FIRST_FLAGS),
                records, 4 * len(present), {bit: 4 * i for i, bit in enumerate(present)})


def read_init(data: bytes) -> InitInfo:
    """Track facts from an init segment (ftyp + moov with exactly one trak)."""
    moov = _require(data, "moov")
    traks = find_all(data, "trak", moov)
    if len(traks) != 1:
        raise IsobmffError(f"a CMAF init segment has one track; found {len(traks)}")
    trak = traks[0]
    version, _, body = _full_box(data, _require(data, "tkhd", trak))
    (track_id,) = _unpack(">I", data, body + (16 if version == 1 else 8))
    tkhd_w, tkhd_h = _unpack(">II", data, body + (84 if version == 1 else 72))
    mdia = _require(data, "mdia", trak)
    version, _, body = _full_box(data, _require(data, "mdhd", mdia))
    (timescale,) = _unpack(">I", data, body + (16 if version == 1 else 8))
    if timescale == 0:
        raise IsobmffError("mdhd timescale is 0")
    (handler,) = _unpack(">4s", data, _require(data, "hdlr", mdia).payload_start + 8)
    entry = _sample_entry(data, _require(data, "minf/stbl/stsd", mdia))
    fields: dict = {}
    if handler == b"vide":
        fields = _visual_fields(data, entry)
        if not fields["width"]:  # prefer the coded size: tkhd's is the display size
            fields.update(width=tkhd_w >> 16, height=tkhd_h >> 16)
    elif handler == b"soun":
        fields = _audio_fields(data, entry)
    trex = read_trex(data, track_id, moov)
    return InitInfo(
        track_id=track_id,
        timescale=timescale,
        handler=handler.decode("latin-1"),
        codec_fourcc=entry.type,
        default_sample_duration=trex.duration if trex else None,
        default_sample_flags=trex.flags if trex else None,
        **fields,
    )


def _sample_entry(data: bytes, stsd: Box) -> Box:
    _, _, body = _full_box(data, stsd)
    (count,) = _unpack(">I", data, body)
    entry = next(iter_boxes(data, body + 4, stsd.end), None) if count else None
    if entry is None:
        raise IsobmffError("stsd has no sample entry")
    return entry


def _visual_fields(data: bytes, entry: Box) -> dict:
    width, height = _unpack(">HH", data, entry.payload_start + 24)
    fields: dict = {"width": width, "height": height, "avc_config": None}
    start = entry.payload_start + _VISUAL_ENTRY_HEADER
    for child in iter_boxes(data, start, entry.end):
        name = _DECODER_CONFIGS.get(child.type)
        if name:  # an entry has one decoder configuration: the boxes after it go unread
            fields[name] = bytes(data[child.payload_start : child.end])
            break
    return fields


def _audio_fields(data: bytes, entry: Box) -> dict:
    channels, _, _, _, rate_16_16 = _unpack(">HHHHI", data, entry.payload_start + 16)
    start = entry.payload_start + _AUDIO_ENTRY_HEADER
    esds = next((b for b in iter_boxes(data, start, entry.end) if b.type == "esds"), None)
    aot = _audio_object_type(data, esds) if esds else None
    return {"channels": channels, "sample_rate_hz": rate_16_16 >> 16, "audio_object_type": aot}


class Trex(NamedTuple):
    """A track's sample defaults for its fragments (trex, ISO/IEC 14496-12 8.8.3)."""

    duration: int
    size: int
    flags: int


def read_trex(data: bytes, track_id: int, moov: Box | None = None) -> Trex | None:
    """The sample defaults of track `track_id` from an init segment's trex, if it has one."""
    moov = moov or _require(data, "moov")
    for trex in find_all(data, "mvex/trex", moov):
        _, _, body = _full_box(data, trex)
        trex_track, _, duration, size, flags = _unpack(">5I", data, body)
        if trex_track == track_id:
            return Trex(duration, size, flags)
    return None


def _descriptor(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, offset of the body, offset after it) of an MPEG-4 descriptor."""
    (tag,) = _unpack(">B", data, offset)
    size, offset = 0, offset + 1
    for _ in range(4):  # size is 7 bits per byte, high bit set while more follow
        (byte,) = _unpack(">B", data, offset)
        size, offset = (size << 7) | (byte & 0x7F), offset + 1
        if not byte & 0x80:
            break
    return tag, offset, offset + size


def _audio_object_type(data: bytes, esds: Box) -> int | None:
    """audioObjectType of the AudioSpecificConfig in ES_Descriptor → DecoderConfig."""
    tag, body, _ = _descriptor(data, esds.payload_start + 4)
    if tag != 0x03:
        raise IsobmffError(f"esds holds descriptor tag {tag:#x}, not an ES_Descriptor")
    (es_flags,) = _unpack(">B", data, body + 2)
    offset = body + 3 + (2 if es_flags & 0x80 else 0)
    if es_flags & 0x40:  # URL_Flag: a length-prefixed URL string
        offset += 1 + _unpack(">B", data, offset)[0]
    offset += 2 if es_flags & 0x20 else 0
    tag, body, _ = _descriptor(data, offset)
    if tag != 0x04 or _unpack(">B", data, body)[0] != _MPEG4_AUDIO:
        return None  # not MPEG-4 Audio (e.g. MP3): no audio object type
    tag, body, _ = _descriptor(data, body + 13)
    if tag != 0x05:
        return None
    (bits,) = _unpack(">H", data, body)
    aot = bits >> 11
    # 31 escapes to 32 + the next six bits (ISO/IEC 14496-3 GetAudioObjectType).
    return 32 + ((bits >> 5) & 0x3F) if aot == 31 else aot


class _Defaults(NamedTuple):
    """Sample defaults of one traf: tfhd's where it sets them, else trex's."""

    duration: int | None
    flags: int | None


@dataclass
class _Totals:
    """A segment's samples so far, summed over its trafs and truns."""

    decode_ticks: int = 0
    """Decode time of the next sample; each traf restarts it from its tfdt."""
    duration_ticks: int = 0
    count: int = 0
    first_flags: int | None = None
    earliest_ticks: int | None = None
    """Smallest decode time + composition offset so far."""


def read_fragment(data: bytes, init: InitInfo) -> FragmentInfo:
    """Timing facts from a media segment ([styp] [sidx] (moof mdat)+) of `init`'s track."""
    moofs = [box for box in iter_boxes(data) if box.type == "moof"]
    if not moofs:
        raise IsobmffError("no 'moof' box: not a media segment (an init segment?)")
    base: int | None = None
    totals = _Totals()
    for traf in (traf for moof in moofs for traf in find_all(data, "traf", moof)):
        defaults = _tfhd(data, _require(data, "tfhd", traf), init)
        if defaults is None:
            continue
        version, _, body = _full_box(data, _require(data, "tfdt", traf))
        (totals.decode_ticks,) = _unpack(">Q" if version == 1 else ">I", data, body)
        base = totals.decode_ticks if base is None else base
        for trun in find_all(data, "trun", traf):
            _read_trun(data, trun, defaults, totals)
    if base is None:
        raise IsobmffError(f"no 'traf' for track {init.track_id} in the segment")
    return FragmentInfo(
        base_decode_ticks=base,
        duration_ticks=totals.duration_ticks,
        sample_count=totals.count,
        # With no flags anywhere every sample is sync (the ISO default of 0).
        first_sample_is_sync=not (totals.first_flags or 0) & SAMPLE_IS_NON_SYNC,
        earliest_presentation_ticks=base
        if totals.earliest_ticks is None
        else totals.earliest_ticks,
    )


def _tfhd(data: bytes, tfhd: Box, init: InitInfo) -> _Defaults | None:
    """The sample defaults of a traf of `init`'s track; None for another track's traf."""
    _, flags, body = _full_box(data, tfhd)
    (track_id,) = _unpack(">I", data, body)
    if track_id != init.track_id:
        return None
    values, _ = _fields(data, body + 4, flags, _TFHD_FIELDS)
    return _Defaults(
        values.get(TFHD_DURATION, init.default_sample_duration),
        values.get(TFHD_FLAGS, init.default_sample_flags),
    )


def _read_trun(data: bytes, box: Box, defaults: _Defaults, totals: _Totals) -> None:
    """Add a trun's samples to `totals`."""
    trun = read_trun(data, box)
    sample_count, flags, offset = trun.sample_count, trun.flags, trun.records
    if sample_count and not flags & TRUN_DURATION and defaults.duration is None:
        raise IsobmffError("no sample duration in trun, tfhd or trex")
    table = _TRUN_V1_SAMPLE_FIELDS if trun.version == 1 else _TRUN_SAMPLE_FIELDS
    for _ in range(sample_count):
        sample, offset = _fields(data, offset, flags, table)
        if totals.count == 0:
            flags_of_first = sample.get(TRUN_FLAGS, defaults.flags)
            totals.first_flags = (flags_of_first if trun.first_sample_flags is None
                                  else trun.first_sample_flags)
        presentation = totals.decode_ticks + sample.get(TRUN_CTO, 0)
        if totals.earliest_ticks is None or presentation < totals.earliest_ticks:
            totals.earliest_ticks = presentation
        duration = sample.get(TRUN_DURATION, defaults.duration)
        totals.decode_ticks += duration
        totals.duration_ticks += duration
        totals.count += 1
    if offset > box.end:
        raise IsobmffError(f"trun lists {sample_count} samples but its box is too short")
