"""Timing and geometry: constant or variable frame rate, gaps in the timestamps, the
frames the pipeline delivers, interlacing (declared, and detected by idet), rotation,
pixel aspect and odd dimensions.

The verdict on timing is made here once, and every encode, trial and VMAF reference
follows it (`media.encode.commands.select_chunk`): a title is delivered at one constant
rate on the source's own timeline, one frame per slot from its first frame to the end of
its last. A constant-rate stream with gaps in its timestamps (a master concatenated or
looped by stream copy, whose audio ran a little longer than its video) keeps its nominal
rate, which the gaps do not lower, and the frame before each gap is held across it, so
the audio, which keeps that timeline, stays in sync; a variable-rate one is resampled to
a standard rate (`media.inspect.probe.constant_rate`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from media.core import ffmpeg
from media.core.errors import ToolFailed
from media.core.types import SourceInfo
from media.inspect.codepoints import _INTERLACED_ORDERS
from media.inspect.decode_pass import (
    IDET_FRAMES,
    IdetCounts,
    _idet_chain,
    _idet_from,
    _read_metadata,
    ffmpeg_filters,
)
from media.inspect.demux import _summary
from media.inspect.probe import SOURCE_INPUT_OPTIONS, STANDARD_RATES
from media.inspect.results import FATAL, INFO, WARNING, Finding, StreamSummary
from media.inspect.thresholds import VFR_MIN_IRREGULAR_FRACTION
from media.inspect.timestamps import STEP, Timestamps

GAPS_NAMED = 6
"""Gaps a finding names by time; it counts the rest."""
MAX_GAP_S = 10.0
"""A gap longer than this is a hole, not a join: the title is refused (holding one frame
for longer would publish a still where the source has lost its pictures)."""
MAX_WANDER = 0.25
"""A steady stream's frames lie within a quarter frame of its constant rate (jitter,
rounding): `select_chunk` rounds each to its own slot."""
STEADY_MAX_OFF_STEP = 0.10
"""A stream is steady (a constant rate, with gaps or jitter) while at most 10 % of its
intervals are other than one step; past that its rate varies."""
RATE_SNAP = Fraction(1, 1000)
"""A measured rate within 0.1 % of a standard one (23.976, 25, 29.97, ...) is that one."""

log = logging.getLogger(__name__)


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
    nominal_rate: Fraction | None = None
    """The rate of the regular frame intervals (None: fewer than two frames)."""
    gaps: tuple[tuple[float, float], ...] = ()
    """(start, end) of each hole of more than `STEP` of a frame in a steady stream's
    timestamps, seconds from the start of the source."""
    jitter_s: float = 0.0
    """How far a steady stream's frames stray from its constant rate, beyond rounding."""
    unplaced: tuple[tuple[float, int], ...] = ()
    """(length in seconds, how many) of the gaps counted but not in `gaps`: a span-merged
    summary places a span's longest gaps only (`media.inspect.timestamps.MAX_SEGMENTS`)."""


def timing(source: str | StreamSummary) -> list[Finding]:
    """Variable frame rate (from the packet timestamps), interlacing (idet over the first
    `IDET_FRAMES` frames, and the stream's field order), rotation, non-square pixels and
    odd dimensions, each saying what the pipeline does about it."""
    summary = _summary(source)
    return _timing_findings(summary, _timing_facts(summary, _idet_counts(summary)))


def _timing_facts(summary: StreamSummary, idet: IdetCounts | None) -> _Timing:
    """The timing facts, with idet's interlace counts (None: idet did not run). They are
    read from the timestamps' summary (`media.inspect.timestamps`), whole-file or merged
    from inspection spans alike."""
    stamps = summary.timestamps
    intervals = max(0, stamps.count - 1)
    typical = stamps.typical
    # Rounding: 1.5 ticks of this time base, or 1.5 ms (timestamps that passed through a
    # millisecond time base, e.g. Matroska), or 1 % of the interval.
    tolerance = max(1.5, float(Fraction(3, 2000) / summary.time_base), 0.01 * typical)
    irregular = stamps.counted(lambda d: abs(d - typical) > tolerance)
    tb = summary.time_base
    pairs = _gap_pairs(stamps, typical)
    gaps = tuple(
        (float((a + typical) * tb) - summary.start_s, float(b * tb) - summary.start_s)
        for a, b in pairs)
    interval, wander = _steady_interval(stamps, typical)
    off_step = stamps.counted(lambda d: abs(d - typical) > STEP * typical)
    # Steady: few intervals other than one step (gaps, doubled frames), and every frame
    # of a run of steps near a constant rate (jitter, not drift).
    steady = (interval is not None and off_step <= STEADY_MAX_OFF_STEP * intervals
              and wander <= MAX_WANDER * interval)
    vfr = (irregular >= 2 and irregular >= VFR_MIN_IRREGULAR_FRACTION * intervals
           and not steady)
    span = (stamps.last - stamps.first) if intervals else 0
    mean_rate = float(intervals / (span * summary.time_base)) if span else 0.0

    interlaced, order = interlace_decision(summary.field_order, idet, summary.height)
    return _Timing(
        vfr=vfr,
        irregular=irregular,
        intervals=intervals,
        min_interval_s=float(stamps.min_positive * summary.time_base),
        max_interval_s=float(stamps.max_positive * summary.time_base),
        mean_rate=mean_rate,
        interlaced=interlaced,
        field_order=order,
        idet=idet,
        nominal_rate=_standard(1 / (interval * tb)) if interval else None,
        gaps=gaps if steady else (),
        jitter_s=float(wander * tb) if steady and wander > tolerance else 0.0,
        unplaced=_unplaced(stamps, typical, pairs, tb) if steady else (),
    )


