"""Optimal allocation: each chunk's CRF chosen so a rung meets its VMAF as a title, for
the fewest bits.

The constant allocation gates every chunk of a rung to the same VMAF. A title is watched
as a whole, so the rung needs its duration-weighted mean VMAF at the target, with no
chunk so far under it that the drop shows (`MAX_DROP`). An easy chunk buys a VMAF point
for fewer bits than a hard one; the cheapest way to the mean spends where points are
cheap, until every chunk pays the same rate per point: equal slope dRate/dVMAF, the
Lagrangian solution of "fewest bits such that the mean is met" (`allocate`).

The model of a chunk (`fit_curve`, `RateQualityCurve`), fitted on a few encodes of it
(the complexity pass, probe encodes; at least two CRFs):

- rate: ln kbps = a + b·CRF, least squares (x264 spends about 12 % more a CRF step
  down, b near -0.12); b is held at 0 or under.
- VMAF: quadratic in CRF where three CRFs or more were measured, else linear; within
  the measured CRFs the fit must fall (otherwise the linear fit is used, and a linear
  fit that rises is held flat), and beyond them it goes on along its slope at the end
  of the measured span, so it never turns back up where nothing was measured. Clamped
  to [0, 100].
- domain: the encoder's CRF range (x264 8-bit: 0-51, `CRF_RANGE`) in steps of a tenth.
  Far from the measured CRFs the model is an extrapolation; an encode made at the
  chosen CRF corrects it (`RateQualityCurve.corrected`).

Plain functions, no Beam, no FFmpeg, no randomness.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from media.plan.hull import CRF_RANGE

__all__ = [
    "CRF_STEP",
    "MAX_DROP",
    "Allocation",
    "AllocationChunk",
    "ChunkChoice",
    "CurvePoint",
    "RateQualityCurve",
    "allocate",
    "constant_allocation",
    "fit_curve",
]

CRF_STEP = 0.1
"""The finest CRF step x264 takes (it rounds CRFs to a hundredth; tenths are enough)."""
MAX_DROP = 6.0
"""How far (VMAF) under the rung's target one chunk may be (issue 29's default)."""
_EPS = 1e-9
"""Slack on "the mean meets the target", against float sums."""
REFINE_STEPS = 6
"""How many CRF steps from its equal-slope pick the exact search moves a chunk at most."""
REFINE_SHARE = 0.001
"""The exact search runs only where one chunk's CRF step costs more than this share of the
rung's bits (few chunks, or a coarse grid): the greedy's excess is within about one such
step, and below this share it does not pay for the search."""
REFINE_STATES = 5_000
"""States the exact search keeps at most before it gives up (and keeps the greedy picks)."""
_BISECTIONS = 200
"""Bisection steps on the multiplier at most (each halves its bracket)."""


@dataclass(frozen=True)
class CurvePoint:
    """One encode of a chunk: where it was made and what it gave."""

    crf: float
    """The CRF it was encoded at."""
    kbps: float
    """Its average rate, kb/s."""
    vmaf: float
    """Its pooled VMAF."""


@dataclass(frozen=True)
class RateQualityCurve:
    """A chunk's rate and VMAF as functions of CRF (see the module docstring)."""

    ln_kbps_at_0: float
    """a of ln kbps = a + b·CRF."""
    ln_kbps_per_crf: float
    """b of ln kbps = a + b·CRF (<= 0)."""
    vmaf_coeffs: tuple[float, float, float]
    """(c0, c1, c2) of VMAF = c0 + c1·CRF + c2·CRF² within `fit_span`."""
    fit_span: tuple[float, float]
    """The lowest and highest CRF measured; beyond them VMAF goes on along its end slope."""

    def kbps(self, crf: float) -> float:
        """The predicted rate at `crf`, kb/s."""
        return math.exp(self.ln_kbps_at_0 + self.ln_kbps_per_crf * crf)

    def _raw_vmaf(self, crf: float) -> float:
        c0, c1, c2 = self.vmaf_coeffs
        lo, hi = self.fit_span
        edge = min(hi, max(lo, crf))
        return c0 + c1 * edge + c2 * edge * edge + (c1 + 2 * c2 * edge) * (crf - edge)

    def vmaf(self, crf: float) -> float:
        """The predicted VMAF at `crf`: non-increasing in CRF, within [0, 100]."""
        return min(100.0, max(0.0, self._raw_vmaf(crf)))

    def corrected(self, point: CurvePoint) -> RateQualityCurve:
        """This curve shifted to pass through an encode actually made (`point`): its rate
        by a factor, its VMAF by an offset, both carried to every CRF."""
        if point.kbps <= 0:
            raise ValueError(f"an encode at CRF {point.crf} with {point.kbps} kb/s cannot "
                             "correct a curve: pass an encode that wrote bytes")
        shift = math.log(point.kbps) - math.log(self.kbps(point.crf))
        c0, c1, c2 = self.vmaf_coeffs
        return dataclasses.replace(
            self, ln_kbps_at_0=self.ln_kbps_at_0 + shift,
            vmaf_coeffs=(c0 + point.vmaf - self._raw_vmaf(point.crf), c1, c2))


