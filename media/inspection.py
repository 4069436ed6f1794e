"""Deep inspection of a local source before compute is spent on it: findings and facts.

`media.probe.inspect_source` answers "can this become a title at all?" from a few decoded
frames. This module looks at the whole source and answers two further questions:

* what is wrong with it, as `Finding`s a person can act on: fatal ones (the title should
  not be encoded: the file is truncated or does not decode), warnings (it will encode, but
  the result may disappoint: corrupt frames, black or frozen stretches, audio dropouts,
  variable frame rate, interlacing, odd colour tags) and info (noted, handled);
* what the encoder must know to treat it right, as one `SourceFacts`: whether to
  normalise the frame rate, deinterlace, rotate, scale to square pixels, tone-map HDR,
  which colour space to assume, and how the audio lines up with the video.

Every check is a plain function with no Beam in it. The ones that need timestamps work
from one PyAV demux pass over the packets (`summarize`, no decoding: fast even for long
titles); the ones that need pictures or samples run the FFmpeg binary (`media.ffmpeg`)
over a full decode. `inspect_file` runs them all and decodes the source only once
(interlace detection looks at the first 200 of the frames that pass decodes):

    findings, facts = inspect_file("/scratch/title.mp4")
    if any(f.severity == FATAL for f in findings):
        ...  # dead-letter the title with the findings' messages and hints

Times in findings (`start_s`, `end_s`) are seconds from the start of the source as a
player shows it (the container's first timestamp is 0).

FFmpeg's results are read from machine-readable files it writes (the `metadata` filter's
print files and `-stats_enc_pre` frame lists), never from its log; the one exception is
the decode check, which counts the error lines the decoders log (the count, not numbers
inside them).

Finding codes (severity; the function that reports them):

    unreadable, no_video, truncated, demux_error, undecodable    fatal    decodability
    decode_errors, missing_frames         warning (fatal past a limit)    decodability
    black, frozen                                        warning    black_and_frozen
    audio_gap, silence                                   warning    audio_dropouts
    av_offset                        info (> 40 ms), warning (> 1 s)    av_sync
    duration_mismatch                                    warning    av_sync
    no_audio                                             info       av_sync
    colour_defaulted, full_range                         info       colour
    colour_inconsistent, hdr                             warning    colour
    vfr, interlaced                                      warning    timing
    interlace_flag_only, rotated, non_square_pixels,
    odd_dimensions                                       info       timing
    check_skipped (this FFmpeg build lacks a filter)     info       any
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
import os
import re
import statistics
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import av

from media import complexity, ffmpeg
from media.errors import MediaError, NoVideoStream, ToolFailed, UnreadableSource
from media.probe import SOURCE_INPUT_OPTIONS

log = logging.getLogger(__name__)

__all__ = [
    "FATAL",
    "INFO",
    "WARNING",
    "AudioSummary",
    "Colour",
    "DecodeStats",
    "Finding",
    "IdetCounts",
    "SourceFacts",
    "StreamSummary",
    "audio_dropouts",
    "av_sync",
    "black_and_frozen",
    "colour",
    "colour_facts",
    "decodability",
    "ffmpeg_encoders",
    "ffmpeg_filters",
    "inspect_file",
    "interlace_decision",
    "summarize",
    "timing",
]

FATAL = "fatal"
WARNING = "warning"
INFO = "info"

# --- thresholds -------------------------------------------------------------------------

MIN_STRETCH_S = 2.0
"""Black, frozen and silent stretches at least this long are reported."""
BLACK_PIXEL_THRESHOLD = 0.10
"""blackdetect pix_th: a pixel is black below 10 % luma (its default)."""
FREEZE_NOISE = "-50dB"
"""freezedetect noise tolerance. Its default (-60 dB) misses frozen pictures in lossy
sources, whose coding noise changes a little from frame to frame."""
SILENCE_NOISE = "-90dB"
"""silencedetect: below -90 dBFS is digital silence, not a quiet scene."""
AUDIO_GAP_S = 0.050
"""A hole in the audio packet timestamps longer than this is a dropout."""
AV_OFFSET_NOTE_S = 0.040
"""Audio starting this much before/after the video is reported (info)."""
AV_OFFSET_WARN_S = 1.0
"""... and above this as a warning: rarely intended."""
DURATION_MISMATCH_S = 0.5
"""Audio and video lengths differing by more than this is a warning."""
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_FRACTION = 0.02
"""A stream ending more than max(0.5 s, 2 %) before its declared end is truncated."""
FATAL_MISSING_FRACTION = 0.05
"""More than 5 % of the video frames failing to come out of the decoder is fatal."""
FATAL_ERROR_LINES_PER_FRAME = 0.10
"""More decoder error messages than 10 % of the frames (and over `FATAL_ERROR_LINES_MIN`)
is fatal: the source is damaged throughout, not in a few places."""
FATAL_ERROR_LINES_MIN = 10
IDET_FRAMES = 200
"""Frames at the start of the source that interlace detection (idet) looks at."""
VFR_MIN_IRREGULAR_FRACTION = 0.01
"""Variable frame rate: at least 1 % (and at least 2) of the frame intervals differ from
the typical one by more than rounding explains (1.5 ticks, 1.5 ms and 1 %)."""
FIRST_FRAME_PACKETS = 64
"""The demux pass decodes at most this many packets to get the first frame (rotation)."""
MAX_FIRST_ERRORS = 5
"""Decoder error messages quoted in a finding and kept in `DecodeStats`."""

_REEXPORT_HINT = (
    "Re-export the source from the editing or capture tool, or upload it again: the file "
    "as received is incomplete or damaged."
)

# --- ISO/IEC 23091-2 code points, as FFmpeg names them ------------------------------------

_PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFER = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_MATRIX = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_RANGE = {1: "tv", 2: "pc"}
_FIELD_ORDER = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
_INTERLACED_ORDERS = frozenset({"tt", "bb", "tb", "bt"})
UNKNOWN = "unknown"

_HDR_TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}
_SDR_TRANSFERS = frozenset(
    {"bt709", "smpte170m", "gamma22", "gamma28", "iec61966-2-1", "smpte240m"}
)
_BT2020_MATRICES = frozenset({"bt2020nc", "bt2020c"})
_SD_COLOUR = "smpte170m"
"""Default primaries, transfer and matrix of untagged SD video (BT.601, as FFmpeg names
it for 525-line video; 625-line BT.470BG differs only slightly in its primaries)."""
_HD_COLOUR = "bt709"
"""Default of untagged HD and larger video."""


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing inspection noticed about a source, phrased for the person who sent it."""

    severity: str
    """"fatal" (do not encode), "warning" (encodes; the result may disappoint) or "info"."""
    code: str
    """Stable machine-readable name (e.g. "decode_errors"); see the module for the list."""
    message: str
    """What was found, with the numbers."""
    hint: str
    """What the pipeline does about it, or what the user can do."""
    start_s: float | None = None
    """Start of the stretch it concerns, seconds from the start of the source."""
    end_s: float | None = None


