"""A stream's video timestamps as a small mergeable summary (`Timestamps`): what the
timing verdict (`media.inspect.frame_timing`) needs of them, without the list itself.

An inspection span reduces its own timestamps to one, and the spans' summaries merge
(`Timestamps.joined`) into the title's, so nothing gathered grows with the title: a
frame count, the intervals as a count per value (a handful of values for real sources;
past `MAX_VALUES` a coarser histogram), the smallest and largest positive interval, and
the title cut into segments at every interval other than one step of the typical one
(gaps, doubled frames). Each segment keeps its frames' sums (a least-squares fit of the
frame rate needs no more) and the convex hulls of its (frame, timestamp) points (how far
its frames stray from any fitted line: the extremes lie on them), so a steady stream is a
few segments of a few numbers each, however long.

Merging re-cuts the segments at the merged typical interval: a break one span saw may be
a step of the title's, and the joins between spans are intervals like any other. The
result is the summary of the whole list, exactly, where each span's segments are all
steps or all breaks at the title's typical interval and no histogram was coarsened (every
real source we have seen); otherwise the fit, the jitter and the gaps inside such a
segment are approximate.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

STEP = 0.5
"""An interval within half the typical one of it is one frame's step; a longer one is a
gap, a shorter one a doubled frame (`media.inspect.frame_timing`)."""
MAX_VALUES = 128
"""Distinct interval values a span's summary counts one by one; past that, intervals are
counted in bins of a power of two ticks, as few as keep under it."""
MAX_SEGMENTS = 64
"""Segments a span's summary keeps: past that, it is lumped across its shortest breaks
(doubled frames first, then the shortest gaps, which are then counted, not placed)."""
MAX_HULL = 32
"""Hull points per side a segment keeps: past that, those extreme for slopes far from its
own (a stream this irregular is variable-rate, and its jitter is not reported)."""


def _cross(o: tuple[int, int], a: tuple[int, int], b: tuple[int, int]) -> int:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _hull(points: Iterable[tuple[int, int]], upper: bool) -> tuple[tuple[int, int], ...]:
    """The upper (or lower) convex hull of points sorted by x, collinear ones dropped."""
    hull: list[tuple[int, int]] = []
    for p in points:
        while len(hull) >= 2 and (_cross(hull[-2], hull[-1], p) >= 0 if upper
                                  else _cross(hull[-2], hull[-1], p) <= 0):
            hull.pop()
        hull.append(p)
    return tuple(hull)


def _thinned(hull: tuple[tuple[int, int], ...], slope: float) -> tuple[tuple[int, int], ...]:
    """At most `MAX_HULL` points of `hull`: the ends and those nearest the vertex that is
    extreme for lines of `slope`."""
    if len(hull) <= MAX_HULL:
        return hull
    best = max(range(len(hull)), key=lambda i: abs(hull[i][1] - slope * hull[i][0]))
    half = (MAX_HULL - 2) // 2
    lo = max(1, min(best - half, len(hull) - 1 - 2 * half))
    return (hull[0], *hull[lo:lo + 2 * half], hull[-1])


@dataclass(frozen=True)
class Segment:
    """Consecutive frames whose intervals are all steps (or, lumped, of any length)."""

    first: int
    """Timestamp of its first frame (ticks)."""
    last: int
    count: int
    """Frames."""
    sum_pts: int
    sum_kpts: int
    """Sum of k * timestamp, k counting its frames from 0."""
    low: int = 0
    high: int = 0
    """Smallest and largest interval inside it (0, 0: one frame)."""
    upper: tuple[tuple[int, int], ...] = ()
    lower: tuple[tuple[int, int], ...] = ()
    """Convex hulls of its (k, timestamp) points, from above and below."""

    @classmethod
    def of(cls, pts: Sequence[int]) -> Segment:
        points = list(enumerate(pts))
        deltas = [b - a for a, b in itertools.pairwise(pts)]
        slope = (pts[-1] - pts[0]) / (len(pts) - 1) if len(pts) > 1 else 0.0
        return cls(pts[0], pts[-1], len(pts), sum(pts), sum(k * p for k, p in points),
                   min(deltas, default=0), max(deltas, default=0),
                   _thinned(_hull(points, True), slope), _thinned(_hull(points, False), slope))

    def then(self, other: Segment) -> Segment:
        """This segment and the one right after it, as one."""
        n = self.count
        inner = [other.first - self.last]
        inner += [x for s in (self, other) if s.count > 1 for x in (s.low, s.high)]
        slope = (other.last - self.first) / (n + other.count - 1)
        return Segment(
            self.first, other.last, n + other.count, self.sum_pts + other.sum_pts,
            self.sum_kpts + other.sum_kpts + n * other.sum_pts, min(inner), max(inner),
            _thinned(_hull([*self.upper, *((k + n, p) for k, p in other.upper)], True),
                     slope),
            _thinned(_hull([*self.lower, *((k + n, p) for k, p in other.lower)], False),
                     slope))

    def steps(self, typical: int) -> bool | None:
        """True: every interval inside is a step of `typical` (so is none, of one frame);
        False: none is; None: some are (a lumped segment)."""
        if self.count < 2:
            return True
        inside = [abs(d - typical) <= STEP * typical for d in (self.low, self.high)]
        if all(inside):
            return True
        if not any(inside) and not (self.low < typical < self.high):
            return False
        return None

    def gaps(self, typical: int) -> list[tuple[int, int]]:
        """(before, after) of each interval inside longer than a step: where every one
        is (the intervals of a lumped segment spread evenly, unless all alike)."""
        if self.count < 2 or self.low <= (1 + STEP) * typical:
            return []
        if self.low == self.high:
            return [(self.first + i * self.low, self.first + (i + 1) * self.low)
                    for i in range(self.count - 1)]
        at = [self.first + round(i * (self.last - self.first) / (self.count - 1))
              for i in range(self.count)]
        return list(itertools.pairwise(at))


@dataclass(frozen=True)
class Timestamps:
    """A sorted list of timestamps, summarised (see the module)."""

    count: int = 0
    intervals: tuple[tuple[int, int], ...] = ()
    """(value, how many) of the intervals, by value; with `width` > 1, value is a bin's
    first tick."""
    width: int = 1
    """Ticks per histogram bin (1: exact values)."""
    min_positive: int = 0
    max_positive: int = 0
    segments: tuple[Segment, ...] = ()

    @classmethod
    def of(cls, pts: Sequence[int], *, bounded: bool = True) -> Timestamps:
        """The summary of sorted `pts`; not `bounded`: every interval value and segment
        kept (a whole-file summary, which holds the list anyway)."""
        if not pts:
            return cls()
        deltas = [b - a for a, b in itertools.pairwise(pts)]
        typical = statistics.median_low(deltas) if deltas else 0
        cuts = [i + 1 for i, d in enumerate(deltas) if abs(d - typical) > STEP * typical]
        segments = [Segment.of(pts[a:b]) for a, b in itertools.pairwise([0, *cuts, len(pts)])]
        positive = [d for d in deltas if d > 0]
        counts = tuple(sorted(Counter(deltas).items()))
        made = cls(len(pts), counts, 1, min(positive, default=0), max(positive, default=0),
                   tuple(segments))
        return made._bounded() if bounded else made

    @property
    def first(self) -> int:
        return self.segments[0].first

    @property
    def last(self) -> int:
        return self.segments[-1].last

    @property
    def typical(self) -> int:
        """The median interval (the lower of the middle two), 0 with fewer than 2 frames."""
        total = sum(n for _, n in self.intervals)
        if not total:
            return 0
        seen, middle = 0, (total - 1) // 2
        for value, n in self.intervals:
            seen += n
            if seen > middle:
                return value + self.width // 2
        return 0

    def counted(self, test) -> int:
        """Intervals whose value passes `test` (a bin's by its middle)."""
        return sum(n for value, n in self.intervals if test(value + self.width // 2))

    @staticmethod
    def joined(parts: Sequence[Timestamps], *, bounded: bool = False) -> Timestamps:
        """The summary of the parts' lists one after another (each after the last)."""
        parts = [p for p in parts if p.count]
        if not parts:
            return Timestamps()
        width = max(p.width for p in parts)
        counts: Counter[int] = Counter()
        for p in parts:
            for value, n in p.intervals:
                counts[value // width * width] += n
        joins = [b.first - a.last for a, b in itertools.pairwise(parts)]
        counts.update(j // width * width for j in joins)
        positive = [x for p in parts for x in (p.min_positive, p.max_positive) if x]
        positive += [j for j in joins if j > 0]
        merged = Timestamps(sum(p.count for p in parts), tuple(sorted(counts.items())), width,
                            min(positive, default=0), max(positive, default=0), ())
        typical = merged.typical
        segments: list[Segment] = []
        for seg in (s for p in parts for s in p.segments):
            if segments and segments[-1].steps(typical) and seg.steps(typical) and abs(
                    seg.first - segments[-1].last - typical) <= STEP * typical:
                segments[-1] = segments[-1].then(seg)
            else:
                segments.append(seg)
        merged = replace(merged, segments=tuple(segments))
        return merged._bounded() if bounded else merged

    def _bounded(self) -> Timestamps:
        """This summary within `MAX_VALUES` and `MAX_SEGMENTS`."""
        out = self
        width = self.width
        counts = dict(self.intervals)
        while len(counts) > MAX_VALUES:
            width *= 2
            binned: Counter[int] = Counter()
            for value, n in counts.items():
                binned[value // width * width] += n
            counts = binned
        if width != self.width:
            out = replace(out, intervals=tuple(sorted(counts.items())), width=width)
        segments = list(self.segments)
        if len(segments) > MAX_SEGMENTS:
            # Keep the breaks with the longest intervals (the gaps, longest first), lump
            # the segments across the others (doubled frames first).
            joins = sorted(range(len(segments) - 1),
                           key=lambda i: (segments[i + 1].first - segments[i].last, i))
            lumped_at = set(joins[:len(segments) - MAX_SEGMENTS])
            lumped = [segments[0]]
            for i, seg in enumerate(segments[1:]):
                if i in lumped_at:
                    lumped[-1] = lumped[-1].then(seg)
                else:
                    lumped.append(seg)
            out = replace(out, segments=tuple(lumped))
        return out