def _least_squares(xs: Sequence[float], ys: Sequence[float], degree: int) -> list[float]:
    """Polynomial coefficients (constant first) of the least-squares fit of `degree`."""
    n = degree + 1
    # normal equations, centred on the mean x so a quadratic in CRFs near 30 stays sound
    mid = sum(xs) / len(xs)
    us = [x - mid for x in xs]
    a = [[sum(u ** (i + j) for u in us) for j in range(n)] for i in range(n)]
    b = [sum(y * u ** i for u, y in zip(us, ys, strict=True)) for i in range(n)]
    for col in range(n):  # Gauss-Jordan with partial pivoting
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        for row in range(n):
            if row != col:
                f = a[row][col] / a[col][col]
                a[row] = [x - f * y for x, y in zip(a[row], a[col], strict=True)]
                b[row] -= f * b[col]
    centred = [b[i] / a[i][i] for i in range(n)] + [0.0] * (3 - n)
    k0, k1, k2 = centred  # back from u = x - mid to x
    return [k0 - k1 * mid + k2 * mid * mid, k1 - 2 * k2 * mid, k2][:n]


def fit_curve(points: Iterable[CurvePoint]) -> RateQualityCurve:
    """A chunk's `RateQualityCurve` fitted on its encodes (two CRFs at least)."""
    points = sorted(points, key=lambda p: p.crf)
    crfs = sorted({p.crf for p in points})
    if len(crfs) < 2:
        raise ValueError(f"a chunk's curve needs encodes at two CRFs at least, got {crfs}: "
                         "encode it at another CRF")
    if any(p.kbps <= 0 for p in points):
        raise ValueError("a curve point with no rate: drop encodes that wrote no bytes")
    xs = [p.crf for p in points]
    a, b = _least_squares(xs, [math.log(p.kbps) for p in points], 1)
    if b > 0:  # noise on a flat rate: hold it flat at the mean
        a, b = sum(math.log(p.kbps) for p in points) / len(points), 0.0
    vmafs = [p.vmaf for p in points]
    span = (crfs[0], crfs[-1])
    c0, c1 = _least_squares(xs, vmafs, 1)
    coeffs = (c0, c1, 0.0) if c1 <= 0 else (sum(vmafs) / len(vmafs), 0.0, 0.0)
    if len(crfs) >= 3:
        q0, q1, q2 = _least_squares(xs, vmafs, 2)
        if all(q1 + 2 * q2 * x <= 0 for x in span):  # q' is linear: both ends suffice
            coeffs = (q0, q1, q2)
    return RateQualityCurve(ln_kbps_at_0=a, ln_kbps_per_crf=b, vmaf_coeffs=coeffs,
                            fit_span=span)


@dataclass(frozen=True)
class AllocationChunk:
    """One chunk of a rung, as the solver sees it."""

    duration_s: float
    """Its duration, seconds: its weight in the title's mean and in the bits."""
    curve: RateQualityCurve
    """Its rate and VMAF by CRF."""
    floor_margin: float = 0.0
    """How far over the floor its mean VMAF must stay: where the floor is on a chunk's
    worst frames (its 5th percentile), the lead of its mean over them."""


@dataclass(frozen=True)
class ChunkChoice:
    """The CRF chosen for one chunk, and what the model predicts of it."""

    crf: float
    """The CRF to encode it at."""
    kbps: float
    """Its predicted rate, kb/s."""
    vmaf: float
    """Its predicted VMAF."""


