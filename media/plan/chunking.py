"""Plan the segment grid and the chunks of a title.

Every rendition shares one grid of whole frames: S = round(segment_seconds × frame
rate) frames a segment (4.004 s at 29.97 fps rather than a boundary between frames).
An even grid cuts segment k at frames [k*S, (k+1)*S). A grid cut at shot changes
(`--segment_grid shots`, the default, where inspection found cuts) moves a boundary
onto a cut where one falls near it (`shot_aligned_starts`): no segment is longer than
S frames (HLS's target duration holds) or shorter than the floor (`--min_segment_seconds`;
the title's last too, where the title allows). A chunk is a run of whole segments (on a
shot grid it ends early on a cut, `shot_chunk_starts`), and its encoder puts an IDR
frame at the start of each, so an IDR lands on every cut the grid moved onto.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable, Sequence
from fractions import Fraction

from media.core.config import JobConfig
from media.core.errors import ConfigurationError
from media.core.types import ChunkSpan, SegmentGrid, SourceInfo


def segment_frames(frame_rate: Fraction, segment_s: float) -> int:
    """Frames per segment: the segment duration rounded to whole frames (at least 1)."""
    if segment_s <= 0:
        raise ConfigurationError(f"segment duration must be positive, got {segment_s}")
    return max(1, round(Fraction(segment_s) * frame_rate))


def segment_grid(frame_rate: Fraction, segment_s: float, chunk_segments: int,
                 frame_count: int = 0, cuts_s: Sequence[float] = (),
                 min_segment_s: float = 0.0) -> SegmentGrid:
    """The title's grid, worked out once in planning and carried by the plan: even, or
    cut at the shot changes `cuts_s` (seconds from the first frame) of a title of
    `frame_count` frames where one falls near it, no segment under `min_segment_s`
    (0: half a segment) but the last.

    >>> grid = segment_grid(Fraction(30000, 1001), 4.0, 3)
    >>> grid.segment_frames, grid.chunk_frames, grid.segment_s, grid.timescale
    (120, 360, Fraction(1001, 250), 90000)
    >>> segment_grid(Fraction(25), 4.0, 1, 300, cuts_s=[3.0, 8.2]).starts
    (0, 75, 140, 205)
    """
    if chunk_segments < 1:
        raise ConfigurationError("segments per chunk must be at least 1")
    frames = segment_frames(frame_rate, segment_s)
    if cuts_s and frame_count:
        floor = (max(1, round(Fraction(min_segment_s) * frame_rate)) if min_segment_s
                 else -(-frames // 2))
        cut_frames = [cut_frame(t, frame_rate) for t in cuts_s]
        aligned = shot_aligned_starts(frame_count, frames, cut_frames, floor)
        if aligned != list(range(0, frame_count, frames)):
            chunk_starts = shot_chunk_starts(aligned, set(cut_frames), chunk_segments)
            return SegmentGrid(frames, frame_rate, chunk_segments, starts=tuple(aligned),
                               chunk_starts=tuple(chunk_starts))
    return SegmentGrid(frames, frame_rate, chunk_segments)


def shot_chunk_starts(starts: Sequence[int], cut_frames: Collection[int],
                      chunk_segments: int) -> list[int]:
    """The number of each chunk's first segment: `chunk_segments` segments a chunk, but
    one ends early on a segment that starts on a cut in its second half, so that a
    chunk's encode (and its allocated quality) keeps to its shots.

    >>> shot_chunk_starts([0, 40, 70, 100, 125, 152, 180], {40, 100, 125, 180}, 3)
    [0, 3, 6]
    >>> shot_chunk_starts([0, 40, 70, 100, 125, 152, 180], {70, 152}, 3)
    [0, 2, 5]
    """
    firsts, first, count = [], 0, len(starts)
    while first < count:
        firsts.append(first)
        end = min(first + chunk_segments, count)
        if end < count and starts[end] not in cut_frames:
            for early in range(end - 1, first + max(1, (chunk_segments + 1) // 2) - 1, -1):
                if starts[early] in cut_frames:
                    end = early
                    break
        first = end
    return firsts


def cut_frame(cut_s: float, frame_rate: Fraction) -> int:
    """The first frame of the title that shows a cut at `cut_s` (title seconds): frame k
    shows the source's last frame at or before k's time and half a frame
    (`media.encode.commands.select_chunk`).

    >>> cut_frame(4.5, Fraction(25)), cut_frame(4.52, Fraction(25))
    (112, 113)
    """
    return max(0, math.ceil(Fraction(cut_s) * frame_rate - Fraction(1, 2)))


def title_grid(source: SourceInfo, config: JobConfig) -> SegmentGrid:
    """The title's segment grid: cut at its shot changes (`--segment_grid shots`, where
    inspection found any) or even."""
    cuts = source.shot_cuts_s if config.segment_grid == "shots" else None
    return segment_grid(source.frame_rate, config.segment_s, config.chunk_segments,
                        source.frame_count, title_cuts_s(source, cuts), config.min_segment_s)


def title_cuts_s(source: SourceInfo, cuts_s: Sequence[float] | None) -> list[float]:
    """Shot changes from inspection's decode timeline (which starts with the container)
    onto the title's (which starts with its first frame)."""
    offset = source.video_start_s - source.container_start_s
    return [t - offset for t in cuts_s or ()]


