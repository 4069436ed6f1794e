"""Per-title ladder planning: the convex hull of trial encodes, and the rungs it picks.

The method is per-title encoding as the streaming field practises it. A title (or a few
representative chunks of it) is trial-encoded at several resolutions × CRF values; each
trial gives one point, its average bitrate and its VMAF at the display resolution
(`TrialPoint`). The points of one resolution trace a rate–quality curve (`curves`). At
low rates a short resolution looks better (fewer pixels, more bits each); at high rates
a tall one does (there is detail to spend bits on). The upper convex hull of all points
(`upper_hull`) is the best quality any encode reached at each rate, and the resolution
on the hull at a rate is the one to encode at that rate. `choose_rungs` walks the hull
from a quality target down to a rate floor in equal rate ratios and emits the
`PlannedRung`s: resolution, CRF, expected rate and quality, and the VBV cap.

The plane is x = ln(kbps), y = VMAF. The per-title literature plots quality against
log bitrate: there the curves are close to concave (each doubling of rate buys less
quality than the previous one), whereas against linear rate everything is squeezed into
the low-rate corner. Convexity in log-rate also treats rate ratios, not differences, as
the distance between rungs: the hull interpolates between 1 and 2 Mb/s the way it does
between 4 and 8 Mb/s, which is what a player switching between rungs experiences, and
why the ladder is walked in equal ratios (`step_ratio`).

Pure math: no Beam, no FFmpeg, no clock, no randomness. Equal inputs in any order give
equal outputs; ties are broken by explicit keys.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from media.plan.ladder import BUFSIZE_RATIO

__all__ = [
    "BUFSIZE_RATIO",
    "CRF_EXTRAPOLATION",
    "MAXRATE_RATIO",
    "PlannedRung",
    "TrialPoint",
    "choose_rungs",
    "contending_heights",
    "curves",
    "upper_hull",
]

MAXRATE_RATIO = 1.5
"""VBV maxrate = this × the rung's expected average rate. Capped CRF lets a hard scene
take more bits than the average, up to the cap; 1.5× keeps the peak (HLS BANDWIDTH)
well inside the HLS authoring guideline of at most 2× the average for VOD, while rarely
binding on ordinary scenes, so the CRF, not the cap, sets the quality. A rendition's cap
may be wider where a trial sample shows a harder stretch needs it
(`media.plan.planning.rate_spread`)."""
# BUFSIZE_RATIO (VBV buffer = this many seconds of maxrate) is the fixed ladder's own.
CRF_EXTRAPOLATION = 4.0
"""How far (in CRF) a rung may reach beyond the CRFs that were trial-encoded."""
CRF_RANGE = (0.0, 51.0)
"""x264's CRF range for 8-bit video."""
NEAR_GAP = math.log(1.1)
"""How far (in ln-rate: 10 %) past its trials a curve still competes for a rung's rate."""
VMAF_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class TrialPoint:
    """One trial encode: a resolution and CRF, and what it measured."""

    height: int
    """Encoded height, pixels."""
    width: int
    """Encoded width, pixels."""
    crf: float
    """x264 constant rate factor of the trial (0 to 51; lower is higher quality)."""
    kbps: float
    """Average bitrate the trial produced, kb/s (1000 bits per second)."""
    vmaf: float
    """Pooled VMAF of the trial, scored at the display resolution (0 to 100)."""

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"trial {self}: width and height must be positive")
        if not (math.isfinite(self.kbps) and self.kbps > 0):
            raise ValueError(f"trial {self}: kbps must be a positive number; "
                             "drop trials that produced no output")
        if not (math.isfinite(self.vmaf) and math.isfinite(self.crf)):
            raise ValueError(f"trial {self}: crf and vmaf must be finite numbers")


