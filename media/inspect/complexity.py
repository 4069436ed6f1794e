"""How hard each stretch of a title is to encode, measured once over the whole title.

The inspection decodes every frame anyway (`media.inspect`); on the way it also
encodes a small copy of the picture (ANALYSIS_BOX, x264 ultrafast at a fixed CRF)
and keeps the bytes each frame took. Bits at a fixed CRF are the encoder's own measure
of content complexity: on a deep fractal zoom the analysis bytes of its 15 segments rank
them as 720p trial encodes at CRF 26 do (those rates grow about as the analysis bytes to
the power 1.6), at no measurable CPU cost beside the decode.

Planning uses it where one trial sample per few segments would otherwise guess:

- which segments to sample (`stratified_samples`): the easiest, the hardest and evenly
  spaced complexities between, rather than evenly spaced positions that may miss the
  hard stretch a rung's VBV cap must make room for;
- how much of the title each sample stands for (`sample_weights`), so the title's
  rate-quality curve is an average over the whole title rather than over the samples.

A chunk's CRF change is still read off the samples by position (`media.plan.planning`): on
the fractal zoom, changes read off by complexity instead put the first encodes of its
easy chunks 4 to 8 VMAF from their targets. Bits measure how costly a stretch is, not
how VMAF there moves with the CRF.

Plain functions; the numbers are bytes of the analysis encode.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from media.core.types import SourceInfo

ANALYSIS_BOX = (480, 270)
"""The analysis encode's picture fits in this (a quarter of 1080p's width and height):
large enough to keep detail that costs bits at the ladder's sizes, small enough to cost
nothing beside the decode."""
ANALYSIS_CRF = 18
"""A low CRF, so fine detail is still coded (and counted) rather than quantised away."""
UNIFORM_RATIO = 1.25
"""A title whose segments all cost within this factor of their median is uniform: its
samples would all measure the same, and one sample stands for all of it."""


def analysis_filter(width: int, height: int) -> str:
    """The filters that make the analysis encode's picture from a decoded frame: fitted
    into ANALYSIS_BOX (never larger than the source), even sizes, 8-bit 4:2:0."""
    box_w, box_h = analysis_box(width, height)
    return (f"scale={box_w}:{box_h}:force_original_aspect_ratio=decrease:"
            f"force_divisible_by=2:flags=fast_bilinear,format=yuv420p")


def analysis_codec_args(bin_frames: int, stream: int = 0, threads: int = 1) -> list[str]:
    """FFmpeg output options of the analysis encode, for output stream `stream` (to the
    null muxer; `-stats_enc_post` then reports each frame's bytes). A keyframe starts
    every bin, as one starts every segment of the final encodes: a bin's bytes count its
    picture's detail (intra) and its motion (inter), wherever it lies in the title."""
    return [f"-c:{stream}", "libx264", f"-preset:{stream}", "ultrafast",
            f"-crf:{stream}", str(ANALYSIS_CRF), f"-g:{stream}", str(bin_frames),
            f"-sc_threshold:{stream}", "0", f"-threads:{stream}", str(threads)]


def bin_frames_for(frame_s: float) -> int:
    """Frames per complexity bin: about one second's."""
    return max(1, round(1 / frame_s)) if frame_s > 0 else 25


def analysis_box(width: int, height: int) -> tuple[int, int]:
    """The box the analysis picture fits in: ANALYSIS_BOX, or the source's own (even)
    size where smaller. A fitted box, not a fixed width, so that a tall or very narrow
    picture cannot make a huge one."""
    return (max(2, min(ANALYSIS_BOX[0], width - width % 2)),
            max(2, min(ANALYSIS_BOX[1], height - height % 2)))


def binned(frame_bytes: Sequence[int], bin_frames: int) -> tuple[int, ...]:
    """Bytes per run of `bin_frames` frames (the last run may be shorter)."""
    return tuple(sum(frame_bytes[i:i + bin_frames])
                 for i in range(0, len(frame_bytes), bin_frames))


def span_complexity(bins: Sequence[int], bin_frames: int, start: int, count: int) -> float:
    """Mean analysis bytes per frame over frames [start, start + count), from bins of
    `bin_frames` frames (a bin the span covers in part counts by the share covered)."""
    if not bins or count <= 0 or bin_frames <= 0:
        return 0.0
    total = weight = 0.0
    end = start + count
    for b in range(start // bin_frames, min(len(bins), math.ceil(end / bin_frames))):
        lo, hi = b * bin_frames, (b + 1) * bin_frames
        covered = min(hi, end) - max(lo, start)
        if covered > 0:
            total += bins[b] * covered / bin_frames
            weight += covered
    return total / weight if weight else 0.0


def segment_complexities(bins: Sequence[int], bin_frames: int, segment_frames: int,
                         frame_count: int) -> list[float]:
    """Mean analysis bytes per frame of each segment of the title."""
    return [span_complexity(bins, bin_frames, start, min(segment_frames, frame_count - start))
            for start in range(0, frame_count, segment_frames)]


def is_uniform(values: Sequence[float], ratio: float = UNIFORM_RATIO) -> bool:
    """Whether every segment costs within `ratio` of the median segment."""
    positive = sorted(v for v in values if v > 0)
    if not positive or len(positive) < len(values):
        return False
    median = positive[len(positive) // 2]
    return positive[-1] <= ratio * median and positive[0] * ratio >= median


def stratified_samples(values: Sequence[float], count: int) -> list[int]:
    """`count` segment indices chosen by complexity: the easiest, the hardest and evenly
    spaced ranks between (one: the median). In segment order.

    >>> stratified_samples([5, 1, 9, 3, 7], 3)  # 1 (easiest), 5 (median), 9 (hardest)
    [0, 1, 2]
    """
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    count = max(1, min(count, len(order)))
    if count == 1:
        return [order[len(order) // 2]]
    ranks = {round(j * (len(order) - 1) / (count - 1)) for j in range(count)}
    return sorted(order[r] for r in ranks)


def chunk_covering_samples(values: Sequence[float], count: int,
                           chunk_segments: int) -> list[int]:
    """`stratified_samples`, but where there are as many samples as chunks of
    `chunk_segments` segments, every chunk has one of its own. A chunk's CRF change is
    read off the samples by position (`media.plan.rate_control.chunk_crf`); a chunk with none
    takes its neighbour's, though its content may be the title's hardest by VMAF while
    its bytes rank it easy. A chunk with none gets the segment of middle complexity
    among its own, in place of a sample of a chunk that has two or more: never the
    easiest or the hardest segment, which set the range the hull and the VBV caps must
    cover. In segment order.

    >>> chunk_covering_samples([13956, 19691, 18062, 14676], 3, 3)  # chunks 0-2 and 3
    [0, 1, 3]
    """
    chosen = stratified_samples(values, count)
    size = max(1, chunk_segments)
    chunk_total = -(-len(values) // size)
    if chunk_total < 2 or chunk_total > len(chosen):
        return chosen
    easiest_first = sorted(range(len(values)), key=lambda i: (values[i], i))
    ends = {easiest_first[0], easiest_first[-1]}
    samples = set(chosen)
    for chunk in range(chunk_total):
        per_chunk = Counter(s // size for s in samples)
        if per_chunk[chunk]:
            continue
        spare = [s for s in easiest_first
                 if s in samples and s not in ends and per_chunk[s // size] > 1]
        if not spare:
            break
        samples.remove(spare[len(spare) // 2])
        own = [i for i in easiest_first if i // size == chunk]
        samples.add(own[len(own) // 2])
    return sorted(samples)


def median_sample(values: Sequence[float], samples: Sequence[int]) -> int:
    """The sample of middle complexity (the one trialled first, at every resolution)."""
    ranked = sorted(samples, key=lambda i: (values[i], i))
    return ranked[len(ranked) // 2]


def sample_weights(values: Sequence[float], samples: Sequence[int]) -> dict[int, int]:
    """How many of the title's segments each sample stands for: each segment counts for
    the sample nearest to it in log complexity (ties: the nearer in position)."""
    weights = dict.fromkeys(samples, 0)
    logs = {s: _log(values[s]) for s in samples}
    for i, value in enumerate(values):
        here = _log(value)
        nearest = min(samples, key=lambda s: (abs(logs[s] - here), abs(s - i)))
        weights[nearest] += 1
    return weights


def _log(value: float) -> float:
    return math.log(max(value, 1e-9))


def title_complexity(source: SourceInfo, segment_frames: int) -> tuple[float, ...] | None:
    """The title's complexity per segment (mean analysis bytes a frame, on the segment
    grid of `segment_frames`); None when it was not measured (or not usable: a segment
    with no analysed frames)."""
    if not source.complexity or source.complexity_bin_frames <= 0:
        return None
    values = segment_complexities(source.complexity, source.complexity_bin_frames,
                                  segment_frames, source.frame_count)
    if not values or any(v <= 0 for v in values):
        return None
    return tuple(values)
