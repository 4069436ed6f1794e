"""A rung's chunks allocated from their probe encodes (`--allocation optimal`).

Each chunk of a rung is probed: encoded at the trial preset at two CRFs around the CRF
the constant allocation would give it (`probe_crfs`), and scored. The probes give each
chunk's own rate–VMAF curve (`media.plan.allocation.fit_curve`) at the trial preset. The
final preset buys more VMAF at the same CRF; the rung's calibration placed every chunk's
constant CRF so that the chunks meet the rung's aim on average, so the probe curves are
raised by the one factor on the distance to VMAF 100 that makes their mean at the
constant CRFs the aim (`allocate_rung`): a chunk near the ceiling (a still picture at
97) gains little from the slower preset, one far under it gains the most.
`media.plan.allocation.allocate` then spends the rung's bits where a VMAF point is
cheapest (equal slope), under the same mean and a floor per chunk.

That raise rests on the calibration: it holds only where the calibration measured the
final preset. A rung whose calibration could not (its sample held by the VBV cap or a
still picture, `Rendition.calibrated`) is probed at the final preset instead
(`probe_preset`), and its curves are taken as they are: on the `shots` benchmark source,
whose every rung was so, the raised probes read 1.5-4 VMAF under the final encodes (up
to 13 on a fast-moving shot, where the trial preset loses most), and the allocation spent
7.3 % more bits than the constant one (3.3 % with probes at the final preset).

Each chunk gets a CRF and the VMAF its gate holds it to: the gate's window is placed so
that its middle is the allocated VMAF, as the constant gate's middle is the rung's aim.

Plain functions, no Beam, no FFmpeg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from media.core.types import Rendition
from media.plan.allocation import (
    MAX_DROP,
    AllocationChunk,
    CurvePoint,
    RateQualityCurve,
    allocate,
    fit_curve,
)
from media.plan.hull import CRF_RANGE

__all__ = [
    "PROBE_SPREAD",
    "WORST_P5_DROP",
    "ChunkProbe",
    "RungAllocation",
    "allocate_rung",
    "probe_crfs",
    "probe_preset",
    "probes_at_final_preset",
    "spaced_shares",
    "toward_constant",
]

PROBE_SPREAD = 2.0
"""CRF steps either side of a chunk's constant CRF that it is probed at. The curves are
straight lines in CRF (ln rate, VMAF) between and beyond the probes, and the real ones
bend: probes 2 steps apart measure the slopes where the allocation moves the chunk, and
on a 12 s 360p title of four scenes, probes 4 apart or 6 apart spent about as many bits
with more re-encodes, and on a uniform noisy title 5-18 % more bits than constant
(docs/per-title.md, "Optimal allocation in the pipeline")."""
_HAIR = 0.2
"""VMAF a chunk's own floor is set under its constant CRF's, so that the solver's CRF grid
(tenths) still holds a point at it."""
WORST_P5_DROP = 1.5
"""How far (VMAF) under the constant allocation's worst chunk (its predicted 5th
percentile) the allocation may take any chunk's 5th percentile: a rung's worst stretch
stays within 2 of what constant quality gives it, with half a point kept for the gate's
window and the probes' error (on the 32 s zoom, a floor at the target less 6 alone let
the worst chunk fall 2.6 under constant's)."""
REACH = 1.0
"""How many CRF steps beyond its probes a chunk may be moved: the curves are straight
lines past their measured span, and a long reach would trust them too far."""


@dataclass(frozen=True)
class ChunkProbe:
    """One chunk of a rung, probed: what the allocation needs of it (a slim record)."""

    index: int
    duration_s: float
    constant_crf: float
    """The CRF the constant allocation gives it (the rung's CRF and its offsets)."""
    points: tuple[CurvePoint, ...]
    """Its probe encodes at its probe preset (`probe_preset`; two CRFs at least)."""
    p5_gap: float = 0.0
    """How far its 5th-percentile frame VMAF fell under its mean in its probes (the larger
    of the two): the floor is on a chunk's worst frames, the allocation sees its mean."""


