"""The allocation bound's solver (benchmarks/allocation_bound.py) on made-up curves: its
hull, and its optimum against a brute-force search over every mix of measured points."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from benchmarks.allocation_bound import at_vmaf, hull, optimal

BRUTE_TOLERANCE = 0.01
"""The greedy optimum is a relaxation (a chunk may sit between two measured points):
never above the best mix of measured points, and within 1 % of it on a fine grid."""


def _chunk(rng: random.Random, crfs) -> list[tuple[float, float, float]]:
    """A chunk's (CRF, kb/s, VMAF): rate falling 11 % a step from its own level, VMAF
    falling ever faster from its own ceiling."""
    level, ceiling, bend = rng.uniform(200, 5000), rng.uniform(90, 99), rng.uniform(0.01, 0.05)
    return [(c, level * math.exp(-0.11 * (c - 20)), ceiling - bend * (c - 14) ** 2)
            for c in crfs]


def test_the_hull_keeps_the_points_no_mix_of_others_beats():
    points = [(20, 1000.0, 95.0), (23, 700.0, 90.0), (26, 600.0, 80.0), (29, 300.0, 78.0),
              (32, 800.0, 70.0)]  # 600 kb/s lies under the chord; 800 kb/s buys less
    assert hull(points) == [(300.0, 78.0), (700.0, 90.0), (1000.0, 95.0)]
    assert at_vmaf(hull(points), 84.0) == pytest.approx((500.0, 84.0))
    assert at_vmaf(hull(points), 99.0) == (1000.0, 95.0)  # held at its ends


@pytest.mark.parametrize("seed", range(12))
def test_the_optimum_matches_a_brute_force_search(seed):
    rng = random.Random(f"bound-{seed}")
    crfs = [14 + 0.5 * i for i in range(41)]  # CRF 14 to 34 in half steps
    chunks = [_chunk(rng, crfs) for _ in range(3)]
    seconds = [rng.choice([2.0, 4.0]) for _ in chunks]
    curves = [hull(c) for c in chunks]
    low = max(c[0][1] for c in curves)
    high = min(c[-1][1] for c in curves)
    mean = rng.uniform(low + 1, high - 1)
    best = math.inf
    for picks in itertools.product(*[[(k, v) for _, k, v in c] for c in chunks]):
        if sum(v * s for (_, v), s in zip(picks, seconds, strict=True)) >= mean * sum(seconds):
            best = min(best, sum(k * s for (k, _), s in zip(picks, seconds, strict=True)))
    found = optimal(curves, seconds, mean, None)
    assert found <= best + 1e-6
    assert found >= (1 - BRUTE_TOLERANCE) * best
    # a floor only costs bits; a mean above what the chunks reach cannot be met
    assert optimal(curves, seconds, mean, mean - 6) >= found - 1e-6
    assert optimal(curves, seconds, max(c[-1][1] for c in curves) + 1, None) == math.inf