@dataclass(frozen=True)
class PlannedRung:
    """One rung of a per-title ladder, as the hull predicts it."""

    height: int
    """Encoded height, pixels."""
    width: int
    """Encoded width, pixels (the trials' width at this height)."""
    crf: float
    """x264 CRF to encode at, interpolated between trial CRFs (may be fractional)."""
    kbps: float
    """Expected average bitrate at that CRF, kb/s."""
    vmaf: float
    """Expected pooled VMAF at that CRF."""
    maxrate_kbps: int
    """VBV maxrate, kb/s: MAXRATE_RATIO × kbps, rounded."""
    bufsize_kbit: int
    """VBV buffer size, kbit: BUFSIZE_RATIO × maxrate_kbps."""


def _x(point: TrialPoint) -> float:
    return math.log(point.kbps)


def _pareto(points: Iterable[TrialPoint]) -> list[TrialPoint]:
    """Points sorted by rate, keeping only those better than every cheaper point.

    At equal rate the best VMAF comes first and the rest fall out; the remaining keys
    (height, crf, width) only make the order total, so the result never depends on the
    input's order.
    """
    ordered = sorted(points, key=lambda p: (p.kbps, -p.vmaf, p.height, p.crf, p.width))
    front: list[TrialPoint] = []
    for point in ordered:
        if not front or point.vmaf > front[-1].vmaf:
            front.append(point)
    return front


def curves(points: Iterable[TrialPoint]) -> dict[int, list[TrialPoint]]:
    """One rate–quality curve per height, shortest first, each sorted by rate.

    A curve keeps the Pareto front of its height: a trial whose VMAF is not above that
    of a cheaper (or equally cheap) trial of the same height is dropped, so VMAF rises
    strictly along the curve. Duplicates collapse to one point.
    """
    by_height: dict[int, list[TrialPoint]] = {}
    for point in points:
        by_height.setdefault(point.height, []).append(point)
    return {height: _pareto(by_height[height]) for height in sorted(by_height)}


def _cross(o: TrialPoint, a: TrialPoint, b: TrialPoint) -> float:
    """z of (a - o) × (b - o) in the (ln kbps, VMAF) plane; >= 0 means a is not above ob."""
    return (_x(a) - _x(o)) * (b.vmaf - o.vmaf) - (a.vmaf - o.vmaf) * (_x(b) - _x(o))


def upper_hull(points: Iterable[TrialPoint]) -> list[TrialPoint]:
    """The efficient frontier: the rising part of the upper convex hull, by rate.

    Hull of all trials across resolutions in the plane (ln kbps, VMAF), left to right,
    from the cheapest trial up to the best one. Only the Pareto front of all points can
    lie on the rising part, so the hull is built on it (Andrew's monotone chain); points
    on a straight hull edge are left out, since interpolating along the edge gives them.
    Empty input gives an empty hull.
    """
    hull: list[TrialPoint] = []
    for point in _pareto(points):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return hull


def _lerp(x0: float, y0: float, x1: float, y1: float, x: float) -> float:
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _rate_reaching(hull: Sequence[TrialPoint], vmaf: float) -> float:
    """Lowest rate at which the hull (linear in ln kbps) reaches `vmaf`; its top if never."""
    if hull[0].vmaf >= vmaf:
        return hull[0].kbps
    for left, right in itertools.pairwise(hull):
        if right.vmaf >= vmaf:
            return math.exp(_lerp(left.vmaf, _x(left), right.vmaf, _x(right), vmaf))
    return hull[-1].kbps


def _bracket(points: Sequence[TrialPoint], kbps: float) -> tuple[TrialPoint, TrialPoint]:
    """The two neighbours by rate around `kbps`; the end pair when it lies outside."""
    if len(points) == 1:
        return points[0], points[0]
    rates = [p.kbps for p in points]
    i = min(max(bisect.bisect_right(rates, kbps), 1), len(points) - 1)
    return points[i - 1], points[i]


def _reaches(curve: Sequence[TrialPoint], kbps: float) -> bool:
    return curve[0].kbps <= kbps <= curve[-1].kbps


