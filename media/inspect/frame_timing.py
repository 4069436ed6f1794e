"""Timing and geometry: constant or variable frame rate, interlacing (declared, and
detected by idet), rotation, pixel aspect and odd dimensions."""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
from dataclasses import dataclass
from fractions import Fraction

from media.core import ffmpeg
from media.core.errors import ToolFailed
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
from media.inspect.probe import SOURCE_INPUT_OPTIONS
from media.inspect.results import INFO, WARNING, Finding, StreamSummary, _deltas
from media.inspect.thresholds import VFR_MIN_IRREGULAR_FRACTION

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
