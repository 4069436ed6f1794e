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

import re
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from media.package.boxes import (
    SAMPLE_IS_NON_SYNC,
    TFHD_DURATION,
    TFHD_FLAGS,
    TRUN_CTO,
    TRUN_DURATION,
    TRUN_FLAGS,
    Box,
    IsobmffError,
    find_all,
    full_box,
    iter_boxes,
    read_tfhd,
    read_trex,
    read_trun,
    require_box,
    trun_samples,
    unpack,
)

__all__ = ["ColourInfo", "FragmentInfo", "InitInfo", "IsobmffError", "add_hdr_boxes",
           "read_colour", "read_fragment", "read_init", "with_hdr_boxes"]

_VISUAL_ENTRY_HEADER = 78
"""Bytes of a VisualSampleEntry before its child boxes (avcC, pasp, btrt, ...)."""
_DECODER_CONFIGS = {"avcC": "avc_config", "hvcC": "hevc_config", "av1C": "av1_config"}
"""Decoder configuration boxes of a visual sample entry → the InitInfo field of its payload."""
_MPEG4_AUDIO = 0x40
"""esds objectTypeIndication of MPEG-4 Audio (AAC and its kin)."""
_AUDIO_ENTRY_HEADER = 28
"""Bytes of a (version 0) AudioSampleEntry before its child boxes (esds, ...)."""


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
    colour: tuple[int, int, int, bool] | None = field(default=None, compare=False)
    """(primaries, transfer, matrix, full range) of the visual sample entry's `colr`
    (nclx), ITU-T H.273 code points; None without one (`read_colour` reads the rest)."""


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


def read_init(data: bytes) -> InitInfo:
    """Track facts from an init segment (ftyp + moov with exactly one trak)."""
    moov = require_box(data, "moov")
    traks = find_all(data, "trak", moov)
    if len(traks) != 1:
        raise IsobmffError(f"a CMAF init segment has one track; found {len(traks)}")
    trak = traks[0]
    version, _, body = full_box(data, require_box(data, "tkhd", trak))
    (track_id,) = unpack(">I", data, body + (16 if version == 1 else 8))
    tkhd_w, tkhd_h = unpack(">II", data, body + (84 if version == 1 else 72))
    mdia = require_box(data, "mdia", trak)
    version, _, body = full_box(data, require_box(data, "mdhd", mdia))
    (timescale,) = unpack(">I", data, body + (16 if version == 1 else 8))
    if timescale == 0:
        raise IsobmffError("mdhd timescale is 0")
    (handler,) = unpack(">4s", data, require_box(data, "hdlr", mdia).payload_start + 8)
    entry = _sample_entry(data, require_box(data, "minf/stbl/stsd", mdia))
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
    _, _, body = full_box(data, stsd)
    (count,) = unpack(">I", data, body)
    entry = next(iter_boxes(data, body + 4, stsd.end), None) if count else None
    if entry is None:
        raise IsobmffError("stsd has no sample entry")
    return entry


def _visual_fields(data: bytes, entry: Box) -> dict:
    width, height = unpack(">HH", data, entry.payload_start + 24)
    fields: dict = {"width": width, "height": height, "avc_config": None}
    start = entry.payload_start + _VISUAL_ENTRY_HEADER
    configured = False
    for child in iter_boxes(data, start, entry.end):
        name = _DECODER_CONFIGS.get(child.type)
        if name and not configured:  # an entry has one decoder configuration
            fields[name] = bytes(data[child.payload_start : child.end])
            configured = True
        elif child.type == "colr" and data[child.payload_start:child.payload_start + 4] == b"nclx":
            primaries, transfer, matrix, flags = unpack(">HHHB", data, child.payload_start + 4)
            fields["colour"] = (primaries, transfer, matrix, bool(flags >> 7))
    return fields