@dataclass(frozen=True)
class SourceFacts:
    """What the encoder must know about a source to render it correctly."""

    variable_frame_rate: bool = False
    """Frame intervals vary: normalise to a constant rate (duplicate/drop frames)."""
    interlaced: bool = False
    """The picture is interlaced (content, not just the flag): deinterlace."""
    field_order: str = "progressive"
    """"progressive", "tt" (top field first), "bb", "tb", "bt" or "unknown"."""
    rotation_deg: int = 0
    """Clockwise rotation (0/90/180/270) the decoded picture needs for display, from the
    display matrix or the legacy `rotate` tag (which uses the same clockwise sense). Note
    that FFmpeg's `-display_rotation` and the matrix itself count counter-clockwise:
    `-display_rotation 90` is `rotation_deg == 270`."""
    sample_aspect_ratio: Fraction = Fraction(1)
    """Pixel aspect ratio; 1 when square (or undeclared)."""
    hdr: str = ""
    """"" (SDR), "pq" (SMPTE ST 2084, HDR10) or "hlg" (ARIB STD-B67)."""
    color_primaries: str = _HD_COLOUR
    color_transfer: str = _HD_COLOUR
    color_matrix: str = _HD_COLOUR
    color_range: str = "tv"
    """Colour tags as found, or the default for the resolution where untagged."""
    audio_offset_s: float = 0.0
    """First audio timestamp minus first video timestamp (positive: audio starts later)."""
    duration_mismatch_s: float = 0.0
    """Audio duration minus video duration (positive: audio is longer)."""
    complexity_bins: tuple[int, ...] = ()
    """Bytes of the complexity analysis encode per run of `complexity_bin_frames` decoded
    frames (about a second each; `media.complexity`); empty when not analysed."""
    complexity_bin_frames: int = 0


@dataclass(frozen=True)
class AudioSummary:
    """One audio stream as the demux pass saw it (timestamps only)."""

    index: int
    codec: str
    sample_rate_hz: int
    start_s: float
    """First packet's presentation time, source timeline."""
    end_s: float
    """Last packet's end, source timeline."""
    packets: int
    declared_end_s: float | None = None
    """End the container's index declares for the stream (None when it declares none)."""
    gaps: tuple[tuple[float, float], ...] = ()
    """Holes in the packet timestamps longer than `AUDIO_GAP_S` (start, end), source
    timeline."""

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


@dataclass(frozen=True)
class StreamSummary:
    """What one demux pass (PyAV, packets only, no decoding) learned about a source."""

    path: str
    format_name: str
    start_s: float
    """Start of the container timeline (what players show as 0)."""
    declared_end_s: float | None
    """End of the container timeline as its header declares it (None if undeclared)."""
    video_index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    sample_aspect_ratio: Fraction
    field_order: str
    rotation_deg: int
    color_primaries: str
    color_transfer: str
    color_matrix: str
    color_range: str
    time_base: Fraction
    video_pts: tuple[int, ...]
    """Presentation timestamps of the video packets, sorted, in `time_base` ticks."""
    video_end_s: float
    """End of the last video frame, source timeline."""
    video_declared_end_s: float | None = None
    """End of the video stream as the container's index declares it."""
    video_declared_frames: int = 0
    """Frames the container's index declares (0 when it keeps no count)."""
    audio: tuple[AudioSummary, ...] = ()
    demux_error: str = ""
    """The error that stopped the demux pass early, if any."""

    @property
    def video_start_s(self) -> float:
        return float(self.video_pts[0] * self.time_base) if self.video_pts else self.start_s

    @property
    def video_duration_s(self) -> float:
        return max(0.0, self.video_end_s - self.video_start_s)

    @property
    def frame_interval_ticks(self) -> int:
        """The typical distance between frames (median interval), in ticks."""
        deltas = _deltas(self.video_pts)
        return int(statistics.median_low(deltas)) if deltas else 0


@dataclass(frozen=True)
class DecodeStats:
    """What the full decode found."""

    video_frames_expected: int = 0
    """Video packets the demuxer delivered (or the index declares, if more)."""
    video_frames_decoded: int = 0
    audio_frames_decoded: int = 0
    decode_error_lines: int = 0
    """Error messages the demuxer and decoders logged."""
    first_errors: tuple[str, ...] = ()
    video_end_s: float | None = None
    """End of the last decoded video frame, seconds from the start (None: none decoded)."""
    declared_end_s: float | None = None
    """End the container declares, seconds from the start."""
    truncated: bool = False

    @property
    def missing_frames(self) -> int:
        return max(0, self.video_frames_expected - self.video_frames_decoded)


@dataclass(frozen=True)
class Colour:
    """Colour description to encode from: tags as found, untagged ones defaulted."""

    primaries: str
    transfer: str
    matrix: str
    range: str
    hdr: str
    """"", "pq" or "hlg"."""
    defaulted: tuple[str, ...] = ()
    """Which of "primaries", "transfer", "matrix", "range" were untagged."""


# --- FFmpeg capabilities ----------------------------------------------------------------


@functools.cache
def ffmpeg_filters() -> frozenset[str]:
    """Names of the filters this FFmpeg build has (`ffmpeg -filters`)."""
    return _ffmpeg_listing("-filters")


