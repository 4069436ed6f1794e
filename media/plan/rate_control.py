"""Rate control: the CRF each encode is made at, and which encode a chunk keeps.

Plain functions, no Beam: a chunk's own CRF from the trial samples around it
(`chunk_crf`), the quality gate's verdict, aims and retries (`encode_to_target`, with
"encode and score at this CRF" passed in), which attempt is kept (`kept_attempt`), and
the calibration that moves each rung's CRF from the trial preset to the final one
(`calibrate`, with "encode the sample at these CRFs" passed in).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
from collections.abc import Callable, Sequence

from media.core.types import Attempt, ChunkSpan, ChunkTask, Rendition
from media.plan.hull import CRF_RANGE
from media.plan.planning import FLAT_SLOPE

log = logging.getLogger(__name__)

MAX_CRF_STEP = 8.0
"""Largest CRF change a quality gate makes in one retry."""
FLOOR_MARGIN = 0.5
"""VMAF over its floor that a re-encode from above its window aims a chunk's worst frames
at, where an earlier encode of it fell under the floor (`floor_aim`): their lead under
the mean moves a little with the CRF, and an encode under the floor by a hair is one
that cannot be kept. A chunk that such a re-encode would bring down by less than this is
kept as it is: a tenth of a CRF step is not worth an encode."""
MAX_EXTRAPOLATION = 2.0
"""How far (CRF steps) beyond its calibration encodes a rung's CRF may be placed."""
OFFSET_SCALE = (0.5, 2.5)
"""Bounds of the factor that carries CRF changes from the trial preset to the final one."""
CAPPED_SHARE = 0.9
"""An encode whose average rate reaches this share of its rung's VBV maxrate is held by
the cap (on a deep fractal zoom, capped chunks averaged 1.10-1.13x the maxrate, the
others 0.3-0.6x)."""
CALIBRATION_ROUNDS = 2
"""Encodes of the calibration sample per rung at most."""
CALIBRATION_TOLERANCE = 0.5
"""How far (VMAF) from its aim a rung's calibration encode may land without a second."""
SMALL_RATE_SHARE = 0.05
"""A chunk over the gate's window is not re-encoded to save bits where its rate is under
this share of the rung's VBV maxrate: a higher CRF could save only part of that (on the
`shots` benchmark source, SMPTE bars at 26-36 kb/s in rungs of 0.6-7.7 Mb/s took three
encodes a rung, and the rate did not fall as the CRF rose)."""
MIN_RATE_SAVING = 0.03
"""Nor where the last rise in CRF saved less than this share of the rate."""
BORROW_SHARE = 0.6
"""A calibration encode counts for another rung of its size only where its rate stayed
under this share of what both rungs' VBV allows the sample (`sample_budget_kbps`):
neither cap can have shaped its score."""
MIN_RATE_RESPONSE = 0.03
"""How much (ln of the rate per CRF step, about 3 %) two calibration encodes' rates must
differ for their scores to measure the CRF's effect. x264's rate moves 8-12 % a step;
where it hardly moves, the VBV cap (x264 holds it well under the buffer's arithmetic) or
a still picture set both encodes, and their VMAF says nothing of the CRF: on the `shots`
benchmark source a capped sample measured 0.1 VMAF a step, its CRF changes were carried
2.5x, and the first encodes of the rung's chunks missed their target by up to 27 VMAF."""
BORROW_SPAN = 6.0
"""Two calibration encodes bracket a rung's aim only this many CRF steps apart at most."""
VBV_INIT = 0.9
"""How full x264 starts its VBV buffer (its default, vbv-init 0.9)."""

Encode = Callable[[Rendition], tuple[Attempt, int]]
"""Encode and score a chunk at the rendition's CRF: the attempt and its bytes."""
EncodeRound = Callable[[list[Rendition]], Sequence[tuple[float, float]]]
"""Encode a sample once per rendition, at its CRF: (pooled VMAF, kb/s) of each."""


