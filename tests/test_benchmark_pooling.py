"""Tests for the per-title benchmark's quality poolings (benchmarks/per_title.py).

BD-rate compares two ladders on (rate, VMAF) curves; how a rendition's chunk scores are
pooled into one VMAF decides what "equal quality" means. Two synthetic reports of one
title with an easy and a hard half: one ladder holds both halves at the same VMAF
(spending most bits on the hard half), the other spends the same rate on both.
"""

from __future__ import annotations

import math

import pytest

from benchmarks.per_title import POOLINGS, bd_rates, ladder_points, pooled_vmaf


def _chunk(kbps: float, vmaf: float, seconds: float = 10.0, frames: int = 20) -> dict:
    return {"duration_s": seconds, "size_bytes": kbps * 1000 / 8 * seconds,
            "vmaf": {"mean": vmaf, "harmonic_mean": vmaf - 0.5, "p5": vmaf - 2,
                     "frame_count": frames}}


def _report(renditions: list[list[tuple[float, float]]]) -> dict:
    return {"tracks": [{"kind": "video", "chunks": [_chunk(k, v) for k, v in chunks]}
                       for chunks in renditions] + [{"kind": "audio", "chunks": []}]}


def _easy_hard(kbps_easy: float, kbps_hard: float) -> list[tuple[float, float]]:
    """An easy chunk and a hard one, each with the same slope of VMAF over log-rate,
    the hard one needing 8x the rate for the same score."""
    return [(kbps_easy, 20 + 10 * math.log(kbps_easy / 50)),
            (kbps_hard, 20 + 10 * math.log(kbps_hard / 400))]


EQUAL_QUALITY = _report([_easy_hard(100 * 2 ** i, 800 * 2 ** i) for i in range(5)])
EQUAL_RATE = _report([_easy_hard(450 * 2 ** i, 450 * 2 ** i) for i in range(5)])


def test_the_poolings_of_one_rendition():
    chunks = [{"mean": 90.0, "harmonic_mean": 89.0, "frame_count": 20},
              {"mean": 50.0, "harmonic_mean": 49.0, "frame_count": 60}]
    assert pooled_vmaf(chunks) == pytest.approx(60.0)  # frame-weighted
    assert pooled_vmaf(chunks, "harmonic") == pytest.approx(80 / (20 / 90 + 60 / 50) - 1)
    assert pooled_vmaf(chunks, "worst chunk") == 50.0
    with pytest.raises(ValueError, match="unknown pooling"):
        pooled_vmaf(chunks, "median")


def test_ladder_points_are_rate_and_pooled_vmaf_per_video_rendition():
    points = ladder_points(EQUAL_QUALITY)
    assert len(points) == 5 and points == sorted(points)
    kbps, vmaf = points[0]
    assert kbps == pytest.approx(450.0)  # (100 + 800) / 2 over equal durations
    assert vmaf == pytest.approx(20 + 10 * math.log(2))  # both halves score the same


def test_the_mean_favours_equal_rate_and_the_worst_chunk_equal_quality():
    # Mean VMAF rewards bits where they buy most (the easy half); the worst chunk
    # rewards holding every stretch at the rung's quality.
    rates = {pooling: float(rate.split()[0]) for pooling, rate in
             bd_rates(EQUAL_QUALITY, EQUAL_RATE).items()}
    assert set(rates) == set(POOLINGS)
    assert rates["mean"] > 10  # equal quality needs more bits for the same mean
    assert rates["worst chunk"] < -30  # and far fewer for the same worst chunk
    assert rates["mean"] > rates["harmonic"] > rates["worst chunk"]
