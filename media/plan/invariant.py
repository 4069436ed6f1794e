"""The ladder invariant: rungs really apart, in rate and in quality.

A ladder is worth its rungs only where each one is a real step down from the one above:
a player that switches down must save bits, and the rung it lands on must look worse
(else the rung above is waste). So, from the top rung down, the average rate falls by at
least MIN_RATE_RATIO from each rung to the next and the mean VMAF strictly falls.
Planning enforces it on the rates and scores it predicts (`media.plan.per_title`), the
package stage checks it on what was measured (`media.report.title_report`).

Pure functions: no Beam, no FFmpeg.

>>> for line in ladder_invariant([LadderRung("a", 900, 95), LadderRung("b", 500, 90),
...                               LadderRung("c", 450, 91)])["violations"]:
...     print(line)
c: 450 kb/s is only 1.11x under b (500 kb/s); at least 1.3x
c: VMAF 91.00 is not under b (90.00)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

MIN_RATE_RATIO = 1.3
"""Least ratio between the average rates of neighbouring rungs (a player's switch down
must save at least this much; the HLS authoring guideline's steps are 1.5-2x)."""


@dataclass(frozen=True)
class LadderRung:
    """One rung as measured (or predicted): what the invariant looks at."""

    rung_id: str
    kbps: float
    """Average rate, kb/s."""
    vmaf: float | None = None
    """Mean VMAF; None where the rung was not scored (then only the rates are checked)."""


def rung_violations(rung: LadderRung, above: LadderRung, min_ratio: float = MIN_RATE_RATIO,
                    min_vmaf_step: float = 0.0) -> list[str]:
    """What makes `rung` no real step under `above`, the rung over it: in words, empty
    where it is one (its VMAF under the one above by more than `min_vmaf_step`)."""
    out = []
    if rung.kbps * min_ratio > above.kbps:
        out.append(f"{rung.rung_id}: {rung.kbps:.0f} kb/s is only "
                   f"{above.kbps / rung.kbps:.2f}x under {above.rung_id} "
                   f"({above.kbps:.0f} kb/s); at least {min_ratio:g}x")
    if (rung.vmaf is not None and above.vmaf is not None
            and rung.vmaf + min_vmaf_step >= above.vmaf):
        by = f" by more than {min_vmaf_step:g}" if min_vmaf_step else ""
        out.append(f"{rung.rung_id}: VMAF {rung.vmaf:.2f} is not under {above.rung_id} "
                   f"({above.vmaf:.2f}){by}")
    return out


def ladder_invariant(rungs: Sequence[LadderRung], min_ratio: float = MIN_RATE_RATIO) -> dict:
    """The verdict on a ladder, top rung first: {holds, min_rate_ratio, violations (in
    words), rate_ratios (each rung's neighbour above over it)}, JSON-ready."""
    violations: list[str] = []
    ratios: list[float | None] = []
    for above, rung in itertools.pairwise(rungs):
        violations += rung_violations(rung, above, min_ratio)
        ratios.append(round(above.kbps / rung.kbps, 3) if rung.kbps > 0 else None)
    return {"holds": not violations, "min_rate_ratio": min_ratio, "violations": violations,
            "rate_ratios": ratios}


def spaced(rungs: Sequence[LadderRung], min_ratio: float = MIN_RATE_RATIO,
           min_vmaf_step: float = 0.0, keep_at_least: int = 2) -> tuple[list[int], list[str]]:
    """Which rungs to keep so that the invariant holds, top first: (indexes kept, in
    words why each other one was dropped).

    From the top down, a rung that is no real step under the last kept one is dropped
    (its rate or its VMAF too close to that rung's, `rung_violations`): the rung above
    already serves its players. Where that would leave fewer than `keep_at_least` rungs,
    the lowest rung is kept for now, for the caller to move further down or drop
    (`media.plan.prediction.second_rung`).
    """
    kept: list[int] = []
    dropped: list[str] = []
    for i, rung in enumerate(rungs):
        why = rung_violations(rung, rungs[kept[-1]], min_ratio, min_vmaf_step) if kept else []
        if why:
            dropped.append("dropped " + "; ".join(why))
        else:
            kept.append(i)
    if len(kept) < min(keep_at_least, len(rungs)):
        kept.append(len(rungs) - 1)
        dropped[-1] = dropped[-1].replace("dropped ", "kept (a second rung) ", 1)
    return kept, dropped
