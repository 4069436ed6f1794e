"""Black, frozen and silent stretches, and gaps in the audio."""

from __future__ import annotations

from collections.abc import Iterable

from media.inspect.decode_pass import _decode_pass, _meta_float, _Pass, ffmpeg_filters
from media.inspect.demux import summarize
from media.inspect.results import WARNING, Finding, StreamSummary, _skipped
from media.inspect.thresholds import MIN_STRETCH_S

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
    result = _decode_pass(summary, video_detect=True, audio_detect=False, timeout_s=timeout_s,
                          find_shots=False)
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
    meta: Iterable[tuple[float, dict[str, str]]], start_key: str, end_key: str, stream_end_s: float,
    min_s: float = MIN_STRETCH_S, offset_s: float = 0.0,
) -> list[tuple[float, float]]:
    """(start, end) pairs from a metadata print, at least `min_s` long, less `offset_s`.
    A start with no end runs to the end of the stream (`stream_end_s`, not offset); a
    start followed by another start was a stretch too short to be ended by the filter
    (blackdetect marks every start). A frame that carries both a start and a later end
    is a whole stretch (freezedetect, where a frame is held over a timestamp gap: it
    finds the freeze only when the next, different, frame comes)."""
    stretches, start = [], None
    for _, values in meta:
        begin, finish = _meta_float(values, start_key), _meta_float(values, end_key)
        begin = None if begin is None else begin - offset_s
        finish = None if finish is None else finish - offset_s
        if start is None and begin is not None and finish is not None and finish > begin:
            stretches.append((begin, finish))
            continue
        if finish is not None and start is not None:
            stretches.append((start, finish))
            start = None
        if begin is not None:
            start = begin
    if start is not None and stream_end_s > start:
        stretches.append((start, stream_end_s))
    return [(s, e) for s, e in stretches if e - s >= min_s - 1e-6]


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