def shot_aligned_starts(frame_count: int, segment_frames: int, cut_frames: Iterable[int],
                        min_frames: int) -> list[int]:
    """The first frame of every segment of a grid that ends segments on cuts.

    From each segment's start, the segment ends on the last cut at least `min_frames`
    and at most `segment_frames` on; where there is none but a cut lies within the
    next segment's reach, the run up to it is cut in two nearly equal segments (each
    at least `min_frames`) so that the next ends on it; else the segment is a whole
    `segment_frames`, or the two last segments share what is left where a whole one would
    leave a last segment under the floor. A cut at least `min_frames` before the end
    starts a segment of its own.

    >>> shot_aligned_starts(300, 100, [70, 130], 50)
    [0, 70, 130, 230]
    >>> shot_aligned_starts(300, 100, [120], 50)
    [0, 60, 120, 220]
    >>> shot_aligned_starts(300, 100, [], 50)
    [0, 100, 200]
    """
    if segment_frames < 1 or not 1 <= min_frames <= segment_frames:
        raise ConfigurationError(f"segments of {segment_frames} frames cannot have a floor "
                                 f"of {min_frames}")
    cuts = sorted({c for c in cut_frames if 0 < c <= frame_count - min_frames})
    starts, pos, i = [0], 0, 0
    while True:
        last = pos + segment_frames >= frame_count
        while i < len(cuts) and cuts[i] < pos + min_frames:
            i += 1
        j = i
        while j < len(cuts) and cuts[j] <= pos + segment_frames:
            j += 1
        if last and j == i:
            break
        if j > i:  # the last cut in [pos + min_frames, pos + segment_frames]
            end = cuts[j - 1]
        elif (j < len(cuts) and cuts[j] - pos <= 2 * segment_frames
              and (cuts[j] - pos) // 2 >= min_frames):
            end = pos + (cuts[j] - pos) // 2  # the next segment ends on the cut
        elif frame_count - pos - segment_frames < min_frames <= (frame_count - pos) // 2:
            end = pos + (frame_count - pos) // 2  # no last segment under the floor
        else:
            end = pos + segment_frames
        starts.append(end)
        pos = end
    return starts


def grid_chunks(frame_count: int, grid: SegmentGrid) -> list[ChunkSpan]:
    """The title's chunks on `grid`: `chunk_segments` whole segments each (the last
    may have fewer); on a grid cut at shot changes, each chunk carries its segments."""
    if not grid.starts:
        return plan_chunks(frame_count, grid.segment_frames, grid.chunk_segments)
    bounds = grid.segment_bounds(frame_count)
    firsts = list(grid.chunk_starts or range(0, len(bounds) - 1, grid.chunk_segments))
    ends = [*firsts[1:], len(bounds) - 1]
    return [ChunkSpan(index=i, start_frame=bounds[first],
                      frame_count=bounds[end] - bounds[first],
                      segment_starts=tuple(bounds[first:end]), first_segment=first)
            for i, (first, end) in enumerate(zip(firsts, ends, strict=True))]


def grid_summary(grid: SegmentGrid, frame_count: int, cuts_s: Sequence[float] | None
                 ) -> dict:
    """What the report says of the grid: segments, the shortest and longest (seconds,
    the last left out of the shortest), and how many boundaries and chunk ends lie on a
    shot change (how many were moved there from the even grid)."""
    bounds = grid.segment_bounds(frame_count)
    lengths = [b - a for a, b in itertools.pairwise(bounds)]
    inner = bounds[1:-1]
    cuts = {cut_frame(t, grid.frame_rate) for t in cuts_s or ()}
    even = set(range(0, frame_count, grid.segment_frames))
    firsts = grid.chunk_starts or range(0, len(lengths), grid.chunk_segments)
    chunk_ends = [bounds[first] for first in firsts[1:]]
    rate = grid.frame_rate
    return {
        "kind": "shots" if grid.starts else "even",
        "segments": len(lengths),
        "chunks": len(firsts),
        "min_segment_s": round(float(min(lengths[:-1] or lengths) / rate), 3),
        "max_segment_s": round(float(max(lengths) / rate), 3),
        "shot_cuts": len(cuts),
        "boundaries_on_cuts": sum(1 for b in inner if b in cuts),
        "chunk_ends_on_cuts": sum(1 for b in chunk_ends if b in cuts),
        "chunk_ends_moved_onto_cuts": sum(1 for b in chunk_ends if b in cuts and b not in even),
    }


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
