"""Known answers for the Bjøntegaard deltas in media/quality/bdrate.py.

- Scaling every rate of a curve by s moves ln(rate) by ln s at every quality, so the
  BD-rate is exactly (s − 1)·100 whatever the interpolation.
- PCHIP reproduces straight lines, so curves with ln(rate) linear in VMAF have a closed
  form: mean of (c − a) + (d − b)·V over [lo, hi] = (c − a) + (d − b)·(lo + hi)/2.
- Two published values from Netflix/vmaf `python/test/bd_rate_calculator_test.py`
  (its BDrateCalculator, validated against JCTVC-E137, returns a fraction: × 100 here).
- A curved case against an independent computation: SciPy's PchipInterpolator,
  integrated numerically on a dense grid.
"""

from __future__ import annotations

import math

import pytest

from media.quality.bdrate import MIN_POINTS, bd_rate, bd_vmaf

PCT_TOL = 0.01
"""BD-rate against a known answer, percentage points."""

ANCHOR = [(500.0, 60.0), (1000.0, 72.0), (2000.0, 82.0), (4000.0, 89.0), (8000.0, 93.0)]


def scaled(curve, rate_factor: float = 1.0, vmaf_shift: float = 0.0):
    return [(kbps * rate_factor, vmaf + vmaf_shift) for kbps, vmaf in curve]


def test_identical_curves_give_zero():
    assert bd_rate(ANCHOR, ANCHOR) == pytest.approx(0.0, abs=1e-12)
    assert bd_vmaf(ANCHOR, ANCHOR) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("factor, expected", [(0.8, -20.0), (1.25, 25.0), (0.5, -50.0),
                                              (2.0, 100.0)])
def test_scaled_rates_give_the_scale(factor, expected):
    assert bd_rate(ANCHOR, scaled(ANCHOR, factor)) == pytest.approx(expected, abs=PCT_TOL)


def test_order_of_points_does_not_matter():
    test = scaled(ANCHOR, 0.8)
    assert bd_rate(list(reversed(ANCHOR)), test[2:] + test[:2]) == pytest.approx(-20.0)


def test_straight_lines_in_log_rate_have_a_closed_form():
    # anchor: ln R = 4 + 0.05·V at V = 40, 55, 70, 85, 95
    # test:   ln R = 3.5 + 0.055·V at V = 45, 60, 75, 90
    # Overlap V in [45, 90]: mean gap = −0.5 + 0.005·67.5 = −0.1625.
    anchor = [(math.exp(4 + 0.05 * v), v) for v in (40, 55, 70, 85, 95)]
    test = [(math.exp(3.5 + 0.055 * v), v) for v in (45, 60, 75, 90)]
    expected = (math.exp(-0.5 + 0.005 * 67.5) - 1) * 100
    assert bd_rate(anchor, test) == pytest.approx(expected, abs=1e-9)


# Netflix/vmaf python/test/bd_rate_calculator_test.py, BDrateCalculatorJCTVCTest.
JCTVC_CASES = [
    ([(108048.8736, 43.6471), (61279.976, 40.3953), (33905.6656, 37.247),
      (18883.6928, 34.2911)],
     [(108061.2784, 43.6768), (61299.9936, 40.4232), (33928.7472, 37.2761),
      (18910.912, 34.3147)],
     -0.00465215420752807),
    ([(40433.8848, 37.5761), (7622.7456, 35.3756), (2394.488, 33.8977), (1017.6184, 32.0603)],
     [(40370.12, 37.5982), (7587.0024, 35.4025), (2390.0944, 33.9194), (1017.0984, 32.0822)],
     -0.018779823450567612),
]


@pytest.mark.parametrize("anchor, test, fraction", JCTVC_CASES)
def test_published_jctvc_values(anchor, test, fraction):
    assert bd_rate(anchor, test) == pytest.approx(fraction * 100, abs=1e-4)


# A curved pair: the test codec is better at low rates and worse at high ones.
CURVED_ANCHOR = [(300.0, 45.0), (600.0, 62.0), (1200.0, 76.0), (2400.0, 86.0),
                 (4800.0, 92.0), (9600.0, 95.5)]
CURVED_TEST = [(250.0, 50.0), (520.0, 66.0), (1100.0, 78.5), (2600.0, 88.0),
               (5500.0, 93.5)]


def _independent_mean_gap(anchor, test, x_of, y_of):
    np = pytest.importorskip("numpy")
    interpolate = pytest.importorskip("scipy.interpolate")
    fa = interpolate.PchipInterpolator([x_of(p) for p in anchor], [y_of(p) for p in anchor])
    ft = interpolate.PchipInterpolator([x_of(p) for p in test], [y_of(p) for p in test])
    lo = max(x_of(anchor[0]), x_of(test[0]))
    hi = min(x_of(anchor[-1]), x_of(test[-1]))
    grid = np.linspace(lo, hi, 200_001)
    gap = ft(grid) - fa(grid)
    trapezoids = (gap[1:] + gap[:-1]) / 2 * np.diff(grid)
    return float(trapezoids.sum() / (hi - lo))


