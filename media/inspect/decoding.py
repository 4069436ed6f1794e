"""Whether the source decodes to its end: truncation, decode errors and missing frames."""

from __future__ import annotations

import os

from media.core.errors import MediaError, NoVideoStream, ToolFailed
from media.inspect.decode_pass import _decode_pass, _Pass
from media.inspect.demux import summarize
from media.inspect.results import FATAL, WARNING, DecodeStats, Finding, StreamSummary
from media.inspect.thresholds import (
    _REEXPORT_HINT,
    FATAL_ERROR_LINES_MIN,
    FATAL_ERROR_LINES_PER_FRAME,
    FATAL_MISSING_FRACTION,
    MAX_FIRST_ERRORS,
    TRUNCATION_TOLERANCE_FRACTION,
    TRUNCATION_TOLERANCE_S,
)
from media.package.boxes import truncation

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
    ISO BMFF): `media.package.boxes.truncation` of the file at `path`."""
    try:
        with open(path, "rb") as handle:
            return truncation(handle)
    except OSError:
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
    if summary.video_declared_frames > summary.video_frames + 1:
        return (
            f"the container indexes {summary.video_declared_frames} video frames but "
            f"only {summary.video_frames} are in the file"
        )
    return ""


def _decode_findings(
    summary: StreamSummary, result: _Pass, box_problem: str, size: int
) -> tuple[list[Finding], DecodeStats]:
    findings: list[Finding] = []
    expected = summary.video_frames
    problem = box_problem or _stream_truncation(summary)
    stats = DecodeStats(
        video_frames_expected=expected,
        video_frames_decoded=result.video_frames,
        audio_frames_decoded=sum(result.audio_frames.values()),
        decode_error_lines=result.errors,
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
