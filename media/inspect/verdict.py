"""The inspection's verdict from one demux summary and one decode pass: every check's
findings, most severe first, and the facts. A whole-file inspection (`inspect_file`) and
the span-merged one (`media.inspect.spans`) both end here, so they judge alike."""

from __future__ import annotations

import dataclasses
import logging

from media.core.errors import ToolFailed
from media.inspect import complexity, shots
from media.inspect.codepoints import _INTERLACED_ORDERS
from media.inspect.colour_tags import colour, colour_facts
from media.inspect.decode_pass import Window, _decode_pass, _Pass
from media.inspect.decoding import _decode_findings
from media.inspect.frame_timing import _idet_counts, _Timing, _timing_facts, _timing_findings
from media.inspect.results import (
    FATAL,
    INFO,
    WARNING,
    Finding,
    SourceFacts,
    StreamSummary,
    _skipped,
)
from media.inspect.stretches import _black_frozen_findings, _gap_findings, _silence_findings
from media.inspect.sync import av_sync

log = logging.getLogger(__name__)


def verdict(summary: StreamSummary, result: _Pass, box_problem: str, size: int,
            bin_frames: int) -> tuple[list[Finding], SourceFacts]:
    """Findings (ordered) and facts of a source whose packets `summary` and whose decode
    `result` describe. When the decode check finds it fatal, the other checks are not run
    (the title will not be encoded) and the facts are what the demux pass alone can tell."""
    findings, _ = _decode_findings(summary, result, box_problem, size)
    if any(f.severity == FATAL for f in findings):
        return ordered(findings), facts_of(summary, None)

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
    facts = facts_of(summary, timing_facts)
    if result.analysis_bytes:
        facts = dataclasses.replace(
            facts, complexity_bins=complexity.binned(result.analysis_bytes, bin_frames),
            complexity_bin_frames=bin_frames)
    if result.scene_cuts is not None:
        facts = dataclasses.replace(facts, shot_cuts_s=shots.shot_cuts(
            result.scene_cuts, summary.video_start_s - summary.start_s,
            float(summary.frame_interval_ticks * summary.time_base)))
    return ordered(findings), facts


def analysed_decode_pass(summary: StreamSummary, analysis_bin: int, timeout_s: float | None,
                         *, idet: bool = True, window: Window | None = None) -> _Pass:
    """The decode pass, with interlace detection (`idet`) and, where asked, the complexity
    analysis. Should the pass fail with them, it runs again without, and idet in a process
    of its own: they only inform, and a source must not be refused (or be called
    undecodable) for their sake."""
    try:
        return _decode_pass(summary, video_detect=True, audio_detect=True,
                            analysis_bin=analysis_bin, idet=idet, timeout_s=timeout_s,
                            window=window)
    except ToolFailed as exc:
        if exc.timed_out:
            raise
        log.warning("%s: the decode pass failed (%s); decoding again without interlace "
                    "detection%s", summary.path, exc,
                    " and the complexity analysis" if analysis_bin else "")
    result = _decode_pass(summary, video_detect=True, audio_detect=True, timeout_s=timeout_s,
                          window=window)
    idet_counts = _idet_counts(summary, timeout_s) if idet and window is None else None
    return dataclasses.replace(result, idet=idet_counts)


def facts_of(summary: StreamSummary, timing_facts: _Timing | None) -> SourceFacts:
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
        frame_rate=timing_facts.nominal_rate if timing_facts else None,
        video_end_s=summary.video_end_s if timing_facts else 0.0,
    )


_SEVERITY_ORDER = {FATAL: 0, WARNING: 1, INFO: 2}


def ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            _SEVERITY_ORDER.get(f.severity, 3),
            f.start_s if f.start_s is not None else -1.0,
        ),
    )
