"""Optimal allocation (media.plan.allocation) on synthetic curves whose optima are known:
equal chunks, an easy and a hard chunk, brute force over every CRF combination of small
cases, the floor, infeasible targets, and the curve fit and its correction."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from media.plan.allocation import (
    AllocationChunk,
    CurvePoint,
    RateQualityCurve,
    allocate,
    constant_allocation,
    fit_curve,
)

BITS_TOLERANCE = 0.01
"""The solver's bits within 1 % of the brute-force optimum (issue 29)."""
SLOPE_TOLERANCE = 0.15
"""Chunks' slopes dRate/dVMAF at their CRFs within 15 % of each other (one 0.1 step)."""


def curve(kbps_at_20: float, ln_per_crf: float, vmaf_at_20: float, vmaf_per_crf: float,
          curvature: float = 0.0) -> RateQualityCurve:
    """A known curve: ln kbps falls `ln_per_crf` a CRF from `kbps_at_20` at CRF 20, VMAF
    `vmaf_at_20` - `vmaf_per_crf`·(CRF-20) - `curvature`·(CRF-20)², over all of 0-51."""
    c0 = vmaf_at_20 + 20 * vmaf_per_crf - 400 * curvature
    return RateQualityCurve(
        ln_kbps_at_0=math.log(kbps_at_20) + 20 * ln_per_crf, ln_kbps_per_crf=-ln_per_crf,
        vmaf_coeffs=(c0, -vmaf_per_crf + 40 * curvature, -curvature), fit_span=(0.0, 51.0))


def random_curve(rng: random.Random) -> RateQualityCurve:
    slope = rng.uniform(0.6, 2.0)
    return curve(rng.uniform(300, 8000), rng.uniform(0.09, 0.15), rng.uniform(85, 99), slope,
                 rng.uniform(0, slope / 40))  # falling over all of 0-51


EASY = curve(kbps_at_20=800, ln_per_crf=0.12, vmaf_at_20=97, vmaf_per_crf=0.8)
HARD = curve(kbps_at_20=6000, ln_per_crf=0.11, vmaf_at_20=90, vmaf_per_crf=1.6)


def mean_vmaf(chunks, crfs) -> float:
    return (sum(c.curve.vmaf(x) * c.duration_s for c, x in zip(chunks, crfs, strict=True))
            / sum(c.duration_s for c in chunks))


def kbit(chunks, crfs) -> float:
    return sum(c.curve.kbps(x) * c.duration_s for c, x in zip(chunks, crfs, strict=True))


# --- (a) identical chunks: equal CRFs, the constant allocation -----------------------------


@pytest.mark.parametrize("curvature", [0.0, 0.02])
def test_identical_chunks_get_the_constant_allocation(curvature):
    shape = curve(2000, 0.12, 95, 1.2, curvature)
    chunks = [AllocationChunk(2.0, shape) for _ in range(12)]
    target = shape.vmaf(27.0)  # on the grid: the constant allocation has no slack
    optimal, constant = allocate(chunks, target), constant_allocation(chunks, target)
    assert optimal.feasible and constant.feasible
    assert [c.crf for c in optimal.choices] == [27.0] * 12
    assert [c.crf for c in constant.choices] == [27.0] * 12
    assert optimal.total_kbit == pytest.approx(constant.total_kbit, rel=1e-9)


def test_identical_chunks_off_the_grid_stay_within_a_step():
    shape = curve(2000, 0.12, 95, 1.2)
    chunks = [AllocationChunk(2.0, shape) for _ in range(12)]
    optimal, constant = allocate(chunks, 88.43), constant_allocation(chunks, 88.43)
    crfs = {c.crf for c in optimal.choices}
    assert max(crfs) - min(crfs) <= 0.1 + 1e-9
    assert optimal.mean_vmaf >= 88.43 - 1e-9
    assert optimal.total_kbit <= constant.total_kbit + 1e-9


# --- (b) an easy and a hard chunk: fewer bits than constant at the same mean ---------------


def slopes_at(chunks, result) -> list[float]:
    """Each chunk's dRate/dVMAF (kb/s per VMAF point) at its chosen CRF."""
    return [(c.curve.kbps(x.crf - 0.05) - c.curve.kbps(x.crf + 0.05))
            / (c.curve.vmaf(x.crf - 0.05) - c.curve.vmaf(x.crf + 0.05))
            for c, x in zip(chunks, result.choices, strict=True)]