@dataclass(frozen=True)
class Allocation:
    """The CRFs of a rung's chunks, in the chunks' order, and what they add up to."""

    choices: tuple[ChunkChoice, ...]
    """One per chunk, in the order given."""
    lambda_kbps_per_vmaf: float | None
    """The common slope dRate/dVMAF (kb/s per VMAF point); None for the constant one."""
    total_kbit: float
    """Predicted bits of the rung, kbit (kb/s × seconds summed over chunks)."""
    mean_vmaf: float
    """Predicted duration-weighted mean VMAF."""
    feasible: bool
    """Whether the mean meets the target and every chunk its floor."""
    reason: str = ""
    """Why not, where not feasible (the choices are then the best effort)."""


@dataclass
class _Grid:
    """One chunk on the CRF grid: index k is CRF lo + k·step; `top` is the highest index
    whose VMAF meets the floor (0 where none does: the best the chunk can do)."""

    duration_s: float
    kbit: list[float]
    vmaf: list[float]
    top: int
    hull: list[int]
    slopes: list[float]
    floor: float = 0.0
    """Its own floor: the rung's, plus its `floor_margin`."""

    def pick(self, lam: float) -> int:
        """The index minimising kbit - lam·duration·VMAF (the cheaper one on a tie)."""
        return self.hull[bisect.bisect_left(self.slopes, lam * self.duration_s)]


def _grid(chunk: AllocationChunk, crfs: Sequence[float], floor: float) -> _Grid:
    if chunk.duration_s <= 0:
        raise ValueError(f"a chunk of {chunk.duration_s} s has no weight: drop it")
    kbit = [chunk.curve.kbps(c) * chunk.duration_s for c in crfs]
    vmaf = [chunk.curve.vmaf(c) for c in crfs]
    top = max((k for k, v in enumerate(vmaf) if v >= floor), default=0)
    # lower convex hull of (VMAF, kbit) from the cheapest admissible point up
    hull: list[int] = []
    for k in range(top, -1, -1):
        if hull and vmaf[k] <= vmaf[hull[-1]]:
            continue  # more bits for no more VMAF
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            # keep j while the slopes rise through it (i -> j flatter than j -> k)
            if ((kbit[j] - kbit[i]) * (vmaf[k] - vmaf[j])
                    < (kbit[k] - kbit[j]) * (vmaf[j] - vmaf[i])):
                break
            hull.pop()
        hull.append(k)
    slopes = [(kbit[j] - kbit[i]) / (vmaf[j] - vmaf[i]) for i, j in itertools.pairwise(hull)]
    return _Grid(chunk.duration_s, kbit, vmaf, top, hull, slopes, floor)


def _crf_grid(crf_range: tuple[float, float], crf_step: float) -> list[float]:
    lo, hi = crf_range
    if not (crf_step > 0 and hi >= lo):
        raise ValueError(f"CRF range {crf_range} by {crf_step}: need lo <= hi and a step > 0")
    return [round(lo + k * crf_step, 6) for k in range(round((hi - lo) / crf_step) + 1)]


def _result(grids: Sequence[_Grid], crfs: Sequence[float], picks: Sequence[int],
            lam: float | None, target: float, floor: float, reason: str = "") -> Allocation:
    total_s = sum(g.duration_s for g in grids)
    mean = sum(g.vmaf[k] * g.duration_s for g, k in zip(grids, picks, strict=True)) / total_s
    choices = tuple(ChunkChoice(crf=crfs[k], kbps=g.kbit[k] / g.duration_s, vmaf=g.vmaf[k])
                    for g, k in zip(grids, picks, strict=True))
    if not reason and mean < target - _EPS:
        reason = f"not feasible: mean VMAF {mean:.2f} is under the target {target:.2f}"
    under = [i for i, (c, g) in enumerate(zip(choices, grids, strict=True))
             if c.vmaf < g.floor - _EPS]
    if not reason and under:
        reason = (f"not feasible: chunks {under} are under their floor (the rung's "
                  f"{floor:.2f}, raised by each one's margin) even at CRF {crfs[0]}")
    return Allocation(choices=choices, lambda_kbps_per_vmaf=lam,
                      total_kbit=sum(g.kbit[k] for g, k in zip(grids, picks, strict=True)),
                      mean_vmaf=mean, feasible=not reason, reason=reason)