@dataclass(frozen=True)
class RungAllocation:
    """What the allocation chose for a rung, and what it predicts."""

    crfs: tuple[float, ...]
    """Each chunk's CRF, in index order."""
    vmafs: tuple[float, ...]
    """Each chunk's predicted VMAF at the final preset, in index order."""
    aim_vmaf: float
    """The duration-weighted mean it aims at (the constant gate's aim)."""
    floor_vmaf: float
    """No chunk's 5th percentile is aimed under it."""
    offset_vmaf: float
    """VMAF the final preset adds to the probes' at the same CRF (as the plan implies)."""
    predicted_kbit: float
    """Predicted bits at the probe preset, kbit ..."""
    constant_kbit: float
    """... and the constant allocation's, on the same curves."""
    feasible: bool
    reason: str = ""
    applied: bool = True
    """False where the rung keeps the constant allocation (`spaced_shares`, `reason`)."""
    probes_at_final: bool = False
    """Whether the probes were made at the final preset (taken as they are) rather than
    the trial preset (raised by the calibration's measure)."""
    chunks: tuple[tuple[float, float, HeldCurve | None], ...] = field(
        default=(), repr=False, compare=False)
    """(seconds, constant CRF, curve or None) of each chunk, for `toward_constant`."""

    @property
    def predicted_saving(self) -> float:
        """The share of bits the model saves against the constant allocation."""
        return 1 - self.predicted_kbit / self.constant_kbit if self.constant_kbit else 0.0

    def record(self) -> dict:
        """For plan.json / report.json: small, whatever the title's length."""
        return {"aim_vmaf": round(self.aim_vmaf, 2), "floor_vmaf": round(self.floor_vmaf, 2),
                "probe_offset_vmaf": round(self.offset_vmaf, 2),
                "predicted_saving": round(self.predicted_saving, 4),
                "crf_range": [min(self.crfs), max(self.crfs)],
                "vmaf_range": [round(min(self.vmafs), 2), round(max(self.vmafs), 2)],
                "feasible": self.feasible, "applied": self.applied, "reason": self.reason,
                "probe_preset": "final" if self.probes_at_final else "trial"}


def probe_crfs(constant_crf: float, spread: float = PROBE_SPREAD) -> tuple[float, float]:
    """The two CRFs a chunk is probed at, within x264's range.

    >>> probe_crfs(23.4)
    (21.4, 25.4)
    >>> probe_crfs(50.0)
    (48.0, 51.0)
    """
    lo, hi = CRF_RANGE
    return (round(max(lo, constant_crf - spread), 2), round(min(hi, constant_crf + spread), 2))


def probes_at_final_preset(rendition: Rendition) -> bool:
    """Whether a rung's chunks are probed at the final preset (and their curves taken as
    they are, `allocate_rung`'s `at_final_preset`): where the plan's calibration could
    not measure that preset, so no raise of trial-preset probes would rest on anything."""
    return not rendition.calibrated


def probe_preset(rendition: Rendition, trial_preset: str, final_preset: str) -> str:
    """The preset a rung's chunks are probed at: the trial preset where the plan's
    calibration measured the final one (its probes are raised to it), else the final
    preset itself, whose probes need no raise (`probes_at_final_preset`).

    >>> rung = Rendition("432p", 768, 432, 26.6, 642, 1284, target_vmaf=61.45)
    >>> probe_preset(rung, "veryfast", "medium")
    'veryfast'
    >>> probe_preset(replace(rung, calibrated=False), "veryfast", "medium")
    'medium'
    """
    return final_preset if probes_at_final_preset(rendition) else trial_preset