def crf_in_range(crf: float) -> float:
    """`crf` within x264's range, to a tenth."""
    return round(min(CRF_RANGE[1], max(CRF_RANGE[0], crf)), 1)


# --- a chunk's own CRF -------------------------------------------------------------------


def crf_offset_at(rendition: Rendition, frame: float) -> float:
    """The rendition's CRF change at `frame`: linear between the samples around it,
    the nearest sample's beyond the first and the last."""
    offsets = rendition.crf_offsets
    if not offsets:
        return 0.0
    frames = [f for f, _ in offsets]
    i = bisect.bisect_left(frames, frame)
    if i == 0:
        return offsets[0][1]
    if i == len(offsets):
        return offsets[-1][1]
    (f0, c0), (f1, c1) = offsets[i - 1], offsets[i]
    return c0 + (c1 - c0) * (frame - f0) / (f1 - f0)


def scaled_offsets(rendition: Rendition, factor: float) -> Rendition:
    """`rendition` with its CRF changes times `factor` (within OFFSET_SCALE)."""
    factor = max(OFFSET_SCALE[0], min(OFFSET_SCALE[1], factor))
    return dataclasses.replace(rendition, crf_offsets=tuple(
        (frame, round(change * factor, 2)) for frame, change in rendition.crf_offsets))


def task_rendition(task: ChunkTask) -> Rendition:
    """The rendition as a chunk task encodes it: with the chunk's own CRF (`chunk_crf`),
    or the CRF and gate target an allocation chose for the chunk."""
    if task.allocated_crf is None:
        return chunk_crf(task.rendition, task.chunk)
    return dataclasses.replace(task.rendition, crf=task.allocated_crf, crf_offsets=(),
                               target_vmaf=task.gate_target)


def chunk_crf(rendition: Rendition, chunk: ChunkSpan) -> Rendition:
    """`rendition` with the CRF for `chunk`: its own plus the change at the chunk's
    middle frame (`crf_offsets`)."""
    if not rendition.crf_offsets or rendition.target_kbps:
        return rendition
    change = crf_offset_at(rendition, chunk.start_frame + chunk.frame_count / 2)
    return dataclasses.replace(rendition, crf=crf_in_range(rendition.crf + change))


# --- the quality gate ----------------------------------------------------------------------


def gate_verdict(vmaf: float, target: float, below: float, above: float) -> int:
    """-1 when a chunk is too poor (under target - below), +1 when it wastes bits
    (over target + above), 0 when it is within the window."""
    if vmaf < target - below:
        return -1
    if vmaf > target + above:
        return 1
    return 0


def gate_aim(rendition: Rendition, config) -> float:
    """The VMAF a chunk's CRF aims at: the middle of the gate's window [target - below,
    target + above], so that a chunk a little easier or harder than predicted still
    lands inside it (`config`: a `JobConfig`, or a `ChunkTask` with the same fields)."""
    return round(rendition.target_vmaf + (config.gate_above - config.gate_below) / 2, 2)


def retry_aim(rendition: Rendition, config, verdict: int) -> float:
    """The VMAF a re-encode aims at after a first encode that missed on the side
    `verdict` gives: from below, the window's middle (`gate_aim`); from above, halfway
    between the target and the window's top, as a chunk's curve is often steeper than
    the sample slope it steps by, and giving up quality must not cross the target."""
    if verdict > 0:
        return round(rendition.target_vmaf + config.gate_above / 2, 2)
    return gate_aim(rendition, config)


def held_by_cap(rendition: Rendition, attempt: Attempt) -> bool:
    """Whether the rung's VBV cap, not its CRF, set this encode's quality: a lower CRF
    would spend no more bits and give no more VMAF (a capped rung's peak is its promise
    to players: its HLS BANDWIDTH)."""
    return (rendition.maxrate_kbps > 0
            and attempt.kbps >= CAPPED_SHARE * rendition.maxrate_kbps)


