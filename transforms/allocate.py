"""AllocateBits: each chunk's CRF per rung chosen for the title (`--allocation optimal`).

Between Split and the encode stage, for every title:

1. **Probe** (fans out, like the encodes): each chunk group is staged and encoded at
   two CRFs per rendition, at the trial preset (at the final one for a rung the
   calibration could not measure), and scored (`media.encode.probes`). A
   probe is a slim record (CRFs, rates, VMAFs), kept in the work area so that a re-run
   reuses it. Audio spans pass straight on to the encode stage.
2. **Allocate** (one small step per title): the title's probe records, gathered by
   title version, give each rung's allocation (`media.plan.rung_allocation`: equal
   slope, the rung's mean VMAF at its aim, no chunk more than `--allocation_max_drop`
   under it), written to `_work/<title>/allocation.json`.
3. The chunk groups again, every task with the CRF and gate target chosen for its chunk
   (`ChunkTask.allocated_crf`, `gate_vmaf`), on to the encode stage, whose gate holds
   each chunk to its own aim and re-encodes one that misses it as today.

Only chunk 0's probe record carries its whole group (the template of every other
chunk's tasks): the gather's state stays a few hundred bytes a chunk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.config import JobConfig
from media.core.errors import MediaError
from media.core.records import task_fingerprint
from media.core.types import AudioTask, ChunkGroup, ChunkTask
from media.encode.chunk import stage_chunk
from media.encode.probes import probe_chunk, probe_tasks
from media.plan.allocation import CurvePoint
from media.plan.chunking import grid_chunks
from media.plan.invariant import MIN_RATE_RATIO
from media.plan.rate_control import gate_aim, task_rendition
from media.plan.rung_allocation import (
    ChunkProbe,
    RungAllocation,
    allocate_rung,
    probes_at_final_preset,
    spaced_shares,
    toward_constant,
)
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letters
from transforms.gather import GatherParts, Part
from transforms.progress import ReportProbeProgress
from transforms.split import lean_source

__all__ = ["AllocateBits", "allocated_groups"]

log = logging.getLogger(__name__)
_PROBED = "probed"
ALLOCATED_RATE_RATIO = MIN_RATE_RATIO * 1.05
"""How far apart neighbouring rungs' rates must stay, as the probes predict them, for
both to keep their allocations: the ladder invariant's 1.3x with a margin smaller than
planning's (1.1), as the allocation moves rates relative to the constant allocation's,
which the probes measure on the same chunks."""
_KEYED = tuple[tuple[str, str], Any]


@dataclass(frozen=True)
class ProbeRecord:
    """One chunk's probes, as the title's allocation gathers them."""

    index: int
    vmaf_subsample: int
    probes: tuple[ChunkProbe, ...]
    """One per rendition, in the group's order."""
    template: ChunkGroup | None = None
    """Chunk 0's whole group (every other chunk's tasks are made from it)."""
    cpu_s: float = 0.0


def _probes_digest(tasks, preset: str) -> str:
    basis = [task_fingerprint(t) for t in probe_tasks(tasks, preset)]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:32]


def _to_json(probes: tuple[ChunkProbe, ...]) -> list:
    return [[p.index, p.duration_s, p.constant_crf, [[q.crf, q.kbps, q.vmaf] for q in p.points],
             p.p5_gap] for p in probes]


def _from_json(rows: list) -> tuple[ChunkProbe, ...]:
    return tuple(ChunkProbe(i, d, c, tuple(CurvePoint(*q) for q in pts), gap)
                 for i, d, c, pts, gap in rows)


class _ProbeFn(_storage.ReleasesKeptSource, beam.DoFn):
    def __init__(self, preset: str, timeout_s: float):
        self._preset = preset
        self._timeout_s = timeout_s

    @dead_letters("allocate (probe)")
    def process(self, element: AudioTask | ChunkGroup | ChunkTask):
        if not isinstance(element, ChunkGroup):  # audio spans, lone tasks: on as they are
            yield element
            return
        tasks = element.tasks
        first = tasks[0]
        record_uri = naming.probe_record_uri(first.output_root, first.source.work_id,
                                             first.chunk.index)
        digest = _probes_digest(tasks, self._preset)
        probes, cpu_s = None, 0.0
        if _storage.exists(record_uri):
            stored = _storage.read_json(record_uri)
            if stored.get("digest") == digest:  # what the probes cost is theirs still
                probes, cpu_s = _from_json(stored["probes"]), stored.get("cpu_s", 0.0)
        if probes is None:
            probes, cpu_s = self._probe(tasks)
            if all(p.points for p in probes):  # a failed probe is tried again on a re-run
                _storage.write_json(record_uri, {"digest": digest, "cpu_s": cpu_s,
                                                 "probes": _to_json(probes)})
        key = (first.title_id, first.source.generation)
        record = ProbeRecord(first.chunk.index, first.vmaf_subsample, probes,
                             element if first.chunk.index == 0 else None, cpu_s)
        yield pvalue.TaggedOutput(_PROBED, (key, Part(first.chunk.index, first.chunk_count,
                                                      record)))

    def _probe(self, tasks) -> tuple[tuple[ChunkProbe, ...], float]:
        try:
            with tempfile.TemporaryDirectory(prefix="ladderflow-probe-") as scratch:
                with _storage.open_source(tasks[0].source.source_uri) as source:
                    staged = stage_chunk(tasks[0], source, scratch)
                probed = probe_chunk(tasks, staged, scratch, self._preset, self._timeout_s)
                return probed.probes, probed.encode_cpu_s + probed.score_cpu_s
        except (MediaError, OSError) as exc:  # the encode stage meets it again, and says
            log.warning("%s: chunk %d could not be probed (%s); it keeps its constant CRF",
                        tasks[0].title_id, tasks[0].chunk.index, exc)
            seconds = tasks[0].chunk.frame_count / float(tasks[0].source.frame_rate)
            return tuple(ChunkProbe(t.chunk.index, seconds, task_rendition(t).crf, ())
                         for t in tasks), 0.0


