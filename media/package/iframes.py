"""HLS I-frame playlists (RFC 8216 EXT-X-I-FRAMES-ONLY) over the title's CMAF segments.

Every media segment is `[styp] moof mdat` and starts with an IDR frame, so the I-frame
of a segment is a byte range of the segment file: from the first byte of its `moof`
through the last byte of its first sample in `mdat`. A player fetches that range, takes
the track fragment header and sample table from the `moof`, and decodes the one frame;
the rest of the `mdat` is never read. No new media files are written.

    ranges = [iframe_range(data, init=init_bytes) for data in segment_bytes]
    frames = [IFrame(naming.segment_name(s.number), off, length,
                     Fraction(s.duration_ticks, track.timescale))
              for s, (off, length) in zip(track.segments, ranges)]
    text = iframe_playlist(naming.INIT_NAME, frames)  # written next to the segments
    line = iframe_stream_inf(iframe_bandwidth_bps(frames), track.codecs,
                             track.width, track.height, "video/<id>/iframes.m3u8")

Malformed or unexpected segments raise `IFrameError` (a `MediaError`); invalid
arguments to the playlist functions raise `ValueError`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.package.bandwidth import peak_bandwidth_bps
from media.package.boxes import (
    SAMPLE_IS_NON_SYNC,
    TFHD_BASE_DATA_OFFSET,
    TFHD_DEFAULT_BASE_IS_MOOF,
    TFHD_FLAGS,
    TFHD_SIZE,
    TRUN_FLAGS,
    TRUN_SIZE,
    Box,
    IsobmffError,
    find_all,
    find_box,
    iter_boxes,
    read_tfhd,
    read_trex,
    read_trun,
)
from media.package.isobmff import read_init
from media.package.playlist_text import decimal, quoted

__all__ = [
    "EXTINF_DECIMALS",
    "HLS_VERSION",
    "IFrame",
    "IFrameError",
    "iframe_bandwidth_bps",
    "iframe_playlist",
    "iframe_range",
    "iframe_stream_inf",
]

HLS_VERSION = 7
EXTINF_DECIMALS = 5
"""Decimal places of an I-frame playlist's EXTINF durations."""



class IFrameError(IsobmffError):
    """A segment's first frame cannot be located as an I-frame byte range."""

    hint = (
        "The segment is not a CMAF media segment that starts with a sync sample "
        "(moof with default-base-is-moof and a trun data_offset, then mdat). Re-create it "
        "by re-running the packaging step."
    )


def _u32(data: bytes, offset: int) -> int:
    try:
        return struct.unpack_from(">I", data, offset)[0]
    except struct.error:
        raise IFrameError(f"truncated box data at byte {offset}") from None


def _check_within(box: Box, offset: int) -> None:
    if offset > box.end:
        raise IFrameError(f"the '{box.type}' at byte {box.start} is too short for its fields")


@dataclass(frozen=True)
class _TrackDefaults:
    """What the init segment adds: the track id and its trex defaults."""

    track_id: int
    sample_size: int | None
    sample_flags: int | None


def _track_defaults(init: bytes) -> _TrackDefaults:
    info = read_init(init)
    if info.handler != "vide":
        raise IFrameError(
            f"I-frame playlists are for video tracks; the init's handler is '{info.handler}'"
        )
    trex = read_trex(init, info.track_id)
    if trex is None:
        return _TrackDefaults(info.track_id, None, None)
    return _TrackDefaults(info.track_id, trex.size, trex.flags)


