"""Bit rates of written segments, measured the way RFC 8216 defines them.

Pure arithmetic over segment sizes and durations: what HLS's BANDWIDTH,
AVERAGE-BANDWIDTH and EXT-X-TARGETDURATION and DASH's @bandwidth are computed from.
Durations are exact `Fraction`s (a float is taken at its exact binary value), so a
two-hour title sums without drift and a value on a rounding boundary rounds the same
way every time.

    >>> peak_bandwidth_bps([400_000, 600_000, 500_000, 200_000], [4, 4, 4, 1], 4)
    1200000
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from media.core.types import PackagedTrack

__all__ = [
    "EXTINF_DECIMALS",
    "average_bandwidth_bps",
    "extinf_s",
    "peak_bandwidth_bps",
    "segment_bitrates",
    "segment_durations_s",
    "target_duration_s",
    "track_average_bandwidth_bps",
    "track_peak_bandwidth_bps",
    "track_target_duration_s",
]

Seconds = Fraction | int | float

EXTINF_DECIMALS = 6
"""Decimal places of an EXTINF duration as the playlists write it."""

_HALF = Fraction(1, 2)


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + _HALF)


def extinf_s(duration_s: Seconds) -> Fraction:
    """A duration as an EXTINF writes it: rounded half up to `EXTINF_DECIMALS` places."""
    scale = 10**EXTINF_DECIMALS
    return Fraction(_round_half_up(Fraction(duration_s) * scale), scale)


def _checked(sizes_bytes: Sequence[int], durations_s: Sequence[Seconds]) -> list[Fraction]:
    if len(sizes_bytes) != len(durations_s):
        raise ValueError(
            f"{len(sizes_bytes)} segment sizes but {len(durations_s)} durations; "
            "pass one size and one duration per segment"
        )
    if not durations_s:
        raise ValueError("no segments: a bit rate needs at least one written segment")
    durations = [Fraction(d) for d in durations_s]
    if min(durations) <= 0:
        raise ValueError(f"segment durations must be positive, got {min(durations)} s")
    return durations


def target_duration_s(durations_s: Sequence[Seconds]) -> int:
    """EXT-X-TARGETDURATION: the smallest integer >= every EXTINF rounded to the nearest.

    RFC 8216 4.3.3.1 rounds the EXTINF *as written* (6 decimals, see `extinf_s`) to the
    nearest integer, halves up: 4.4 s gives 4, 4.5 s gives 5. Never less than 1, so the
    RFC's peak window (0.5 to 1.5 target durations) is never empty.
    """
    if not durations_s:
        raise ValueError("no segments: a target duration needs at least one segment")
    return max(1, *(_round_half_up(extinf_s(d)) for d in durations_s))


def peak_bandwidth_bps(
    sizes_bytes: Sequence[int], durations_s: Sequence[Seconds], target_duration_s: Seconds
) -> int:
    """RFC 8216 4.3.4.2 peak segment bit rate, bits/s, rounded up.

    The largest bit rate (total bits / total duration) of any contiguous run of segments
    whose total duration lies between 0.5 and 1.5 times the target duration, both ends
    included. When no run qualifies (a single segment shorter than half the target), the
    largest single-segment bit rate.
    """
    durations = _checked(sizes_bytes, durations_s)
    low, high = Fraction(target_duration_s) / 2, Fraction(target_duration_s) * 3 / 2
    best: Fraction | None = None
    for start in range(len(durations)):
        bits, seconds = 0, Fraction(0)
        for size, duration in zip(sizes_bytes[start:], durations[start:], strict=True):
            bits, seconds = bits + 8 * size, seconds + duration
            if seconds > high:
                break
            if seconds >= low and (best is None or bits / seconds > best):
                best = bits / seconds
    if best is None:
        best = max(Fraction(8 * size) / d for size, d in zip(sizes_bytes, durations, strict=True))
    return math.ceil(best)


def average_bandwidth_bps(sizes_bytes: Sequence[int], durations_s: Sequence[Seconds]) -> int:
    """Average segment bit rate, bits/s: total bits / total duration, rounded up."""
    durations = _checked(sizes_bytes, durations_s)
    return math.ceil(Fraction(8 * sum(sizes_bytes)) / sum(durations))


def segment_durations_s(track: PackagedTrack) -> list[Fraction]:
    """Exact duration of each segment of a track, seconds."""
    return [Fraction(s.duration_ticks, track.timescale) for s in track.segments]


def segment_bitrates(track: PackagedTrack) -> list[float]:
    """Bit rate of each segment of a track (size_bytes * 8 / duration), bits/s."""
    return [
        float(8 * s.size_bytes / d)
        for s, d in zip(track.segments, segment_durations_s(track), strict=True)
    ]


def track_target_duration_s(track: PackagedTrack) -> int:
    """EXT-X-TARGETDURATION of a track's media playlist."""
    return target_duration_s(segment_durations_s(track))


def track_peak_bandwidth_bps(track: PackagedTrack, target_s: Seconds | None = None) -> int:
    """Peak segment bit rate of a track, against its own target duration unless given."""
    target = track_target_duration_s(track) if target_s is None else target_s
    sizes = [s.size_bytes for s in track.segments]
    return peak_bandwidth_bps(sizes, segment_durations_s(track), target)


def track_average_bandwidth_bps(track: PackagedTrack) -> int:
    """Average segment bit rate of a track, bits/s."""
    return average_bandwidth_bps([s.size_bytes for s in track.segments], segment_durations_s(track))