def allocate_rung(probes: Sequence[ChunkProbe], aim_vmaf: float,
                  floor_vmaf: float | None = None, at_final_preset: bool = False
                  ) -> RungAllocation:
    """Each chunk's CRF and predicted VMAF for a rung aiming at `aim_vmaf` as a title.

    The probe curves are raised (on their distance to VMAF 100, by one factor) so that
    their duration-weighted mean at the constant CRFs is `aim_vmaf` (what the plan's
    calibration says of those CRFs at the final preset), then allocated so that no
    chunk's 5th percentile is predicted under `floor_vmaf` (default `aim_vmaf -
    MAX_DROP`) or under the constant CRFs' worst chunk's less WORST_P5_DROP, whichever
    is higher, or under its own at its constant CRF where that is lower: its mean stays
    its `p5_gap` over. Probes made `at_final_preset` (`probe_preset`) are not raised:
    they measured what the final encodes give.
    """
    floor_vmaf = aim_vmaf - MAX_DROP if floor_vmaf is None else floor_vmaf
    if not probes:
        raise ValueError("no chunks to allocate")
    probes = sorted(probes, key=lambda p: p.index)
    probed = [p for p in probes if len({pt.crf for pt in p.points}) >= 2]
    if not probed:
        return RungAllocation(
            crfs=tuple(p.constant_crf for p in probes), vmafs=tuple(aim_vmaf for _ in probes),
            aim_vmaf=aim_vmaf, floor_vmaf=floor_vmaf, offset_vmaf=0.0, predicted_kbit=0.0,
            constant_kbit=0.0, feasible=False,
            reason="no chunk could be probed: every chunk keeps its constant CRF")
    curves = [fit_curve(p.points) for p in probed]
    seconds = sum(p.duration_s for p in probed)
    at_constant = sum(c.vmaf(p.constant_crf) * p.duration_s
                      for c, p in zip(curves, probed, strict=True)) / seconds
    offset = 0.0 if at_final_preset else aim_vmaf - at_constant
    if at_final_preset or at_constant >= 99.9:
        # as they are (an offset alone where the probes are at the ceiling already)
        raised = [_raised(c, 1.0, offset) for c in curves]
    else:
        # final = 100 - k (100 - probe): the one k that puts the mean at the constant
        # CRFs on the aim
        k = (100.0 - aim_vmaf) / (100.0 - at_constant)
        raised = [_raised(c, k) for c in curves]
    # ... nor under the constant allocation's worst chunk less WORST_P5_DROP
    worst_constant = min(c.vmaf(p.constant_crf) - p.p5_gap
                         for c, p in zip(raised, probed, strict=True))
    floor_vmaf = max(floor_vmaf, worst_constant - WORST_P5_DROP)
    # A chunk whose worst frames the constant allocation itself leaves under the floor
    # is held where the constant allocation has it, no lower: the constant CRFs stay a
    # choice, so the allocation never costs more than they do.
    # (less a hair: the constant CRF may fall between the solver's tenths)
    chunks = [AllocationChunk(p.duration_s, c, floor_margin=min(
                  p.p5_gap, c.vmaf(p.constant_crf) - floor_vmaf - _HAIR))
              for p, c in zip(probed, raised, strict=True)]
    lo = max(CRF_RANGE[0], min(min(pt.crf for pt in p.points) for p in probed) - REACH)
    hi = min(CRF_RANGE[1], max(max(pt.crf for pt in p.points) for p in probed) + REACH)
    chosen = allocate(chunks, aim_vmaf, aim_vmaf - floor_vmaf, crf_range=(lo, hi))
    constant = sum(c.kbps(p.constant_crf) * p.duration_s
                   for c, p in zip(raised, probed, strict=True))
    # Chunks without probes (theirs failed) keep their constant CRF and the rung's aim;
    # the others meet the aim among themselves, so the title's mean does too.
    picks = {p.index: (round(c.crf, 2), round(c.vmaf, 3))
             for p, c in zip(probed, chosen.choices, strict=True)}
    crfs = tuple(picks.get(p.index, (p.constant_crf, aim_vmaf))[0] for p in probes)
    vmafs = tuple(picks.get(p.index, (p.constant_crf, aim_vmaf))[1] for p in probes)
    unprobed = len(probes) - len(probed)
    reason = chosen.reason
    if unprobed:
        reason = (f"{reason}; " if reason else "") + (
            f"{unprobed} chunk(s) without probes keep their constant CRF")
    curve_of = {p.index: c for p, c in zip(probed, raised, strict=True)}
    return RungAllocation(crfs=crfs, vmafs=vmafs, aim_vmaf=aim_vmaf, floor_vmaf=floor_vmaf,
                          offset_vmaf=offset,
                          predicted_kbit=chosen.total_kbit, constant_kbit=constant,
                          feasible=chosen.feasible, reason=reason,
                          probes_at_final=at_final_preset,
                          chunks=tuple((p.duration_s, p.constant_crf, curve_of.get(p.index))
                                       for p in probes))


