"""Planning helpers: candidates, samples, trial points, rung renditions, the quality gate."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest

from media.core.types import (
    Attempt,
    ChunkSpan,
    EncodeSettings,
    Rendition,
    SegmentGrid,
    SourceInfo,
    TrialResult,
    TrialTask,
)
from media.plan.hull import PlannedRung, TrialPoint, choose_rungs, contending_heights
from media.plan.planning import (
    DEFAULT_VMAF_PER_CRF,
    RateSpread,
    candidate_resolutions,
    complete_results,
    frame_spread,
    gop_bytes,
    heights_to_refine,
    probe_sample,
    rate_spread,
    renditions_from_rungs,
    sample_segments,
    trial_points,
    vmaf_per_crf,
)
from media.plan.rate_control import (
    MAX_CRF_STEP,
    MAX_EXTRAPOLATION,
    bracketing_attempts,
    calibrated_crf,
    gate_verdict,
    held_by_cap,
    next_crf,
    sample_budget_kbps,
)

GRID = SegmentGrid(100, Fraction(25))
"""Segments of 100 frames (4 s at 25 fps)."""


def _source(width=1920, height=1080) -> SourceInfo:
    return SourceInfo("s.mp4", "s", "mp4", "h264", width, height, Fraction(25), 1500, 0.0,
                      "yuv420p")


@pytest.mark.parametrize("size, heights", [
    ((1920, 1080), [1080, 720, 540, 432, 360, 270, 234]),
    ((1280, 720), [720, 540, 432, 360, 270, 234]),
    ((640, 360), [360, 270, 234]),
    ((320, 180), [180]),
    ((321, 181), [180]),
])
def test_candidates_never_upscale(size, heights):
    cands = candidate_resolutions(_source(*size))
    assert [h for _, h in cands] == heights
    assert all(w % 2 == 0 for w, _ in cands)


@pytest.mark.parametrize("count, fraction, expected", [
    (15, 0.2, [2, 7, 12]),
    (3, 0.2, [0, 1, 2]),
    (2, 1.0, [0, 1]),
    (1, 0.1, [0]),
    (100, 0.1, [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]),
])
def test_samples_are_evenly_spread(count, fraction, expected):
    assert sample_segments(count, fraction) == expected


@pytest.mark.parametrize("samples, probe", [([2, 7, 12], 7), ([0], 0), ([0, 1], 1)])
def test_the_probe_is_the_middle_sample(samples, probe):
    assert probe_sample(samples) == probe


# 540p lies under 720p everywhere and 234p is on the hull only far under the floor: the
# probe prunes both. The rungs span 200 to 3000 kb/s; 360p@100 is the hull point just
# under that range, 1080p@6000 the one just over it.
def _points(rows) -> list[TrialPoint]:
    """Trial points from (height, CRF, kb/s, VMAF) rows, 16:9 widths."""
    return [TrialPoint(h, 2 * h * 16 // 9 // 2, crf, kbps, vmaf) for h, crf, kbps, vmaf in rows]


PROBE = _points([
    (1080, 20, 6000, 98), (1080, 26, 3000, 95), (1080, 32, 1500, 85),
    (720, 20, 2000, 88), (720, 26, 1000, 82), (720, 32, 500, 70),
    (540, 20, 1600, 78), (540, 26, 800, 70), (540, 32, 400, 60),
    (360, 20, 500, 62), (360, 26, 250, 55), (360, 32, 100, 40),
    (234, 20, 120, 33), (234, 26, 60, 25), (234, 32, 30, 15),
])


def test_the_probe_keeps_the_resolutions_its_hull_uses():
    assert heights_to_refine(PROBE, top_vmaf=95, max_kbps=None, min_kbps=200,
                             step_ratio=1.7, max_rungs=8) == [1080, 720, 360]


def test_a_lower_floor_brings_the_smallest_resolution_back():
    assert heights_to_refine(PROBE, top_vmaf=95, max_kbps=None, min_kbps=40,
                             step_ratio=1.7, max_rungs=8) == [1080, 720, 360, 234]


def test_an_easy_title_needs_only_its_top_resolutions():
    # Every rung would be under the floor: one rung at 1080p, and the hull segment
    # reaching it from 720p.
    easy = [p for p in PROBE if p.height in (1080, 720)]
    easy = [TrialPoint(p.height, p.width, p.crf, p.kbps / 20, p.vmaf) for p in easy]
    assert heights_to_refine(easy + [p for p in PROBE if p.height < 720 and p.kbps < 60],
                             top_vmaf=95, max_kbps=None, min_kbps=200, step_ratio=1.7,
                             max_rungs=8) == [1080, 720]


def test_resolutions_under_a_long_hull_edge_are_kept_where_rungs_fall_on_them():
    # A deep fractal zoom (measured): every curve sags under the chord from 234p's
    # cheapest trial to 1080p's best, so the hull is that one edge. The rungs along it
    # fall on 720p and 540p, which must be trialled on the other samples too.
    detailed = _points([
        (1080, 19, 29360, 91.8), (1080, 26, 14013, 78.8), (1080, 33, 3803, 52.8),
        (720, 19, 9794, 67.9), (720, 26, 3350, 55.3), (720, 33, 742, 28.9),
        (540, 19, 4666, 55.5), (540, 26, 1392, 41.7), (540, 33, 387, 15.4),
        (234, 19, 603, 15.1), (234, 26, 206, 1.9), (234, 33, 92, 0.0)])
    kept = heights_to_refine(detailed, top_vmaf=95, max_kbps=None, min_kbps=145,
                             step_ratio=1.7, max_rungs=8)
    assert {1080, 720, 540} <= set(kept)


def test_a_flat_title_refines_only_the_resolutions_within_reach_of_its_rungs():
    # A flat, cartoon-like probe (measured): rungs at 1080p (139 kb/s, VMAF 95) and 540p
    # (82 kb/s, 82). At 139 kb/s 720p gives 90; at 82 kb/s 720p's cheapest trial is 14 %
    # away (out of reach) and 432p gives 72. Every other height is more than 3 VMAF
    # behind at both rates, so only the rungs' own two are trialled further.
    cartoon = _points([
        (1080, 19, 306.9, 97.7), (1080, 26, 180.1, 97.6), (1080, 33, 138.6, 95.0),
        (720, 19, 206.6, 90.4), (720, 26, 126.5, 90.0), (720, 33, 94.2, 88.1),
        (540, 19, 146.0, 85.6), (540, 26, 95.8, 84.4), (540, 33, 74.9, 80.7),
        (432, 19, 122.6, 78.1), (432, 26, 85.4, 73.1), (432, 33, 65.2, 67.3),
        (360, 19, 114.7, 75.4), (360, 26, 76.9, 71.2), (360, 33, 60.0, 71.1),
        (270, 19, 88.4, 61.8), (270, 26, 64.9, 57.9), (270, 33, 54.6, 53.5),
        (234, 19, 79.7, 47.6), (234, 26, 56.2, 44.4), (234, 33, 44.6, 37.5)])
    rungs = choose_rungs(cartoon, top_vmaf=95, max_kbps=None, min_kbps=145,
                         step_ratio=1.7, max_rungs=8)
    assert [r.height for r in rungs] == [1080, 540]
    assert heights_to_refine(cartoon, top_vmaf=95, max_kbps=None, min_kbps=145,
                             step_ratio=1.7, max_rungs=8) == [1080, 540]
    # A wider margin lets the near neighbours back in.
    assert contending_heights(cartoon, rungs, margin=10.0) == [1080, 720, 540, 432]


def test_a_probe_that_cannot_plan_keeps_every_resolution():
    flat = [TrialPoint(720, 1280, 26, 0.0001, 0.0)]
    assert heights_to_refine([], top_vmaf=95, max_kbps=None, min_kbps=200, step_ratio=1.7,
                             max_rungs=8) == []
    assert heights_to_refine(flat, top_vmaf=95, max_kbps=None, min_kbps=200,
                             step_ratio=1.7, max_rungs=8) == [720]


def test_only_resolutions_trialled_on_every_sample_reach_the_hull():
    src = _source()

    def result(seg, height):
        size = (height * 16 // 9, height)
        task = TrialTask(src, (size,), (24.0,), ChunkSpan(seg, seg * 100, 50), 0, 4, GRID, "/o",
                         EncodeSettings())
        return TrialResult(task, *size, 24.0, 0, 1000, 50, 80.0)

    probe = [result(3, 720), result(3, 360)]
    rest = [result(0, 720), result(6, 720)]
    kept = complete_results(probe + rest)
    assert {(r.height, r.task.span.index) for r in kept} == {(720, 0), (720, 3), (720, 6)}
    assert complete_results(probe) == probe


def test_frame_spread_is_the_rms_of_the_ladders_trial_spreads():
    src = _source()

    def result(height, sd):
        size = (height * 16 // 9, height)
        task = TrialTask(src, (size,), (24.0,), ChunkSpan(0, 0, 25), 0, 4, GRID, "/o",
                         EncodeSettings())
        return TrialResult(task, *size, 24.0, 0, 1000, 25, 80.0, vmaf_sd=sd)

    results = [result(1080, 0.1), result(1080, 0.5), result(540, 0.5), result(234, 3.0)]
    assert frame_spread(results, [1080, 540]) == pytest.approx(math.sqrt(0.51 / 3))
    assert frame_spread(results, [234]) == 3.0
    assert frame_spread(results, [720]) is None  # no trial there
    # a trial from a record written before the spread was kept: not measured
    assert frame_spread([*results, result(540, None)], [1080, 540]) is None


def test_trial_points_pool_segments_by_bits_and_frames():
    src = _source()

    def result(seg, size, frames, vmaf):
        task = TrialTask(src, ((1280, 720),), (24.0,), ChunkSpan(seg, seg * 100, frames), seg,
                         2, GRID, "/o", EncodeSettings())
        return TrialResult(task, 1280, 720, 24.0, seg, size, frames, vmaf)

    [point] = trial_points([result(0, 100_000, 100, 90.0), result(1, 300_000, 100, 80.0)])
    # 400 kB over 8 s = 400 kb/s; VMAF weighted by frames.
    assert point.kbps == pytest.approx(400.0) and point.vmaf == pytest.approx(85.0)
    assert (point.height, point.width, point.crf) == (720, 1280, 24.0)


def test_a_short_sample_counts_its_keyframe_once_per_gop():
    src = _source()

    def result(frames, size, keyframe):
        task = TrialTask(src, ((1280, 720),), (24.0,), ChunkSpan(0, 0, frames), 0, 1, GRID,
                         "/o", EncodeSettings())
        return TrialResult(task, 1280, 720, 24.0, 0, size, frames, 80.0,
                           keyframe_bytes=keyframe)

    # 25 frames: a 20 kB keyframe and 24 frames of 2 kB. In a 100-frame GOP the keyframe
    # is 20 of 218 kB, so 25 frames carry 54.5 kB: 174.4 kb/s at 25 fps, not 217.6.
    short = result(25, 20_000 + 24 * 2_000, 20_000)
    assert gop_bytes(short) == pytest.approx(25 * (20_000 + 99 * 2_000) / 100)
    [point] = trial_points([short])
    assert point.kbps == pytest.approx(25 * 2180 * 8 / 1000 / (25 / 25))
    # A whole GOP, or a keyframe never measured (records of older runs): as encoded.
    assert gop_bytes(result(100, 218_000, 20_000)) == 218_000
    assert gop_bytes(result(25, 68_000, 0)) == 68_000


POINTS = [TrialPoint(720, 1280, crf, kbps, vmaf) for crf, kbps, vmaf in
          [(18, 4000, 97), (24, 2000, 93), (30, 1000, 85), (36, 500, 74)]]


@pytest.mark.parametrize("crf, slope", [(20, -4 / 6), (24, -8 / 6), (27, -8 / 6),
                                        (33, -11 / 6), (40, -11 / 6)])
def test_vmaf_per_crf_follows_the_trial_curve(crf, slope):
    assert vmaf_per_crf(POINTS, 720, crf) == pytest.approx(slope)


def test_vmaf_per_crf_defaults_without_a_curve():
    assert vmaf_per_crf(POINTS, 1080, 24) == DEFAULT_VMAF_PER_CRF


def test_renditions_carry_targets_and_unique_ids():
    rungs = [PlannedRung(720, 1280, 22.04, 3000, 95.2, 4500, 9000),
             PlannedRung(720, 1280, 27.5, 1700, 90.0, 4500, 9000)]
    first, second = renditions_from_rungs(rungs, POINTS)
    assert (first.rendition_id, first.crf, first.target_vmaf) == ("720p-4500k", 22.0, 95.2)
    assert second.rendition_id != first.rendition_id
    assert first.vmaf_per_crf == pytest.approx(-4 / 6, abs=1e-3)


@pytest.mark.parametrize("vmaf, verdict", [(93.9, -1), (94.0, 0), (95.0, 0), (97.0, 0),
                                           (97.01, 1)])
def test_gate_window(vmaf, verdict):
    assert gate_verdict(vmaf, 95.0, 1.0, 2.0) == verdict


def _rendition(crf=23.0, target=95.0, slope=-1.5) -> Rendition:
    return Rendition("r", 1280, 720, crf, 3000, 6000, target_vmaf=target, vmaf_per_crf=slope)


def test_next_crf_uses_the_trial_slope_after_one_try():
    # 3 VMAF short at -1.5 per CRF: 2 CRF lower.
    assert next_crf(_rendition(), [Attempt(23.0, 2500, 92.0)]) == 21.0
    # 3 over: 2 CRF higher (fewer bits).
    assert next_crf(_rendition(), [Attempt(23.0, 2500, 98.0)]) == 25.0


def test_next_crf_uses_the_chunks_own_secant_after_two():
    attempts = [Attempt(23.0, 2500, 90.0), Attempt(20.0, 3500, 93.0)]  # -1 per CRF here
    assert next_crf(_rendition(), attempts) == 18.0


def test_next_crf_steps_are_bounded_and_in_range():
    assert next_crf(_rendition(), [Attempt(23.0, 100, 40.0)]) == 23.0 - MAX_CRF_STEP
    assert next_crf(_rendition(crf=3.0), [Attempt(3.0, 100, 80.0)]) == 0.0


def test_a_calibrated_crf_is_placed_near_the_encodes_that_measured_it():
    # A grainy title's 720p calibration: two encodes 0.8 CRF apart, nearly flat there;
    # the secant alone would put the rung 4.5 steps beyond them.
    tries = [Attempt(28.5, 604.1, 77.917), Attempt(29.3, 549.4, 77.69)]
    rung = _rendition(crf=28.5, target=75.91)
    assert next_crf(rung, tries, 76.41) == 33.8
    assert calibrated_crf(rung, tries, 76.41) == 29.3 + MAX_EXTRAPOLATION
    # Below them as well.
    assert calibrated_crf(rung, tries[::-1], 80.0) == 28.5 - MAX_EXTRAPOLATION
    # Between or near them the secant stands.
    assert calibrated_crf(rung, tries, 77.8) == next_crf(rung, tries, 77.8) == 28.9
    steep = [Attempt(28.5, 604.1, 79.0), Attempt(29.3, 549.4, 77.7)]
    assert calibrated_crf(rung, steep, 76.41) == next_crf(rung, steep, 76.41) == 30.1
    # One encode (within tolerance of its aim): the trial slope, as ever.
    assert calibrated_crf(rung, tries[:1], 77.5) == next_crf(rung, tries[:1], 77.5)


# --- a CRF for each chunk, from the samples around it -----------------------------------

SLOPE = -1.5
"""VMAF per CRF step of the synthetic sample curves below."""


def _sample_results(shifts: dict[int, float]) -> list[TrialResult]:
    """Trial results of 100-frame samples at 720p starting at each key frame, with curves
    VMAF = 93 + shift + SLOPE * (CRF - 19): a sample with shift +3 is easier than one
    with shift 0 by two CRF steps."""
    src = _source()
    out = []
    for start, shift in shifts.items():
        task = TrialTask(src, ((1280, 720),), (19.0, 26.0, 33.0), ChunkSpan(start // 100, start,
                         100), 0, 9, GRID, "/o", EncodeSettings())
        for crf in (19.0, 26.0, 33.0):
            out.append(TrialResult(task, 1280, 720, crf, 0, 50_000, 100,
                                   93 + shift + SLOPE * (crf - 19)))
    return out


def test_crf_offsets_bring_each_sample_to_the_titles_quality():
    from media.plan.planning import crf_offsets

    results = _sample_results({0: 3.0, 700: 0.0, 1400: -3.0})
    points = trial_points(results)  # the title: the mean of the three, shift 0
    offsets = crf_offsets(results, points, 720, 26.0)
    # each sample's middle frame; the easy one may take 2 CRF steps more, the hard 2 less
    assert offsets == ((50, 2.0), (750, 0.0), (1450, -2.0))
    assert crf_offsets(results, points, 1080, 26.0) == ()  # no trials at that height


def test_crf_offsets_beyond_the_trialled_crfs_follow_the_end_slope_and_are_capped():
    from media.plan.planning import MAX_CRF_OFFSET, crf_offsets

    results = _sample_results({0: 12.0, 700: 0.0, 1400: -30.0})
    points = trial_points(results)  # title VMAF at CRF 19: 93 - 6 = 87
    offsets = dict(crf_offsets(results, points, 720, 19.0))
    # the easy sample reaches 87 at CRF 19 + 18 / 1.5 = 31: inside its curve
    assert offsets[50] == pytest.approx(MAX_CRF_OFFSET)  # 12 steps, capped
    assert offsets[1450] == pytest.approx(-MAX_CRF_OFFSET)  # far below its curve: capped
    assert offsets[750] == pytest.approx((87 - 93) / SLOPE)  # 4 steps up, along its curve


def test_a_chunk_takes_the_change_interpolated_at_its_middle_frame():
    from media.plan.rate_control import chunk_crf

    rendition = Rendition("720p-1000k", 1280, 720, 26.0, 1500, 3000, target_vmaf=82.5,
                          crf_offsets=((50, 2.0), (750, 0.0), (1450, -2.0)))
    crf_of = {start: chunk_crf(rendition, ChunkSpan(0, start, 100)).crf
              for start in (0, 300, 700, 1050, 1400)}
    # middles 50 (a sample), 350 (3/7 of the way from 2 to 0), 750, 1100 (halfway), 1450
    assert crf_of == {0: 28.0, 300: 27.1, 700: 26.0, 1050: 25.0, 1400: 24.0}
    before = chunk_crf(rendition, ChunkSpan(0, 0, 20))  # middle 10: before the first sample
    assert before.crf == 28.0
    assert chunk_crf(Rendition("a", 1280, 720, 26.0, 1500, 3000), ChunkSpan(0, 0, 100)).crf == 26.0


def test_chunk_crfs_follow_a_title_that_gets_harder():
    """Chunks between samples of rising difficulty get falling CRFs: the first encodes
    follow the content instead of missing the target on both ends."""
    from media.plan.planning import crf_offsets
    from media.plan.rate_control import chunk_crf

    results = _sample_results({0: 4.0, 500: 2.0, 1000: 0.0, 1500: -2.0, 2000: -4.0})
    points = trial_points(results)
    [rung] = renditions_from_rungs([PlannedRung(720, 1280, 26.0, 1000.0, 82.5, 1500, 3000)],
                                   points, results)
    assert rung.crf_offsets == crf_offsets(results, points, 720, 26.0)
    crfs = [chunk_crf(rung, ChunkSpan(i, i * 200, 200)).crf for i in range(10)]
    assert crfs == sorted(crfs, reverse=True) and crfs[0] > 26.0 > crfs[-1]


def test_the_aim_is_the_middle_of_the_gates_window():
    from media.core.config import JobConfig
    from media.plan.rate_control import gate_aim

    rendition = Rendition("a", 1280, 720, 26.0, 1500, 3000, target_vmaf=90.0)
    assert gate_aim(rendition, JobConfig(output_root="/o")) == 90.5  # window [89, 92]
    assert gate_aim(rendition, JobConfig(output_root="/o", gate_below=2.0, gate_above=2.0)) == 90.0


def test_a_retry_from_above_aims_between_the_target_and_the_windows_top():
    from media.core.config import JobConfig
    from media.plan.rate_control import retry_aim

    config = JobConfig(output_root="/o")  # window [target - 1, target + 2]
    # the grainy title's 540p rung: 69.72 at CRF 32.6, its rung's slope 1.33 per step
    rung = Rendition("540p", 960, 540, 32.6, 292, 584, target_vmaf=65.5, vmaf_per_crf=-1.33)
    too_good = [Attempt(32.6, 250.0, 69.72)]
    assert retry_aim(rung, config, 1) == 66.5
    crf = next_crf(rung, too_good, retry_aim(rung, config, 1))
    assert crf == 35.0
    # the chunk's own curve fell 2.0 per step: it lands at 64.9, inside the window
    # (aimed at the window's middle it went to CRF 35.4 and 64.1, under it)
    assert 64.5 <= 69.72 - 2.0 * (crf - 32.6) <= 67.5
    assert next_crf(rung, too_good, retry_aim(rung, config, 0)) == 35.4
    # from below, the middle of the window, as the first encodes aim
    assert retry_aim(rung, config, -1) == 66.0


def test_next_crf_can_aim_above_the_target():
    rendition = Rendition("a", 1280, 720, 26.0, 1500, 3000, target_vmaf=90.0, vmaf_per_crf=-2.0)
    first = [Attempt(26.0, 900.0, 88.0)]
    assert next_crf(rendition, first) == 25.0  # 2 VMAF short: one CRF step down
    assert next_crf(rendition, first, aim=90.5) == 24.8


def test_crf_changes_scale_to_the_final_presets_slope_within_bounds():
    from media.plan.rate_control import OFFSET_SCALE, scaled_offsets

    rendition = Rendition("a", 1280, 720, 26.0, 1500, 3000, crf_offsets=((50, 1.0),
                                                                          (750, -2.0)))
    assert scaled_offsets(rendition, 2.0).crf_offsets == ((50, 2.0), (750, -4.0))
    assert scaled_offsets(rendition, 9.0).crf_offsets == (
        (50, OFFSET_SCALE[1]), (750, -2 * OFFSET_SCALE[1]))
    assert scaled_offsets(rendition, 0.1).crf_offsets == (
        (50, OFFSET_SCALE[0]), (750, -2 * OFFSET_SCALE[0]))


@pytest.mark.parametrize("maxrate, kbps, held", [
    (1000, 1130, True),   # VBV lets the average run a little over the cap
    (1000, 900, True),
    (1000, 600, False),   # room under the cap: a lower CRF can spend more
    (0, 5000, False),     # uncapped (a trial, or plain CRF)
])
def test_a_chunk_at_its_rungs_vbv_cap_is_held_by_it(maxrate, kbps, held):
    rendition = Rendition("720p", 1280, 720, 26.0, maxrate, 2 * maxrate, target_vmaf=80.0)
    assert held_by_cap(rendition, Attempt(26.0, kbps, 70.0)) is held


def _rung(height: int, crf: float, maxrate: int, target: float) -> Rendition:
    return Rendition(f"{height}p-{maxrate}k", height * 16 // 9, height, crf, maxrate,
                     2 * maxrate, target_vmaf=target)


# The first calibration round on a 1 s sample at 1080p: four rungs of one size, each
# encoded at its own CRF, on one curve of VMAF over CRF; and a 720p rung. A 1 s sample
# may average 2.8x its rung's cap (buffer 2x the cap, 90 % full at the start): each rate
# is under 0.6 of that for the rung below.
SAMPLE_S = 1.0
FIRST_ROUND = [(_rung(1080, 21.0, 12000, 93.0), Attempt(21.0, 12000.0, 93.7)),
               (_rung(1080, 25.0, 7700, 88.0), Attempt(25.0, 7000.0, 89.6)),
               (_rung(1080, 28.0, 4600, 81.0), Attempt(28.0, 4500.0, 83.5)),
               (_rung(1080, 31.0, 2800, 74.0), Attempt(31.0, 2500.0, 77.6)),
               (_rung(720, 26.0, 1650, 66.0), Attempt(26.0, 700.0, 70.3))]


def test_a_rung_between_two_encodes_of_its_size_is_placed_between_them():
    rung, first = FIRST_ROUND[1]
    # aims under its own first score (89.6) and above the next rung's (83.5)
    high, low = bracketing_attempts(rung, 86.0, FIRST_ROUND, SAMPLE_S)
    assert (high, low) == (first, FIRST_ROUND[2][1])
    # the secant between them places its CRF: no encode of its own needed
    assert next_crf(rung, [high, low], 86.0) == pytest.approx(
        25.0 + (89.6 - 86.0) / (89.6 - 83.5) * 3.0, abs=0.05)
    # the nearest pair either side, whoever's encodes they were
    assert bracketing_attempts(FIRST_ROUND[0][0], 92.0, FIRST_ROUND, SAMPLE_S) == (
        FIRST_ROUND[0][1], FIRST_ROUND[1][1])


def test_no_bracket_past_the_sizes_ends_across_sizes_or_far_apart():
    lowest = FIRST_ROUND[3][0]
    assert bracketing_attempts(lowest, 75.0, FIRST_ROUND, SAMPLE_S) is None  # nothing below 77.6
    top = FIRST_ROUND[0][0]
    assert bracketing_attempts(top, 95.0, FIRST_ROUND, SAMPLE_S) is None  # nothing above 93.7
    # the 720p rung's aim lies between 1080p scores, but not on its own size's curve
    assert bracketing_attempts(FIRST_ROUND[4][0], 85.0, FIRST_ROUND, SAMPLE_S) is None
    # encodes more than BORROW_SPAN CRF steps apart do not bracket
    sparse = [FIRST_ROUND[0], FIRST_ROUND[3]]
    assert bracketing_attempts(top, 85.0, sparse, SAMPLE_S) is None


def test_a_sample_may_average_well_over_its_rungs_cap():
    # 1 s: the cap's worth flows in, and the buffer (twice the cap) starts 90 % full
    assert sample_budget_kbps(FIRST_ROUND[1][0], 1.0) == pytest.approx(7700 * 2.8)
    # a 12 s chunk: about the cap
    assert sample_budget_kbps(FIRST_ROUND[1][0], 12.0) == pytest.approx(7700 * 1.15)
    assert sample_budget_kbps(dataclasses.replace(FIRST_ROUND[1][0], maxrate_kbps=0), 1.0) == 0


def test_an_encode_near_either_rungs_cap_does_not_bracket():
    rung, first = FIRST_ROUND[1]
    # the next rung's encode ran at 0.7 of what its cap allows the sample
    capped = (FIRST_ROUND[2][0], Attempt(28.0, 0.7 * 2.8 * 4600, 83.5))
    assert bracketing_attempts(rung, 86.0, [FIRST_ROUND[1], capped], SAMPLE_S) is None
    # the rung's own encode ran near its own cap
    near = (FIRST_ROUND[1][0], Attempt(25.0, 0.7 * 2.8 * 7700, 89.6))
    assert bracketing_attempts(rung, 86.0, [near, FIRST_ROUND[2]], SAMPLE_S) is None
    # a higher rung's encode, well under its own cap, near the cap of the rung placed
    lower = FIRST_ROUND[3][0]
    assert bracketing_attempts(lower, 80.0, FIRST_ROUND, SAMPLE_S) == (
        FIRST_ROUND[2][1], FIRST_ROUND[3][1])
    assert bracketing_attempts(lower, 80.0, [(FIRST_ROUND[2][0], Attempt(
        28.0, 0.7 * 2.8 * 2800, 83.5)), FIRST_ROUND[3]], SAMPLE_S) is None
    # on a longer sample the same rates would be near the caps
    assert bracketing_attempts(rung, 86.0, FIRST_ROUND, 12.0) is None
    # an uncapped rung (maxrate 0) lends and borrows freely
    free = dataclasses.replace(rung, maxrate_kbps=0, bufsize_kbit=0)
    assert bracketing_attempts(free, 86.0, [(free, first), FIRST_ROUND[2]],
                               SAMPLE_S) is not None


def _two_samples(hard_kbps_at_20: float) -> list[TrialResult]:
    """720p trials at CRF 20 and 32 of an easy sample (frames 0-99: 2000 and 500 kb/s,
    VMAF 90 and 78) and a hard one (frames 500-599: VMAF 86 and 74, its rate falling
    four times over the same 12 steps)."""
    src = _source()

    def sample(seg, crf, kbps, vmaf):
        task = TrialTask(src, ((1280, 720),), (20.0, 32.0), ChunkSpan(seg, seg * 100, 100),
                         0, 4, GRID, "/o", EncodeSettings())
        return TrialResult(task, 1280, 720, crf, 0, round(kbps * 1000 / 8 * 4), 100, vmaf)

    return [sample(0, 20.0, 2000, 90.0), sample(0, 32.0, 500, 78.0),
            sample(5, 20.0, hard_kbps_at_20, 86.0), sample(5, 32.0, hard_kbps_at_20 / 4, 74.0)]


# The easy sample reaches the title's VMAF 82 at CRF 28, two steps over the rung's 26,
# at 2000 x 4^(-8/12) = 794 kb/s; the hard one two steps under, at CRF 24.
EASY_AT_OWN_CRF = 2000 * 4 ** (-8 / 12)


@pytest.mark.parametrize("hard_kbps_at_20, title_kbps, cap_kbps", [
    # Pooled: 3000 and 750 kb/s, VMAF 88 and 76; at CRF 26 the title gives VMAF 82 at
    # 1500 kb/s. The hard sample needs 4000 x 4^(-4/12) = 2520 kb/s at CRF 24; with
    # the easy one at CRF 28 the rung averages 1657: the hard one at 1.52 times that.
    (4000, 1500, 2520),
    # Twice as hard: 5040 kb/s, 2.02 times the hull's 2500 but 1.73 times the 2917
    # the rung will average: its cap makes room for all of it.
    (8000, 2500, 5040),
    # Hardly harder: 1512 kb/s, 1.31 times the rung's average of 1153: the cap stays at
    # 1.5 times that average (1.05 times the hull's 1100).
    (2400, math.sqrt(2200 * 550), 1.5 * (2400 * 4 ** (-1 / 3) + EASY_AT_OWN_CRF) / 2),
])
def test_a_rungs_cap_leaves_room_for_its_hardest_sample(hard_kbps_at_20, title_kbps,
                                                        cap_kbps):
    results = _two_samples(hard_kbps_at_20)
    points = trial_points(results)
    rung = PlannedRung(height=720, width=1280, crf=26.0, kbps=title_kbps, vmaf=82.0,
                       maxrate_kbps=round(1.5 * title_kbps),
                       bufsize_kbit=round(3 * title_kbps))
    [rendition] = renditions_from_rungs([rung], points, results)
    assert rendition.maxrate_kbps == pytest.approx(cap_kbps, rel=0.01)
    assert rendition.bufsize_kbit == 2 * rendition.maxrate_kbps
    # Without the samples the cap is the plain 1.5 times the average.
    [plain] = renditions_from_rungs([rung], points)
    assert plain.maxrate_kbps == round(1.5 * title_kbps)


def test_a_rungs_cap_weighs_the_samples_and_keeps_to_the_hls_limit():
    """The easy sample standing for three segments to the hard one's one: the title
    gives VMAF 83 at CRF 26 (1750 kb/s), which the easy sample reaches at CRF 27 (891
    kb/s) and the hard one at CRF 23 (5657 kb/s). The rung averages (3 x 891 + 5657) / 4
    = 2082 kb/s, and its hardest stretch would need 2.7 times that, over the HLS limit:
    the cap is twice the average the rung will have."""
    results = _two_samples(8000)
    weights = {0: 3, 5: 1}
    points = trial_points(results, weights)
    # kbps: the hull's at CRF 26, the samples' 1000 and 4000 kb/s weighed 3 to 1
    rung = PlannedRung(height=720, width=1280, crf=26.0, kbps=(3 * 1000 + 4000) / 4,
                       vmaf=82.0, maxrate_kbps=0, bufsize_kbit=0)
    [rendition] = renditions_from_rungs([rung], points, results, weights)
    hard = 8000 * 4 ** (-3 / 12)
    average = (3 * 2000 * 4 ** (-7 / 12) + hard) / 4
    assert rendition.maxrate_kbps == pytest.approx(2 * average, rel=0.01)
    spread = rate_spread(results, 720, 26.0, rendition.crf_offsets, weights)
    assert spread.average == pytest.approx(average / rung.kbps, rel=0.01)
    assert spread.peak == pytest.approx(hard / average, rel=0.01)
    assert rate_spread(results, 1080, 26.0, rendition.crf_offsets) == RateSpread()


def test_the_caps_follow_the_crf_changes_the_calibration_carried_over():
    """Where the final preset needs half the trial's CRF changes for the same quality,
    the hard stretch takes 4^(1/12) more rate, not 4^(2/12): the cap, worked out again
    from the halved changes, is lower, and the rendition is named by it."""
    from media.plan.planning import recapped
    from media.plan.rate_control import scaled_offsets

    results = _two_samples(4000)
    points = trial_points(results)
    rung = PlannedRung(height=720, width=1280, crf=26.0, kbps=1500.0, vmaf=82.0,
                       maxrate_kbps=0, bufsize_kbit=0)
    [planned] = renditions_from_rungs([rung], points, results)
    [halved] = recapped([scaled_offsets(planned, 0.5)], [rung], results)
    hard, easy = 4000 * 4 ** (-5 / 12), 2000 * 4 ** (-7 / 12)
    assert halved.maxrate_kbps == pytest.approx(1.5 * (hard + easy) / 2, rel=0.01)
    assert halved.maxrate_kbps < planned.maxrate_kbps
    assert halved.rendition_id == f"720p-{halved.maxrate_kbps}k"
    assert halved.bufsize_kbit == 2 * halved.maxrate_kbps
    assert halved.crf_offsets == ((50, 1.0), (550, -1.0))


@pytest.mark.parametrize("frames, segments", [
    # a looped 16 s source with 4 frames past its last whole segment: the tail is left
    # out (a 4-frame trial measures its keyframe, and pulled its chunk's CRF 3.9 down)
    (404, [0, 2, 3]),
    # a tail of 30 frames holds a 1 s (25-frame) sample: it is a segment like the others
    (430, [0, 2, 4]),
])
def test_trial_samples_leave_out_a_tail_shorter_than_a_sample(frames, segments):
    from media.core.config import JobConfig
    from media.plan.trials import sample_spans

    source = dataclasses.replace(_source(640, 360), frame_count=frames)
    spans, probe = sample_spans(source, JobConfig(output_root="/o"), SegmentGrid(100,
                                Fraction(25), 3))
    assert [s.index for s in spans] == segments
    assert probe in segments
    assert all(s.frame_count == 25 for s in spans)


def _noise_probe(folder, name: str, pattern: str):
    """A 4 s 320x180 clip of FFmpeg's `pattern`, its probe trials on its second
    segment's first second (veryfast, 180p and 90p, CRF 19 and 33)."""
    from media.core import ffmpeg
    from media.encode.commands import chunk_window_s
    from media.encode.staging import stage_span
    from media.plan.trials import run_trials

    clip = str(folder / f"{name}.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", pattern.format(size="size=320x180:rate=25:duration=4"),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", "50",
        "-pix_fmt", "yuv420p", clip))
    src = SourceInfo(source_uri=clip, title_id=name, container="mov", video_codec="h264",
                     width=320, height=180, frame_rate=Fraction(25), frame_count=100,
                     video_start_s=0.0, pix_fmt="yuv420p")
    task = TrialTask(source=src, sizes=((320, 180), (160, 90)), crfs=(19.0, 33.0),
                     span=ChunkSpan(1, 50, 25), trial_index=0, trial_count=4,
                     grid=SegmentGrid(50, Fraction(25)), output_root=str(folder / "out"),
                     settings=EncodeSettings(preset="veryfast", threads=1),
                     vmaf_height=180, vmaf_subsample=5)
    scratch = folder / f"scratch-{name}"
    scratch.mkdir()
    staged = stage_span(clip, *chunk_window_s(src, task.span), str(scratch / "span.mkv"), clip)
    encodes = run_trials(task, staged, str(scratch))[0]
    return task, [TrialResult(task, e.width, e.height, e.crf, i, e.size_bytes, e.frames,
                              e.vmaf_mean, keyframe_bytes=e.keyframe_bytes)
                  for i, e in enumerate(encodes)]