@dataclass(frozen=True)
class ColourInfo:
    """The colour signalling of a video init segment's sample entry (ISO/IEC 14496-12
    12.1.5 `colr`, ISO/IEC 23001-17 / 14496-12 `mdcv` and `clli`); None where absent."""

    primaries: int | None = None
    """`colr` nclx colour_primaries (ITU-T H.273: 1 BT.709, 9 BT.2020)."""
    transfer: int | None = None
    """transfer_characteristics (1 BT.709, 16 PQ, 18 HLG)."""
    matrix: int | None = None
    """matrix_coefficients (1 BT.709, 9 BT.2020 non-constant luminance)."""
    full_range: bool | None = None
    display_primaries: tuple[tuple[int, int], ...] | None = None
    """`mdcv`: the mastering display's (x, y) primaries in 0.00002 units, in stored order
    (G, B, R for HDR10 as SMPTE ST 2086 and x265 write them), then ..."""
    white_point: tuple[int, int] | None = None
    """... its white point, and ..."""
    luminance: tuple[int, int] | None = None
    """... its (max, min) luminance in 0.0001 cd/m2."""
    max_cll: int | None = None
    """`clli`: maximum content light level and ..."""
    max_fall: int | None = None
    """... maximum frame-average light level, cd/m2."""


def read_colour(data: bytes) -> ColourInfo:
    """The colour boxes of an init segment's (first) visual sample entry."""
    moov = require_box(data, "moov")
    entry = _sample_entry(data, require_box(data, "trak/mdia/minf/stbl/stsd", moov))
    fields: dict = {}
    for child in iter_boxes(data, entry.payload_start + _VISUAL_ENTRY_HEADER, entry.end):
        at = child.payload_start
        if child.type == "colr" and data[at:at + 4] == b"nclx":
            primaries, transfer, matrix, flags = unpack(">HHHB", data, at + 4)
            fields |= {"primaries": primaries, "transfer": transfer, "matrix": matrix,
                       "full_range": bool(flags >> 7)}
        elif child.type == "mdcv":
            values = unpack(">8H2I", data, at)
            fields |= {"display_primaries": tuple(zip(values[0:6:2], values[1:6:2],
                                                      strict=True)),
                       "white_point": (values[6], values[7]),
                       "luminance": (values[8], values[9])}
        elif child.type == "clli":
            fields["max_cll"], fields["max_fall"] = unpack(">HH", data, at)
    return ColourInfo(**fields)


_ENTRY_PATH = ("moov", "trak", "mdia", "minf", "stbl", "stsd")


def with_hdr_boxes(data: bytes, mastering_display: str, content_light: str) -> bytes:
    """A (fragmented) MP4 whose visual sample entry gets the `mdcv` and `clli` boxes of
    `mastering_display` ('G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)', SMPTE ST 2086 units) and
    `content_light` ('MaxCLL,MaxFALL') where it has none; as it was where it has them.

    FFmpeg writes them from its frames' side data, which it passes on to the first
    output of a process only. The boxes go at the end of the sample entry and every box
    above it grows by their size: a fragmented MP4's `moof`s address their samples from
    themselves, so moving them moves nothing they point at. An `mfra` index at the end
    is left as it was (its offsets then short by the boxes added): the file is cut into an init
    segment and media segments (`media.package.cmaf`), which drop it."""
    moov = require_box(data, "moov")
    if len(find_all(data, "trak", moov)) != 1:
        raise IsobmffError("HDR boxes go into a file with one track")
    after = [box.type for box in iter_boxes(data, moov.end)]
    if "mdat" in after and "moof" not in after:  # chunk offsets in moov would move
        raise IsobmffError("HDR boxes go into a fragmented MP4 (or one with moov last)")
    entry = _sample_entry(data, require_box(data, "trak/mdia/minf/stbl/stsd", moov))
    have = {child.type for child in iter_boxes(
        data, entry.payload_start + _VISUAL_ENTRY_HEADER, entry.end)}
    added = b""
    if mastering_display and "mdcv" not in have:
        values = [int(v) for v in re.findall(r"\d+", mastering_display)]
        if len(values) != 10:
            raise ValueError(f"not a mastering display: {mastering_display!r}")
        added += _plain_box(b"mdcv", struct.pack(">8H2I", *values))
    if content_light and "clli" not in have:
        max_cll, max_fall = (int(v) for v in content_light.split(","))
        added += _plain_box(b"clli", struct.pack(">2H", max_cll, max_fall))
    if not added:
        return data
    out = bytearray(data[:entry.end] + added + data[entry.end:])
    parents = [moov]
    for name in _ENTRY_PATH[1:]:
        parents.append(require_box(data, name, parents[-1]))
    for box in [*parents, entry]:
        (size,) = struct.unpack_from(">I", out, box.start)
        if size == 1:
            raise IsobmffError(f"'{box.type}' has a 64-bit size; not grown")
        struct.pack_into(">I", out, box.start, size + len(added))
    return bytes(out)


