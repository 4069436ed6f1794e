"""Deep inspection of a local source before compute is spent on it: findings and facts.

`media.inspect.probe.inspect_source` answers "can this become a title at all?" from a few decoded
frames. This package looks at the whole source and answers two further questions:

* what is wrong with it, as `Finding`s a person can act on: fatal ones (the title should
  not be encoded: the file is truncated or does not decode), warnings (it will encode, but
  the result may disappoint: corrupt frames, black or frozen stretches, audio dropouts,
  variable frame rate, interlacing, odd colour tags) and info (noted, handled);
* what the encoder must know to treat it right, as one `SourceFacts`: whether to
  normalise the frame rate, deinterlace, rotate, scale to square pixels, tone-map HDR,
  which colour space to assume, and how the audio lines up with the video.

Every check is a plain function with no Beam in it. The ones that need timestamps work
from one PyAV demux pass over the packets (`summarize`, no decoding: fast even for long
titles); the ones that need pictures or samples run the FFmpeg binary (`media.core.ffmpeg`)
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
    vfr, timestamp_gaps, interlaced    warning (gaps: fatal over 10 s)    timing
    interlace_flag_only, rotated, non_square_pixels,
    odd_dimensions, timestamp_jitter                     info       timing
    check_skipped (this FFmpeg build lacks a filter)     info       any
"""

from __future__ import annotations

import dataclasses
import logging

from media.core.errors import MediaError, ToolFailed
from media.inspect import complexity
from media.inspect.codepoints import _INTERLACED_ORDERS
from media.inspect.colour_tags import colour, colour_facts
from media.inspect.decode_pass import (
    IdetCounts,
    _decode_pass,
    _Pass,
    ffmpeg_encoders,
    ffmpeg_filters,
)
from media.inspect.decoding import (
    _decode_findings,
    _file_size,
    _isobmff_truncation,
    _open_failure,
    _raise_if_timed_out,
    _undecodable,
    decodability,
)
from media.inspect.demux import summarize
from media.inspect.frame_timing import (
    _idet_counts,
    _Timing,
    _timing_facts,
    _timing_findings,
    interlace_decision,
    timing,
)
from media.inspect.results import (
    FATAL,
    INFO,
    WARNING,
    AudioSummary,
    Colour,
    DecodeStats,
    Finding,
    SourceFacts,
    StreamSummary,
    _skipped,
)
from media.inspect.stretches import (
    _black_frozen_findings,
    _gap_findings,
    _silence_findings,
    audio_dropouts,
    black_and_frozen,
)
from media.inspect.sync import av_sync

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

log = logging.getLogger(__name__)


# --- everything ---------------------------------------------------------------------------


def inspect_file(path: str, *, timeout_s: float | None = None,
                 analyse: bool = False) -> tuple[list[Finding], SourceFacts]:
    """Run every check on a local file: findings (most severe first) and the facts.

    The source is demuxed once (PyAV) and decoded once (FFmpeg, with the black, frozen
    and silence detectors and interlace detection in the same pass, and with `analyse`
    the complexity analysis encode that per-title planning uses, `media.inspect.complexity`).
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
        frame_rate=timing_facts.nominal_rate if timing_facts else None,
        video_end_s=summary.video_end_s if timing_facts else 0.0,
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