def test_easy_and_hard_chunks_spend_fewer_bits_than_constant():
    chunks = [AllocationChunk(4.0, EASY), AllocationChunk(4.0, HARD)]
    constant = constant_allocation(chunks, 88.0)
    assert constant.feasible
    for max_drop in (6.0, 15.0):
        optimal = allocate(chunks, 88.0, max_drop)
        assert optimal.feasible
        assert 88.0 - 1e-9 <= optimal.mean_vmaf <= constant.mean_vmaf + 1e-9
        assert optimal.total_kbit < 0.8 * constant.total_kbit
        easy, hard = optimal.choices
        assert easy.vmaf > 88.0 > hard.vmaf  # the point is cheaper on the easy chunk
    # no floor in the way: equal slope, each chunk's dRate/dVMAF at its CRF the same
    slopes = slopes_at(chunks, optimal)
    assert slopes[0] == pytest.approx(slopes[1], rel=SLOPE_TOLERANCE)
    assert optimal.lambda_kbps_per_vmaf == pytest.approx(sum(slopes) / 2, rel=SLOPE_TOLERANCE)
    # the default floor holds the hard chunk above its equal-slope CRF, at a steeper slope
    held = allocate(chunks, 88.0)
    assert held.choices[1].vmaf == pytest.approx(82.0, abs=0.11)
    assert slopes_at(chunks, held)[1] > 2 * slopes_at(chunks, held)[0]


def test_results_match_their_choices():
    chunks = [AllocationChunk(2.0, EASY), AllocationChunk(6.0, HARD), AllocationChunk(1.0, EASY)]
    result = allocate(chunks, 86.0)
    crfs = [c.crf for c in result.choices]
    assert result.total_kbit == pytest.approx(kbit(chunks, crfs), rel=1e-9)
    assert result.mean_vmaf == pytest.approx(mean_vmaf(chunks, crfs), abs=1e-9)
    for chunk, choice in zip(chunks, result.choices, strict=True):
        assert choice.kbps == pytest.approx(chunk.curve.kbps(choice.crf), rel=1e-9)
        assert round(choice.crf * 10) == pytest.approx(choice.crf * 10, abs=1e-6)  # tenths


# --- (c) brute force over every combination of small cases --------------------------------


def brute_force(chunks, crfs, target, floor) -> float | None:
    """The fewest kbit of any combination that meets the mean and the floor (None: none)."""
    tables = [[(c.curve.kbps(x) * c.duration_s, c.curve.vmaf(x) * c.duration_s, c.curve.vmaf(x))
               for x in crfs] for c in chunks]
    need = target * sum(c.duration_s for c in chunks)
    best = None
    for combo in itertools.product(*tables):
        if sum(w for _, w, _ in combo) >= need - 1e-9 and all(v >= floor for *_, v in combo):
            bits = sum(b for b, _, _ in combo)
            best = bits if best is None else min(best, bits)
    return best


@pytest.mark.parametrize("seed", range(120))
def test_within_one_percent_of_brute_force(seed):
    rng = random.Random(seed)
    chunks = [AllocationChunk(rng.choice([1.0, 2.0, 2.5, 4.0]), random_curve(rng))
              for _ in range(rng.randint(2, 4))]
    target, max_drop = rng.uniform(78, 92), rng.choice([3.0, 6.0])
    crf_range = (20.0, 28.0)
    result = allocate(chunks, target, max_drop, crf_range=crf_range, crf_step=1.0)
    best = brute_force(chunks, [20.0 + k for k in range(9)], target, target - max_drop)
    if best is None:
        assert not result.feasible and "not feasible" in result.reason
        return
    assert result.feasible, result.reason
    crfs = [c.crf for c in result.choices]
    assert all(crf_range[0] <= x <= crf_range[1] and x == int(x) for x in crfs)
    assert mean_vmaf(chunks, crfs) >= target - 1e-9
    assert all(c.vmaf >= target - max_drop for c in result.choices)
    assert result.total_kbit <= best * (1 + BITS_TOLERANCE)


# --- (d) the floor ------------------------------------------------------------------------