def nothing_to_save(rendition: Rendition, attempts: Sequence[Attempt]) -> bool:
    """Whether re-encoding a chunk over its window at a higher CRF would save next to
    nothing: its rate is a small share of the rung's cap (SMALL_RATE_SHARE: a still
    picture, black), or the last rise in CRF saved under MIN_RATE_SAVING of the rate."""
    last = attempts[-1]
    if rendition.maxrate_kbps and last.kbps < SMALL_RATE_SHARE * rendition.maxrate_kbps:
        return True
    if len(attempts) >= 2 and attempts[-2].crf < last.crf:
        return last.kbps > (1 - MIN_RATE_SAVING) * attempts[-2].kbps
    return False


def measured_slope(attempts: Sequence[Attempt]) -> float | None:
    """VMAF per CRF step through the last two scored attempts at different CRFs, where
    they measured a fall (None otherwise)."""
    scored = [a for a in attempts if a.vmaf is not None]
    if len(scored) < 2 or scored[-1].crf == scored[-2].crf:
        return None
    slope = (scored[-1].vmaf - scored[-2].vmaf) / (scored[-1].crf - scored[-2].crf)
    return slope if slope < FLAT_SLOPE else None


def rate_responds(attempts: Sequence[Attempt]) -> bool:
    """Whether the last two attempts at different CRFs moved the rate by at least
    MIN_RATE_RESPONSE a step (True where there are not two to compare)."""
    made = [a for a in attempts if a.kbps > 0]
    if len(made) < 2 or made[-1].crf == made[-2].crf:
        return True
    per_step = abs(math.log(made[-1].kbps / made[-2].kbps) / (made[-1].crf - made[-2].crf))
    return per_step >= MIN_RATE_RESPONSE


def next_crf(rendition: Rendition, attempts: Sequence[Attempt],
             aim: float | None = None) -> float:
    """The CRF predicted to bring a chunk to `aim` (default: its target VMAF).

    With one attempt: the trial curve's slope from the chunk's own score. With two or
    more: the secant through the chunk's last two (CRF, VMAF) measurements, which
    knows this chunk's content better than the title-wide trials do.
    """
    last = attempts[-1]
    slope = measured_slope(attempts) or rendition.vmaf_per_crf
    goal = rendition.target_vmaf if aim is None else aim
    step = (goal - (last.vmaf or 0.0)) / slope
    step = max(-MAX_CRF_STEP, min(MAX_CRF_STEP, step))
    return crf_in_range(last.crf + step)