def _nearly_reaches(curve: Sequence[TrialPoint], kbps: float) -> bool:
    """Within NEAR_GAP of the rates the curve covers: its end pair, extended that little,
    predicts as well as trials a few percent apart would."""
    return _gap(curve, kbps) <= NEAR_GAP


def _gap(curve: Sequence[TrialPoint], kbps: float) -> float:
    """Distance in ln-rate from `kbps` to the nearest rate the curve covers."""
    return max(0.0, math.log(curve[0].kbps / kbps), math.log(kbps / curve[-1].kbps))


def _vmaf_on(curve: Sequence[TrialPoint], kbps: float) -> float:
    left, right = _bracket(curve, kbps)
    return _lerp(_x(left), left.vmaf, _x(right), right.vmaf, math.log(kbps))


@dataclass(frozen=True)
class _Estimate:
    crf: float
    kbps: float
    vmaf: float


def _estimate(curve: Sequence[TrialPoint], kbps: float) -> _Estimate:
    """CRF, rate and VMAF for `kbps` on one curve, linear in ln-rate between trials.

    Outside the trials the end pair is extrapolated, by at most CRF_EXTRAPOLATION
    beyond the trial CRFs and never outside [0, 51]; where the CRF is clamped the rate
    and VMAF are those the line predicts at the clamped CRF, not the target.
    """
    left, right = _bracket(curve, kbps)
    crfs = [p.crf for p in curve]
    allowed = (max(CRF_RANGE[0], min(crfs) - CRF_EXTRAPOLATION),
               min(CRF_RANGE[1], max(crfs) + CRF_EXTRAPOLATION))
    x0, x1 = _x(left), _x(right)
    x = math.log(kbps) if x1 != x0 else x0
    crf = _lerp(x0, left.crf, x1, right.crf, x)
    clamped = _clamp(crf, allowed)
    if clamped != crf:
        x = _lerp(left.crf, x0, right.crf, x1, clamped)
    vmaf = _clamp(_lerp(x0, left.vmaf, x1, right.vmaf, x), VMAF_RANGE)
    return _Estimate(crf=clamped, kbps=math.exp(x), vmaf=vmaf)


def _top_kbps(hull: Sequence[TrialPoint], by_height: dict[int, list[TrialPoint]],
              top_vmaf: float) -> float:
    """Rate of the top rung: where the hull reaches `top_vmaf`, made good by one encode.

    Along a hull segment that bridges two resolutions the hull promises more than either
    curve gives (it is the quality of switching between two encodes, not of one). If
    the resolution picked at the hull's rate falls short of `top_vmaf` on its own curve,
    the top moves up that curve to where it does reach it.
    """
    kbps = _rate_reaching(hull, top_vmaf)
    curve = by_height[_pick_height(hull, by_height, kbps, None)]
    if (_reaches(curve, kbps) and _vmaf_on(curve, kbps) < top_vmaf
            and curve[-1].vmaf >= top_vmaf):
        return _rate_reaching(curve, top_vmaf)
    return kbps


def _hull_heights(hull: Sequence[TrialPoint], kbps: float) -> tuple[int, ...]:
    """Heights of the ends of the hull segment over `kbps` (the nearest end outside)."""
    if kbps <= hull[0].kbps:
        return (hull[0].height,)
    if kbps >= hull[-1].kbps:
        return (hull[-1].height,)
    left, right = _bracket(hull, kbps)
    return tuple(sorted({left.height, right.height}))


