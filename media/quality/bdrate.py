"""Bjøntegaard deltas between two rate–quality curves, with VMAF as the quality axis.

`bd_rate` answers "how many more (or fewer) bits does the test ladder need for the same
quality as the anchor?", in percent; `bd_vmaf` answers "how much more quality does it
give at the same rate?", in VMAF points. Both follow the Bjøntegaard method as the
updated recommendations (the JVET/AOM common test conditions) and the libvmaf and
`bjontegaard` tools compute it: each curve is interpolated with a piecewise cubic
Hermite that preserves monotonicity (PCHIP, Fritsch–Carlson slopes as in MATLAB's and
SciPy's `pchip`) instead of the original single cubic polynomial, which can overshoot
and even turn back between points; rate enters as its logarithm; the two interpolants
are integrated over the interval of the other axis that both curves cover, and the
mean gap is turned into a rate ratio.

Each curve needs at least 4 points, strictly increasing in both rate and VMAF once
sorted by rate. Points that break monotonicity raise ValueError rather than being
dropped: which point to trust is the caller's decision (`media.plan.hull.curves` keeps the
Pareto front, for example).

Pure Python; the integrals are exact (Simpson's rule is exact on each cubic piece).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence

__all__ = ["MIN_POINTS", "bd_rate", "bd_vmaf"]

MIN_POINTS = 4
"""Fewest points per curve; with fewer a cubic fit says more about the fit than the codec."""

Curve = Sequence[tuple[float, float]]
"""(kbps, vmaf) pairs."""
_Axis = Callable[[tuple[float, float]], float]


class _Pchip:
    """Monotone piecewise cubic Hermite interpolant through (xs, ys), xs strictly rising."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float]):
        self.xs, self.ys = list(xs), list(ys)
        self.slopes = _pchip_slopes(self.xs, self.ys)

    def __call__(self, x: float) -> float:
        k = min(max(bisect.bisect_right(self.xs, x) - 1, 0), len(self.xs) - 2)
        h = self.xs[k + 1] - self.xs[k]
        t = (x - self.xs[k]) / h
        return ((2 * t**3 - 3 * t**2 + 1) * self.ys[k]
                + (t**3 - 2 * t**2 + t) * h * self.slopes[k]
                + (-2 * t**3 + 3 * t**2) * self.ys[k + 1]
                + (t**3 - t**2) * h * self.slopes[k + 1])

    def integral(self, lo: float, hi: float) -> float:
        """∫ from lo to hi (lo <= hi, both inside the data), exact piece by piece."""
        cuts = [lo, *(x for x in self.xs if lo < x < hi), hi]
        return sum((b - a) / 6 * (self(a) + 4 * self((a + b) / 2) + self(b))
                   for a, b in itertools.pairwise(cuts))


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """One-sided three-point slope at an end, shape-preserving (Moler, NCM §3.4)."""
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if math.copysign(1, slope) != math.copysign(1, d0):
        return 0.0
    if math.copysign(1, d0) != math.copysign(1, d1) and abs(slope) > abs(3 * d0):
        return 3 * d0
    return slope


def _pchip_slopes(xs: Sequence[float], ys: Sequence[float]) -> list[float]:
    """Fritsch–Carlson derivatives: a weighted harmonic mean of the neighbouring secants."""
    h = [b - a for a, b in itertools.pairwise(xs)]
    delta = [(ys[i + 1] - ys[i]) / h[i] for i in range(len(h))]
    if len(xs) == 2:  # one piece: the straight line
        return [delta[0], delta[0]]
    slopes = [0.0] * len(xs)
    for k in range(1, len(xs) - 1):
        if delta[k - 1] * delta[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            slopes[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    slopes[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    slopes[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return slopes


def _checked(curve: Curve, name: str, min_points: int = MIN_POINTS
             ) -> list[tuple[float, float]]:
    """The curve sorted by rate, or ValueError saying what is wrong with it."""
    points = sorted((float(kbps), float(vmaf)) for kbps, vmaf in curve)
    if len(points) < max(2, min_points):
        raise ValueError(f"{name} curve has {len(points)} points; BD metrics need at least "
                         f"{max(2, min_points)} (encode more rate points)")
    for kbps, vmaf in points:
        if not (math.isfinite(kbps) and kbps > 0 and math.isfinite(vmaf)):
            raise ValueError(f"{name} curve: point ({kbps}, {vmaf}) needs a positive rate "
                             "and a finite VMAF")
    for (r0, q0), (r1, q1) in itertools.pairwise(points):
        if not (r1 > r0 and q1 > q0):
            raise ValueError(
                f"{name} curve is not strictly increasing in rate and VMAF: ({r0}, {q0}) "
                f"then ({r1}, {q1}); remove the dominated or duplicated point "
                "(e.g. keep the Pareto front) and pass the curve again")
    return points


def _overlap(a: Sequence[float], b: Sequence[float], axis: str) -> tuple[float, float]:
    lo, hi = max(a[0], b[0]), min(a[-1], b[-1])
    if not lo < hi:
        raise ValueError(f"the curves do not overlap in {axis} ([{a[0]}, {a[-1]}] vs "
                         f"[{b[0]}, {b[-1]}]); encode rate points that cover a common range")
    return lo, hi


def _mean_gap(anchor: list[tuple[float, float]], test: list[tuple[float, float]],
              x_of: _Axis, y_of: _Axis, axis: str) -> float:
    """Mean of (test - anchor) of y as a function of x, over the common x interval."""
    xa, xt = [x_of(p) for p in anchor], [x_of(p) for p in test]
    lo, hi = _overlap(xa, xt, axis)
    fa = _Pchip(xa, [y_of(p) for p in anchor])
    ft = _Pchip(xt, [y_of(p) for p in test])
    return (ft.integral(lo, hi) - fa.integral(lo, hi)) / (hi - lo)


def bd_rate(anchor: Curve, test: Curve, min_points: int = MIN_POINTS) -> float:
    """Bjøntegaard delta rate of `test` against `anchor`, percent, at equal VMAF.

    Negative: the test needs fewer bits for the same quality (−20 means 20 % fewer).
    Curves are (kbps, vmaf) pairs in any order. ln(rate) is interpolated as a function
    of VMAF (PCHIP) and averaged over the VMAF interval both curves cover. A ladder of
    two or three rungs can be compared with `min_points` 2 (two points: a straight line
    in ln-rate between them): a coarser figure, over the rungs there are.
    """
    a, t = _checked(anchor, "anchor", min_points), _checked(test, "test", min_points)
    gap = _mean_gap(a, t, x_of=lambda p: p[1], y_of=lambda p: math.log(p[0]), axis="VMAF")
    return (math.exp(gap) - 1) * 100


def bd_vmaf(anchor: Curve, test: Curve, min_points: int = MIN_POINTS) -> float:
    """Bjøntegaard delta quality of `test` against `anchor`, VMAF points, at equal rate.

    Positive: the test looks better for the same bits. VMAF is interpolated as a
    function of ln(rate) (PCHIP) and averaged over the ln-rate interval both curves cover.
    """
    a, t = _checked(anchor, "anchor", min_points), _checked(test, "test", min_points)
    return _mean_gap(a, t, x_of=lambda p: math.log(p[0]), y_of=lambda p: p[1], axis="rate")