def add_hdr_boxes(path: str, mastering_display: str, content_light: str) -> None:
    """`with_hdr_boxes` on the MP4 file at `path`, rewritten only where it changes."""
    if not (mastering_display or content_light):
        return
    with open(path, "rb") as handle:
        data = handle.read()
    grown = with_hdr_boxes(data, mastering_display, content_light)
    if grown is not data:
        with open(path, "wb") as handle:
            handle.write(grown)


def _plain_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _audio_fields(data: bytes, entry: Box) -> dict:
    channels, _, _, _, rate_16_16 = unpack(">HHHHI", data, entry.payload_start + 16)
    start = entry.payload_start + _AUDIO_ENTRY_HEADER
    esds = next((b for b in iter_boxes(data, start, entry.end) if b.type == "esds"), None)
    aot = _audio_object_type(data, esds) if esds else None
    return {"channels": channels, "sample_rate_hz": rate_16_16 >> 16, "audio_object_type": aot}


def _descriptor(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, offset of the body, offset after it) of an MPEG-4 descriptor."""
    (tag,) = unpack(">B", data, offset)
    size, offset = 0, offset + 1
    for _ in range(4):  # size is 7 bits per byte, high bit set while more follow
        (byte,) = unpack(">B", data, offset)
        size, offset = (size << 7) | (byte & 0x7F), offset + 1
        if not byte & 0x80:
            break
    return tag, offset, offset + size


def _audio_object_type(data: bytes, esds: Box) -> int | None:
    """audioObjectType of the AudioSpecificConfig in ES_Descriptor → DecoderConfig."""
    tag, body, _ = _descriptor(data, esds.payload_start + 4)
    if tag != 0x03:
        raise IsobmffError(f"esds holds descriptor tag {tag:#x}, not an ES_Descriptor")
    (es_flags,) = unpack(">B", data, body + 2)
    offset = body + 3 + (2 if es_flags & 0x80 else 0)
    if es_flags & 0x40:  # URL_Flag: a length-prefixed URL string
        offset += 1 + unpack(">B", data, offset)[0]
    offset += 2 if es_flags & 0x20 else 0
    tag, body, _ = _descriptor(data, offset)
    if tag != 0x04 or unpack(">B", data, body)[0] != _MPEG4_AUDIO:
        return None  # not MPEG-4 Audio (e.g. MP3): no audio object type
    tag, body, _ = _descriptor(data, body + 13)
    if tag != 0x05:
        return None
    (bits,) = unpack(">H", data, body)
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
        defaults = _tfhd(data, require_box(data, "tfhd", traf), init)
        if defaults is None:
            continue
        version, _, body = full_box(data, require_box(data, "tfdt", traf))
        (totals.decode_ticks,) = unpack(">Q" if version == 1 else ">I", data, body)
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


def _tfhd(data: bytes, box: Box, init: InitInfo) -> _Defaults | None:
    """The sample defaults of a traf of `init`'s track; None for another track's traf."""
    tfhd = read_tfhd(data, box)
    if tfhd.track_id != init.track_id:
        return None
    return _Defaults(
        tfhd.fields.get(TFHD_DURATION, init.default_sample_duration),
        tfhd.fields.get(TFHD_FLAGS, init.default_sample_flags),
    )


def _read_trun(data: bytes, box: Box, defaults: _Defaults, totals: _Totals) -> None:
    """Add a trun's samples to `totals`."""
    trun = read_trun(data, box)
    if trun.sample_count and not trun.flags & TRUN_DURATION and defaults.duration is None:
        raise IsobmffError("no sample duration in trun, tfhd or trex")
    for sample in trun_samples(data, trun):
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
    if trun.records + trun.sample_count * trun.record_size > box.end:
        raise IsobmffError(f"trun lists {trun.sample_count} samples but its box is too short")