def _pick_height(hull: Sequence[TrialPoint], by_height: dict[int, list[TrialPoint]],
                 kbps: float, cap: int | None) -> int:
    """The resolution of a rung at `kbps`: the one whose own curve gives most at that rate.

    Every height no taller than `cap` whose curve reaches `kbps` (or nearly: within
    NEAR_GAP, extrapolated) competes, scored by its VMAF there, interpolated in ln-rate.
    A rung is one encode at one resolution, so its quality is that curve's, not the
    hull's: where the hull bridges a long way between two resolutions (a detailed title
    whose curves all sag under the chord from its cheapest to its best trial), a
    resolution in between gives far more at the rung's rate than either end. Where no
    curve reaches `kbps`, the heights at the ends of the hull segment over it compete
    and the one that comes nearer wins. (Without the margin a rate a hair under a taller
    curve's lowest trial, as where the hull reaches the top VMAF right at that trial,
    went to the shorter curve, which gives far less.) Ties go to the shorter height, as
    cheaper to encode and to decode for the same predicted quality.
    """
    allowed = [h for h in by_height if cap is None or h <= cap]
    reaching = [h for h in allowed if _nearly_reaches(by_height[h], kbps)]
    if reaching:
        return max(reaching, key=lambda h: (_vmaf_on(by_height[h], kbps), -h))
    candidates = [h for h in _hull_heights(hull, kbps) if h in allowed]
    if not candidates:  # only a cap leaves none
        return cap
    return max(candidates, key=lambda h: (-_gap(by_height[h], kbps), -h))


def _targets(top_kbps: float, min_kbps: float, step_ratio: float) -> list[float]:
    """Target rates: top, top/r, top/r², ... down to the floor, then the floor itself.

    The top is always a target, even below the floor. The floor is appended when the
    geometric walk does not land on it; `choose_rungs` keeps it only if it is far enough
    below the rung above (see `_far_enough`).
    """
    targets = [top_kbps]
    tolerance = 1e-9 * min_kbps  # a walk that lands on the floor by arithmetic, not luck
    while targets[-1] / step_ratio >= min_kbps - tolerance:
        targets.append(targets[-1] / step_ratio)
    if targets[-1] > min_kbps + tolerance:
        targets.append(min_kbps)
    return targets


def _far_enough(rung: PlannedRung, above: PlannedRung, step_ratio: float) -> bool:
    """A rung is worth adding only at least half a step (√ratio) below the one above."""
    return rung.kbps * math.sqrt(step_ratio) <= above.kbps * (1 + 1e-9)


def _rung(curve: Sequence[TrialPoint], kbps: float) -> PlannedRung:
    estimate = _estimate(curve, kbps)
    maxrate = max(1, round(MAXRATE_RATIO * estimate.kbps))
    return PlannedRung(height=curve[0].height, width=curve[0].width, crf=estimate.crf,
                       kbps=estimate.kbps, vmaf=estimate.vmaf, maxrate_kbps=maxrate,
                       bufsize_kbit=round(BUFSIZE_RATIO * maxrate))


def _check(top_vmaf: float, max_kbps: float | None, min_kbps: float, step_ratio: float,
           max_rungs: int) -> None:
    if not 0 < top_vmaf <= 100:
        raise ValueError(f"top_vmaf must be in (0, 100], got {top_vmaf}")
    if not (math.isfinite(min_kbps) and min_kbps > 0):
        raise ValueError(f"min_kbps must be a positive rate, got {min_kbps}")
    if max_kbps is not None and not max_kbps >= min_kbps:
        raise ValueError(f"max_kbps ({max_kbps}) must be at least min_kbps ({min_kbps})")
    if not (math.isfinite(step_ratio) and step_ratio > 1):
        raise ValueError(f"step_ratio must be above 1 (1.5 to 2 is usual), got {step_ratio}")
    if max_rungs < 1:
        raise ValueError(f"max_rungs must be at least 1, got {max_rungs}")


MIN_RUNGS = 2
"""Apple's HLS Authoring Specification (9.9): a title MUST offer more than one bit rate."""


