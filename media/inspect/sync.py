"""A/V sync: where the audio starts and ends against the video."""

from __future__ import annotations

from media.inspect.demux import _summary
from media.inspect.results import INFO, WARNING, Finding, StreamSummary
from media.inspect.thresholds import AV_OFFSET_NOTE_S, AV_OFFSET_WARN_S, DURATION_MISMATCH_S

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