def _pick_traf(data: bytes, moof: Box, track_id: int | None) -> tuple[int, Box, Box]:
    """(position among the moof's trafs, traf, tfhd) of the track's track fragment."""
    trafs = find_all(data, "traf", moof)
    if not trafs:
        raise IFrameError("the 'moof' has no 'traf'")
    if track_id is None and len(trafs) != 1:
        raise IFrameError(
            f"the 'moof' has {len(trafs)} track fragments; pass the init "
            "segment to say which track is meant"
        )
    for position, traf in enumerate(trafs):
        tfhd = find_box(data, "tfhd", traf)
        if tfhd is None:
            raise IFrameError("a 'traf' without a 'tfhd'")
        _check_within(tfhd, tfhd.payload_start + 8)
        if track_id is None or _u32(data, tfhd.payload_start + 4) == track_id:
            return position, traf, tfhd
    raise IFrameError(f"no track fragment for track {track_id} in the segment")


def _first_sample(data: bytes, box: Box) -> tuple[int, int | None, int | None]:
    """(data_offset, size, flags) of a trun's first sample; None where the trun omits it."""
    trun = read_trun(data, box)
    _check_within(box, trun.records + trun.record_size)
    if not trun.sample_count:
        raise IFrameError("the first 'trun' has no samples")
    if trun.data_offset is None:
        raise IFrameError("the 'trun' has no data_offset (CMAF requires it)")
    size = _u32(data, trun.field_at(0, TRUN_SIZE)) if TRUN_SIZE in trun.offsets else None
    flags = trun.first_sample_flags
    if flags is None and TRUN_FLAGS in trun.offsets:
        flags = _u32(data, trun.field_at(0, TRUN_FLAGS))
    return trun.data_offset, size, flags


def iframe_range(segment: bytes, *, init: bytes | None = None) -> tuple[int, int]:
    """(offset, length) in `segment` of the bytes that decode its first (IDR) frame.

    The range runs from the first byte of the (first) `moof` through the last byte of
    the first sample's data in the `mdat` after it; offsets count from the start of the
    segment file (a leading `styp` shifts them). Pass the track's init segment bytes as
    `init` whenever you have them: it picks the track fragment by track id, supplies the
    trex default sample size and flags when the fragment does not give them, and checks
    that the track is video. Raises `IFrameError` (a `MediaError`) when the segment is
    not a CMAF media segment, its first sample is not a sync sample, or the sample data
    lies outside the `mdat`.
    """
    defaults = _track_defaults(init) if init is not None else None
    boxes = list(iter_boxes(segment))
    moof_at = next((i for i, box in enumerate(boxes) if box.type == "moof"), None)
    if moof_at is None:
        raise IFrameError("no 'moof' box: not a media segment (an init segment?)")
    moof = boxes[moof_at]
    mdat = next((box for box in boxes[moof_at + 1 :] if box.type in ("mdat", "moof")), None)
    if mdat is None or mdat.type != "mdat":
        raise IFrameError(f"no 'mdat' box follows the 'moof' at byte {moof.start}")

    position, traf, tfhd_box = _pick_traf(segment, moof, defaults.track_id if defaults else None)
    tfhd = read_tfhd(segment, tfhd_box)
    _check_within(tfhd_box, tfhd.end)
    if tfhd.flags & TFHD_BASE_DATA_OFFSET:
        raise IFrameError(
            "the 'tfhd' sets an explicit base_data_offset (a position in the "
            "original file); CMAF segments use default-base-is-moof"
        )
    if position and not tfhd.flags & TFHD_DEFAULT_BASE_IS_MOOF:
        raise IFrameError(
            "the track fragment is not the first in its 'moof' and does not "
            "set default-base-is-moof: its data offset cannot be resolved"
        )

    truns = find_all(segment, "trun", traf)
    if not truns:
        raise IFrameError("the track fragment has no 'trun'")
    data_offset, size, first_flags = _first_sample(segment, truns[0])
    if size is None:
        size = tfhd.fields.get(TFHD_SIZE, defaults.sample_size if defaults else None)
    if size is None:
        raise IFrameError(
            "no size for the first sample in 'trun' or 'tfhd'; pass the init "
            "segment for the trex default"
        )
    if size == 0:
        raise IFrameError("the first sample is empty (size 0)")
    if first_flags is None:
        first_flags = tfhd.fields.get(TFHD_FLAGS, defaults.sample_flags if defaults else None)
    if first_flags is not None and first_flags & SAMPLE_IS_NON_SYNC:
        raise IFrameError("the segment's first sample is not a sync sample (IDR frame)")

    start, end = moof.start + data_offset, moof.start + data_offset + size
    if start < mdat.payload_start or end > mdat.end:
        raise IFrameError(
            f"the first sample (bytes {start} to {end}) lies outside the 'mdat' "
            f"(payload bytes {mdat.payload_start} to {mdat.end})"
        )
    return moof.start, end - moof.start