def choose_rungs(points: Iterable[TrialPoint], top_vmaf: float = 95.0,
                 max_kbps: float | None = None, min_kbps: float = 200.0,
                 step_ratio: float = 1.7, max_rungs: int = 8) -> list[PlannedRung]:
    """The per-title ladder the trials call for, tallest and highest rate first.

    - Top: the lowest rate at which the hull (linear in ln-rate) reaches `top_vmaf`, or
      the hull's best point if it never does; raised where a bridging hull segment
      promised more than the chosen resolution gives (`_top_kbps`); capped at
      `max_kbps`.
    - Then each rung's rate is the one above divided by `step_ratio`, for as long as it
      stays at or above `min_kbps`. Where that walk stops more than half a step (√ratio)
      above the floor, one last rung sits on the floor, so the bottom rung always lies
      within half a step of it and never below it, unless the top itself is below it:
      an easy title whose top is under the floor gets that rung and one a step below
      it (`MIN_RUNGS`: players need somewhere to go).
    - Resolution: see `_pick_height`, the height whose own curve gives the most VMAF
      at the rate (the hull says which resolution wins where trials sit; between them,
      along a long hull edge, the curves do). Heights never grow as the rate falls: only
      heights no taller than the rung above are candidates, and where none reaches the
      rate the rung keeps the height of the rung above. So two rungs share a height only
      where that height's curve beats the others at both rates; they are then a full
      step apart, or at least half a step for the floor rung and for rungs the CRF
      limits moved.
    - CRF, rate and VMAF: interpolated on that height's own curve (`_estimate`). A rung
      the CRF limits push to within half a step of the rung above is left out.
    - `max_rungs`: the tallest rungs are kept.

    Raises ValueError on no trials or out-of-range settings.
    """
    _check(top_vmaf, max_kbps, min_kbps, step_ratio, max_rungs)
    points = list(points)
    if not points:
        raise ValueError("no trial points: trial-encode the title before planning its ladder")
    by_height = curves(points)
    hull = upper_hull(points)
    top = _top_kbps(hull, by_height, top_vmaf)
    if max_kbps is not None:
        top = min(top, max_kbps)
    rungs: list[PlannedRung] = []
    for target in _targets(top, min_kbps, step_ratio):
        if len(rungs) == max_rungs:
            break
        cap = rungs[-1].height if rungs else None
        rung = _rung(by_height[_pick_height(hull, by_height, target, cap)], target)
        if not rungs or _far_enough(rung, rungs[-1], step_ratio):
            rungs.append(rung)
    if len(rungs) < MIN_RUNGS <= max_rungs:
        rungs += _second_rung(rungs[-1], hull, by_height, step_ratio)
    return rungs


def _second_rung(top: PlannedRung, hull: Sequence[TrialPoint],
                 by_height: dict[int, list[TrialPoint]],
                 step_ratio: float) -> list[PlannedRung]:
    """A rung under an easy title's only one (whose top is already under the floor), as a
    player needs somewhere to go (HLS authoring spec 9.9): a step below it on the hull.
    Where no CRF gets that low (a still picture costs its keyframes whatever the CRF),
    the rung keeps the CRF limit and its VBV cap holds it to the step's rate; its VMAF
    is then the curve's at that CRF, an upper bound the gates measure."""
    target = top.kbps / step_ratio
    rung = _rung(by_height[_pick_height(hull, by_height, target, top.height)], target)
    if _far_enough(rung, top, step_ratio):
        return [rung]
    maxrate = max(1, round(MAXRATE_RATIO * target))
    return [dataclasses.replace(rung, kbps=target, maxrate_kbps=maxrate,
                                bufsize_kbit=round(BUFSIZE_RATIO * maxrate))]


def contending_heights(points: Iterable[TrialPoint], rungs: Sequence[PlannedRung],
                       margin: float) -> list[int]:
    """The heights that could carry `rungs`: each rung's own, and every height whose
    curve reaches the rung's rate (within NEAR_GAP) and gives there no less than
    `margin` VMAF under the rung's. Tallest first.

    On other evidence (other samples of the title) one of these may win the rung; a
    height left out would have given at least `margin` less where the points say.
    """
    by_height = curves(points)
    kept = {rung.height for rung in rungs}
    for rung in rungs:
        for height, curve in by_height.items():
            if (_nearly_reaches(curve, rung.kbps)
                    and _vmaf_on(curve, rung.kbps) >= rung.vmaf - margin):
                kept.add(height)
    return sorted(kept, reverse=True)