class HeldCurve(RateQualityCurve):
    """A probed chunk's curve, careful where nothing was measured. Under the lowest CRF
    probed its VMAF is held at its value there: VMAF flattens as it nears its ceiling (a
    static picture tops out at 97, not 100), and a straight line carried down promises
    points no encode gives. Over the highest it falls twice as fast as between the
    probes: VMAF falls ever faster as CRF rises, and a straight line carried up would
    promise the hard chunks quality they lose. More than REACH over the highest it is 0,
    which no floor takes: the solver's CRF grid spans every chunk's probes, and a chunk
    whose two probes fell where VMAF hardly moves (both near 0 on a hard shot) would be
    sent to CRF 51 (it was, on the `shots` benchmark source, and came out at VMAF 9)."""

    def vmaf(self, crf: float) -> float:
        lo, hi = self.fit_span
        if crf <= hi:
            return super().vmaf(max(crf, lo))
        if crf > hi + REACH + 1e-9:
            return 0.0
        top = super().vmaf(hi)
        return max(0.0, top + 2 * (super().vmaf(crf) - top))


def _raised(curve: RateQualityCurve, k: float, offset: float = 0.0) -> HeldCurve:
    """The probe curve at the final preset: 100 - k (100 - VMAF), plus `offset`."""
    c0, c1, c2 = curve.vmaf_coeffs
    return HeldCurve(curve.ln_kbps_at_0, curve.ln_kbps_per_crf,
                     (100.0 * (1 - k) + k * c0 + offset, k * c1, k * c2),
                     curve.fit_span)


def toward_constant(allocation: RungAllocation, share: float) -> RungAllocation:
    """`allocation` carried `share` of the way from the constant CRFs to its own (1: as
    it is, 0: the constant allocation), each chunk's VMAF and the bits as its curve
    predicts them there."""
    if share >= 1:
        return allocation
    crfs, vmafs, kbit = [], [], 0.0
    for (seconds, constant, curve), crf, vmaf in zip(allocation.chunks, allocation.crfs,
                                                     allocation.vmafs, strict=True):
        if curve is None:
            crfs.append(crf)
            vmafs.append(vmaf)
            continue
        here = round(constant + share * (crf - constant), 2)
        crfs.append(here)
        vmafs.append(round(curve.vmaf(here), 3))
        kbit += curve.kbps(here) * seconds
    return replace(allocation, crfs=tuple(crfs), vmafs=tuple(vmafs), predicted_kbit=kbit,
                   applied=share > 0)


def spaced_shares(allocations: Sequence[RungAllocation], min_ratio: float) -> list[float]:
    """How far each rung (ladder order, tallest first) may go from its constant CRFs
    toward its allocation (`toward_constant`) while neighbouring rungs' rates stay
    `min_ratio` apart (or as far as the constant ones are, if less): the ladder
    invariant that planning enforces. A rung that saves more than the one under it
    brings the two closer; the lowest rung goes all the way, and each rung above goes as
    far as its distance to the one under it allows. Rates are the probes' predictions,
    taken as straight between the constant allocation's and the allocation's."""
    shares = [1.0 if a.constant_kbit and a.predicted_saving >= 0 else 0.0 for a in allocations]

    def rate(i: int) -> float:
        a = allocations[i]
        return a.constant_kbit + shares[i] * (a.predicted_kbit - a.constant_kbit)

    for i in range(len(allocations) - 2, -1, -1):
        here, below = allocations[i], allocations[i + 1]
        if not (shares[i] and here.constant_kbit and below.constant_kbit):
            continue
        need = min(min_ratio, here.constant_kbit / below.constant_kbit)
        floor_rate = rate(i + 1) * need
        if rate(i) < floor_rate - 1e-9:
            saved = here.constant_kbit - here.predicted_kbit
            share = max(0.0, min(1.0, (here.constant_kbit - floor_rate) / saved))
            shares[i] = 1.0 if share > 0.99 else share  # within a hair: as it is
    return shares
