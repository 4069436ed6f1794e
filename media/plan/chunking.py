"""Plan the segment grid and the chunks of a title.

Every rendition shares one grid: segment k covers frames [k*S, (k+1)*S) with
S = round(segment_seconds × frame rate), so every segment boundary is a frame boundary
(4.004 s at 29.97 fps rather than a boundary between frames). A chunk is a run of
whole segments, so an encoder that puts an IDR frame every S frames from the start of
its chunk puts one at every segment boundary of the title.
"""

from __future__ import annotations

from fractions import Fraction

from media.core.errors import ConfigurationError
from media.core.types import ChunkSpan, SegmentGrid


def segment_frames(frame_rate: Fraction, segment_s: float) -> int:
    """Frames per segment: the segment duration rounded to whole frames (at least 1)."""
    if segment_s <= 0:
        raise ConfigurationError(f"segment duration must be positive, got {segment_s}")
    return max(1, round(Fraction(segment_s) * frame_rate))


def segment_grid(frame_rate: Fraction, segment_s: float, chunk_segments: int) -> SegmentGrid:
    """The title's grid, worked out once in planning and carried by the plan.

    >>> grid = segment_grid(Fraction(30000, 1001), 4.0, 3)
    >>> grid.segment_frames, grid.chunk_frames, grid.segment_s, grid.timescale
    (120, 360, Fraction(1001, 250), 90000)
    """
    if chunk_segments < 1:
        raise ConfigurationError("segments per chunk must be at least 1")
    return SegmentGrid(segment_frames(frame_rate, segment_s), frame_rate, chunk_segments)


def grid_chunks(frame_count: int, grid: SegmentGrid) -> list[ChunkSpan]:
    """The title's chunks on `grid` (`plan_chunks`)."""
    return plan_chunks(frame_count, grid.segment_frames, grid.chunk_segments)


def plan_chunks(frame_count: int, frames_per_segment: int,
                segments_per_chunk: int) -> list[ChunkSpan]:
    """Chunks of `segments_per_chunk` whole segments; the last may be shorter.

    >>> [(c.start_frame, c.frame_count) for c in plan_chunks(250, 100, 2)]
    [(0, 200), (200, 50)]
    """
    if frame_count < 1:
        raise ValueError("a title needs at least one frame")
    if frames_per_segment < 1 or segments_per_chunk < 1:
        raise ConfigurationError("segment frames and segments per chunk must be at least 1")
    step = frames_per_segment * segments_per_chunk
    return [
        ChunkSpan(index=i, start_frame=start, frame_count=min(step, frame_count - start))
        for i, start in enumerate(range(0, frame_count, step))
    ]


def segment_count(frame_count: int, frames_per_segment: int) -> int:
    return -(-frame_count // frames_per_segment)


def chunk_segment_count(chunk: ChunkSpan, frames_per_segment: int) -> int:
    return -(-chunk.frame_count // frames_per_segment)
