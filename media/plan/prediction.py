"""The rate each rung of a per-title ladder will have, and the rungs that are real steps.

The hull gives a rung's rate at the CRF the trials interpolate for it, at the trial
preset. Two things move it before a chunk is encoded: the calibration moves the CRF to
where the final preset meets the rung's VMAF, and the final preset spends otherwise than
the trial's at one CRF. On a grainy title, whose VMAF hardly moves over CRFs where the
rate falls 25 % a step, the calibration moved rungs 2 to 3 steps and they spent 1.4-1.9x
under the hull's rate (docs/per-title.md). So a rung's rate is read off the samples'
trial curves at its chunks' final CRFs (`media.plan.planning.predicted_kbps`) and scaled
by the final preset's rate over the trial preset's, measured on the calibration sample
(`preset_factor`); the rungs that are no real step under the one above on those
predictions are dropped (`media.plan.invariant.spaced`).

Plain functions: no Beam, no FFmpeg.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from media.core.types import Rendition, TrialResult
from media.plan.hull import CRF_RANGE
from media.plan.planning import predicted_kbps
from media.plan.rate_control import BORROW_SHARE, crf_offset_at, sample_budget_kbps

PRESET_FACTOR_RANGE = (0.5, 2.0)
"""Bounds of the final preset's rate over the trial preset's (x264's presets differ by
up to 1.2x at one CRF on the benchmark sources; more means a capped or broken encode)."""


def _raw_kbps(result: TrialResult, frames: int = 0) -> float:
    """The trial's rate as a sample of `frames` frames from its start would spend it
    (its own, where `frames` is not more): its keyframe once, the rest at their mean."""
    size, keyframe, own = result.size_bytes, result.keyframe_bytes, result.frames
    if frames > own > 1 and keyframe > 0:
        size, own = keyframe + (frames - 1) * (size - keyframe) / (own - 1), frames
    return size * 8 / float(own / result.task.source.frame_rate) / 1000


def preset_factors(record: dict, rendition: Rendition, sample: Sequence[TrialResult],
                   sample_s: float) -> list[tuple[float, float]]:
    """(CRF, ln of the final preset's rate over the trial preset's) at each calibration
    encode of `record` (a `media.plan.rate_control.calibrate` record of `rendition`, as
    it was before the calibration) that its VBV cap left alone: its rate over the trial
    rate of the same sample, at that size, interpolated at its CRF. Both are counted over
    the calibration's frames (`sample_s`, the probe's or its segment's), one keyframe
    each, so its share cancels."""
    frames = round(sample_s * float(sample[0].task.source.frame_rate)) if sample else 0
    curve = sorted((r.crf, math.log(_raw_kbps(r, frames))) for r in sample
                   if r.height == rendition.height and r.size_bytes > 0)
    if len(curve) < 2:
        return []
    budget = sample_budget_kbps(rendition, sample_s)
    return sorted((crf, math.log(kbps) - _between(curve, crf))
                  for crf, _vmaf, kbps in record.get("tries", [])
                  if kbps > 0 and (not budget or kbps < BORROW_SHARE * budget))


def _between(curve: Sequence[tuple[float, float]], crf: float) -> float:
    """The value at `crf` of a (CRF, value) curve sorted by CRF: linear between its
    points, along its end segments beyond them."""
    i = next((i for i, (c, _) in enumerate(curve) if c >= crf), len(curve) - 1)
    i = min(max(i, 1), len(curve) - 1)
    (c0, v0), (c1, v1) = curve[i - 1], curve[i]
    return v0 if c1 == c0 else v0 + (v1 - v0) * (crf - c0) / (c1 - c0)


def preset_factor(factors: Sequence[tuple[float, float]], crf: float) -> float:
    """The final preset's rate over the trial preset's at `crf`, from `preset_factors`
    (of every rung of a size): linear in CRF between them, the nearest beyond; 1 where
    none was measured."""
    if not factors:
        return 1.0
    if len(factors) == 1 or crf <= factors[0][0]:
        ln = factors[0][1]
    elif crf >= factors[-1][0]:
        ln = factors[-1][1]
    else:
        ln = _between(factors, crf)
    return min(PRESET_FACTOR_RANGE[1], max(PRESET_FACTOR_RANGE[0], math.exp(ln)))


def predicted_rates(renditions: Sequence[Rendition], planned_kbps: Sequence[float],
                    results: Sequence[TrialResult], weights, calibration: Sequence[dict],
                    before: Sequence[Rendition], sample_segment: int,
                    sample_middle: float, sample_s: float) -> list[float]:
    """Each rendition's predicted average rate (kb/s) at its final CRF and CRF changes:
    the trials' (`predicted_kbps`; the hull's `planned_kbps` where the trials have no
    curve) times the final preset's factor at the calibration sample's CRF (none where
    `calibration`, one record per rendition as `before` it, is empty)."""
    sample = [r for r in results if r.task.span.index == sample_segment]
    factors: dict[int, list[tuple[float, float]]] = {}
    for record, rendition in zip(calibration, before, strict=False):
        factors.setdefault(rendition.height, []).extend(
            preset_factors(record, rendition, sample, sample_s))
    out = []
    for rendition, planned in zip(renditions, planned_kbps, strict=True):
        trial = predicted_kbps(results, rendition.height, rendition.crf,
                               rendition.crf_offsets, weights) or planned
        at_sample = rendition.crf + crf_offset_at(rendition, sample_middle)
        out.append(trial * preset_factor(sorted(factors.get(rendition.height, [])),
                                         at_sample))
    return out


MAX_MOVE_CRF = 4.0
"""How far (CRF steps) a title's second rung is moved by tenths, to be a real step at the
least cost in quality; beyond it, by whole steps to the top of the CRF range."""


def moved_down(rendition: Rendition, above_kbps: float, ratio: float,
               predict: Callable[[Rendition], float]) -> tuple[Rendition, float] | None:
    """`rendition` moved to the lowest CRF whose `predict`ed rate is `ratio` under
    `above_kbps` (by tenths for MAX_MOVE_CRF steps, then by whole steps to the top of
    CRF_RANGE), its VMAF target moved along its slope (`vmaf_per_crf`, the calibration's
    where there was one; never under 0), with that rate; None where no CRF gets there (a
    title whose rate is all container and keyframe cost: the caller drops the rung). For
    a title's second rung, too close to the top one: a player that switches down must
    save bits, even on a title that costs few."""
    fine = [tenth / 10 for tenth in range(1, round(MAX_MOVE_CRF * 10) + 1)]
    coarse = [MAX_MOVE_CRF + whole for whole in range(1, math.ceil(CRF_RANGE[1]) + 1)]
    for step in fine + coarse:
        if rendition.crf + step > CRF_RANGE[1]:
            break
        moved = dataclasses.replace(
            rendition, crf=round(rendition.crf + step, 1),
            target_vmaf=round(max(0.0, rendition.target_vmaf + rendition.vmaf_per_crf * step),
                              2))
        kbps = predict(moved)
        if kbps * ratio <= above_kbps:
            return moved, kbps
    return None


def second_rung(renditions: list[Rendition], predicted: list[float], kept: list[int],
                dropped: list[str], ratio: float,
                predict: Callable[[Sequence[Rendition]], list[float]]
                ) -> tuple[list[Rendition], list[float], list[int], list[str]]:
    """A title's second rung that `media.plan.invariant.spaced` kept although too close to
    the top one (its last line in `dropped` says 'kept'): moved down its curve
    (`moved_down`, `predict`ing every rung's rate) to a CRF predicted `ratio` under the
    top, or, where no CRF is, dropped: a one-rung title is valid HLS and DASH, a rung no
    cheaper than the top is waste. The renditions, their predicted rates, the indexes
    kept and the lines in words (`dropped`), as they then are."""
    if not (dropped and dropped[-1].startswith("kept") and len(kept) == 2):
        return renditions, predicted, kept, dropped
    top, low = kept
    renditions, predicted, dropped = list(renditions), list(predicted), list(dropped)
    was = renditions[low]
    moved = moved_down(was, predicted[top], ratio, lambda r: predict(
        [r if i == low else x for i, x in enumerate(renditions)])[low])
    if moved is None:
        dropped[-1] = (f"dropped {was.rendition_id}: {predicted[low]:.0f} kb/s at CRF "
                       f"{was.crf:g}, and no CRF predicted {ratio:.2f}x under "
                       f"{renditions[top].rendition_id} ({predicted[top]:.0f} kb/s): its "
                       "rate is container and keyframe cost; the title has one rung")
        return renditions, predicted, kept[:1], dropped
    renditions[low], predicted[low] = moved
    dropped[-1] = (f"moved {was.rendition_id} from CRF {was.crf:g} to {moved[0].crf:g} "
                   f"(target VMAF {was.target_vmaf:g} to {moved[0].target_vmaf:g}): "
                   f"{moved[1]:.0f} kb/s, {predicted[top] / moved[1]:.2f}x under "
                   f"{renditions[top].rendition_id}")
    return renditions, predicted, kept, dropped