@functools.cache
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the encoders this FFmpeg build has (`ffmpeg -encoders`)."""
    return _ffmpeg_listing("-encoders")


def _ffmpeg_listing(flag: str) -> frozenset[str]:
    # Listings go to stdout, which media.ffmpeg.run discards, hence subprocess here.
    proc = subprocess.run(
        [ffmpeg.ffmpeg_exe(), "-nostdin", "-hide_banner", flag],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    names, started = set(), False
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        stripped = line.strip()
        if not started:
            started = bool(stripped) and set(stripped) == {"-"}
            continue
        parts = stripped.split()
        if len(parts) >= 2:
            names.add(parts[1])
    return frozenset(names)


def _skipped(check: str, missing: Sequence[str]) -> Finding:
    return Finding(
        INFO,
        "check_skipped",
        f"{check} was not checked: this FFmpeg build lacks the {', '.join(missing)} filter(s)",
        "Use an FFmpeg build with these filters to have this checked.",
    )


# --- the demux pass ---------------------------------------------------------------------


def summarize(path: str) -> StreamSummary:
    """Read every packet's timestamps (no decoding, bar the first video frame).

    Raises `UnreadableSource` when the file cannot be opened as media and `NoVideoStream`
    when it has no video stream.
    """
    try:
        container = av.open(path, mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UnreadableSource(f"cannot open {path} as media: {exc}") from exc
    with container:
        video = _first_video_stream(container, path)
        audio_streams = [s for s in container.streams.audio if s.codec_context.sample_rate]
        tb = Fraction(video.time_base.numerator, video.time_base.denominator)
        ctx = video.codec_context

        video_pts: list[int] = []
        video_durations: list[int] = []
        audio_packets: dict[int, list[tuple[int, int]]] = {s.index: [] for s in audio_streams}
        first_frame = None
        demux_error = ""
        try:
            for packet in container.demux(video, *audio_streams):
                if not packet.size or packet.is_discard:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is None:
                    continue
                if packet.stream.index == video.index:
                    video_pts.append(pts)
                    video_durations.append(packet.duration or 0)
                    if first_frame is None and len(video_pts) <= FIRST_FRAME_PACKETS:
                        first_frame = _decode_first(packet)
                else:
                    audio_packets[packet.stream.index].append((pts, packet.duration or 0))
        except (av.FFmpegError, ValueError, OSError) as exc:
            demux_error = str(exc)
            log.info("%s: demuxing stopped early: %s", path, exc)

        order = sorted(range(len(video_pts)), key=video_pts.__getitem__)
        pts_sorted = tuple(video_pts[i] for i in order)
        deltas = _deltas(pts_sorted)
        typical = statistics.median_low(deltas) if deltas else 0
        if pts_sorted:
            last = order[-1]
            video_end = float((pts_sorted[-1] + (video_durations[last] or typical)) * tb)
        else:
            video_end = 0.0

        start_s = container.start_time / av.time_base if container.start_time is not None else 0.0
        declared_end = start_s + container.duration / av.time_base if container.duration else None
        primaries, transfer, matrix, rng = (
            _PRIMARIES.get(_int(ctx, "color_primaries"), UNKNOWN),
            _TRANSFER.get(_int(ctx, "color_trc"), UNKNOWN),
            _MATRIX.get(_int(ctx, "colorspace"), UNKNOWN),
            _RANGE.get(_int(ctx, "color_range"), UNKNOWN),
        )
        if first_frame is not None:  # the bitstream may say what the container does not
            primaries = (
                primaries
                if primaries != UNKNOWN
                else _PRIMARIES.get(_int(first_frame, "color_primaries"), UNKNOWN)
            )
            transfer = (
                transfer
                if transfer != UNKNOWN
                else _TRANSFER.get(_int(first_frame, "color_trc"), UNKNOWN)
            )
            matrix = (
                matrix
                if matrix != UNKNOWN
                else _MATRIX.get(_int(first_frame, "colorspace"), UNKNOWN)
            )
            rng = rng if rng != UNKNOWN else _RANGE.get(_int(first_frame, "color_range"), UNKNOWN)

        return StreamSummary(
            path=path,
            format_name=container.format.name,
            start_s=start_s,
            declared_end_s=declared_end,
            video_index=video.index,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=ctx.pix_fmt or UNKNOWN,
            sample_aspect_ratio=_sar(video),
            field_order=_FIELD_ORDER.get(_int(ctx, "field_order"), UNKNOWN),
            rotation_deg=_rotation(video, first_frame),
            color_primaries=primaries,
            color_transfer=transfer,
            color_matrix=matrix,
            color_range=rng,
            time_base=tb,
            video_pts=pts_sorted,
            video_end_s=video_end,
            video_declared_end_s=_declared_end(video),
            video_declared_frames=int(video.frames or 0),
            audio=tuple(_audio_summary(s, audio_packets[s.index]) for s in audio_streams),
            demux_error=demux_error,
        )


def _first_video_stream(container, path: str):
    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue  # cover art
        if stream.codec_context.width and stream.codec_context.height:
            return stream
    raise NoVideoStream(f"{path} has no video stream")


def _decode_first(packet):
    """The first frame this packet yields, if any (decoding stops once one came out)."""
    try:
        for frame in packet.decode():
            return frame
    except (av.FFmpegError, ValueError):
        return None
    return None


def _int(obj, name: str) -> int:
    try:
        return int(getattr(obj, name, None))
    except (TypeError, ValueError):
        return -1


def _sar(video) -> Fraction:
    for sar in (video.sample_aspect_ratio, video.codec_context.sample_aspect_ratio):
        if sar and sar.numerator > 0 and sar.denominator > 0:
            return Fraction(sar.numerator, sar.denominator)
    return Fraction(1)


def _rotation(video, first_frame) -> int:
    """Clockwise display rotation: the display matrix (counter-clockwise) negated, else the
    legacy `rotate` tag (clockwise), rounded to a multiple of 90."""
    ccw = None
    if first_frame is not None:
        try:
            ccw = first_frame.rotation
        except (AttributeError, ValueError):
            ccw = None
    if ccw:
        return round(-float(ccw) / 90.0) * 90 % 360
    tags = {k.lower(): v for k, v in video.metadata.items()}
    try:
        return round(float(tags.get("rotate", 0)) / 90.0) * 90 % 360
    except ValueError:
        return 0


def _declared_end(stream) -> float | None:
    if not stream.duration or stream.duration <= 0:
        return None
    start = stream.start_time if stream.start_time is not None else 0
    return float((start + stream.duration) * stream.time_base)


def _audio_summary(stream, packets: list[tuple[int, int]]) -> AudioSummary:
    ctx = stream.codec_context
    tb = stream.time_base
    if not packets:
        return AudioSummary(
            stream.index, ctx.name, ctx.sample_rate, 0.0, 0.0, 0, _declared_end(stream)
        )
    packets.sort()
    durations = [d for _, d in packets if d > 0]
    fallback = (
        statistics.median_low(durations)
        if durations
        else (statistics.median_low(_deltas([p for p, _ in packets])) if len(packets) > 1 else 0)
    )
    gaps = []
    end = packets[0][0] + (packets[0][1] or fallback)
    for pts, dur in packets[1:]:
        if float((pts - end) * tb) > AUDIO_GAP_S:
            gaps.append((float(end * tb), float(pts * tb)))
        end = max(end, pts + (dur or fallback))
    return AudioSummary(
        index=stream.index,
        codec=ctx.name,
        sample_rate_hz=ctx.sample_rate,
        start_s=float(packets[0][0] * tb),
        end_s=float(end * tb),
        packets=len(packets),
        declared_end_s=_declared_end(stream),
        gaps=tuple(gaps),
    )


def _deltas(values: Sequence[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(values)]


def _summary(source: str | StreamSummary) -> StreamSummary:
    return source if isinstance(source, StreamSummary) else summarize(source)


# --- the FFmpeg decode pass -------------------------------------------------------------


@dataclass(frozen=True)
class _Pass:
    """What one full decode by FFmpeg wrote (times in seconds from the start)."""

    error_lines: tuple[str, ...]
    video_frames: int
    video_end_s: float | None
    audio_frames: dict[int, int] = field(default_factory=dict)
    audio_end_s: dict[int, float] = field(default_factory=dict)
    video_meta: tuple[tuple[float, dict[str, str]], ...] = ()
    audio_meta: dict[int, tuple[tuple[float, dict[str, str]], ...]] = field(default_factory=dict)
    ran_video_filters: tuple[str, ...] = ()
    ran_audio_filters: tuple[str, ...] = ()
    analysis_bytes: tuple[int, ...] = ()
    """Bytes of each frame of the complexity analysis encode (`media.complexity`), when run."""
    idet: IdetCounts | None = None
    """idet's counts over the first `IDET_FRAMES` frames, when the pass ran it."""


