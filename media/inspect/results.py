"""What the inspection tells: findings and their severities, the facts the encoder
needs, and what the demux and decode passes summarise."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.inspect.codepoints import _HD_COLOUR
from media.inspect.timestamps import Timestamps

FATAL = "fatal"
WARNING = "warning"
INFO = "info"


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
    frame_rate: Fraction | None = None
    """The constant rate the title is delivered at: the stream's own (the mean of its
    regular frame intervals, snapped to a standard rate), which gaps in the timestamps do
    not lower; None when not measured (`media.inspect.frame_timing`)."""
    video_end_s: float = 0.0
    """End of the last video frame, source timeline (0: not measured): with `frame_rate`,
    how many frames the title is delivered with (`media.inspect.frame_timing.on_timeline`)."""
    complexity_bins: tuple[int, ...] = ()
    """Bytes of the complexity analysis encode per run of `complexity_bin_frames` decoded
    frames (about a second each; `media.inspect.complexity`); empty when not analysed."""
    complexity_bin_frames: int = 0
    shot_cuts_s: tuple[float, ...] | None = None
    """Where each shot but the first starts (seconds from the start, as findings' times:
    `media.inspect.shots`); None when not looked for."""


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
    """Presentation timestamps of the video packets, sorted, in `time_base` ticks (empty
    where `video_timestamps` summarises them)."""
    video_end_s: float
    """End of the last video frame, source timeline."""
    video_declared_end_s: float | None = None
    """End of the video stream as the container's index declares it."""
    video_declared_frames: int = 0
    """Frames the container's index declares, less those its edit list hides (0 when it
    keeps no count)."""
    audio: tuple[AudioSummary, ...] = ()
    demux_error: str = ""
    """The error that stopped the demux pass early, if any."""
    nominal_rate: Fraction | None = None
    """The rate the header declares (`media.inspect.demux.head_summary` only): what the
    title's timeline is cut into inspection spans by."""
    video_timestamps: Timestamps | None = None
    """The video timestamps summarised, where `video_pts` does not hold them (a summary
    merged from inspection spans, `media.inspect.spans`: its size does not grow with the
    title)."""

    @property
    def timestamps(self) -> Timestamps:
        """The video timestamps summarised (what the timing verdict reads)."""
        if self.video_timestamps is not None:
            return self.video_timestamps
        return Timestamps.of(self.video_pts, bounded=False)

    @property
    def video_frames(self) -> int:
        """Video packets with a timestamp."""
        if self.video_timestamps is not None:
            return self.video_timestamps.count
        return len(self.video_pts)

    @property
    def video_start_s(self) -> float:
        if self.video_timestamps is not None and self.video_timestamps.count:
            return float(self.video_timestamps.first * self.time_base)
        return float(self.video_pts[0] * self.time_base) if self.video_pts else self.start_s

    @property
    def video_duration_s(self) -> float:
        return max(0.0, self.video_end_s - self.video_start_s)

    @property
    def frame_interval_ticks(self) -> int:
        """The typical distance between frames (median interval), in ticks."""
        if self.video_timestamps is not None:
            return self.video_timestamps.typical
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


def _skipped(check: str, missing: Sequence[str]) -> Finding:
    return Finding(
        INFO,
        "check_skipped",
        f"{check} was not checked: this FFmpeg build lacks the {', '.join(missing)} filter(s)",
        "Use an FFmpeg build with these filters to have this checked.",
    )


def _deltas(values: Sequence[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(values)]
