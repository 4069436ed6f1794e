"""Known answers for the RFC 8216 rate arithmetic in media/package/bandwidth.py.

Every expected value is worked by hand in the comment beside it: rates in bits/s,
"run" means a contiguous run of segments, and the RFC's window for a target duration
TD is 0.5 TD <= run duration <= 1.5 TD.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from media.core import naming
from media.core.types import PackagedTrack, Segment
from media.package.bandwidth import (
    average_bandwidth_bps,
    extinf_s,
    peak_bandwidth_bps,
    segment_bitrates,
    segment_durations_s,
    target_duration_s,
    track_average_bandwidth_bps,
    track_peak_bandwidth_bps,
    track_target_duration_s,
)

PEAK_CASES = [
    # TD 4, window [2, 6] s. Rates 0.8M, 1.2M, 1.0M, 1.6M. The 1 s last segment is
    # below 2 s alone; its only run is 4+1 s = (500k+200k)*8/5 = 1.12M. Peak 1.2M.
    ("td4-short-last-excluded", [400_000, 600_000, 500_000, 200_000], [4, 4, 4, 1], 4,
     1_200_000),
    # TD 4. Rates 1M, 1M, 3.2M; the 1.5 s segment only counts in the 5.5 s run
    # (500k+600k)*8/5.5 = 1.6M, above either single.
    ("td4-short-last-in-run", [500_000, 500_000, 600_000], [4, 4, 1.5], 4, 1_600_000),
    # TD 6, window [3, 9] s. Rates 0.6M, 1.2M, 2.4M; 2 s is too short alone; the run
    # 6+2 s = (900k+600k)*8/8 = 1.5M.
    ("td6-short-last-in-run", [450_000, 900_000, 600_000], [6, 6, 2], 6, 1_500_000),
    # TD 6 over 2 s segments: runs of 2 to 4 segments qualify, singles do not.
    # Single rates 0.4M 1.2M 0.4M 0.4M 0.4M 2M; best run is the last pair,
    # (100k+500k)*8/4 = 1.2M (the 2M single is excluded).
    ("td6-two-second-segments", [100_000, 300_000, 100_000, 100_000, 100_000, 500_000],
     [2] * 6, 6, 1_200_000),
    # TD 4: a 2 s segment sits exactly on 0.5 TD and counts: 400k*8/2 = 1.6M.
    ("lower-bound-inclusive", [400_000, 100_000], [2, 4], 4, 1_600_000),
    # TD 4: 1 s alone is out, 1+5 = 6 s sits exactly on 1.5 TD and counts:
    # (400k+500k)*8/6 = 1.2M, above the 5 s single (0.8M).
    ("upper-bound-inclusive", [400_000, 500_000], [1, 5], 4, 1_200_000),
    # No run qualifies (1 s < 2 s): fall back to the single-segment rate, 1M.
    ("single-short-fallback", [125_000], [1], 4, 1_000_000),
    # 100001*8/3 = 266669.33 rounds up.
    ("rounds-up", [100_001], [3], 4, 266_670),
    # 29.97 fps, 120 and 60 frames: 4.004 s and 2.002 s, exact. Rates 1M, 1.2M, 1.2M.
    ("ntsc-fractions", [500_500, 600_600, 300_300],
     [Fraction(4004, 1000), Fraction(4004, 1000), Fraction(2002, 1000)], 4, 1_200_000),
]


@pytest.mark.parametrize(
    "sizes, durations, target, expected", [case[1:] for case in PEAK_CASES],
    ids=[case[0] for case in PEAK_CASES],
)
def test_peak_bandwidth(sizes, durations, target, expected):
    assert peak_bandwidth_bps(sizes, durations, target) == expected


AVERAGE_CASES = [
    # 1.7M bytes * 8 / 13 s = 1046153.85 -> up.
    ("short-last", [400_000, 600_000, 500_000, 200_000], [4, 4, 4, 1], 1_046_154),
    # 1.95M * 8 / 14 s = 1114285.71 -> up.
    ("td6", [450_000, 900_000, 600_000], [6, 6, 2], 1_114_286),
    # 1.2M * 8 / 12 s = 800000 exactly.
    ("two-second", [100_000, 300_000, 100_000, 100_000, 100_000, 500_000], [2] * 6, 800_000),
    # AAC at 48 kHz: 192000 bytes * 8 / (576512 / 48000 s) = 127886.34 -> up.
    ("aac-ticks", [64_600, 63_100, 64_300],
     [Fraction(193_536, 48_000), Fraction(190_464, 48_000), Fraction(192_512, 48_000)],
     127_887),
]


@pytest.mark.parametrize(
    "sizes, durations, expected", [case[1:] for case in AVERAGE_CASES],
    ids=[case[0] for case in AVERAGE_CASES],
)
def test_average_bandwidth(sizes, durations, expected):
    assert average_bandwidth_bps(sizes, durations) == expected


@pytest.mark.parametrize(
    "durations, expected",
    [
        ([4.4], 4),
        ([4.5], 5),  # half rounds up
        ([4, 4, 4.49], 4),
        ([4.0, 4.5, 3], 5),
        ([5.9999], 6),
        ([6.5], 7),
        ([6, 6, 2], 6),
        ([Fraction(4004, 1000)] * 3, 4),
        ([Fraction(192_512, 48_000)], 4),
        # 4.4999995 s is written as EXTINF 4.500000, which rounds to 5.
        ([Fraction(44_999_995, 10_000_000)], 5),
        ([Fraction(44_999_994, 10_000_000)], 4),
        ([0.3], 1),  # never 0
    ],
)
def test_target_duration(durations, expected):
    assert target_duration_s(durations) == expected


@pytest.mark.parametrize(
    "duration, expected",
    [
        (Fraction(192_512, 48_000), Fraction(4_010_667, 1_000_000)),
        (Fraction(1, 3), Fraction(333_333, 1_000_000)),
        (Fraction(44_999_995, 10_000_000), Fraction(9, 2)),
        (4, Fraction(4)),
    ],
)
def test_extinf_rounds_half_up_to_microseconds(duration, expected):
    assert extinf_s(duration) == expected


@pytest.mark.parametrize(
    "sizes, durations",
    [([1, 2], [4]), ([], []), ([100], [0]), ([100, 100], [4, -1])],
    ids=["length-mismatch", "empty", "zero-duration", "negative-duration"],
)
def test_bad_inputs_fail_loudly(sizes, durations):
    with pytest.raises(ValueError):
        peak_bandwidth_bps(sizes, durations, 4)
    with pytest.raises(ValueError):
        average_bandwidth_bps(sizes, durations)


def _audio_track() -> PackagedTrack:
    ticks = [193_536, 190_464, 192_512]  # 189, 186 and 188 AAC frames of 1024 samples
    sizes = [64_600, 63_100, 64_300]
    starts = [0, 193_536, 384_000]
    segments = tuple(
        Segment(n, naming.segment_uri("audio", "aac-eng-0", n), start, d, size)
        for n, (start, d, size) in enumerate(zip(starts, ticks, sizes, strict=True), start=1)
    )
    return PackagedTrack(
        kind="audio", track_id="aac-eng-0", codecs="mp4a.40.2", timescale=48_000,
        init_uri=naming.init_uri("audio", "aac-eng-0"), segments=segments,
        language="eng", channels=2, sample_rate_hz=48_000,
    )


def test_track_helpers():
    track = _audio_track()
    assert segment_durations_s(track) == [Fraction(4032, 1000), Fraction(3968, 1000),
                                          Fraction(192_512, 48_000)]
    # 64600*8/4.032, 63100*8/3.968, 64300*8/4.0106667
    assert segment_bitrates(track) == pytest.approx([128_174.603, 127_217.742, 128_257.979])
    assert track_target_duration_s(track) == 4
    # TD 4: every single segment qualifies, no pair does (~8 s > 6 s): the largest
    # single, 514400 * 48000 / 192512 = 128257.98 -> up.
    assert track_peak_bandwidth_bps(track) == 128_258
    # Against a TD of 12 (window [6, 18] s) no single counts; pairs 127700 (8.0 s) and
    # 1019200 / 7.978667 = 127741.9, the triple 1536000 / 12.010667 = 127886.34 -> up.
    assert track_peak_bandwidth_bps(track, target_s=12) == 127_887
    assert track_average_bandwidth_bps(track) == 127_887