def _decode_pass(
    summary: StreamSummary,
    *,
    video_detect: bool,
    audio_detect: bool,
    analysis_bin: int = 0,
    idet: bool = False,
    timeout_s: float | None = None,
) -> _Pass:
    """Decode the video and every audio stream to the null muxer, through the detection
    filters asked for; with an `analysis_bin` (frames), the video also through the
    complexity analysis encode (`media.complexity`); with `idet`, the first `IDET_FRAMES`
    frames also through interlace detection (a branch of the same decode, where a process
    of its own would decode them again). Raises `ToolFailed` when FFmpeg gives up on the
    source."""
    available = ffmpeg_filters()
    vfilters = [f for f in ("blackdetect", "freezedetect") if video_detect and f in available]
    afilters = [f for f in ("silencedetect",) if audio_detect and f in available]
    analyse = analysis_bin > 0 and "libx264" in ffmpeg_encoders() and "scale" in available
    idet = idet and {"idet", "split", "trim"} <= available
    with tempfile.TemporaryDirectory(prefix="inspect-") as tmp:
        vstats, vmeta = os.path.join(tmp, "video.stats"), os.path.join(tmp, "video.meta")
        vpost, imeta = os.path.join(tmp, "video.post"), os.path.join(tmp, "idet.meta")
        args = [
            "-loglevel",
            "repeat+error",  # one line per error: no "repeated N times"
            "-max_error_rate",
            "1",  # decode to the end, however damaged
            "-noautorotate",
            *SOURCE_INPUT_OPTIONS,
            "-i",
            summary.path,
        ]
        chain = [_video_filter(name) for name in vfilters]
        detecting = bool(chain)
        if chain:
            chain.append(f"metadata=mode=print:file={_filter_value(vmeta)}")
        if analyse:
            chain.append(complexity.analysis_filter(summary.width, summary.height))
        if idet:
            args += ["-filter_complex", _idet_branch_graph(summary.video_index, chain, imeta),
                     "-map", "[main]"]
        else:
            args += ["-map", f"0:{summary.video_index}"]
            if chain:
                args += ["-filter:0", ",".join(chain)]
        for audio in summary.audio:
            args += ["-map", f"0:{audio.index}"]
        if analyse:
            args += [*complexity.analysis_codec_args(analysis_bin, stream=0),
                     "-stats_enc_post_fmt:0", "{n} {size}", "-stats_enc_post:0", vpost]
        args += ["-stats_enc_pre_fmt:0", "{n} {t}", "-stats_enc_pre:0", vstats]
        astats, ameta = {}, {}
        for out, audio in enumerate(summary.audio, start=1):
            astats[audio.index] = os.path.join(tmp, f"audio{out}.stats")
            ameta[audio.index] = os.path.join(tmp, f"audio{out}.meta")
            if afilters:
                achain = [
                    f"silencedetect=n={SILENCE_NOISE}:d={MIN_STRETCH_S}",
                    f"ametadata=mode=print:file={_filter_value(ameta[audio.index])}",
                ]
                args += [f"-filter:{out}", ",".join(achain)]
            args += [
                f"-stats_enc_pre_fmt:{out}",
                "{n} {t} {samp}",
                f"-stats_enc_pre:{out}",
                astats[audio.index],
            ]
        args += ["-f", "null", "-"]
        if idet:
            args += ["-map", "[idet]", "-f", "null", "-"]
        run = ffmpeg.run(
            ffmpeg.ffmpeg_argv(*args),
            timeout_s=timeout_s,
            hint="FFmpeg could not decode the source. " + _REEXPORT_HINT,
        )

        video_rows = _read_stats(vstats)
        frame_s = float(summary.frame_interval_ticks * summary.time_base)
        last = _last_time(video_rows)
        video_end = last[1] + frame_s if last else None
        audio_frames, audio_end = {}, {}
        for audio in summary.audio:
            rows = _read_stats(astats[audio.index])
            audio_frames[audio.index] = len(rows)
            last = _last_time(rows)
            if last:
                samples = last[2] if len(last) > 2 and not math.isnan(last[2]) else 0
                audio_end[audio.index] = last[1] + samples / (audio.sample_rate_hz or 1)
        return _Pass(
            error_lines=tuple(
                _ADDRESS.sub("", line.strip()) for line in run.stderr.splitlines() if line.strip()
            ),
            video_frames=len(video_rows),
            video_end_s=video_end,
            audio_frames=audio_frames,
            audio_end_s=audio_end,
            video_meta=_read_metadata(vmeta) if detecting else (),
            audio_meta={i: _read_metadata(p) for i, p in ameta.items()} if afilters else {},
            ran_video_filters=tuple(vfilters),
            ran_audio_filters=tuple(afilters),
            analysis_bytes=tuple(int(row[1]) for row in _read_stats(vpost)
                                 if len(row) > 1 and not math.isnan(row[1])) if analyse else (),
            idet=_idet_from(_read_metadata(imeta)) if idet else None,
        )


def _idet_branch_graph(video_index: int, chain: Sequence[str], idet_meta: str) -> str:
    """The decode pass's filter graph when it also runs interlace detection: the decoded
    video splits into the pass's own chain (to `[main]`) and a branch that lets the first
    `IDET_FRAMES` frames through idet (to `[idet]`)."""
    return (f"[0:{video_index}]split=2[pass][head];[pass]{','.join(chain) or 'null'}[main];"
            f"[head]trim=end_frame={IDET_FRAMES},{_idet_chain(idet_meta)}[idet]")


def _idet_chain(meta: str) -> str:
    """idet, its counts printed to the file `meta` (read back by `_idet_from`)."""
    return f"idet,metadata=mode=print:file={_filter_value(meta)}"


_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+")
"""The context's address in FFmpeg's log prefix ("[h264 @ 0x55d1...]"): noise to a user."""


def _video_filter(name: str) -> str:
    if name == "blackdetect":
        return f"blackdetect=d={MIN_STRETCH_S}:pix_th={BLACK_PIXEL_THRESHOLD}"
    return f"freezedetect=n={FREEZE_NOISE}:d={MIN_STRETCH_S}"


def _filter_value(value: str) -> str:
    """Escape a filter option value for use inside a filtergraph description (both the
    option level and the graph level of FFmpeg's quoting)."""
    for char in "\\':":
        value = value.replace(char, "\\" + char)
    for char in "\\'[],;":
        value = value.replace(char, "\\" + char)
    return value


def _read_stats(path: str) -> list[tuple[float, ...]]:
    """Rows of an `-stats_enc_pre` file, one per frame, as numbers (NaN where a field is
    not a number, e.g. a frame without a timestamp)."""
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(tuple(_number(x) for x in line.split()))
    except FileNotFoundError:
        return []
    return rows


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _last_time(rows: Sequence[tuple[float, ...]]) -> tuple[float, ...] | None:
    """The last row with a time (second field)."""
    for row in reversed(rows):
        if len(row) > 1 and not math.isnan(row[1]):
            return row
    return None


def _read_metadata(path: str) -> tuple[tuple[float, dict[str, str]], ...]:
    """Frames of a metadata=mode=print file: (pts_time, {key: value})."""
    frames: list[tuple[float, dict[str, str]]] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                line = raw.strip()
                if line.startswith("frame:"):
                    time = 0.0
                    for part in line.split():
                        if part.startswith("pts_time:"):
                            try:
                                time = float(part[len("pts_time:") :])
                            except ValueError:
                                time = frames[-1][0] if frames else 0.0
                    frames.append((time, {}))
                elif "=" in line and frames:
                    key, _, value = line.partition("=")
                    frames[-1][1][key] = value
    except FileNotFoundError:
        return ()
    return tuple(frames)


def _meta_float(meta: dict[str, str], key: str) -> float | None:
    try:
        return float(meta[key])
    except (KeyError, ValueError):
        return None


# --- decodability -----------------------------------------------------------------------


def decodability(
    path: str, *, summary: StreamSummary | None = None, timeout_s: float | None = None
) -> tuple[list[Finding], DecodeStats]:
    """Decode the whole video and every audio stream once; report damage and truncation.

    The decode runs in the FFmpeg binary (to the null muxer, without `-xerror`, with
    `-max_error_rate 1` so it goes on to the end), not in PyAV, because that is the more
    robust choice here: the process is isolated (a decoder that crashes or hangs on a
    hostile file cannot take the worker down, and `timeout_s` can kill it), it uses the
    same FFmpeg build and decoders as the encodes will, and it sees every error the
    demuxer and decoders log, including those from frame-threading worker threads that
    conceal damage without returning an error (which PyAV's thread-local log capture
    would miss). Decoded frames are counted from FFmpeg's `-stats_enc_pre` frame list,
    not from its log. Truncation is judged from the container structure (an MP4 box
    running past the end of the file, or no `moov`) and from where the streams end
    against where the container says they end.

    Fatal: unreadable, no video, truncated, demux error, undecodable, and damage
    throughout (`decode_errors`/`missing_frames` past their fatal thresholds). A few
    corrupt frames are warnings.
    """
    size = _file_size(path)
    box_problem = _isobmff_truncation(path)
    if summary is None:
        try:
            summary = summarize(path)
        except MediaError as exc:
            return [_open_failure(exc, box_problem)], DecodeStats()
    try:
        result = _decode_pass(summary, video_detect=False, audio_detect=False, timeout_s=timeout_s)
    except ToolFailed as exc:
        _raise_if_timed_out(exc, timeout_s)
        return [_undecodable(exc)], DecodeStats(truncated=bool(box_problem))
    return _decode_findings(summary, result, box_problem, size)


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _open_failure(exc: MediaError, box_problem: str) -> Finding:
    if box_problem:
        return Finding(FATAL, "truncated", f"The file is truncated: {box_problem}.", _REEXPORT_HINT)
    if isinstance(exc, NoVideoStream):
        return Finding(FATAL, "no_video", str(exc), exc.hint)
    return Finding(FATAL, "unreadable", str(exc), exc.hint)


