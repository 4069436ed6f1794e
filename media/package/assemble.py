"""Assemble a rendition from its chunks without re-encoding (design invariant 2).

Each chunk is cut into its final CMAF segments where it was encoded (`segment_chunk`:
the encode is a fragmented MP4, its fragments numbered and timed on the title's
timeline), so assembling a rendition reads only its chunks' records
(`check_track_records`). The chunks' init segments must agree (`init_key`); x264 makes
them agree with `stitchable` (see `media.encode.encoders`).

A chunk's segments are checked against the grid where they are cut (`check_grid`: as
many segments as planned, each starting with a sync sample at the planned time), and the
track's segment records again where the rendition is assembled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.core import ffmpeg
from media.core.errors import MediaError
from media.core.types import Segment, even_bounds
from media.package.cmaf import (
    FRAGMENTED_FLAGS,
    is_fragmented,
    placed_segment,
    sample_entry_key,
    split_fragmented_mp4,
)
from media.package.isobmff import FragmentInfo, read_fragment, read_init


@dataclass(frozen=True)
class ChunkSegments:
    """One encoded chunk cut into its final CMAF media segments, placed on the title's
    timeline (`tfdt` from the chunk's start, `mfhd` numbered in the track), with the init
    segment the chunk's encode would have (`init_key`: what the chunks of one rendition
    must share to play from one init)."""

    init: bytes
    init_key: str
    segments: list[bytes]
    timing: list[FragmentInfo]
    first_number: int
    """Number of the chunk's first segment in its track (1-based)."""


def fragment_argv(chunk_path: str, out_path: str) -> list[str]:
    """Stream copy of an encoded chunk into a fragmented MP4, a fragment per IDR frame."""
    return ["-i", chunk_path, "-map", "0:v:0", "-c", "copy", "-f", "mp4",
            "-movflags", FRAGMENTED_FLAGS, out_path]


def segment_chunk(chunk_path: str, start_frame: int, frame_count: int, segment_frames: int,
                  frame_rate: Fraction, scratch: str, timeout_s: float | None = None,
                  bounds: Sequence[int] | None = None, first_number: int | None = None
                  ) -> ChunkSegments:
    """Cut one encoded chunk (whole segments of the grid from `start_frame`) into its final
    CMAF segments, by stream copy: numbered and timed on the title's timeline, checked
    against the grid (count, a sync sample first, each at its planned time). Its segments
    are every `segment_frames` from `start_frame`, or, on a grid cut at shot changes,
    start at `bounds` (title frames, then its end; the first numbered `first_number`,
    0-based).

    A chunk encoded as a fragmented MP4 (as `media.encode.chunk` writes them) is cut as it
    is, in this process; another MP4 is first stream-copied into one (an FFmpeg process)."""
    if bounds is None:
        if start_frame % segment_frames:
            raise MediaError(f"a chunk starts at frame {start_frame}, off the segment grid")
        bounds = even_bounds(start_frame, start_frame + frame_count, segment_frames)
        first_number = start_frame // segment_frames
    elif bounds[0] != start_frame or bounds[-1] != start_frame + frame_count:
        raise MediaError(f"a chunk of frames {start_frame}-{start_frame + frame_count} was "
                         f"given segments of frames {bounds[0]}-{bounds[-1]}")
    fragmented = chunk_path
    if not is_fragmented(chunk_path):
        fragmented = os.path.join(scratch, "chunk-fragmented.mp4")
        ffmpeg.run(ffmpeg.ffmpeg_argv(*fragment_argv(chunk_path, fragmented)),
                   timeout_s=timeout_s)
    with open(fragmented, "rb") as handle:
        split = split_fragmented_mp4(handle.read())
    init = read_init(split.init)
    start_ticks = start_frame * init.timescale / frame_rate
    if start_ticks.denominator != 1:
        raise MediaError(f"frame {start_frame} is not a whole tick of {init.timescale} Hz")
    number = (first_number or 0) + 1
    segments = [placed_segment(seg, number + k, int(start_ticks))
                for k, seg in enumerate(split.segments)]
    timing = [read_fragment(seg, init) for seg in segments]
    check_grid(timing, init.timescale, segment_frames, frame_rate, total_frames=frame_count,
               first_frame=start_frame, bounds=bounds, first_number=number - 1)
    return ChunkSegments(split.init, sample_entry_key(split.init), segments, timing, number)


def check_grid(timing: Sequence[FragmentInfo], timescale: int, segment_frames: int,
               frame_rate: Fraction, total_frames: int, first_frame: int = 0,
               bounds: Sequence[int] | None = None, first_number: int | None = None) -> None:
    """Fail loudly unless segment k starts with a sync sample at k × segment duration
    (counted from `first_frame`, where a chunk's segments are checked on their own), or
    at `bounds[k]` (title frames) on a grid cut at shot changes."""
    if bounds is None:
        bounds = even_bounds(first_frame, first_frame + total_frames, segment_frames)
        first_number = first_frame // segment_frames
    expected = len(bounds) - 1
    if len(timing) != expected:
        raise MediaError(f"assembled {len(timing)} segments; the grid has {expected}")
    for k, frag in enumerate(timing):
        planned = Fraction(bounds[k], 1) / frame_rate * timescale
        number = (first_number or 0) + k + 1
        if not frag.first_sample_is_sync:
            raise MediaError(f"segment {number} does not start with a sync sample")
        if abs(frag.earliest_presentation_ticks - planned) > timescale / frame_rate / 2:
            raise MediaError(
                f"segment {number} starts at {frag.earliest_presentation_ticks / timescale:.4f} s;"
                f" the grid says {float(planned / timescale):.4f} s"
            )


def check_track_records(segments: Sequence[Segment], timescale: int, segment_frames: int,
                        frame_rate: Fraction, total_frames: int,
                        bounds: Sequence[int] | None = None) -> None:
    """`check_grid` from the records of a track's segments, written by its chunks (no
    media read): as many as the grid has, numbered 1..N, each starting with a sync
    sample, segment k at k × segment duration (at `bounds[k]`, title frames, on a grid
    cut at shot changes), the last ending with the title."""
    if bounds is None:
        bounds = even_bounds(0, total_frames, segment_frames)
    expected = len(bounds) - 1
    if len(segments) != expected:
        raise MediaError(f"the chunks wrote {len(segments)} segments; the grid has {expected}")
    tick = Fraction(timescale) / frame_rate
    for k, segment in enumerate(segments):
        if segment.number != k + 1:
            raise MediaError(f"segment {k + 1} of the track is numbered {segment.number}")
        if not segment.sync_first:
            raise MediaError(f"segment {k + 1} does not start with a sync sample")
        planned = bounds[k] * tick
        if abs(segment.start_ticks - planned) > tick / 2:
            raise MediaError(
                f"segment {k + 1} starts at {segment.start_ticks / timescale:.4f} s;"
                f" the grid says {float(planned / timescale):.4f} s")
    end = segments[-1].start_ticks + segments[-1].duration_ticks
    if abs(end - total_frames * tick) > tick / 2:
        raise MediaError(f"the track ends at {end / timescale:.4f} s; the title at "
                         f"{float(total_frames / frame_rate):.4f} s")