def encode_to_target(task: ChunkTask, encode: Encode) -> tuple[int, list[Attempt]]:
    """Encode at the chunk's own CRF (`chunk_crf`); while the quality gate says so,
    re-encode at the CRF predicted to reach its window (`retry_aim`), unless the VBV cap
    holds it (`held_by_cap`) or a higher CRF would save next to nothing
    (`nothing_to_save`). Returns which attempt to keep (`kept_attempt`) and every
    attempt, in order.

    The gate compares the chunk's mean-pooled VMAF with the rung's target: the trials
    that set the target are mean-pooled too, so both sides are on one scale.
    """
    rendition = task_rendition(task)
    gated = task.max_attempts > 1 and task.score_vmaf and rendition.target_vmaf > 0
    attempts: list[Attempt] = []
    sizes: list[int] = []
    for _ in range(task.max_attempts if gated else 1):
        attempt, size_bytes = encode(rendition)
        attempts.append(attempt)
        sizes.append(size_bytes)
        score = attempt.vmaf
        verdict = gate_verdict(score, rendition.target_vmaf, task.gate_below,
                               task.gate_above) if gated else 0
        aim = retry_aim(rendition, task, verdict)
        if gated and verdict >= 0 and under_floor(task, attempt):
            # its mean is where it should be, its worst frames are not: raise the mean
            # by what they miss
            verdict, aim = -1, round(score + task.gate_floor - attempt.p5, 2)
        if verdict == 0:
            break
        lift = floor_aim(task, attempts) if gated and verdict > 0 else None
        if lift is not None and lift > score - FLOOR_MARGIN:
            log.info("%s: %s chunk %d: VMAF %.2f, target %.2f: a higher CRF would take its "
                     "worst frames under the floor %.2f, or save next to nothing; kept",
                     task.title_id, rendition.rendition_id, task.chunk.index, score,
                     rendition.target_vmaf, task.gate_floor)
            break
        if lift is not None:
            # over its window only because an encode under it fell under the floor: come
            # down no further than the floor allows
            aim = max(aim, lift)
        if verdict > 0 and nothing_to_save(rendition, attempts):
            log.info("%s: %s chunk %d: VMAF %.2f, target %.2f, at %.0f kb/s: a higher CRF "
                     "would save next to nothing; kept", task.title_id,
                     rendition.rendition_id, task.chunk.index, score,
                     rendition.target_vmaf, attempt.kbps)
            break
        if verdict < 0 and held_by_cap(rendition, attempt):
            log.info("%s: %s chunk %d: VMAF %.2f, target %.2f, at the rung's VBV cap "
                     "(%.0f of %d kb/s): a lower CRF would not add bits; kept, flagged",
                     task.title_id, rendition.rendition_id, task.chunk.index, score,
                     rendition.target_vmaf, attempt.kbps, rendition.maxrate_kbps)
            break
        crf = next_crf(rendition, attempts, aim)
        if any(crf == made.crf for made in attempts):
            break  # encoded at that CRF already: the same encode again
        log.info("%s: %s chunk %d: VMAF %.2f, target %.2f: re-encoding at CRF %g",
                 task.title_id, rendition.rendition_id, task.chunk.index, score,
                 rendition.target_vmaf, crf)
        rendition = dataclasses.replace(rendition, crf=crf)
    return kept_attempt(attempts, sizes, task), attempts


def under_floor(task: ChunkTask, attempt: Attempt) -> bool:
    """Whether an encode's worst frames (5th percentile) are under the chunk's floor."""
    return bool(task.gate_floor) and attempt.p5 is not None and attempt.p5 < task.gate_floor


def floor_aim(task: ChunkTask, attempts: Sequence[Attempt]) -> float | None:
    """The mean VMAF at which a chunk's worst frames clear its floor by FLOOR_MARGIN,
    from its encodes that fell under the floor (the most their mean led their 5th
    percentile by); None where none did. Without it, a chunk lifted over its floor and
    so over its window was brought back down to the CRF that had missed the floor (on
    the `shots` benchmark source, three rungs' encodes of one chunk: the third encode
    discarded, the lifted one kept at 1.09-1.11x the bits of the encode `floor_aim`
    gives, which clears the floor)."""
    leads = [made.vmaf - made.p5 for made in attempts if under_floor(task, made)]
    return round(task.gate_floor + max(leads) + FLOOR_MARGIN, 2) if leads else None


def kept_attempt(attempts: Sequence[Attempt], sizes: Sequence[int], task: ChunkTask) -> int:
    """Index of the encode to keep (`sizes`: each one's bytes): the smallest one within
    the gate's window; else the smallest that reaches the target; else the best-scoring
    one. Where the chunk has a floor, encodes whose worst frames are under it are left
    out, unless every one is."""
    target = task.gate_target
    if len(attempts) == 1 or not target:
        return len(attempts) - 1
    indexes = [i for i in range(len(attempts)) if not under_floor(task, attempts[i])]
    if not indexes:  # none over the floor: the best-scoring
        return max(range(len(attempts)), key=lambda i: attempts[i].vmaf)
    within = [i for i in indexes
              if gate_verdict(attempts[i].vmaf, target, task.gate_below, task.gate_above) == 0]
    if within:
        return min(within, key=lambda i: sizes[i])
    reaching = [i for i in indexes if attempts[i].vmaf >= target - task.gate_below]
    if reaching:
        return min(reaching, key=lambda i: sizes[i])
    return max(indexes, key=lambda i: attempts[i].vmaf)


