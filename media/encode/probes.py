"""Probe a chunk for the optimal allocation: every rendition at two CRFs at its probe
preset (the trial preset, or the final one for a rung the calibration could not measure:
`media.plan.rung_allocation.probe_preset`), in one FFmpeg process per preset that decodes
the chunk once, scored in one libvmaf process per preset
(`media.encode.chunk.encode_renditions`, `media.encode.scoring.scored_together`).

What comes back is a slim `ChunkProbe` per rendition (the CRFs, rates and VMAFs), which
the rung's allocation gathers (`media.plan.rung_allocation`). The probes are scratch:
nothing of them is stored but their record. A rendition whose probes fail or cannot be
scored gets a probe with no points, and keeps its constant CRF.

Plain functions, no Beam.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from media.core.errors import MediaError
from media.core.types import ChunkTask
from media.encode.chunk import encode_renditions
from media.encode.encoded import EncodedChunk, encoded_kbps
from media.encode.scoring import scored, scored_together
from media.encode.staging import StagedSpan
from media.plan.allocation import CurvePoint
from media.plan.rate_control import task_rendition
from media.plan.rung_allocation import ChunkProbe, probe_crfs, probe_preset

__all__ = ["ProbedChunk", "probe_chunk", "probe_tasks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbedChunk:
    """A chunk's probes: one `ChunkProbe` per rendition (the tasks' order) and their cost."""

    probes: tuple[ChunkProbe, ...]
    encode_cpu_s: float
    score_cpu_s: float


def probe_tasks(tasks: Sequence[ChunkTask], preset: str) -> list[ChunkTask]:
    """The probe encodes of a chunk's tasks: each rendition at its two probe CRFs, at its
    probe preset (`probe_preset` of the trial `preset`), under ids of their own (each has
    its own scratch folder)."""
    out = []
    for task in tasks:
        rendition = task_rendition(task)
        settings = dataclasses.replace(
            task.settings, preset=probe_preset(rendition, preset, task.settings.preset))
        for k, crf in enumerate(probe_crfs(rendition.crf)):
            probe = dataclasses.replace(rendition, crf=crf, crf_offsets=(),
                                        rendition_id=f"{rendition.rendition_id}~probe{k}")
            out.append(dataclasses.replace(task, rendition=probe, allocated_crf=None,
                                           gate_vmaf=0.0, settings=settings))
    return out


def _made(probes: Sequence[ChunkTask], staged: StagedSpan, scratch: str,
          timeout_s: float | None) -> list[EncodedChunk | BaseException]:
    """The probes encoded and scored: those of one preset in one FFmpeg process and one
    libvmaf process (a process has one preset for all its outputs)."""
    done: list[EncodedChunk | BaseException | None] = [None] * len(probes)
    for preset in dict.fromkeys(p.settings.preset for p in probes):
        mine = [i for i, p in enumerate(probes) if p.settings.preset == preset]
        these = [probes[i] for i in mine]
        encodes = encode_renditions(these, staged, scratch, timeout_s)
        encodes = scored_together(these, encodes, scratch, timeout_s)
        for i, made in zip(mine, _score_left(these, encodes, staged, scratch, timeout_s),
                           strict=True):
            done[i] = made
    return done


def _score_left(probes: Sequence[ChunkTask], encodes: Sequence, staged: StagedSpan,
                scratch: str, timeout_s: float | None) -> list[EncodedChunk | BaseException]:
    """Score, one by one, the probes that were not scored together."""
    done: list[EncodedChunk | BaseException] = []
    for attempt, (probe, made) in enumerate(zip(probes, encodes, strict=True)):
        if isinstance(made, EncodedChunk) and made.vmaf is None:
            try:
                done.append(scored(probe, made, staged, scratch, attempt, timeout_s,
                                   probe.vmaf_subsample))
            except (MediaError, OSError) as exc:  # a probe that fails is a probe lost
                done.append(exc)
        else:
            done.append(made)
    return done


def probe_chunk(tasks: Sequence[ChunkTask], staged: StagedSpan, scratch: str, preset: str,
                timeout_s: float | None = None) -> ProbedChunk:
    """Probe the staged chunk for each of `tasks` (its renditions)."""
    probes = probe_tasks(tasks, preset)
    done = _made(probes, staged, scratch, timeout_s)
    out = []
    per = len(probes) // len(tasks)
    for i, task in enumerate(tasks):
        mine = list(zip(probes[i * per:(i + 1) * per], done[i * per:(i + 1) * per],
                        strict=True))
        points = tuple(CurvePoint(p.rendition.crf, round(encoded_kbps(p, e), 2),
                                  round(e.vmaf.mean, 3))
                       for p, e in mine if isinstance(e, EncodedChunk) and e.vmaf
                       and e.size_bytes > 0)
        if len(points) < 2:
            failures = [str(e) for _, e in mine if not isinstance(e, EncodedChunk)]
            log.warning("%s: %s chunk %d: probes failed (%s); it keeps its constant CRF",
                        task.title_id, task.rendition.rendition_id, task.chunk.index,
                        "; ".join(failures) or "not scored")
            points = ()
        gaps = [e.vmaf.mean - e.vmaf.p5 for _, e in mine
                if points and isinstance(e, EncodedChunk) and e.vmaf]
        seconds = task.chunk.frame_count / float(task.source.frame_rate)
        out.append(ChunkProbe(task.chunk.index, seconds, task_rendition(task).crf, points,
                              round(max(gaps, default=0.0), 3)))
    made = [e for e in done if isinstance(e, EncodedChunk)]
    return ProbedChunk(
        probes=tuple(out),
        encode_cpu_s=round(sum(e.encode_cpu_s for e in made), 3),
        score_cpu_s=round(sum(e.score_cpu_s for e in made), 3))