def test_no_chunk_under_the_floor():
    # 100 VMAF is cheap on the easy chunk: without a floor the hard one would be starved
    easy = curve(kbps_at_20=300, ln_per_crf=0.12, vmaf_at_20=100, vmaf_per_crf=0.5)
    hard = curve(kbps_at_20=9000, ln_per_crf=0.10, vmaf_at_20=92, vmaf_per_crf=1.0)
    chunks = [AllocationChunk(2.0, easy), AllocationChunk(2.0, hard)]
    loose = allocate(chunks, 90.0, max_drop=20.0)
    assert loose.choices[1].vmaf < 84.0  # the floor below would bind
    held = allocate(chunks, 90.0)  # default: 6 under the target
    assert held.feasible
    assert all(c.vmaf >= 84.0 for c in held.choices)
    assert held.choices[1].vmaf == pytest.approx(84.0, abs=0.11)  # at the floor, to a step
    assert held.mean_vmaf >= 90.0 - 1e-9
    assert held.total_kbit > loose.total_kbit


def test_a_chunks_own_floor_margin_holds_it_over_the_rungs_floor():
    # A chunk's floor is on its worst frames: its mean stays its margin over the floor,
    # and a negative margin (the chunk is under the floor already where it stands) lets
    # it sit under the rung's floor without making the allocation infeasible.
    easy = curve(kbps_at_20=300, ln_per_crf=0.12, vmaf_at_20=100, vmaf_per_crf=0.5)
    hard = curve(kbps_at_20=9000, ln_per_crf=0.10, vmaf_at_20=92, vmaf_per_crf=1.0)
    held = allocate([AllocationChunk(2.0, easy), AllocationChunk(2.0, hard, 3.0)], 90.0)
    assert held.feasible and held.choices[1].vmaf >= 87.0 - 1e-9
    assert held.choices[1].vmaf == pytest.approx(87.0, abs=0.11)
    under = allocate([AllocationChunk(2.0, easy), AllocationChunk(2.0, hard, -2.0)], 90.0)
    assert under.feasible, under.reason
    assert under.choices[1].vmaf == pytest.approx(82.0, abs=0.11)


def test_a_chunk_that_cannot_reach_the_floor_is_reported():
    dark = curve(kbps_at_20=500, ln_per_crf=0.12, vmaf_at_20=60, vmaf_per_crf=0.5)
    chunks = [AllocationChunk(2.0, EASY), AllocationChunk(2.0, dark)]
    result = allocate(chunks, 80.0, crf_range=(10.0, 51.0))
    assert not result.feasible
    assert "floor" in result.reason and "[1]" in result.reason
    assert result.choices[1].crf == 10.0  # the best it can do


# --- (e) infeasible targets ----------------------------------------------------------------


def test_unreachable_target_gives_the_best_effort_and_says_so():
    chunks = [AllocationChunk(2.0, EASY), AllocationChunk(2.0, HARD)]
    result = allocate(chunks, 99.9, crf_range=(15.0, 40.0))
    assert not result.feasible
    assert "not feasible" in result.reason and "99.90" in result.reason
    # the most VMAF there is: the hard chunk at the lowest CRF, the easy one at the
    # highest CRF where it reaches 100 (no bits spent past that)
    assert [c.crf for c in result.choices] == [16.2, 15.0]
    assert result.choices[0].vmaf == 100.0
    assert result.mean_vmaf == pytest.approx((100.0 + HARD.vmaf(15.0)) / 2)
    assert result.mean_vmaf < 99.9
    constant = constant_allocation(chunks, 99.9, crf_range=(15.0, 40.0))
    assert not constant.feasible and "99.90" in constant.reason


def test_target_met_by_the_cheapest_crfs():
    chunks = [AllocationChunk(2.0, EASY)]
    result = allocate(chunks, 50.0, crf_range=(18.0, 30.0))
    assert result.feasible and result.choices[0].crf == 30.0
    assert result.lambda_kbps_per_vmaf == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="no chunks"):
        allocate([], 90.0)
    with pytest.raises(ValueError, match="no weight"):
        allocate([AllocationChunk(0.0, EASY)], 90.0)
    with pytest.raises(ValueError, match="two CRFs"):
        fit_curve([CurvePoint(23.0, 1000.0, 90.0), CurvePoint(23.0, 1010.0, 90.2)])


# --- (f) fitting and correcting ------------------------------------------------------------


VMAF_NOISE = 0.2
"""Standard deviation of the noise on a point's VMAF (a 5-point fit lands within 4 of them)."""