# --- calibration: the rungs' CRFs at the final preset --------------------------------------


def calibrated_crf(rendition: Rendition, attempts: Sequence[Attempt], aim: float) -> float:
    """The sample's CRF predicted to bring it to `aim` from its calibration encodes
    (`next_crf`), at most MAX_EXTRAPOLATION steps beyond the CRFs they were made at:
    a secant's error grows with the distance it is carried (on a grainy title, carried
    4.5 steps it put a rung's chunks 3 VMAF under target).

    >>> rung = Rendition("720p", 1280, 720, 28.5, 845, 1690, target_vmaf=75.91)
    >>> calibrated_crf(rung, [Attempt(28.5, 604.1, 77.917), Attempt(29.3, 549.4, 77.69)],
    ...                76.41)
    31.3
    """
    crf = next_crf(rendition, attempts, aim)
    if len(attempts) < 2:
        return crf
    made = [a.crf for a in attempts]
    return crf_in_range(min(max(made) + MAX_EXTRAPOLATION,
                            max(min(made) - MAX_EXTRAPOLATION, crf)))


def sample_budget_kbps(rendition: Rendition, sample_s: float) -> float:
    """The average rate a sample of `sample_s` seconds can reach under the rendition's
    VBV: what the buffer holds at the start plus what flows in meanwhile (0: uncapped).
    A 1 s calibration sample with a buffer of twice the cap may average 2.8x the cap,
    where a 12 s chunk averages about the cap at most."""
    if not rendition.maxrate_kbps:
        return 0.0
    return rendition.maxrate_kbps + VBV_INIT * rendition.bufsize_kbit / sample_s


def bracketing_attempts(rung: Rendition, aim: float,
                        measured: Sequence[tuple[Rendition, Attempt]], sample_s: float
                        ) -> tuple[Attempt, Attempt] | None:
    """Two encodes of the `sample_s` seconds calibration sample at `rung`'s size,
    `measured` for it or for other rungs of that size, that score either side of `aim`:
    the nearest above and the nearest below, lower CRF above. Between them the final
    preset's own curve places the rung's CRF with no encode of its own.

    One sample at one size and preset has one curve of VMAF over CRF, so each rung's
    first calibration encode is a point on its siblings' curve too, where no VBV cap
    shaped it (BORROW_SHARE). None where no such pair is at most BORROW_SPAN apart.
    """
    size = (rung.width, rung.height)
    points = [a for r, a in measured
              if (r.width, r.height) == size and a.vmaf is not None
              and _uncapped(a, rung, sample_s) and _uncapped(a, r, sample_s)]
    above = [a for a in points if a.vmaf >= aim]
    below = [a for a in points if a.vmaf < aim]
    if not above or not below:
        return None
    high = min(above, key=lambda a: a.vmaf)
    low = max(below, key=lambda a: a.vmaf)
    if not high.crf < low.crf <= high.crf + BORROW_SPAN:
        return None
    return high, low


def _uncapped(attempt: Attempt, rendition: Rendition, sample_s: float) -> bool:
    budget = sample_budget_kbps(rendition, sample_s)
    return not budget or attempt.kbps < BORROW_SHARE * budget