@dataclass(frozen=True)
class IFrame:
    """One entry of an I-frame playlist: a byte range of a media segment."""

    uri: str
    """The segment, relative to the I-frame playlist (e.g. 'seg-00001.m4s')."""
    offset: int
    """First byte of the range in the segment file (`iframe_range`)."""
    length: int
    duration: Fraction
    """Seconds until the next I-frame (or the end of the track): the segment's duration."""

    def __post_init__(self):
        if self.offset < 0 or self.length <= 0:
            raise ValueError(f"bad byte range {self.length}@{self.offset} for {self.uri!r}")
        if Fraction(self.duration) <= 0:
            raise ValueError(f"I-frame duration must be positive, got {self.duration} s")
        object.__setattr__(self, "duration", Fraction(self.duration))


def iframe_playlist(init_uri_rel: str, iframes: Sequence[IFrame]) -> str:
    """The VOD I-frame playlist of one video track.

    `init_uri_rel` and every `IFrame.uri` must already be relative to where the playlist
    is written. EXT-X-TARGETDURATION is the largest duration rounded up.
    """
    if not iframes:
        raise ValueError("an I-frame playlist needs at least one I-frame")
    for frame in iframes:
        if any(c in frame.uri for c in "\r\n") or frame.uri.startswith("#") or not frame.uri:
            raise ValueError(f"cannot write {frame.uri!r} as a playlist URI line")
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{math.ceil(max(frame.duration for frame in iframes))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-I-FRAMES-ONLY",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f"#EXT-X-MAP:URI={quoted(init_uri_rel)}",
    ]
    for frame in iframes:
        lines.append(f"#EXTINF:{decimal(frame.duration, EXTINF_DECIMALS)},")
        lines.append(f"#EXT-X-BYTERANGE:{frame.length}@{frame.offset}")
        lines.append(frame.uri)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def iframe_bandwidth_bps(iframes: Sequence[IFrame]) -> int:
    """BANDWIDTH of an I-frame stream: RFC 8216's peak, the largest bit rate over any run
    of I-frames lasting 0.5 to 1.5 times the target duration (as for media playlists,
    `media.package.bandwidth.peak_bandwidth_bps`), so a short last segment does not inflate it."""
    if not iframes:
        raise ValueError("no I-frames: a bit rate needs at least one")
    durations = [frame.duration for frame in iframes]
    return peak_bandwidth_bps([frame.length for frame in iframes], durations,
                              math.ceil(max(durations)))


def iframe_stream_inf(bandwidth_bps: int, codecs: str, width: int, height: int, uri: str) -> str:
    """The multivariant playlist's EXT-X-I-FRAME-STREAM-INF line of one I-frame playlist.

    `codecs` is the video track's codecs string alone (no audio); `uri` is relative to
    the multivariant playlist. RESOLUTION is left out when `width` or `height` is 0.
    """
    if bandwidth_bps <= 0:
        raise ValueError(f"BANDWIDTH must be positive, got {bandwidth_bps}")
    attributes = [f"BANDWIDTH={bandwidth_bps}", f"CODECS={quoted(codecs)}"]
    if width and height:
        attributes.append(f"RESOLUTION={width}x{height}")
    attributes.append(f"URI={quoted(uri)}")
    return "#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attributes)