@pytest.mark.parametrize("seed", range(10))
def test_fit_recovers_known_parameters_from_noisy_points(seed):
    rng = random.Random(seed)
    truth = curve(rng.uniform(500, 5000), rng.uniform(0.09, 0.15), rng.uniform(88, 97),
                  rng.uniform(0.8, 1.8), rng.uniform(0.0, 0.02))
    points = [CurvePoint(x, truth.kbps(x) * math.exp(rng.gauss(0, 0.02)),
                         truth.vmaf(x) + rng.gauss(0, VMAF_NOISE))
              for x in (18.0, 22.0, 26.0, 30.0, 34.0)]
    fitted = fit_curve(points)
    assert fitted.ln_kbps_per_crf == pytest.approx(truth.ln_kbps_per_crf, abs=0.01)
    for x in (18.0, 26.0, 34.0):
        assert fitted.kbps(x) == pytest.approx(truth.kbps(x), rel=0.04)
        assert fitted.vmaf(x) == pytest.approx(truth.vmaf(x), abs=4 * VMAF_NOISE)


def test_two_points_fit_exactly():
    fitted = fit_curve([CurvePoint(30.0, 1000.0, 85.0), CurvePoint(20.0, 3320.1, 95.0)])
    assert fitted.kbps(20.0) == pytest.approx(3320.1, rel=1e-9)
    assert fitted.kbps(30.0) == pytest.approx(1000.0, rel=1e-9)
    assert fitted.ln_kbps_per_crf == pytest.approx(-0.12, abs=1e-3)  # x264's ~12 % a step
    assert fitted.vmaf(25.0) == pytest.approx(90.0)
    assert fitted.vmaf(40.0) == pytest.approx(75.0)  # along the measured slope beyond


def test_correction_passes_through_the_measured_encode():
    fitted = fit_curve([CurvePoint(20.0, 3000.0, 95.0), CurvePoint(26.0, 1500.0, 90.0),
                        CurvePoint(32.0, 740.0, 83.0)])
    measured = CurvePoint(24.3, 2300.0, 90.4)
    corrected = fitted.corrected(measured)
    assert corrected.kbps(24.3) == pytest.approx(2300.0, rel=1e-9)
    assert corrected.vmaf(24.3) == pytest.approx(90.4, abs=1e-9)
    assert corrected.ln_kbps_per_crf == fitted.ln_kbps_per_crf  # the shape is kept
    assert corrected.kbps(30.0) / corrected.kbps(22.0) == pytest.approx(
        fitted.kbps(30.0) / fitted.kbps(22.0), rel=1e-9)
    # an allocation on the corrected curve puts the chunk where the measurement says
    result = allocate([AllocationChunk(2.0, corrected)], 90.4)
    assert result.choices[0].crf == pytest.approx(24.3)


# --- (g) fitted VMAF never rises with CRF -------------------------------------------------


GRID = [k / 10 for k in range(511)]


def falls(fitted: RateQualityCurve) -> bool:
    values = [fitted.vmaf(x) for x in GRID]
    return all(0 <= v <= 100 for v in values) and all(
        b <= a + 1e-9 for a, b in itertools.pairwise(values))


def test_fitted_vmaf_that_would_turn_up_is_held_monotone():
    # a quadratic through these has its minimum inside the span and rises after it
    fitted = fit_curve([CurvePoint(x, 3000 * math.exp(-0.12 * (x - 20)), v)
                        for x, v in ((20.0, 95.0), (25.0, 90.0), (30.0, 88.0), (35.0, 89.0))])
    assert falls(fitted)
    rising = fit_curve([CurvePoint(20.0, 2000.0, 90.0), CurvePoint(26.0, 1000.0, 90.5)])
    assert falls(rising)  # noise on a flat curve: held flat, not rising


@pytest.mark.parametrize("seed", range(20))
def test_fitted_vmaf_falls_on_noisy_points(seed):
    rng = random.Random(seed)
    truth = random_curve(rng)
    crfs = sorted(rng.sample([16.0, 19.0, 22.0, 25.0, 28.0, 31.0, 34.0], rng.randint(2, 5)))
    fitted = fit_curve([CurvePoint(x, truth.kbps(x), truth.vmaf(x) + rng.gauss(0, 1.5))
                        for x in crfs])
    assert falls(fitted)
    assert fitted.ln_kbps_per_crf <= 0