def _raise_if_timed_out(exc: ToolFailed, timeout_s: float | None) -> None:
    """A decode killed at `timeout_s` says nothing about the source: raise, not a finding."""
    if timeout_s and exc.returncode == -9:
        raise exc


def _undecodable(exc: ToolFailed) -> Finding:
    return Finding(
        FATAL,
        "undecodable",
        f"FFmpeg could not decode the source: {exc.stderr_tail.strip()[-400:]}",
        "Re-export the source with a standard codec (H.264, HEVC, ProRes), or "
        "upload it again if it is damaged.",
    )


def _isobmff_truncation(path: str) -> str:
    """Why an MP4/MOV (ISO BMFF) file looks cut short, or "" if it does not (or is not
    ISO BMFF). Walks the top-level boxes: one that runs past the end of the file, or a
    file without `moov` (the index a writer adds when it finishes), is truncated."""
    try:
        with open(path, "rb") as handle:
            return isobmff_truncation(handle)
    except OSError:
        return ""


def isobmff_truncation(handle) -> str:
    """`_isobmff_truncation` of an open, seekable binary file (read from its start)."""
    try:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        head = handle.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return ""
        position, seen = 0, set()
        for _ in range(100_000):
            if position >= size:
                break
            handle.seek(position)
            header = handle.read(16)
            if len(header) < 8:
                return f"it ends inside a box header at byte {position} of {size}"
            box_size, kind = struct.unpack(">I4s", header[:8])
            name = kind.decode("latin-1")
            if box_size == 1:
                if len(header) < 16:
                    return f"it ends inside a box header at byte {position} of {size}"
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # the box runs to the end of the file
                seen.add(name)
                break
            if box_size < 8:
                return ""  # not a box structure we understand; let the demuxer judge
            seen.add(name)
            if position + box_size > size:
                missing = position + box_size - size
                return (
                    f"its '{name}' box needs {missing} more bytes than the file has "
                    f"(the file is {size} bytes, about "
                    f"{100 * size / (size + missing):.0f} % of what it should be)"
                )
            position += box_size
    except (OSError, ValueError):
        return ""
    if "moov" not in seen:
        return "it has no 'moov' box (the index a writer adds when it finishes the file)"
    return ""


def _tolerance(span_s: float) -> float:
    return max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * span_s)


def _stream_truncation(summary: StreamSummary) -> str:
    """Why the streams look cut short against what the container declares, or ""."""
    ends = [("video", summary.video_end_s, summary.video_declared_end_s, summary.video_start_s)]
    ends += [
        (f"audio stream #{a.index}", a.end_s, a.declared_end_s, a.start_s) for a in summary.audio
    ]
    for name, end, declared, start in ends:
        if declared is not None and end < declared - _tolerance(declared - start):
            return (
                f"the {name} ends at {end - summary.start_s:.2f} s but the container "
                f"declares {declared - summary.start_s:.2f} s"
            )
    declared = summary.declared_end_s
    longest = max(end for _, end, _, _ in ends)
    if declared is not None and longest < declared - _tolerance(declared - summary.start_s):
        return (
            f"every stream ends by {longest - summary.start_s:.2f} s but the container "
            f"declares {declared - summary.start_s:.2f} s"
        )
    if summary.video_declared_frames > len(summary.video_pts) + 1:
        return (
            f"the container indexes {summary.video_declared_frames} video frames but "
            f"only {len(summary.video_pts)} are in the file"
        )
    return ""


def _decode_findings(
    summary: StreamSummary, result: _Pass, box_problem: str, size: int
) -> tuple[list[Finding], DecodeStats]:
    findings: list[Finding] = []
    expected = len(summary.video_pts)
    problem = box_problem or _stream_truncation(summary)
    stats = DecodeStats(
        video_frames_expected=expected,
        video_frames_decoded=result.video_frames,
        audio_frames_decoded=sum(result.audio_frames.values()),
        decode_error_lines=len(result.error_lines),
        first_errors=result.error_lines[:MAX_FIRST_ERRORS],
        video_end_s=result.video_end_s,
        declared_end_s=(
            summary.declared_end_s - summary.start_s if summary.declared_end_s is not None else None
        ),
        truncated=bool(problem),
    )
    if problem:
        findings.append(
            Finding(
                FATAL,
                "truncated",
                f"The file is truncated ({size} bytes): {problem}.",
                _REEXPORT_HINT,
                start_s=result.video_end_s,
            )
        )
    elif summary.demux_error:
        findings.append(
            Finding(
                FATAL,
                "demux_error",
                f"Reading the file stopped early: {summary.demux_error}.",
                _REEXPORT_HINT,
            )
        )
    if result.video_frames == 0:
        findings.append(
            Finding(
                FATAL,
                "undecodable",
                "No video frame could be decoded.",
                "Re-export the source with a standard codec (H.264, HEVC, "
                "ProRes), or upload it again if it is damaged.",
            )
        )
        return findings, stats
    if problem:
        return findings, stats  # errors at the cut are the truncation's, not more news
    quoted = "; ".join(line.strip() for line in stats.first_errors)
    if stats.decode_error_lines:
        fatal = stats.decode_error_lines > max(
            FATAL_ERROR_LINES_MIN, FATAL_ERROR_LINES_PER_FRAME * expected
        )
        findings.append(
            Finding(
                FATAL if fatal else WARNING,
                "decode_errors",
                f"The decoders reported {stats.decode_error_lines} error(s) over {expected} "
                f"video frames (first: {quoted}).",
                _REEXPORT_HINT
                if fatal
                else "Damaged frames are concealed by the decoder and encoded as they come out; "
                "re-export or upload the source again if the glitches are visible.",
            )
        )
    if stats.missing_frames:
        fatal = stats.missing_frames > max(2, FATAL_MISSING_FRACTION * expected)
        findings.append(
            Finding(
                FATAL if fatal else WARNING,
                "missing_frames",
                f"{stats.missing_frames} of {expected} video frames did not decode.",
                _REEXPORT_HINT
                if fatal
                else "The missing frames are replaced by repeating their neighbours when the frame "
                "rate is normalised.",
            )
        )
    return findings, stats


# --- black, frozen and silent stretches ---------------------------------------------------


def black_and_frozen(
    path: str, *, summary: StreamSummary | None = None, timeout_s: float | None = None
) -> list[Finding]:
    """Black and frozen stretches of at least `MIN_STRETCH_S`, as warnings with times.

    Uses FFmpeg's `blackdetect` and `freezedetect` filters (a full decode); a frozen
    stretch inside a black one is not reported twice."""
    summary = summary or summarize(path)
    missing = [f for f in ("blackdetect", "freezedetect") if f not in ffmpeg_filters()]
    if len(missing) == 2:
        return [_skipped("Black and frozen video", missing)]
    result = _decode_pass(summary, video_detect=True, audio_detect=False, timeout_s=timeout_s)
    findings = _black_frozen_findings(result)
    return [_skipped("Black and frozen video", missing), *findings] if missing else findings