def _unplaced(stamps: Timestamps, typical: int, pairs: list[tuple[int, int]], tb: Fraction
              ) -> tuple[tuple[float, int], ...]:
    """The gaps the intervals' counts hold beyond those placed (`pairs`)."""
    width = stamps.width
    placed = Counter((b - a) // width * width for a, b in pairs)
    left = stamps.counted(lambda d: d > (1 + STEP) * typical) - len(pairs)
    unplaced = []
    for value, n in stamps.intervals:
        extra = min(n - placed[value], left)
        if value + width // 2 > (1 + STEP) * typical and extra > 0:
            unplaced.append((float((value + width // 2 - typical) * tb), extra))
            left -= extra
    return tuple(unplaced)


def _gap_pairs(stamps: Timestamps, typical: int) -> list[tuple[int, int]]:
    """(before, after) of each interval longer than `STEP` past a step, in order."""
    pairs: list[tuple[int, int]] = []
    for prev, seg in itertools.pairwise((None, *stamps.segments)):
        if prev is not None and seg.first - prev.last > (1 + STEP) * typical:
            pairs.append((prev.last, seg.first))
        pairs += seg.gaps(typical)
    return pairs


def _steady_interval(stamps: Timestamps, typical: int) -> tuple[Fraction | None, float]:
    """The frame interval of the runs of steps (intervals within `STEP` of `typical`),
    fitted by least squares over all of them (exact for jittered or millisecond-rounded
    timestamps, where the mean of a few intervals is not), and the farthest any of their
    frames lies from its run's fitted line, in ticks (the farthest lie on the run's
    convex hulls). (None, 0) with no run of 3 frames."""
    runs = [r for r in stamps.segments if r.count >= 3 and r.steps(typical) is True]
    if not runs:
        return None, 0.0
    # Sums of (k - mean k)(p - mean p) and (k - mean k)^2 over each run, times 12, in
    # integers: a feature-length title has a few hundred thousand frames.
    num = sum(12 * r.sum_kpts - 6 * (r.count - 1) * r.sum_pts for r in runs)
    den = sum(r.count * (r.count ** 2 - 1) for r in runs)
    interval = Fraction(num, den)
    if interval <= 0:  # timestamps that do not advance
        return None, 0.0
    step = float(interval)
    wander = max(abs(p - r.sum_pts / r.count - step * (k - (r.count - 1) / 2))
                 for r in runs for k, p in (*r.upper, *r.lower))
    return interval, wander


def _standard(rate: Fraction) -> Fraction:
    """`rate`, snapped to the nearest standard rate within `RATE_SNAP`."""
    nearest = min(STANDARD_RATES, key=lambda r: abs(r - rate))
    if abs(nearest - rate) <= nearest * RATE_SNAP:
        return nearest
    return rate.limit_denominator(1001)


def on_timeline(info: SourceInfo, rate: Fraction | None, video_end_s: float) -> SourceInfo:
    """`info` delivered at `rate` on its own timeline: one frame per slot from its first
    frame (`video_start_s`) to the end of its last (`video_end_s`, source timeline), what
    `media.encode.commands.select_chunk` cuts. Unchanged where either is unknown.

    >>> info = SourceInfo("s.mp4", "s", "mov", "h264", 320, 180, Fraction(600000, 24133),
    ...                   1500, 0.0, "yuv420p")
    >>> looped = on_timeline(info, Fraction(25), 60.32)  # 11 joins of 30 ms
    >>> looped.frame_rate, looped.frame_count
    (Fraction(25, 1), 1508)
    """
    if not rate or video_end_s <= info.video_start_s:
        return info
    count = timeline_frames(video_end_s - info.video_start_s, rate)
    return dataclasses.replace(info, frame_rate=rate, frame_count=count)


def timeline_frames(span_s: float, rate: Fraction) -> int:
    """Slots of `rate` in a timeline `span_s` long (at least 1): to the microsecond, then
    half a frame up, so a span ending on a half frame (a gap of half frames) has the same
    count whichever way its floats fell."""
    return max(1, math.floor(Fraction(f"{span_s:.6f}") * rate + Fraction(1, 2)))


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


MIN_INTERLACED_LINES = 480
"""The shortest picture idet may call interlaced against the stream's flag: interlaced
video is 480 lines and up (480i, 576i, 1080i). On smaller pictures synthetic edges fool
it: 160x90 testsrc2, flagged progressive, read as 38 top-field-first of 50 frames."""


def interlace_decision(field_order: str, idet: IdetCounts | None,
                       height: int = MIN_INTERLACED_LINES) -> tuple[bool, str]:
    """(interlaced, field order) from the stream's flag and idet's counts.

    idet alone is easily fooled by synthetic pictures (sharp horizontal edges moving
    vertically read as combing, in both field orders at once), so content counts as
    interlaced only on strong, consistent evidence: one field order in at least half the
    frames and at least 4 times as often as the other order and as progressive. A stream
    flagged interlaced stays interlaced unless idet finds it clearly progressive (at
    least half the frames, 4 times more than interlaced ones). idet's field order wins
    when it is sure of it; otherwise the flag's is kept. A picture under
    `MIN_INTERLACED_LINES` is interlaced only where its flag says so.
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
    if strong and (flagged or height >= MIN_INTERLACED_LINES):
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
    if facts.gaps and not facts.vfr:
        findings.append(_gap_finding(summary, facts))
    if facts.jitter_s and facts.nominal_rate:
        findings.append(
            Finding(
                INFO,
                "timestamp_jitter",
                f"The video timestamps stray up to {1000 * facts.jitter_s:.1f} ms from a steady "
                f"{_fps(facts.nominal_rate)} fps.",
                "Each frame is taken at its place on the constant-rate grid; none is repeated "
                "or dropped for it.",
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


def _gap_finding(summary: StreamSummary, facts: _Timing) -> Finding:
    """The gaps in a constant-rate stream's timestamps, by time, and what is done."""
    gaps = facts.gaps
    lengths_ms = [1000 * (end - start) for start, end in gaps]
    lengths_ms += [1000 * length for length, n in facts.unplaced for _ in range(n)]
    count = len(lengths_ms)
    named = ", ".join(f"{start:.3f} s" for start, _ in gaps[:GAPS_NAMED])
    more = f" and {count - min(len(gaps), GAPS_NAMED)} more" if count > GAPS_NAMED else ""
    size = (f"{min(lengths_ms):.0f} ms" if round(min(lengths_ms)) == round(max(lengths_ms))
            else f"{min(lengths_ms):.0f}-{max(lengths_ms):.0f} ms")
    rate = facts.nominal_rate or Fraction(0)
    delivered = timeline_frames(summary.video_duration_s, rate)
    longest = max(gaps, key=lambda gap: gap[1] - gap[0])
    if longest[1] - longest[0] > MAX_GAP_S:
        return Finding(
            FATAL,
            "timestamp_gaps",
            f"The video stops for {longest[1] - longest[0]:.1f} s at {longest[0]:.3f} s: its "
            f"timestamps jump to {longest[1]:.3f} s ({count} gap(s) in all, at {named}"
            f"{more}).",
            f"A hole over {MAX_GAP_S:.0f} s is lost pictures, not a join; re-export the source "
            "from the editing tool, or cut it at the hole.",
            start_s=longest[0],
            end_s=longest[1],
        )
    return Finding(
        WARNING,
        "timestamp_gaps",
        f"The video timestamps have {count} gap(s) of {size} ({sum(lengths_ms):.0f} ms "
        f"in all), at {named}{more}: the frames average {facts.mean_rate:.3f} fps although "
        f"they are {_fps(rate)} fps apart.",
        f"The title is delivered at {_fps(rate)} fps on the source's own timeline, so "
        f"the audio stays in sync: the frame before each gap is held across it "
        f"({summary.video_frames} frames become {delivered}). A master joined or looped by "
        "stream copy has such gaps; re-export it if they are not intended.",
        start_s=gaps[0][0],
        end_s=gaps[-1][1],
    )


def _fps(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")
