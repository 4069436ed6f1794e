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
over a full decode. `inspect_file` runs them all on a local file and decodes the source
only once (interlace detection looks at the first 200 of the frames that pass decodes);
`media.inspect.spans` runs the same checks over spans of a source, each read by range,
and merges them into the same verdict (`media.inspect.verdict`), which is how the
pipeline inspects:

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

import logging

from media.core.errors import MediaError, ToolFailed
from media.inspect import complexity
from media.inspect.colour_tags import colour, colour_facts
from media.inspect.decode_pass import (
    IdetCounts,
    ffmpeg_encoders,
    ffmpeg_filters,
)
from media.inspect.decoding import (
    _file_size,
    _isobmff_truncation,
    _open_failure,
    _raise_if_timed_out,
    _undecodable,
    decodability,
)
from media.inspect.demux import summarize
from media.inspect.frame_timing import (
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
)
from media.inspect.stretches import (
    audio_dropouts,
    black_and_frozen,
)
from media.inspect.sync import av_sync
from media.inspect.verdict import analysed_decode_pass, facts_of, verdict

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
        result = analysed_decode_pass(summary, bin_frames if analyse else 0, timeout_s)
    except ToolFailed as exc:
        _raise_if_timed_out(exc, timeout_s)
        return [_undecodable(exc)], facts_of(summary, None)
    return verdict(summary, result, box_problem, _file_size(path), bin_frames)
