"""Per-title planning around the hull: what to trial, and how to turn rungs into renditions.

Plain functions: which resolutions and CRFs to trial-encode, which segments of the title
to sample, how trial results become (rate, VMAF) points, and how the chosen rungs become
`Rendition`s with a quality target, a VBV cap and CRF changes over the title. The CRF
each encode is then made at is `media.plan.rate_control`'s business.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from media.core.naming import rendition_id
from media.core.types import ChunkSpan, Rendition, SourceInfo, TrialResult
from media.inspect.complexity import (
    chunk_covering_samples,
    is_uniform,
    median_sample,
    stratified_samples,
)
from media.plan.hull import (
    BUFSIZE_RATIO,
    MAXRATE_RATIO,
    PlannedRung,
    TrialPoint,
    choose_rungs,
    contending_heights,
)
from media.plan.ladder import even_floor, scaled_width

CANDIDATE_HEIGHTS = (1080, 720, 540, 432, 360, 270, 234)
DEFAULT_VMAF_PER_CRF = -1.5
"""VMAF change per CRF step when the trials cannot tell (typical of x264 near VMAF 90)."""
FLAT_SLOPE = -0.05
"""A VMAF-per-CRF slope no steeper than this measures nothing (noise, a saturated curve)."""
MAX_CRF_OFFSET = 6.0
"""Largest CRF change a chunk gets from the trial samples near it."""
CONTENDER_MARGIN = 3.0
"""How far (VMAF) under a rung the probe may put a resolution that is still trialled on
the other samples: half of the 6 VMAF usually taken as one just noticeable difference."""


def candidate_resolutions(source: SourceInfo,
                          heights: Sequence[int] = CANDIDATE_HEIGHTS) -> list[tuple[int, int]]:
    """(width, height) of every candidate no taller than the source, tallest first."""
    kept = [h for h in heights if h <= source.height] or [even_floor(source.height)]
    return [(scaled_width(source, h), h) for h in kept]


def sample_count(segment_count: int, fraction: float, min_samples: int = 3,
                 max_samples: int = 40) -> int:
    """How many segments to trial: `fraction` of them, at least `min_samples` (all of
    them for short titles), at most `max_samples`."""
    wanted = max(min_samples, math.ceil(segment_count * fraction))
    return max(1, min(segment_count, max_samples, wanted))


def sample_segments(segment_count: int, fraction: float, min_samples: int = 3,
                    max_samples: int = 40) -> list[int]:
    """Indices of the segments to trial: evenly spread, all of them for short titles
    (where the title's complexity is not known; else `media.inspect.complexity`).

    >>> sample_segments(15, 0.2)
    [2, 7, 12]
    >>> sample_segments(3, 0.2)
    [0, 1, 2]
    """
    wanted = sample_count(segment_count, fraction, min_samples, max_samples)
    stride = segment_count / wanted
    return sorted({min(segment_count - 1, int(stride * (i + 0.5))) for i in range(wanted)})


def probe_sample(samples: Sequence[int]) -> int:
    """The sample trialled first, at every candidate resolution: the middle one."""
    return samples[len(samples) // 2]


def title_samples(segment_total: int, fraction: float,
                  complexity: Sequence[float] | None = None,
                  chunk_segments: int = 0) -> tuple[list[int], int]:
    """(the segments to trial, in order; the probe among them).

    Where the title's `complexity` was measured (per segment, `media.inspect.complexity`): as
    many as `sample_count` says, chosen by complexity (the easiest, the hardest, evenly
    between; with `chunk_segments`, one in every chunk where there are as many samples
    as chunks, `chunk_covering_samples`), the probe the sample of middle complexity; a
    uniform title (`media.inspect.complexity.is_uniform`) has that one sample alone, as samples
    that would all measure the same are not paid for twice.
    Else evenly spread by position, the probe the middle one.
    """
    if complexity is None:
        samples = sample_segments(segment_total, fraction)
        return samples, probe_sample(samples)
    count = 1 if is_uniform(complexity) else sample_count(segment_total, fraction)
    samples = (chunk_covering_samples(complexity, count, chunk_segments) if chunk_segments
               else stratified_samples(complexity, count))
    return samples, median_sample(complexity, samples)


def heights_to_refine(points: Sequence[TrialPoint], top_vmaf: float, max_kbps: float | None,
                      min_kbps: float, step_ratio: float, max_rungs: int) -> list[int]:
    """The resolutions worth trialling on the other samples, judged from the probe's points.

    Those that could carry the ladder the probe calls for (`contending_heights`): each
    rung's own resolution, and any other whose curve comes within CONTENDER_MARGIN of it
    at the rung's rate, since on the title's other samples it may win that rung. A
    resolution further behind at every rung would not be chosen on one sample's
    evidence, and trialling it on every sample costs as much as the resolutions that
    will be. Tallest first; every probed height when the probe cannot plan a ladder (the
    final choice then says why).
    """
    try:
        rungs = choose_rungs(points, top_vmaf=top_vmaf, max_kbps=max_kbps, min_kbps=min_kbps,
                             step_ratio=step_ratio, max_rungs=max_rungs)
    except ValueError:
        return sorted({p.height for p in points}, reverse=True)
    return contending_heights(points, rungs, CONTENDER_MARGIN)


def complete_results(results: Sequence[TrialResult]) -> list[TrialResult]:
    """The results of the resolutions trialled on every sample.

    A resolution the probe left out has the probe sample alone; mixed into the hull,
    its one-sample curve would be compared with curves averaged over the whole title.
    """
    samples = {r.task.span.index for r in results}
    by_height: dict[int, set[int]] = defaultdict(set)
    for result in results:
        by_height[result.height].add(result.task.span.index)
    return [r for r in results if by_height[r.height] == samples]


def gop_bytes(result: TrialResult) -> float:
    """A trial's bytes as the final encode would spend them on its frames.

    A sample is shorter than the final encode's GOP (one segment of the grid), so its
    one keyframe is a larger share of its bits than in a chunk (a 1 s sample's rate ran
    41-48 % over a 4 s chunk's). Here the keyframe counts once per GOP and the other
    frames at their own average: within 5 % of the chunk's rate.
    """
    frames, keyframe, gop = result.frames, result.keyframe_bytes, result.task.segment_frames
    if keyframe <= 0 or frames < 2 or frames >= gop:
        return float(result.size_bytes)
    rest = (result.size_bytes - keyframe) / (frames - 1)
    return frames * (keyframe + (gop - 1) * rest) / gop


def inter_share(results: Sequence[TrialResult]) -> float | None:
    """The median over `results` at their highest CRF of a trial's mean bytes per frame
    after its keyframe over its keyframe's bytes; None where none measured its keyframe.

    What inter prediction cannot make cheap. At the highest CRF clean content's frames
    after the keyframe cost next to nothing, noise's do not: on 1 s of the benchmark
    sources (veryfast, CRF 33, 144p-540p) 0.02-0.05 for the cartoon and the fractal zoom,
    0.09-0.33 under temporal noise or grain.
    """
    measured = [r for r in results if r.keyframe_bytes > 0 and r.frames > 1]
    top = max((r.crf for r in measured), default=None)
    shares = sorted((r.size_bytes - r.keyframe_bytes) / (r.frames - 1) / r.keyframe_bytes
                    for r in measured if r.crf == top)
    return shares[len(shares) // 2] if shares else None


def trial_points(results: Sequence[TrialResult],
                 weights: Mapping[int, float] | None = None) -> list[TrialPoint]:
    """One point per (resolution, CRF): total bits (`gop_bytes`) over total time,
    frame-weighted VMAF. With `weights` (sample segment index -> the share of the title
    it stands for, `media.inspect.complexity.sample_weights`) each sample counts that much."""
    groups: dict[tuple[int, int, float], list[TrialResult]] = defaultdict(list)
    for result in results:
        groups[(result.height, result.width, result.crf)].append(result)

    points = []
    for (height, width, crf), group in sorted(groups.items()):
        weighed = [weights.get(r.task.span.index, 0.0) if weights else 1.0 for r in group]
        if not any(w > 0 for w in weighed):
            weighed = [1.0] * len(group)
        pairs = list(zip(group, weighed, strict=True))
        frames = sum(r.frames * w for r, w in pairs)
        seconds = frames / group[0].task.source.frame_rate
        kbps = float(sum(gop_bytes(r) * w for r, w in pairs) * 8 / seconds / 1000)
        vmaf = sum(r.vmaf_mean * r.frames * w for r, w in pairs) / frames
        points.append(TrialPoint(height=height, width=width, crf=crf, kbps=kbps, vmaf=vmaf))
    return points


def frame_spread(results: Sequence[TrialResult], heights: Sequence[int]) -> float | None:
    """How much frame scores vary within the trial encodes at `heights` (the ladder's):
    the root mean square of their standard deviations; None where any was not measured
    (a trial record from before it was kept). `media.quality.vmaf.scored_frames_needed` turns it
    into the frames a final chunk needs scored."""
    spreads = [r.vmaf_sd for r in results if r.height in heights]
    if not spreads or any(sd is None for sd in spreads):
        return None
    return math.sqrt(sum(sd * sd for sd in spreads) / len(spreads))


def vmaf_per_crf(points: Sequence[TrialPoint], height: int, crf: float) -> float:
    """Slope of VMAF against CRF on the trial curve of `height`, near `crf`."""
    curve = sorted((p for p in points if p.height == height), key=lambda p: p.crf)
    if len(curve) < 2:
        return DEFAULT_VMAF_PER_CRF
    below = [p for p in curve if p.crf <= crf] or curve[:1]
    above = [p for p in curve if p.crf > crf] or curve[-1:]
    a, b = below[-1], above[0]
    if a.crf == b.crf:
        a, b = curve[-2], curve[-1]
    slope = (b.vmaf - a.vmaf) / (b.crf - a.crf)
    return slope if slope < FLAT_SLOPE else DEFAULT_VMAF_PER_CRF


def renditions_from_rungs(rungs: Sequence[PlannedRung], points: Sequence[TrialPoint],
                          results: Sequence[TrialResult] = (),
                          weights: Mapping[int, float] | None = None) -> list[Rendition]:
    """Renditions for the chosen rungs, each with its VMAF target, CRF slope and, from
    the trial `results` of each sample (weighed by `weights`, as `trial_points` weighs
    them), its CRF changes over the title (`crf_offsets`) and a VBV cap with room for
    the hardest sample (`vbv_cap`)."""
    out = []
    for rung in rungs:
        crf = round(rung.crf, 1)
        offsets = crf_offsets(results, points, rung.height, crf)
        out.append(Rendition(
            rendition_id="", width=rung.width, height=rung.height, crf=crf,
            maxrate_kbps=0, bufsize_kbit=0, target_vmaf=round(rung.vmaf, 2),
            vmaf_per_crf=round(vmaf_per_crf(points, rung.height, crf), 3),
            crf_offsets=offsets,
        ))
    return recapped(out, rungs, results, weights)


def recapped(renditions: Sequence[Rendition], rungs: Sequence[PlannedRung],
             results: Sequence[TrialResult] = (),
             weights: Mapping[int, float] | None = None) -> list[Rendition]:
    """`renditions` (one per rung of `rungs`) with the VBV cap their CRF changes call
    for (`vbv_cap`), named by it. Once the calibration has carried the changes over to
    the final preset's CRF scale, the caps are worked out again from those."""
    out: list[Rendition] = []
    for rendition, rung in zip(renditions, rungs, strict=True):
        maxrate = vbv_cap(rung, results, rendition.crf_offsets, weights)
        rid = rendition_id(rung.height, maxrate)
        if any(r.rendition_id == rid for r in out):
            rid = f"{rid}-{len(out)}"
        out.append(dataclasses.replace(rendition, rendition_id=rid, maxrate_kbps=maxrate,
                                       bufsize_kbit=round(BUFSIZE_RATIO * maxrate)))
    return out


def vbv_cap(rung: PlannedRung, results: Sequence[TrialResult],
            offsets: Sequence[tuple[int, float]],
            weights: Mapping[int, float] | None = None) -> int:
    """A rung's VBV cap (kb/s): MAXRATE_RATIO times the average its chunks will have
    with their CRF changes `offsets` (`rate_spread`), or more where the hardest sample
    needs more at its own CRF, up to PEAK_RATIO_LIMIT times that average. Rates are the
    trials' (the hull's `kbps` at the rung's trial CRF, the samples' trial curves)."""
    spread = rate_spread(results, rung.height, round(rung.crf, 1), offsets, weights)
    ratio = min(PEAK_RATIO_LIMIT, max(MAXRATE_RATIO, spread.peak))
    return max(1, round(ratio * spread.average * rung.kbps))


PEAK_RATIO_LIMIT = 2.0
"""HLS Authoring Specification: a VOD variant's peak bit rate SHOULD be at most 200 % of
its average. A rung's VBV cap never goes above this share of the average its chunks' CRFs
call for (`rate_spread`)."""


@dataclasses.dataclass(frozen=True)
class RateSpread:
    """How a rung's chunks will spend bits once each takes its CRF change."""

    average: float = 1.0
    """The title's average rate with every sample at its own CRF, over its average with
    every sample at the rung's CRF (the rung's `kbps`, as the hull predicts it)."""
    peak: float = 0.0
    """The hardest sample's rate at its own CRF over that average; 0 when the samples
    cannot say."""


def rate_spread(results: Sequence[TrialResult], height: int, crf: float,
                offsets: Sequence[tuple[int, float]],
                weights: Mapping[int, float] | None = None) -> RateSpread:
    """The rates the samples at `height` call for once each takes its CRF change.

    Each sample's rate at `crf` and at `crf` plus its change (`offsets`, as
    `crf_offsets` gives them), interpolated in ln-rate against CRF (x264's rate falls
    about exponentially with CRF), each sample weighed by the segments it stands for.
    With those changes the rung's average is not the hull's (hard stretches' lower CRFs
    cost more than easy ones' higher CRFs save), and the HLS limit on the peak is on the
    average the rung will have: the cap leaves room for the hardest stretch as a share
    of that, so it is encoded at the CRF meant for it rather than held by the cap.
    """
    rates = _sample_rates(results, height, crf, offsets, weights) if offsets else []
    total = sum(w for w, _, _ in rates)
    if not rates or total <= 0:
        return RateSpread()
    at_crf = sum(w * rate for w, rate, _ in rates) / total
    spent = sum(w * rate for w, _, rate in rates) / total
    return RateSpread(average=spent / at_crf, peak=max(rate for _, _, rate in rates) / spent)


def predicted_kbps(results: Sequence[TrialResult], height: int, crf: float,
                   offsets: Sequence[tuple[int, float]],
                   weights: Mapping[int, float] | None = None) -> float | None:
    """The average rate (kb/s, at the trial preset) a rung's chunks will have at `crf`
    with their CRF changes `offsets`: each sample's trial rate at its own CRF, weighed
    by the segments it stands for. Read at the CRF the chunks are encoded at, not at the
    hull's: on grain the calibration moves a rung 2 to 3 CRF steps, where each step
    costs 25 % of the rate. None where no sample has a curve at `height`."""
    rates = _sample_rates(results, height, crf, offsets, weights)
    total = sum(w for w, _, _ in rates)
    if not rates or total <= 0:
        return None
    return sum(w * rate for w, _, rate in rates) / total


def _sample_rates(results: Sequence[TrialResult], height: int, crf: float,
                  offsets: Sequence[tuple[int, float]],
                  weights: Mapping[int, float] | None) -> list[tuple[float, float, float]]:
    """(weight, rate at `crf`, rate at its own CRF) of each sample at `height` with a
    CRF change in `offsets` (every sample, unchanged, where `offsets` is empty); rates
    in kb/s as the final GOP would spend them (`gop_bytes`), interpolated in ln-rate
    against CRF (x264's rate falls about exponentially with CRF)."""
    changes = dict(offsets)
    ln_rates = _sample_curves(results, height, lambda r: math.log(
        gop_bytes(r) * 8 / float(r.frames / r.task.source.frame_rate) / 1000))
    segment = {_middle(r.task.span): r.task.span.index for r in results}
    return [(weights.get(segment[middle], 0.0) if weights else 1.0,
             math.exp(_piecewise_at(curve, crf)),
             math.exp(_piecewise_at(curve, crf + changes.get(middle, 0.0))))
            for middle, curve in ln_rates.items() if middle in changes or not changes]


def _middle(span: ChunkSpan) -> int:
    return span.start_frame + span.frame_count // 2


def _sample_curves(results: Sequence[TrialResult], height: int,
                   value) -> dict[int, list[tuple[float, float]]]:
    """Each sample's (CRF, `value(result)`) curve at `height`, sorted by CRF, keyed by the
    sample's middle frame in frame order; samples with fewer than two CRFs are left out."""
    by_sample: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for result in results:
        if result.height == height:
            span = result.task.span
            by_sample[_middle(span)].append((result.crf, value(result)))
    return {middle: sorted(curve) for middle, curve in sorted(by_sample.items())
            if len(curve) >= 2}


def _piecewise_at(curve: Sequence[tuple[float, float]], crf: float) -> float:
    """The value at `crf` of a (CRF, value) curve sorted by CRF (VMAF, or ln-rate):
    piecewise linear, extended past its ends along the end segments."""
    i = min(max(bisect.bisect_left([c for c, _ in curve], crf), 1), len(curve) - 1)
    (c0, v0), (c1, v1) = curve[i - 1], curve[i]
    return v0 + (v1 - v0) * (crf - c0) / (c1 - c0)


def _crf_at(curve: Sequence[tuple[float, float]], vmaf: float) -> float:
    """The CRF where a (CRF, VMAF) curve sorted by CRF reaches `vmaf`: on the segment
    that crosses it, else along the nearer end segment (its slope at least
    DEFAULT_VMAF_PER_CRF's sign: a flat end must not send the CRF far away)."""
    for (c0, v0), (c1, v1) in itertools.pairwise(curve):
        if min(v0, v1) <= vmaf <= max(v0, v1) and v0 != v1:
            return c0 + (c1 - c0) * (vmaf - v0) / (v1 - v0)
    (c0, v0), (c1, v1) = curve[:2] if vmaf > curve[0][1] else curve[-2:]
    slope = min((v1 - v0) / (c1 - c0), FLAT_SLOPE)
    anchor_crf, anchor_vmaf = (c0, v0) if vmaf > curve[0][1] else (c1, v1)
    return anchor_crf + (vmaf - anchor_vmaf) / slope


def crf_offsets(results: Sequence[TrialResult], points: Sequence[TrialPoint], height: int,
                crf: float) -> tuple[tuple[int, float], ...]:
    """(middle frame, CRF change) of each trial sample at `height`: the change that brings
    that sample, on its own trial curve, to the VMAF the title's curve gives at `crf`.

    Content gets harder and easier along a title; one CRF for all of it misses the
    target wherever it differs from the average. The samples measured how much, and a
    chunk takes the change interpolated from the samples around it (`chunk_crf`), so
    its first encode is closer to the target and the quality gate re-encodes less
    (`media.plan.rate_control.chunk_crf`).
    """
    title = sorted((p.crf, p.vmaf) for p in points if p.height == height)
    if len(title) < 2:
        return ()
    target = _piecewise_at(title, crf)
    offsets = []
    for middle, curve in _sample_curves(results, height, lambda r: r.vmaf_mean).items():
        change = _crf_at(curve, target) - crf
        change = max(-MAX_CRF_OFFSET, min(MAX_CRF_OFFSET, change))
        offsets.append((middle, round(change, 2)))
    return tuple(offsets)