def _black_frozen_findings(result: _Pass) -> list[Finding]:
    end = result.video_end_s or 0.0
    black = _stretches(result.video_meta, "lavfi.black_start", "lavfi.black_end", end)
    frozen = _stretches(
        result.video_meta, "lavfi.freezedetect.freeze_start", "lavfi.freezedetect.freeze_end", end
    )
    frozen = [
        f for f in frozen if not any(b0 - 0.1 <= f[0] and f[1] <= b1 + 0.1 for b0, b1 in black)
    ]
    findings = [
        Finding(
            WARNING,
            "black",
            f"The picture is black from {s:.2f} s to {e:.2f} s ({e - s:.1f} s).",
            "Encoded as it is; trim the source if the black is not intended.",
            start_s=s,
            end_s=e,
        )
        for s, e in black
    ]
    findings += [
        Finding(
            WARNING,
            "frozen",
            f"The picture does not change from {s:.2f} s to {e:.2f} s ({e - s:.1f} s).",
            "Encoded as it is; check the source for a stalled capture or a "
            "missing edit if this is not a still on purpose.",
            start_s=s,
            end_s=e,
        )
        for s, e in frozen
    ]
    return sorted(findings, key=lambda f: (f.start_s or 0.0, f.code))


def _stretches(
    meta: Iterable[tuple[float, dict[str, str]]], start_key: str, end_key: str, stream_end_s: float
) -> list[tuple[float, float]]:
    """(start, end) pairs from a metadata print, at least `MIN_STRETCH_S` long. A start
    with no end runs to the end of the stream; a start followed by another start was a
    stretch too short to be ended by the filter (blackdetect marks every start)."""
    stretches, start = [], None
    for _, values in meta:
        begin, finish = _meta_float(values, start_key), _meta_float(values, end_key)
        if finish is not None and start is not None:
            stretches.append((start, finish))
            start = None
        if begin is not None:
            start = begin
    if start is not None and stream_end_s > start:
        stretches.append((start, stream_end_s))
    return [(s, e) for s, e in stretches if e - s >= MIN_STRETCH_S - 1e-6]


def audio_dropouts(
    path: str, *, summary: StreamSummary | None = None, timeout_s: float | None = None
) -> list[Finding]:
    """Holes in the audio packet timestamps (> `AUDIO_GAP_S`) and digital silence
    (`silencedetect` below `SILENCE_NOISE` for `MIN_STRETCH_S`), as warnings."""
    summary = summary or summarize(path)
    findings = _gap_findings(summary)
    if not summary.audio:
        return findings
    if "silencedetect" not in ffmpeg_filters():
        return [*findings, _skipped("Audio silence", ["silencedetect"])]
    result = _decode_pass(summary, video_detect=False, audio_detect=True, timeout_s=timeout_s)
    return findings + _silence_findings(summary, result)


def _gap_findings(summary: StreamSummary) -> list[Finding]:
    findings = []
    for audio in summary.audio:
        for gap_start, gap_end in audio.gaps:
            start, end = gap_start - summary.start_s, gap_end - summary.start_s
            findings.append(
                Finding(
                    WARNING,
                    "audio_gap",
                    f"Audio stream #{audio.index} has no samples from {start:.3f} s to "
                    f"{end:.3f} s ({1000 * (end - start):.0f} ms).",
                    "The gap is filled with silence to keep the audio in sync; re-export the "
                    "source if the dropout is audible.",
                    start_s=start,
                    end_s=end,
                )
            )
    return findings


def _silence_findings(summary: StreamSummary, result: _Pass) -> list[Finding]:
    findings = []
    for audio in summary.audio:
        end = result.audio_end_s.get(audio.index, audio.end_s - summary.start_s)
        for start, finish in _stretches(
            result.audio_meta.get(audio.index, ()), "lavfi.silence_start", "lavfi.silence_end", end
        ):
            findings.append(
                Finding(
                    WARNING,
                    "silence",
                    f"Audio stream #{audio.index} is digitally silent from {start:.2f} s to "
                    f"{finish:.2f} s ({finish - start:.1f} s).",
                    "Encoded as it is; check the source's audio mix or channel mapping if the "
                    "silence is not intended.",
                    start_s=start,
                    end_s=finish,
                )
            )
    return findings


# --- A/V sync -----------------------------------------------------------------------------


def av_sync(source: str | StreamSummary) -> list[Finding]:
    """Start offset and duration mismatch between each audio stream and the video."""
    summary = _summary(source)
    if not summary.audio:
        return [
            Finding(
                INFO,
                "no_audio",
                "The source has no audio stream.",
                "The title is published without audio.",
            )
        ]
    findings = []
    for audio in summary.audio:
        offset = audio.start_s - summary.video_start_s
        where = (
            f"Audio stream #{audio.index} starts {abs(offset):.3f} s "
            + ("after" if offset > 0 else "before")
            + " the video"
        )
        what = (
            "it is cut to start with the video"
            if offset < 0
            else "the pipeline pads it with silence so the timing is kept"
        )
        if abs(offset) > AV_OFFSET_WARN_S:
            findings.append(
                Finding(
                    WARNING,
                    "av_offset",
                    f"{where}.",
                    f"The container's timing is honoured ({what}); if the sound is out of sync "
                    "when the source is played, fix the offset in the edit and re-export.",
                )
            )
        elif abs(offset) > AV_OFFSET_NOTE_S:
            findings.append(
                Finding(
                    INFO, "av_offset", f"{where}.", f"The container's timing is honoured: {what}."
                )
            )
        mismatch = audio.duration_s - summary.video_duration_s
        if abs(mismatch) > DURATION_MISMATCH_S:
            findings.append(
                Finding(
                    WARNING,
                    "duration_mismatch",
                    f"Audio stream #{audio.index} lasts {audio.duration_s:.2f} s and the video "
                    f"{summary.video_duration_s:.2f} s ({mismatch:+.2f} s).",
                    "The audio is padded with silence or cut to the video's length; check the "
                    "source's edit if a part is missing.",
                )
            )
    return findings


# --- colour -------------------------------------------------------------------------------


def colour_facts(source: str | StreamSummary) -> Colour:
    """The colour description to encode from: each tag as found, or, where untagged, the
    default for the resolution (SD: BT.601 as smpte170m; HD and larger: bt709), kept in
    the BT.2020 family when the other tags are BT.2020. Range defaults to tv (limited),
    or pc for full-range ("yuvj") and RGB pixel formats."""
    summary = _summary(source)
    default = _HD_COLOUR if summary.width >= 1280 or summary.height >= 720 else _SD_COLOUR
    primaries, transfer, matrix, rng = (
        summary.color_primaries,
        summary.color_transfer,
        summary.color_matrix,
        summary.color_range,
    )
    defaulted = []
    if primaries == UNKNOWN:
        defaulted.append("primaries")
        primaries = "bt2020" if matrix in _BT2020_MATRICES else default
    if transfer == UNKNOWN:
        defaulted.append("transfer")
        transfer = default
    if matrix == UNKNOWN:
        defaulted.append("matrix")
        matrix = "bt2020nc" if primaries == "bt2020" else default
    if rng == UNKNOWN:
        defaulted.append("range")
        full = summary.pix_fmt.startswith(("yuvj", "rgb", "bgr", "gbr"))
        rng = "pc" if full else "tv"
    return Colour(
        primaries, transfer, matrix, rng, _HDR_TRANSFERS.get(transfer, ""), tuple(defaulted)
    )