def test_a_noisy_probe_is_calibrated_on_its_whole_segment(tmp_path):
    from media.plan.per_title import NOISY_INTER_SHARE, calibration_span
    from media.plan.planning import inter_share

    clean_task, clean = _noise_probe(tmp_path, "clean", "testsrc={size}")
    noisy_task, noisy = _noise_probe(tmp_path, "noisy",
                                     "testsrc2={size},noise=alls=16:allf=t+u")
    # at CRF 33 the frames after a clean, slow sample's keyframe cost next to nothing;
    # under temporal noise each costs a good share of the keyframe
    assert inter_share(clean) < NOISY_INTER_SHARE < inter_share(noisy)
    assert calibration_span(clean_task, clean) == ChunkSpan(1, 50, 25)
    assert calibration_span(noisy_task, noisy) == ChunkSpan(1, 50, 50)
    # without a measured keyframe (trial records of older runs): the probe sample itself
    assert calibration_span(noisy_task, [dataclasses.replace(
        r, keyframe_bytes=0) for r in noisy]) == ChunkSpan(1, 50, 25)


def test_a_segment_long_calibration_is_set_against_the_trials_counted_over_it():
    from media.plan.prediction import preset_factors

    src = _source(320, 180)
    task = TrialTask(src, ((320, 180),), (19.0, 33.0), ChunkSpan(0, 0, 25), 0, 2, GRID,
                     "/o", EncodeSettings())
    # 25 frames: a 20 kB keyframe and 24 frames of 2 kB (of 1 kB at CRF 33)
    sample = [TrialResult(task, 320, 180, crf, 0, 20_000 + 24 * rest, 25, 90.0,
                          keyframe_bytes=20_000) for crf, rest in ((19.0, 2_000),
                                                                    (33.0, 1_000))]
    rung = Rendition("180p", 320, 180, 19.0, 0, 0, target_vmaf=90.0)
    # over the 100 frames of a 4 s calibration sample, the trial would spend
    # 20 + 99 x 2 kB: 436 kb/s; an encode that spent that is the trial's rate
    over_segment = (20_000 + 99 * 2_000) * 8 / 4 / 1000
    [(crf, ln)] = preset_factors({"tries": [[19.0, 90.0, over_segment]]}, rung, sample, 4.0)
    assert (crf, ln) == (19.0, pytest.approx(0.0, abs=1e-9))
    # a 1 s calibration: the sample's own bytes, its keyframe included
    own = (20_000 + 24 * 2_000) * 8 / 1000
    [(_, ln)] = preset_factors({"tries": [[19.0, 90.0, own]]}, rung, sample, 1.0)
    assert ln == pytest.approx(0.0, abs=1e-9)