def test_curved_case_matches_scipy_pchip_and_dense_integration():
    gap = _independent_mean_gap(CURVED_ANCHOR, CURVED_TEST, x_of=lambda p: p[1],
                                y_of=lambda p: math.log(p[0]))
    expected = (math.exp(gap) - 1) * 100
    assert bd_rate(CURVED_ANCHOR, CURVED_TEST) == pytest.approx(expected, abs=1e-6)
    assert abs(expected) > 1  # a case where the answer is not trivially zero


def test_bd_vmaf_matches_scipy_pchip_and_dense_integration():
    expected = _independent_mean_gap(CURVED_ANCHOR, CURVED_TEST,
                                     x_of=lambda p: math.log(p[0]), y_of=lambda p: p[1])
    assert bd_vmaf(CURVED_ANCHOR, CURVED_TEST) == pytest.approx(expected, abs=1e-6)


def test_bd_vmaf_of_a_quality_shift_is_the_shift():
    assert bd_vmaf(ANCHOR, scaled(ANCHOR, vmaf_shift=2.0)) == pytest.approx(2.0, abs=1e-9)


def test_fewer_than_four_points_raise():
    assert MIN_POINTS == 4
    with pytest.raises(ValueError, match="test curve has 3 points"):
        bd_rate(ANCHOR, ANCHOR[:3])
    with pytest.raises(ValueError, match="anchor curve has 2 points"):
        bd_vmaf(ANCHOR[:2], ANCHOR)


def test_a_short_ladder_is_compared_on_its_rungs_when_asked():
    # Two rungs each: straight lines in ln-rate, ln R = 4 + 0.05·V on V in [60, 90] and
    # ln R = 3.5 + 0.055·V on [70, 95]: over [70, 90] the gap is −0.5 + 0.005·80.
    anchor = [(math.exp(4 + 0.05 * v), v) for v in (60, 90)]
    test = [(math.exp(3.5 + 0.055 * v), v) for v in (70, 95)]
    expected = (math.exp(-0.5 + 0.005 * 80) - 1) * 100
    assert bd_rate(anchor, test, min_points=2) == pytest.approx(expected, abs=1e-9)
    three = [*test, (math.exp(3.5 + 0.055 * 80), 80)]  # a rung on the same line
    assert bd_rate(anchor, three, min_points=2) == pytest.approx(expected, abs=1e-9)
    pair = ANCHOR[1:3]
    assert bd_rate(pair, scaled(pair, 0.7), min_points=2) == pytest.approx(-30.0)
    with pytest.raises(ValueError, match="test curve has 1 points"):
        bd_rate(anchor, test[:1], min_points=1)


@pytest.mark.parametrize("bad", [
    [(500.0, 60.0), (1000.0, 72.0), (2000.0, 70.0), (4000.0, 89.0)],  # VMAF dips
    [(500.0, 60.0), (1000.0, 72.0), (1000.0, 75.0), (4000.0, 89.0)],  # repeated rate
    [(500.0, 60.0), (1000.0, 72.0), (2000.0, 72.0), (4000.0, 89.0)],  # flat VMAF
])
def test_non_monotonic_curves_raise_instead_of_dropping_points(bad):
    with pytest.raises(ValueError, match="not strictly increasing"):
        bd_rate(ANCHOR, bad)
    with pytest.raises(ValueError, match="not strictly increasing"):
        bd_vmaf(bad, ANCHOR)


@pytest.mark.parametrize("bad", [
    [(0.0, 60.0), (1000.0, 72.0), (2000.0, 82.0), (4000.0, 89.0)],
    [(500.0, math.nan), (1000.0, 72.0), (2000.0, 82.0), (4000.0, 89.0)],
])
def test_unusable_points_raise(bad):
    with pytest.raises(ValueError, match="positive rate"):
        bd_rate(ANCHOR, bad)


def test_curves_that_do_not_overlap_in_vmaf_raise():
    high = [(9000.0, 94.0), (12000.0, 95.0), (16000.0, 96.0), (20000.0, 97.0)]
    with pytest.raises(ValueError, match="do not overlap in VMAF"):
        bd_rate(ANCHOR, high)


def test_curves_that_do_not_overlap_in_rate_raise_for_bd_vmaf():
    dear = scaled(ANCHOR, 100.0)
    with pytest.raises(ValueError, match="do not overlap in rate"):
        bd_vmaf(ANCHOR, dear)