def _weighted(grids: Sequence[_Grid], picks: Sequence[int]) -> float:
    """Σ duration·VMAF of the picks."""
    return sum(g.vmaf[k] * g.duration_s for g, k in zip(grids, picks, strict=True))


def _repair(grids: Sequence[_Grid], picks: list[int], need: float) -> list[int]:
    """`picks` with CRF lowered a step at a time, each on the chunk that buys the most
    VMAF·s per kbit, until Σ duration·VMAF reaches `need` (or nothing more can be had)."""
    picks = list(picks)
    have = _weighted(grids, picks)

    def gain(i: int) -> tuple[float, int] | None:
        g, k = grids[i], picks[i]
        if k == 0:
            return None
        dv = (g.vmaf[k - 1] - g.vmaf[k]) * g.duration_s
        db = g.kbit[k - 1] - g.kbit[k]
        return (-dv / db if db > 0 else -math.inf, i) if dv > 0 else None

    heap = [m for i in range(len(grids)) if (m := gain(i))]
    heapq.heapify(heap)
    while have < need - _EPS and heap:
        _, i = heapq.heappop(heap)
        g = grids[i]
        have += (g.vmaf[picks[i] - 1] - g.vmaf[picks[i]]) * g.duration_s
        picks[i] -= 1
        if m := gain(i):
            heapq.heappush(heap, m)
    return picks


def _trim(grids: Sequence[_Grid], picks: list[int], need: float) -> list[int]:
    """`picks` with CRF raised a step wherever Σ duration·VMAF stays at `need` or over,
    the step saving the most kbit first."""
    picks = list(picks)
    have = _weighted(grids, picks)
    while True:
        moves = [(g.kbit[k] - g.kbit[k + 1], i)
                 for i, (g, k) in enumerate(zip(grids, picks, strict=True))
                 if k < g.top and have - (g.vmaf[k] - g.vmaf[k + 1]) * g.duration_s >= need - _EPS]
        if not moves:
            return picks
        _, i = max(moves)
        g = grids[i]
        have -= (g.vmaf[picks[i]] - g.vmaf[picks[i] + 1]) * g.duration_s
        picks[i] += 1


def _refine(grids: Sequence[_Grid], picks: list[int], need: float) -> list[int]:
    """The cheapest picks that reach `need` with each chunk within `REFINE_STEPS` of its
    pick: an exact search (dynamic programming over chunks, keeping the (VMAF·s, kbit)
    states no other state beats on both) that settles what the multiplier's steps leave
    over, where one chunk a few steps down pays for another a step up. `picks` where
    one chunk's step is under `REFINE_SHARE` of the bits or the states grow past
    `REFINE_STATES`."""
    total = sum(g.kbit[k] for g, k in zip(grids, picks, strict=True))
    if max((g.kbit[k - 1] - g.kbit[k] for g, k in zip(grids, picks, strict=True) if k),
           default=0.0) < REFINE_SHARE * total:
        return picks
    options = [range(max(0, k - REFINE_STEPS), max(k, min(g.top, k + REFINE_STEPS)) + 1)
               for g, k in zip(grids, picks, strict=True)]
    # what the chunks after i can add at most, and cost at least
    gain_left, kbit_left = [0.0] * (len(grids) + 1), [0.0] * (len(grids) + 1)
    for i in range(len(grids) - 1, -1, -1):
        g, ks = grids[i], options[i]
        gain_left[i] = gain_left[i + 1] + max(g.vmaf[k] for k in ks) * g.duration_s
        kbit_left[i] = kbit_left[i + 1] + min(g.kbit[k] for k in ks)
    bound = total + _EPS
    states: list[tuple[float, float, tuple | None]] = [(0.0, 0.0, None)]  # (VMAF·s, kbit, path)
    for i, (g, ks) in enumerate(zip(grids, options, strict=True)):
        grown = [(w + g.vmaf[k] * g.duration_s, b + g.kbit[k], (k, path))
                 for w, b, path in states for k in ks]
        grown = [s for s in grown if s[0] + gain_left[i + 1] >= need - _EPS
                 and s[1] + kbit_left[i + 1] <= bound]
        grown.sort(key=lambda s: (-s[0], s[1]))
        states, cheapest = [], math.inf
        for state in grown:  # by VMAF·s falling: keep a state only if it is cheaper
            if state[1] < cheapest:
                states.append(state)
                cheapest = state[1]
        if len(states) > REFINE_STATES:
            return picks
    done = [s for s in states if s[0] >= need - _EPS]
    if not done:
        return picks
    path, best = min(done, key=lambda s: s[1])[2], []
    while path:
        k, path = path
        best.append(k)
    return best[::-1]


