"""Assemble a rendition from its chunks without re-encoding (design invariant 2).

The encoded chunks are joined with FFmpeg's concat demuxer and written, by stream copy,
as one fragmented MP4 with a fragment at each IDR frame; `media.package.cmaf` cuts that into an
init segment and one media segment per grid segment. The result is checked against the
grid: as many segments as planned, each starting with a sync sample at the planned time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.core import ffmpeg
from media.core.errors import MediaError
from media.package.cmaf import split_fragmented_file
from media.package.isobmff import FragmentInfo, InitInfo, read_fragment, read_init

FRAGMENTED_FLAGS = "+frag_keyframe+empty_moov+default_base_moof+cmaf"


@dataclass(frozen=True)
class AssembledTrack:
    """A rendition cut into CMAF segments. Its segments are read one at a time from the
    joined file in `scratch`, which must outlive their use."""

    init: bytes
    init_info: InitInfo
    segments: Sequence[bytes]
    timing: list[FragmentInfo]


def concat_script(chunk_paths: Sequence[str], durations_s: Sequence[Fraction]) -> str:
    """An ffconcat script; exact durations keep each chunk's offset on the frame grid."""
    lines = ["ffconcat version 1.0"]
    for path, duration in zip(chunk_paths, durations_s, strict=True):
        lines.append(f"file {_quote(path)}")
        lines.append(f"duration {float(duration):.9f}")
    return "\n".join(lines) + "\n"


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def concat_argv(script_path: str, out_path: str) -> list[str]:
    return ["-f", "concat", "-safe", "0", "-i", script_path, "-map", "0:v:0", "-c", "copy",
            "-f", "mp4", "-movflags", FRAGMENTED_FLAGS, out_path]


def assemble_video(chunk_paths: Sequence[str], durations_s: Sequence[Fraction],
                   segment_frames: int, frame_rate: Fraction, scratch: str,
                   timeout_s: float | None = None) -> AssembledTrack:
    """Join chunks into CMAF segments of `segment_frames` frames each (the last may be short)."""
    script = os.path.join(scratch, "chunks.ffconcat")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(concat_script(chunk_paths, durations_s))
    joined = os.path.join(scratch, "joined.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(*concat_argv(script, joined)), timeout_s=timeout_s)
    split = split_fragmented_file(joined)
    init = read_init(split.init)
    timing = [read_fragment(seg, init) for seg in split.segments]
    check_grid(timing, init.timescale, segment_frames, frame_rate,
               total_frames=round(sum(durations_s) * frame_rate))
    return AssembledTrack(split.init, init, split.segments, timing)


def check_grid(timing: Sequence[FragmentInfo], timescale: int, segment_frames: int,
               frame_rate: Fraction, total_frames: int) -> None:
    """Fail loudly unless segment k starts with a sync sample at k × segment duration."""
    expected = -(-total_frames // segment_frames)
    if len(timing) != expected:
        raise MediaError(f"assembled {len(timing)} segments; the grid has {expected}")
    for k, frag in enumerate(timing):
        planned = Fraction(k * segment_frames, 1) / frame_rate * timescale
        if not frag.first_sample_is_sync:
            raise MediaError(f"segment {k + 1} does not start with a sync sample")
        if abs(frag.earliest_presentation_ticks - planned) > timescale / frame_rate / 2:
            raise MediaError(
                f"segment {k + 1} starts at {frag.earliest_presentation_ticks / timescale:.4f} s;"
                f" the grid says {float(planned / timescale):.4f} s"
            )
