"""Known answers for the per-title hull and ladder planning in media/plan/hull.py.

The point sets are built so that the answer is known by construction:

- a small table on a power-of-two rate grid, whose hull is worked by hand below;
- an "envelope" model: every resolution's curve touches one concave function H (the
  ideal hull) at its home rate and falls below it by κ·(ln rate/home)² elsewhere, so
  two neighbouring curves cross exactly at the geometric mean of their home rates;
- a CRF model for the planner: x264's rule of thumb, the rate halves every 6 CRF, so
  CRF is exactly linear in ln(rate) and the planner's interpolated CRF can be checked
  against the model's truth.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from media.plan.hull import (
    BUFSIZE_RATIO,
    CRF_EXTRAPOLATION,
    MAXRATE_RATIO,
    PlannedRung,
    TrialPoint,
    choose_rungs,
    curves,
    upper_hull,
)

VMAF_TOL = 0.5
"""A planned rung's VMAF against its target, VMAF points."""
RATIO_TOL = 0.01
"""Successive rung rates against step_ratio, relative."""

WIDTHS = {360: 640, 540: 960, 720: 1280, 1080: 1920}


def pt(height: int, kbps: float, vmaf: float, crf: float = 23.0) -> TrialPoint:
    return TrialPoint(height=height, width=WIDTHS.get(height, height * 16 // 9), crf=crf,
                      kbps=kbps, vmaf=vmaf)


def heights(points: list[TrialPoint]) -> list[int]:
    return [p.height for p in points]


# --- the envelope model ---------------------------------------------------------------

HOME_KBPS = {360: 300.0, 540: 800.0, 720: 1800.0, 1080: 5000.0}
KAPPA = 2.0
"""VMAF lost per (ln rate distance from home)²."""
CROSSOVERS = {(360, 540): math.sqrt(300 * 800), (540, 720): math.sqrt(800 * 1800),
              (720, 1080): math.sqrt(1800 * 5000)}
"""Where neighbouring curves cross: H − κ(x − a)² = H − κ(x − b)² at x = (a + b)/2."""


def ideal_hull(kbps: float) -> float:
    """H: concave and rising in ln(rate); 30 at 100 kb/s, 95 near 6.9 Mb/s."""
    return 100 - 70 * math.exp(-math.log(kbps / 100) / 1.6)


def envelope_vmaf(height: int, kbps: float) -> float:
    return max(0.0, ideal_hull(kbps) - KAPPA * math.log(kbps / HOME_KBPS[height]) ** 2)


def best_height(kbps: float) -> int:
    return max(HOME_KBPS, key=lambda h: envelope_vmaf(h, kbps))


COMMON_GRID = [100 * 2 ** (k / 4) for k in range(29)]  # 100 kb/s to 12.8 Mb/s


def envelope_points(rates: list[float] = COMMON_GRID) -> list[TrialPoint]:
    return [pt(h, r, envelope_vmaf(h, r)) for h in HOME_KBPS for r in rates]


# --- the CRF model (planner tests) --------------------------------------------------------

KBPS_AT_CRF23 = {360: 400.0, 540: 900.0, 720: 1800.0, 1080: 4000.0}
CRF_GRID = list(range(12, 49, 2))


def model_kbps(height: int, crf: float, at_crf23: dict[int, float] = KBPS_AT_CRF23) -> float:
    return at_crf23[height] * 2 ** (-(crf - 23) / 6)


def crf_points(vmaf_of=envelope_vmaf, at_crf23: dict[int, float] = KBPS_AT_CRF23,
               crfs: list[int] = CRF_GRID) -> list[TrialPoint]:
    points = []
    for height, crf in itertools.product(at_crf23, crfs):
        kbps = model_kbps(height, crf, at_crf23)
        points.append(pt(height, kbps, vmaf_of(height, kbps), crf=crf))
    return points


# --- TrialPoint and curves ----------------------------------------------------------------

@pytest.mark.parametrize("kbps, vmaf", [(0.0, 50.0), (-1.0, 50.0), (math.nan, 50.0),
                                        (100.0, math.inf)])
def test_trial_point_rejects_unusable_measurements(kbps, vmaf):
    with pytest.raises(ValueError, match="trial"):
        pt(360, kbps, vmaf)


def test_curves_sort_group_and_keep_each_heights_pareto_front():
    points = [
        pt(720, 2000, 90), pt(720, 500, 70), pt(720, 1000, 80),
        pt(720, 1000, 80),        # exact duplicate: collapses
        pt(720, 1000, 78),        # same rate, worse: dropped
        pt(720, 1500, 79),        # dearer than 1000 kb/s but worse: dropped
        pt(720, 3000, 90),        # no better than 2000 kb/s: dropped
        pt(360, 400, 60), pt(360, 200, 50),
    ]
    got = curves(points)
    assert list(got) == [360, 720]
    assert [(p.kbps, p.vmaf) for p in got[360]] == [(200, 50), (400, 60)]
    assert [(p.kbps, p.vmaf) for p in got[720]] == [(500, 70), (1000, 80), (2000, 90)]
    assert curves(list(reversed(points))) == got


# --- upper_hull -------------------------------------------------------------------------------

def test_upper_hull_hand_worked_table():
    # Rates 2^k kb/s, so x = k·ln 2 and convexity can be checked in k.
    # Best per k: 7:40(360) 8:55(360) 9:66(720) 10:78(720) 11:86(1080) 12:93 13:96(1080).
    # Slopes per unit k: 15, 11, 12, 8, 7, 3 — 11 then 12 is a convex kink, so (9, 66)
    # lies under the chord (8,55)-(10,78) (66.5 there) and drops out. The rest is concave.
    table = {
        360: [(7, 40), (8, 55), (9, 64), (10, 68), (11, 70)],
        720: [(8, 45), (9, 66), (10, 78), (11, 85), (12, 88)],
        1080: [(10, 72), (11, 86), (12, 93), (13, 96)],
    }
    points = [pt(h, 2.0**k, v) for h, rows in table.items() for k, v in rows]
    hull = upper_hull(points)
    assert [(p.height, math.log2(p.kbps), p.vmaf) for p in hull] == [
        (360, 7, 40), (360, 8, 55), (720, 10, 78), (1080, 11, 86), (1080, 12, 93),
        (1080, 13, 96)]


def test_upper_hull_follows_the_envelope_and_switches_at_the_crossovers():
    points = envelope_points()
    hull = upper_hull(points)
    assert heights(hull) == sorted(heights(hull))
    assert set(heights(hull)) == set(HOME_KBPS)
    for left, right in itertools.pairwise(hull):
        if left.height != right.height:
            crossover = CROSSOVERS[(left.height, right.height)]
            assert left.kbps <= crossover <= right.kbps
    for point in hull:
        assert point.height == best_height(point.kbps)


def _hull_vmaf(hull: list[TrialPoint], kbps: float) -> float:
    for left, right in itertools.pairwise(hull):
        if left.kbps <= kbps <= right.kbps:
            t = math.log(kbps / left.kbps) / math.log(right.kbps / left.kbps)
            return left.vmaf + t * (right.vmaf - left.vmaf)
    raise AssertionError(f"{kbps} outside the hull")


def test_no_point_lies_above_the_hull():
    points = envelope_points()
    hull = upper_hull(points)
    for point in points:
        if hull[0].kbps <= point.kbps <= hull[-1].kbps:
            assert point.vmaf <= _hull_vmaf(hull, point.kbps) + 1e-9


def test_single_resolution_gives_its_own_pareto_front():
    # A concave curve plus noise: a duplicate, a dip, and a point past saturation.
    clean = [pt(720, r, envelope_vmaf(720, r)) for r in COMMON_GRID[:20]]
    noisy = [*clean, clean[5], pt(720, clean[7].kbps * 1.05, clean[6].vmaf - 1),
             pt(720, 50_000, clean[-1].vmaf)]
    assert curves(noisy)[720] == clean
    assert upper_hull(noisy) == clean


def _brute_force_frontier(points: list[TrialPoint]) -> set[tuple[float, float]]:
    """Vertices of the rising upper hull by definition, O(n³): Pareto-optimal points not
    on or under a chord between two other Pareto-optimal points around them."""
    pairs = {(p.kbps, p.vmaf) for p in points}
    pareto = sorted(p for p in pairs
                    if not any(q != p and q[0] <= p[0] and q[1] >= p[1] for q in pairs))
    kept = set()
    for i, (rate, vmaf) in enumerate(pareto):
        x = math.log(rate)
        under = any(
            vmaf <= ya + (yb - ya) * (x - math.log(ra)) / (math.log(rb) - math.log(ra)) + 1e-12
            for (ra, ya), (rb, yb) in itertools.product(pareto[:i], pareto[i + 1:]))
        if not under:
            kept.add((rate, vmaf))
    return kept


@pytest.mark.parametrize("seed", range(20))
def test_upper_hull_matches_the_definition_on_random_sets(seed):
    rng = random.Random(seed)
    points = [pt(rng.choice([360, 720, 1080]), round(rng.uniform(100, 8000)),
                 round(rng.uniform(20, 99), 1)) for _ in range(rng.randint(1, 30))]
    hull = upper_hull(points)
    assert {(p.kbps, p.vmaf) for p in hull} == _brute_force_frontier(points)
    assert [p.kbps for p in hull] == sorted(p.kbps for p in hull)
    shuffled = points[:]
    rng.shuffle(shuffled)
    assert upper_hull(shuffled) == hull


def test_upper_hull_of_nothing_is_empty():
    assert upper_hull([]) == []


# --- choose_rungs ----------------------------------------------------------------------------

def assert_well_formed(rungs: list[PlannedRung], min_kbps: float, step_ratio: float) -> None:
    rates = [r.kbps for r in rungs]
    assert rates == sorted(rates, reverse=True)
    assert heights(rungs) == sorted(heights(rungs), reverse=True)
    for above, below in itertools.pairwise(rungs):
        if below.kbps != pytest.approx(min_kbps):  # the floor rung is the one exception
            assert above.kbps / below.kbps == pytest.approx(step_ratio, rel=RATIO_TOL)
        else:
            assert math.sqrt(step_ratio) - 1e-9 <= above.kbps / below.kbps <= step_ratio
    for rung in rungs:
        assert 0 <= rung.crf <= 51
        assert rung.maxrate_kbps == round(MAXRATE_RATIO * rung.kbps)
        assert rung.bufsize_kbit == round(BUFSIZE_RATIO * rung.maxrate_kbps)


def test_ladder_on_the_crf_model():
    rungs = choose_rungs(crf_points(), top_vmaf=95.0, min_kbps=200.0, step_ratio=1.7)
    assert_well_formed(rungs, 200.0, 1.7)
    top = rungs[0]
    assert top.height == 1080
    assert top.vmaf == pytest.approx(95.0, abs=VMAF_TOL)
    # The model's own truth at the planned CRF: the interpolation did not mislead.
    truth = envelope_vmaf(1080, model_kbps(1080, top.crf))
    assert truth == pytest.approx(95.0, abs=VMAF_TOL)
    assert model_kbps(1080, top.crf) == pytest.approx(top.kbps, rel=1e-9)
    # The walk: every rate top/1.7^k down to 200 kb/s, then the floor itself.
    assert rungs[-1].kbps == pytest.approx(200.0)
    assert rungs[-2].kbps / 1.7 < 200.0
    # Each rung sits on the resolution the envelope says is best at its rate.
    assert heights(rungs) == [best_height(r.kbps) for r in rungs]
    assert heights(rungs) == [1080, 1080, 720, 720, 540, 540, 360, 360]


@pytest.mark.parametrize("step_ratio", [1.5, 1.7, 2.0])
@pytest.mark.parametrize("min_kbps", [150.0, 200.0, 400.0])
def test_the_bottom_rung_sits_within_half_a_step_above_the_floor(step_ratio, min_kbps):
    rungs = choose_rungs(crf_points(), min_kbps=min_kbps, step_ratio=step_ratio, max_rungs=20)
    assert_well_formed(rungs, min_kbps, step_ratio)
    # Tighter than "at least min_kbps / step_ratio": never below the floor, and the
    # floor rung is added whenever the walk stops more than half a step above it.
    assert min_kbps - 1e-9 <= rungs[-1].kbps <= min_kbps * math.sqrt(step_ratio)


def test_max_kbps_caps_the_top_rung():
    uncapped = choose_rungs(crf_points())
    capped = choose_rungs(crf_points(), max_kbps=3000.0)
    assert uncapped[0].kbps > 3000.0
    assert capped[0].kbps == pytest.approx(3000.0)
    assert_well_formed(capped, 200.0, 1.7)
    assert choose_rungs(crf_points(), max_kbps=50_000.0) == uncapped


def test_easy_source_gets_a_low_top_rung():
    # A flat source: every curve saturates near VMAF 99 within a few hundred kb/s.
    ceilings = {360: 96.0, 540: 97.5, 720: 98.5, 1080: 99.0}
    scales = {360: 20.0, 540: 40.0, 720: 60.0, 1080: 80.0}

    def flat(height: int, kbps: float) -> float:
        return max(0.0, ceilings[height] - 60 * (scales[height] / kbps) ** 2)

    rates = {360: 40.0, 540: 70.0, 720: 110.0, 1080: 200.0}
    rungs = choose_rungs(crf_points(flat, rates), top_vmaf=95.0, min_kbps=200.0)
    assert rungs[0].kbps < 1000.0
    assert rungs[0].vmaf == pytest.approx(95.0, abs=VMAF_TOL)
    assert len(rungs) <= 3
    assert_well_formed(rungs, 200.0, 1.7)


def test_top_is_the_best_trial_when_top_vmaf_is_never_reached():
    points = crf_points()
    rungs = choose_rungs(points, top_vmaf=99.5)
    best = upper_hull(points)[-1]
    assert (rungs[0].height, rungs[0].crf, rungs[0].kbps) == (best.height, best.crf,
                                                              pytest.approx(best.kbps))


def test_top_rung_is_made_good_on_its_own_curve_across_a_bridging_segment():
    # 360p tops out at 150 kb/s; 720p is poor below 400 kb/s. The hull bridges
    # (150, 94) to (800, 98) (720p's (400, 96) lies under that chord: 96.34 there) and
    # reaches 95 a quarter of the way along, at 150·(800/150)^0.25 = 228 kb/s. 360p has
    # no trial that dear; 720p gives only 83.9 there. So the top moves up 720p's curve
    # to its own 95: between (120, 70) and (400, 96), at 120·(400/120)^(25/26).
    points = [pt(360, 100, 90, crf=26), pt(360, 150, 94, crf=22),
              pt(720, 120, 70, crf=34), pt(720, 400, 96, crf=24), pt(720, 800, 98, crf=18)]
    top = choose_rungs(points, top_vmaf=95.0, min_kbps=100.0)[0]
    assert top.height == 720
    assert top.kbps == pytest.approx(120 * (400 / 120) ** (25 / 26))
    assert top.vmaf == pytest.approx(95.0)


def test_top_below_the_floor_gives_that_rung_and_one_a_step_below():
    points = [pt(360, k, v, crf=c) for k, v, c in [(20, 90, 30), (40, 96, 24), (80, 98, 18)]]
    rungs = choose_rungs(points, top_vmaf=95.0, min_kbps=200.0, step_ratio=1.7)
    assert len(rungs) == 2  # HLS authoring spec 9.9: more than one bit rate
    assert rungs[0].vmaf == pytest.approx(95.0, abs=VMAF_TOL)
    assert rungs[1].kbps == pytest.approx(rungs[0].kbps / 1.7)
    assert rungs[1].vmaf < rungs[0].vmaf
    assert len(choose_rungs(points, top_vmaf=95.0, min_kbps=200.0, max_rungs=1)) == 1


def test_max_rungs_keeps_the_tallest():
    full = choose_rungs(crf_points(), max_rungs=20)
    assert choose_rungs(crf_points(), max_rungs=3) == full[:3]


def test_crf_extrapolation_is_bounded_and_never_repeats_an_encode():
    # One resolution trial-encoded at CRF 20..30 only (178 to 565 kb/s); a floor far
    # below makes the walk ask for rates the grid cannot reach.
    points = [pt(360, model_kbps(360, c), 100 - c, crf=c) for c in range(20, 31, 2)]
    rungs = choose_rungs(points, top_vmaf=99.0, min_kbps=20.0, step_ratio=1.5)
    assert rungs[-1].crf == 30 + CRF_EXTRAPOLATION
    assert rungs[-1].kbps == pytest.approx(model_kbps(360, 34))
    assert all(r.crf <= 30 + CRF_EXTRAPOLATION for r in rungs)
    for above, below in itertools.pairwise(rungs):
        assert above.kbps / below.kbps >= math.sqrt(1.5) - 1e-9


def test_crf_extrapolation_stays_inside_x264_range():
    points = [pt(360, model_kbps(360, c), 100 - c, crf=c) for c in (44, 46, 48, 50)]
    rungs = choose_rungs(points, top_vmaf=99.0, min_kbps=1.0, step_ratio=1.5)
    assert max(r.crf for r in rungs) == 51


def test_height_never_grows_as_the_rate_falls():
    # A noisy hull: 360p (300, 800 kb/s) and 1080p (400, 1600 kb/s) points interleave;
    # all four are hull vertices (slopes 34.7, 28.9, 21.6 VMAF per ln-rate unit).
    points = [pt(360, 300, 40, crf=30), pt(360, 800, 70, crf=22),
              pt(1080, 400, 50, crf=32), pt(1080, 1600, 85, crf=24)]
    assert heights(upper_hull(points)) == [360, 1080, 360, 1080]
    rungs = choose_rungs(points, top_vmaf=85.0, min_kbps=300.0, step_ratio=2.0)
    # 1600 kb/s on 1080p; 800 on 360p; at 400 the hull says 1080p, held at 360p.
    assert [(r.height, round(r.kbps)) for r in rungs] == [(1080, 1600), (360, 800), (360, 400)]


def test_plan_does_not_depend_on_input_order():
    points = crf_points()
    shuffled = points[:]
    random.Random(7).shuffle(shuffled)
    assert choose_rungs(shuffled) == choose_rungs(points)


@pytest.mark.parametrize("kwargs, message", [
    ({"top_vmaf": 0.0}, "top_vmaf"),
    ({"top_vmaf": 101.0}, "top_vmaf"),
    ({"min_kbps": 0.0}, "min_kbps"),
    ({"max_kbps": 100.0, "min_kbps": 200.0}, "max_kbps"),
    ({"step_ratio": 1.0}, "step_ratio"),
    ({"max_rungs": 0}, "max_rungs"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose_rungs(crf_points(), **kwargs)


def test_no_trials_raise():
    with pytest.raises(ValueError, match="trial-encode"):
        choose_rungs([])


def test_a_rate_a_hair_under_a_taller_curve_goes_to_that_curve():
    # A flat, cartoon-like title (measured): the hull reaches VMAF 95 at 114.2 kb/s, just
    # under 1080p's cheapest trial (114.8 kb/s, VMAF 95.1). 720p covers that rate but gives
    # only 90 there; the top rung must be 1080p at about 95, not 720p at 90.
    points = [
        pt(720, 172.0, 90.5, 19), pt(720, 106.0, 90.0, 26), pt(720, 77.1, 88.2, 33),
        pt(1080, 272.8, 97.8, 19), pt(1080, 161.5, 97.6, 26), pt(1080, 114.8, 95.1, 33),
        pt(540, 121.0, 85.6, 19), pt(540, 77.0, 84.2, 26), pt(540, 59.4, 81.2, 33),
    ]
    top = choose_rungs(points, top_vmaf=95.0, max_kbps=8000, min_kbps=145, step_ratio=1.7,
                       max_rungs=8)[0]
    assert top.height == 1080
    assert top.vmaf == pytest.approx(95.0, abs=0.2)
    assert 33 <= top.crf <= 33 + 1


def test_rungs_under_a_long_hull_edge_go_to_the_curve_that_gives_most():
    # A very detailed title (a deep fractal zoom, measured): every curve sags under the
    # chord from 234p's cheapest trial (VMAF 0) to 1080p's best, so the hull is that one
    # edge. Rungs along it belong to the resolutions in between, not to its two ends:
    # at 1.1 Mb/s 234p (extrapolated to CRF 15) predicts VMAF 23, 540p gives 37.
    points = [
        pt(234, 603, 15.1, 19), pt(234, 206, 1.9, 26), pt(234, 92, 0.0, 33),
        pt(540, 4666, 55.5, 19), pt(540, 1392, 41.7, 26), pt(540, 387, 15.4, 33),
        pt(720, 9794, 67.9, 19), pt(720, 3350, 55.3, 26), pt(720, 742, 28.9, 33),
        pt(1080, 29360, 91.8, 19), pt(1080, 14013, 78.8, 26), pt(1080, 3803, 52.8, 33),
    ]
    assert heights(upper_hull(points)) == [234, 1080]
    rungs = choose_rungs(points, top_vmaf=95.0, min_kbps=145, step_ratio=1.7)
    assert [r.height for r in rungs] == sorted((r.height for r in rungs), reverse=True)
    assert {540, 720} <= {r.height for r in rungs}
    by_height = curves(points)
    for rung in rungs:
        # No curve that covers the rung's rate (and is no taller) gives more there.
        for height, curve in by_height.items():
            if height <= rung.height and curve[0].kbps <= rung.kbps <= curve[-1].kbps:
                left = [p for p in curve if p.kbps <= rung.kbps][-1]
                right = next(p for p in curve if p.kbps >= rung.kbps)
                share = (0.0 if right.kbps == left.kbps else
                         math.log(rung.kbps / left.kbps) / math.log(right.kbps / left.kbps))
                assert rung.vmaf >= left.vmaf + share * (right.vmaf - left.vmaf) - 1e-9
    at_1100 = min(rungs, key=lambda r: abs(math.log(r.kbps / 1100)))
    assert at_1100.height == 540 and at_1100.vmaf > 30