def calibrate(renditions: Sequence[Rendition], span: ChunkSpan, sample_s: float, config,
              encode_round: EncodeRound) -> tuple[list[Rendition], list[dict]]:
    """Move each rung's CRF to where the final preset meets the middle of the gate's
    window (`gate_aim`) on one sample (`span`, of `sample_s` seconds), and its slope
    and CRF changes to that preset's curve. Returns the renditions and a record each.

    The trials' fast preset gives the hull's shape, but a slower preset gives more
    quality at the same CRF: uncalibrated, every chunk would be encoded twice. The sample
    is encoded at its own CRF (`chunk_crf`). A rung more than CALIBRATION_TOLERANCE from
    its aim is placed between two first-round encodes of its size (`bracketing_attempts`)
    or encoded once more; the secant through its scores then places it. Where the two
    encodes' rates hardly moved (`rate_responds`: a VBV cap or a still picture set them),
    the rung keeps the trials' CRF, slope and CRF changes, and is marked uncalibrated
    (`Rendition.calibrated`: the optimal allocation then probes it at the final preset,
    `media.plan.rung_allocation.probe_preset`). Each round is one
    `encode_round` (`config`: a `JobConfig`).
    """
    here = [dataclasses.replace(chunk_crf(r, span), crf_offsets=()) for r in renditions]
    aims = [gate_aim(r, config) for r in here]
    tries: list[list[Attempt]] = [[] for _ in renditions]
    todo = list(range(len(renditions)))
    bracketed: dict[int, tuple[Attempt, Attempt]] = {}
    for round_no in range(CALIBRATION_ROUNDS):
        crfs = {i: next_crf(here[i], tries[i], aims[i]) if tries[i] else here[i].crf
                for i in todo}
        todo = [i for i in todo if not tries[i] or crfs[i] != tries[i][-1].crf]
        if not todo:
            break
        scores = encode_round([dataclasses.replace(here[i], crf=crfs[i]) for i in todo])
        for i, (vmaf, kbps) in zip(todo, scores, strict=True):
            tries[i].append(Attempt(crfs[i], kbps, vmaf))
        todo = [i for i in todo if abs(tries[i][-1].vmaf - aims[i]) > CALIBRATION_TOLERANCE]
        if round_no == 0:
            firsts = [(here[j], tries[j][0]) for j in range(len(here)) if tries[j]]
            for i in todo:
                pair = bracketing_attempts(here[i], aims[i], firsts, sample_s)
                if pair is not None:
                    bracketed[i] = pair
            todo = [i for i in todo if i not in bracketed]
    adjusted, records = [], []
    for i, (rendition, sample, aim, own) in enumerate(
            zip(renditions, here, aims, tries, strict=True)):
        attempts = list(bracketed.get(i, own))
        # Encodes whose rate did not follow the CRF (held by the VBV cap, or a still
        # picture) measured nothing of it: the rung keeps the trials' CRF and slope.
        responsive = rate_responds(attempts)
        measured = measured_slope(attempts) if responsive else None
        slope = round(measured, 3) if measured is not None else rendition.vmaf_per_crf
        # The samples' CRF changes were read off the trial preset's curve; where the
        # final preset's is flatter, the same quality gap takes more CRF steps.
        offsets = scaled_offsets(rendition, rendition.vmaf_per_crf / slope)
        at_sample = crf_offset_at(offsets, span.start_frame + span.frame_count / 2)
        sample_crf = calibrated_crf(sample, attempts, aim) if responsive else sample.crf
        crf = crf_in_range(sample_crf - at_sample)
        adjusted.append(dataclasses.replace(offsets, crf=crf, vmaf_per_crf=slope,
                                            calibrated=responsive))
        records.append({"id": rendition.rendition_id, "planned_crf": rendition.crf,
                        "sample_crf": sample.crf, "sample_crf_aimed": sample_crf,
                        "vmaf_at_sample_crf": round(own[0].vmaf, 3),
                        "tries": [[a.crf, round(a.vmaf, 3), round(a.kbps, 1)] for a in own],
                        # the two first-round encodes (this rung's or another's of its
                        # size) between which its CRF was placed, if any
                        "bracket": [[a.crf, round(a.vmaf, 3)] for a in bracketed.get(i, ())],
                        "target_vmaf": rendition.target_vmaf, "aim_vmaf": aim,
                        "vmaf_per_crf": slope, "crf_offsets": offsets.crf_offsets,
                        "rate_responded": responsive,
                        "crf": crf})
    return adjusted, records