def colour(source: str | StreamSummary) -> list[Finding]:
    """Colour tags: defaults applied (info), HDR (warning), inconsistent tags (warning),
    full range (info)."""
    summary = _summary(source)
    facts = colour_facts(summary)
    findings = []
    if facts.defaulted:
        findings.append(
            Finding(
                INFO,
                "colour_defaulted",
                f"The source does not tag its colour {', '.join(facts.defaulted)}; "
                f"{summary.width}x{summary.height} video is assumed to be "
                f"{facts.primaries}/{facts.transfer}/{facts.matrix}, {facts.range} range.",
                "Tag the colour description when exporting if the assumption is wrong.",
            )
        )
    odd = _colour_inconsistencies(summary)
    if odd:
        findings.append(
            Finding(
                WARNING,
                "colour_inconsistent",
                f"The colour tags do not fit together: {'; '.join(odd)} (primaries "
                f"{summary.color_primaries}, transfer {summary.color_transfer}, matrix "
                f"{summary.color_matrix}, pixel format {summary.pix_fmt}).",
                "The tags are used as found; if colours look wrong, re-export the source "
                "with a correct colour description.",
            )
        )
    if facts.hdr:
        kind = "HDR10 (PQ, SMPTE ST 2084)" if facts.hdr == "pq" else "HLG (ARIB STD-B67)"
        findings.append(
            Finding(
                WARNING,
                "hdr",
                f"The source is {kind} with {facts.primaries} primaries.",
                "The renditions are SDR (BT.709), so the picture is tone-mapped to SDR "
                "(SourceFacts.hdr tells the encoder), which compresses highlights; provide "
                "an SDR grade for the best result.",
            )
        )
    if summary.color_range == "pc" and not summary.pix_fmt.startswith(("rgb", "bgr", "gbr")):
        findings.append(
            Finding(
                INFO,
                "full_range",
                "The source is full-range (pc) YUV.",
                "It is converted to limited (tv) range for delivery.",
            )
        )
    return findings


def _colour_inconsistencies(summary: StreamSummary) -> list[str]:
    p, t, m = summary.color_primaries, summary.color_transfer, summary.color_matrix
    odd = []
    if p == "bt2020" and t in _SDR_TRANSFERS:
        odd.append(
            f"BT.2020 primaries with the SDR {t} transfer (expected bt2020-10/12, "
            "smpte2084 or arib-std-b67)"
        )
    if t in _HDR_TRANSFERS and p not in (UNKNOWN, "bt2020"):
        odd.append(f"an HDR transfer ({t}) with {p} primaries")
    if t in _HDR_TRANSFERS and _bit_depth(summary.pix_fmt) == 8:
        odd.append(f"an HDR transfer ({t}) in an 8-bit pixel format")
    if m in _BT2020_MATRICES and p not in (UNKNOWN, "bt2020"):
        odd.append(f"a BT.2020 matrix with {p} primaries")
    if p == "bt2020" and m not in (UNKNOWN, *_BT2020_MATRICES, "ictcp"):
        odd.append(f"BT.2020 primaries with the {m} matrix")
    return odd


def _bit_depth(pix_fmt: str) -> int:
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


# --- timing and geometry --------------------------------------------------------------------


@dataclass(frozen=True)
class IdetCounts:
    """Frames idet's single-frame detection classified, over the frames it looked at."""

    tff: int
    bff: int
    progressive: int
    undetermined: int = 0

    @property
    def total(self) -> int:
        return self.tff + self.bff + self.progressive + self.undetermined


@dataclass(frozen=True)
class _Timing:
    vfr: bool
    irregular: int
    intervals: int
    min_interval_s: float
    max_interval_s: float
    mean_rate: float
    interlaced: bool
    field_order: str
    idet: IdetCounts | None


def timing(source: str | StreamSummary) -> list[Finding]:
    """Variable frame rate (from the packet timestamps), interlacing (idet over the first
    `IDET_FRAMES` frames, and the stream's field order), rotation, non-square pixels and
    odd dimensions, each saying what the pipeline does about it."""
    summary = _summary(source)
    return _timing_findings(summary, _timing_facts(summary, _idet_counts(summary)))


def _timing_facts(summary: StreamSummary, idet: IdetCounts | None) -> _Timing:
    """The timing facts, with idet's interlace counts (None: idet did not run)."""
    deltas = _deltas(summary.video_pts)
    typical = statistics.median_low(deltas) if deltas else 0
    # Rounding: 1.5 ticks of this time base, or 1.5 ms (timestamps that passed through a
    # millisecond time base, e.g. Matroska), or 1 % of the interval.
    tolerance = max(1.5, float(Fraction(3, 2000) / summary.time_base), 0.01 * typical)
    irregular = sum(1 for d in deltas if abs(d - typical) > tolerance)
    vfr = irregular >= 2 and irregular >= VFR_MIN_IRREGULAR_FRACTION * len(deltas)
    positive = [d for d in deltas if d > 0]
    span = (summary.video_pts[-1] - summary.video_pts[0]) if deltas else 0
    mean_rate = float(len(deltas) / (span * summary.time_base)) if span else 0.0

    interlaced, order = interlace_decision(summary.field_order, idet)
    return _Timing(
        vfr=vfr,
        irregular=irregular,
        intervals=len(deltas),
        min_interval_s=float(min(positive) * summary.time_base) if positive else 0.0,
        max_interval_s=float(max(positive) * summary.time_base) if positive else 0.0,
        mean_rate=mean_rate,
        interlaced=interlaced,
        field_order=order,
        idet=idet,
    )


def _idet_counts(summary: StreamSummary, timeout_s: float | None = None
                 ) -> IdetCounts | None:
    return _idet(summary, timeout_s) if "idet" in ffmpeg_filters() else None


def _idet(summary: StreamSummary, timeout_s: float | None = None) -> IdetCounts | None:
    """idet's single-frame counts over the first `IDET_FRAMES` frames."""
    with tempfile.TemporaryDirectory(prefix="idet-") as tmp:
        meta = os.path.join(tmp, "idet.meta")
        try:
            ffmpeg.run(
                ffmpeg.ffmpeg_argv(
                    "-noautorotate",
                    *SOURCE_INPUT_OPTIONS,
                    "-i",
                    summary.path,
                    "-map",
                    f"0:{summary.video_index}",
                    "-frames:v",
                    str(IDET_FRAMES),
                    "-vf",
                    _idet_chain(meta),
                    "-f",
                    "null",
                    "-",
                ),
                timeout_s=timeout_s,
            )
        except ToolFailed as exc:
            log.info("%s: interlace detection failed: %s", summary.path, exc)
            return None
        return _idet_from(_read_metadata(meta))


def _idet_from(frames: Sequence[tuple[float, dict[str, str]]]) -> IdetCounts | None:
    """The counts in idet's metadata print file (None when it has none)."""
    if not frames:
        return None
    last = frames[-1][1]  # the counts are cumulative: the last frame has the totals
    counts = [
        _meta_float(last, f"lavfi.idet.single.{key}")
        for key in ("tff", "bff", "progressive", "undetermined")
    ]
    if any(c is None for c in counts):
        return None
    return IdetCounts(*(int(c) for c in counts))


def interlace_decision(field_order: str, idet: IdetCounts | None) -> tuple[bool, str]:
    """(interlaced, field order) from the stream's flag and idet's counts.

    idet alone is easily fooled by synthetic pictures (sharp horizontal edges moving
    vertically read as combing, in both field orders at once), so content counts as
    interlaced only on strong, consistent evidence: one field order in at least half the
    frames and at least 4 times as often as the other order and as progressive. A stream
    flagged interlaced stays interlaced unless idet finds it clearly progressive (at
    least half the frames, 4 times more than interlaced ones). idet's field order wins
    when it is sure of it; otherwise the flag's is kept.
    """
    flagged = field_order in _INTERLACED_ORDERS
    if idet is None or idet.total == 0:
        return flagged, field_order
    dominant = max(idet.tff, idet.bff)
    strong = (
        dominant >= 0.5 * idet.total
        and dominant >= 4 * min(idet.tff, idet.bff)
        and dominant >= 4 * idet.progressive
    )
    if strong:
        return True, "tt" if idet.tff > idet.bff else "bb"
    progressive = idet.progressive >= 0.5 * idet.total and idet.progressive >= 4 * (
        idet.tff + idet.bff
    )
    if flagged and not progressive:
        return True, field_order
    return False, "progressive"