def allocate(chunks: Sequence[AllocationChunk], target_vmaf: float,
             max_drop: float = MAX_DROP, crf_range: tuple[float, float] = CRF_RANGE,
             crf_step: float = CRF_STEP) -> Allocation:
    """The CRF of each chunk of a rung that meets `target_vmaf` as the duration-weighted
    mean, with no chunk under `target_vmaf - max_drop`, for the fewest predicted bits.

    Equal slope: for a multiplier λ each chunk takes the CRF minimising kbit - λ·s·VMAF
    (over its own CRF grid, at or over the floor); bisection finds the least λ whose
    choices meet the mean. The step from the last λ under it to the first over it can
    overshoot, so the choices under it are raised to the mean a CRF step at a time
    where a VMAF point is cheapest, steps that the mean can spare are given back, and
    the cheaper of that and the λ's own choices is kept; where one chunk's step is a
    sizeable share of the bits (few chunks, a coarse grid), an exact search within a few
    steps of those choices settles the rest (`_refine`). Where even the lowest CRF of
    every chunk misses the mean, or a chunk its floor, the result is the best effort
    (most VMAF) and says so (`Allocation.feasible`, `reason`).
    """
    if not chunks:
        raise ValueError("no chunks to allocate")
    crfs = _crf_grid(crf_range, crf_step)
    floor = target_vmaf - max_drop
    grids = [_grid(c, crfs, floor + c.floor_margin) for c in chunks]
    need = target_vmaf * sum(g.duration_s for g in grids)

    def picks_at(lam: float) -> list[int]:
        return [g.pick(lam) for g in grids]

    lo_lam, hi_lam = 0.0, max((s / g.duration_s for g in grids for s in g.slopes),
                              default=0.0) * 2 + 1.0
    if _weighted(grids, picks_at(lo_lam)) >= need - _EPS:
        return _result(grids, crfs, picks_at(lo_lam), lo_lam, target_vmaf, floor)
    best = picks_at(hi_lam)
    if _weighted(grids, best) < need - _EPS:
        reason = (f"not feasible: the target {target_vmaf:.2f} is out of reach even at the "
                  f"lowest CRF {crf_range[0]} of every chunk; best effort is")
        best_mean = _weighted(grids, best) / sum(g.duration_s for g in grids)
        return _result(grids, crfs, best, hi_lam, target_vmaf, floor,
                       f"{reason} {best_mean:.2f}")
    for _ in range(_BISECTIONS):
        mid = (lo_lam + hi_lam) / 2
        if mid in (lo_lam, hi_lam):
            break
        if _weighted(grids, picks_at(mid)) >= need - _EPS:
            hi_lam = mid
        else:
            lo_lam = mid
    candidates = [_trim(grids, picks_at(hi_lam), need),
                  _trim(grids, _repair(grids, picks_at(lo_lam), need), need)]
    picks = min(candidates, key=lambda p: sum(g.kbit[k] for g, k in zip(grids, p, strict=True)))
    picks = _refine(grids, picks, need)
    return _result(grids, crfs, picks, hi_lam, target_vmaf, floor)


def constant_allocation(chunks: Sequence[AllocationChunk], target_vmaf: float,
                        crf_range: tuple[float, float] = CRF_RANGE,
                        crf_step: float = CRF_STEP) -> Allocation:
    """Today's gate, for comparison: each chunk at the highest CRF of the grid where its
    own VMAF meets `target_vmaf` (its lowest CRF where none does)."""
    if not chunks:
        raise ValueError("no chunks to allocate")
    crfs = _crf_grid(crf_range, crf_step)
    grids = [_grid(c, crfs, target_vmaf) for c in chunks]
    reason = ("" if all(g.vmaf[g.top] >= target_vmaf for g in grids) else
              f"a chunk misses the target {target_vmaf:.2f} even at CRF {crf_range[0]}")
    return _result(grids, crfs, [g.top for g in grids], None, target_vmaf, target_vmaf,
                   reason)