def allocated_groups(records: list[ProbeRecord], config: JobConfig
                     ) -> tuple[list[ChunkGroup], dict[str, RungAllocation]]:
    """Every chunk group of a title with the CRFs its rungs' allocations chose, from the
    title's probe records (index order), and each rung's allocation by rendition id."""
    template = next(r.template for r in records if r.template is not None)
    firsts = template.tasks
    allocations: dict[str, RungAllocation] = {}
    for position, task in enumerate(firsts):
        if not task.rendition.target_vmaf or task.rendition.target_kbps:
            continue  # no VMAF to aim at: the rung keeps its constant CRFs
        aim = gate_aim(task.rendition, task)
        floor = task.rendition.target_vmaf - config.allocation_max_drop
        allocations[task.rendition.rendition_id] = allocate_rung(
            [r.probes[position] for r in records], aim, floor,
            at_final_preset=probes_at_final_preset(task.rendition))
    ids = list(allocations)
    shares = spaced_shares([allocations[r] for r in ids], ALLOCATED_RATE_RATIO)
    for rid, share in zip(ids, shares, strict=True):
        if share < 1:
            chosen = allocations[rid]
            why = ("the constant allocation costs fewer bits (the floor binds)"
                   if chosen.predicted_saving < 0 else
                   "further, it would come too close in rate to the rung under it")
            allocations[rid] = dataclasses.replace(
                toward_constant(chosen, share),
                reason=f"carried {share:.0%} of the way from the constant CRFs: {why}")
    source = firsts[0].source
    lean = lean_source(source)
    spans = grid_chunks(source.frame_count, firsts[0].grid)
    half_window = (firsts[0].gate_above - firsts[0].gate_below) / 2
    groups = []
    for record, span in zip(records, spans, strict=True):
        tasks = []
        for task in firsts:
            task = dataclasses.replace(  # noqa: PLW2901
                task, chunk=span, source=source if span.index == 0 else lean,
                grid=task.grid if span.index == 0 else task.grid.lean(),
                vmaf_subsample=record.vmaf_subsample)
            chosen = allocations.get(task.rendition.rendition_id)
            if chosen is not None and chosen.applied:
                task = dataclasses.replace(  # noqa: PLW2901
                    task, allocated_crf=chosen.crfs[span.index],
                    gate_vmaf=round(chosen.vmafs[span.index] - half_window, 3),
                    gate_floor=round(chosen.floor_vmaf, 3))
            tasks.append(task)
        groups.append(ChunkGroup(tuple(tasks)))
    return groups, allocations


class _AllocateFn(beam.DoFn):
    def __init__(self, config: JobConfig):
        self._config = config

    @dead_letters("allocate")
    def process(self, element):
        _key, records = element
        groups, allocations = allocated_groups(records, self._config)
        first = groups[0].tasks[0]
        summary = {rid: a.record() for rid, a in allocations.items()}
        summary["probe_cpu_s"] = round(sum(r.cpu_s for r in records), 3)
        _storage.write_json(naming.allocation_record_uri(first.output_root,
                                                         first.source.work_id), summary)
        for rid, allocation in allocations.items():
            if not allocation.applied:
                log.info("%s: %s keeps the constant allocation: %s", first.title_id, rid,
                         allocation.reason)
                continue
            log.info("%s: %s allocated: CRF %g-%g, VMAF %.1f-%.1f aimed, mean %.2f, "
                     "%.1f %% fewer bits predicted%s", first.title_id, rid,
                     min(allocation.crfs), max(allocation.crfs), min(allocation.vmafs),
                     max(allocation.vmafs), allocation.aim_vmaf,
                     100 * allocation.predicted_saving,
                     f" ({allocation.reason})" if allocation.reason else "")
        yield from groups


class AllocateBits(beam.PTransform):
    """PCollection[AudioTask | ChunkGroup] -> {'main': AudioTask | ChunkGroup (each
    chunk's tasks with their allocated CRFs), 'dead_letter': DeadLetter}."""

    def __init__(self, config: JobConfig):
        super().__init__()
        self._config = config

    def expand(self, tasks):
        probed = (tasks
                  | "SpreadOverWorkers" >> beam.Reshuffle()
                  | "Probe" >> beam.ParDo(_ProbeFn(self._config.trial_preset,
                                                   self._config.tool_timeout_s)).with_outputs(
                      _PROBED, DEAD_LETTER, main="main"))
        _ = probed[_PROBED] | "ReportProbes" >> ReportProbeProgress()
        gathered = (probed[_PROBED]
                    | "Keyed" >> beam.Map(lambda keyed: keyed).with_output_types(_KEYED)
                    | "GatherProbes" >> GatherParts(self._config.title_timeout_s,
                                                    "allocate (gather)", "chunk probe"))
        allocated = gathered.main | "Allocate" >> beam.ParDo(
            _AllocateFn(self._config)).with_outputs(DEAD_LETTER, main="main")
        ready = (probed.main, allocated.main) | "Ready" >> beam.Flatten()
        rejects = ((probed[DEAD_LETTER], gathered[DEAD_LETTER], allocated[DEAD_LETTER])
                   | "Rejects" >> beam.Flatten())
        return {"main": ready, DEAD_LETTER: rejects}