def _timing_findings(summary: StreamSummary, facts: _Timing) -> list[Finding]:
    findings = []
    if facts.vfr:
        findings.append(
            Finding(
                WARNING,
                "vfr",
                f"The frame rate varies: frame intervals range from "
                f"{1000 * facts.min_interval_s:.1f} ms to {1000 * facts.max_interval_s:.1f} ms "
                f"({facts.irregular} of {facts.intervals} differ from the typical one; "
                f"{facts.mean_rate:.3f} fps on average).",
                "The pipeline normalises it to a constant frame rate, duplicating or dropping "
                "frames; motion may judder where the rate changed.",
            )
        )
    if facts.interlaced:
        how = (
            f"idet: {facts.idet.tff} top-field-first, {facts.idet.bff} bottom-field-first, "
            f"{facts.idet.progressive} progressive of {facts.idet.total} frames; stream "
            f"flag {summary.field_order}"
            if facts.idet
            else f"stream flag {summary.field_order}"
        )
        findings.append(
            Finding(
                WARNING,
                "interlaced",
                f"The picture is interlaced, field order {facts.field_order} ({how}).",
                "The pipeline deinterlaces it; deinterlacing costs some vertical detail, so "
                "a progressive master gives a better result.",
            )
        )
    elif summary.field_order in _INTERLACED_ORDERS:
        findings.append(
            Finding(
                INFO,
                "interlace_flag_only",
                f"The stream is flagged interlaced ({summary.field_order}) but its pictures "
                "look progressive.",
                "It is treated as progressive (not deinterlaced).",
            )
        )
    if summary.rotation_deg:
        w, h = summary.width, summary.height
        if summary.rotation_deg in (90, 270):
            w, h = h, w
        findings.append(
            Finding(
                INFO,
                "rotated",
                f"The video is stored rotated: it displays turned {summary.rotation_deg}° "
                "clockwise.",
                f"The pipeline rotates the picture, so the renditions are {w}x{h}-shaped and "
                "play upright everywhere.",
            )
        )
    sar = summary.sample_aspect_ratio
    if sar != 1:
        display_w = round(summary.width * sar)
        findings.append(
            Finding(
                INFO,
                "non_square_pixels",
                f"The pixels are not square (sample aspect ratio {sar.numerator}:"
                f"{sar.denominator}): {summary.width}x{summary.height} displays as "
                f"{display_w}x{summary.height}.",
                "The pipeline scales to square pixels, keeping the display aspect ratio.",
            )
        )
    if summary.width % 2 or summary.height % 2:
        findings.append(
            Finding(
                INFO,
                "odd_dimensions",
                f"The frame size {summary.width}x{summary.height} is odd.",
                "The pipeline rounds the size to even numbers (4:2:0 needs them).",
            )
        )
    return findings


# --- everything ---------------------------------------------------------------------------


def inspect_file(path: str, *, timeout_s: float | None = None,
                 analyse: bool = False) -> tuple[list[Finding], SourceFacts]:
    """Run every check on a local file: findings (most severe first) and the facts.

    The source is demuxed once (PyAV) and decoded once (FFmpeg, with the black, frozen
    and silence detectors and interlace detection in the same pass, and with `analyse`
    the complexity analysis encode that per-title planning uses, `media.complexity`).
    When the decode check finds it fatal, the other checks are not run (the title will
    not be encoded) and the facts are what the demux pass alone can tell.
    """
    box_problem = _isobmff_truncation(path)
    try:
        summary = summarize(path)
    except MediaError as exc:
        return [_open_failure(exc, box_problem)], SourceFacts()
    try:
        bin_frames = complexity.bin_frames_for(
            float(summary.frame_interval_ticks * summary.time_base))
        result = _analysed_decode_pass(summary, bin_frames if analyse else 0, timeout_s)
    except ToolFailed as exc:
        _raise_if_timed_out(exc, timeout_s)
        return [_undecodable(exc)], _facts(summary, None)
    findings, _ = _decode_findings(summary, result, box_problem, _file_size(path))
    if any(f.severity == FATAL for f in findings):
        return _ordered(findings), _facts(summary, None)

    missing = [f for f in ("blackdetect", "freezedetect") if f not in result.ran_video_filters]
    if missing:
        findings.append(_skipped("Black and frozen video", missing))
    findings += _black_frozen_findings(result)
    findings += _gap_findings(summary)
    if summary.audio and not result.ran_audio_filters:
        findings.append(_skipped("Audio silence", ["silencedetect"]))
    findings += _silence_findings(summary, result)
    findings += av_sync(summary)
    findings += colour(summary)
    timing_facts = _timing_facts(summary, result.idet)
    findings += _timing_findings(summary, timing_facts)
    facts = _facts(summary, timing_facts)
    if result.analysis_bytes:
        facts = dataclasses.replace(
            facts, complexity_bins=complexity.binned(result.analysis_bytes, bin_frames),
            complexity_bin_frames=bin_frames)
    return _ordered(findings), facts


def _analysed_decode_pass(summary: StreamSummary, analysis_bin: int,
                          timeout_s: float | None) -> _Pass:
    """The decode pass, with interlace detection and, where asked, the complexity
    analysis. Should the pass fail with them, it runs again without, and idet in a process
    of its own: they only inform, and a source must not be refused (or be called
    undecodable) for their sake."""
    try:
        return _decode_pass(summary, video_detect=True, audio_detect=True,
                            analysis_bin=analysis_bin, idet=True, timeout_s=timeout_s)
    except ToolFailed as exc:
        if exc.timed_out:
            raise
        log.warning("%s: the decode pass failed (%s); decoding again without interlace "
                    "detection%s", summary.path, exc,
                    " and the complexity analysis" if analysis_bin else "")
    result = _decode_pass(summary, video_detect=True, audio_detect=True, timeout_s=timeout_s)
    return dataclasses.replace(result, idet=_idet_counts(summary, timeout_s))


def _facts(summary: StreamSummary, timing_facts: _Timing | None) -> SourceFacts:
    col = colour_facts(summary)
    audio = summary.audio[0] if summary.audio else None
    return SourceFacts(
        variable_frame_rate=timing_facts.vfr if timing_facts else False,
        interlaced=(
            timing_facts.interlaced if timing_facts else summary.field_order in _INTERLACED_ORDERS
        ),
        field_order=timing_facts.field_order if timing_facts else summary.field_order,
        rotation_deg=summary.rotation_deg,
        sample_aspect_ratio=summary.sample_aspect_ratio,
        hdr=col.hdr,
        color_primaries=col.primaries,
        color_transfer=col.transfer,
        color_matrix=col.matrix,
        color_range=col.range,
        audio_offset_s=audio.start_s - summary.video_start_s if audio else 0.0,
        duration_mismatch_s=audio.duration_s - summary.video_duration_s if audio else 0.0,
    )


_SEVERITY_ORDER = {FATAL: 0, WARNING: 1, INFO: 2}


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            _SEVERITY_ORDER.get(f.severity, 3),
            f.start_s if f.start_s is not None else -1.0,
        ),
    )
