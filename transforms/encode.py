"""Encode and score: the expensive, parallel stage.

A `Reshuffle` first, so the runner spreads the (chunk, rendition) tasks over workers
instead of fusing them with the fan-out. Each task stages only its chunk's span of the
source, encodes it with x264, scores it with libvmaf, and stores the chunk, its VMAF
log and a record of the finished work. A task whose record exists (same settings) is
not encoded again: re-running resumes (invariant 6).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile

import apache_beam as beam
from apache_beam import pvalue

from media import naming
from media.encode import EncodedChunk, encode_staged, stage_chunk
from media.encoders import resolve_encoder
from media.errors import MediaError
from media.planning import gate_verdict, next_crf
from media.records import chunk_record, result_from_record, task_fingerprint
from media.types import Attempt, ChunkResult, ChunkTask
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for

__all__ = ["EncodeChunks"]

log = logging.getLogger(__name__)


class _EncodeChunkFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    def process(self, task: ChunkTask):
        if not getattr(self, "_told", False):
            self._told = True
            log.info("encoder on this worker: %s", resolve_encoder(task.settings.encoder)[1])
        reused = self._finished(task)
        if reused is not None:
            yield reused
            return
        try:
            yield self._encode(task)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri,
                f"encode ({task.rendition.rendition_id}, chunk {task.chunk.index})", exc))

    def _finished(self, task: ChunkTask) -> ChunkResult | None:
        record_uri = naming.chunk_record_uri(task.output_root, task.source.work_id,
                                             task.rendition.rendition_id, task.chunk.index)
        if not _storage.exists(record_uri):
            return None
        result = result_from_record(_storage.read_json(record_uri), task)
        if result is not None and _storage.exists(result.chunk_uri):
            log.debug("%s: reusing finished chunk %s", task.title_id, result.chunk_uri)
            return result
        return None

    def _encode(self, task: ChunkTask) -> ChunkResult:
        rid, index = task.rendition.rendition_id, task.chunk.index
        chunk_uri = naming.chunk_uri(task.output_root, task.source.work_id, rid, index)
        with tempfile.TemporaryDirectory(prefix="ladderflow-encode-") as scratch:
            with _storage.open_source(task.source.source_uri) as source:
                staged = stage_chunk(task, source, scratch)
            kept, attempts = self._encode_to_target(task, staged, scratch)
            encoded = attempts[kept].encoded
            _storage.upload(encoded.path, chunk_uri)
            log_uri = ""
            if encoded.vmaf_log_path:
                log_uri = naming.vmaf_log_uri(rid, index, task.source.media_dir)
                _storage.upload(encoded.vmaf_log_path,
                                naming.join(task.output_root, task.title_id, log_uri))
        result = ChunkResult(
            title_id=task.title_id, rendition_id=rid, index=index,
            chunk_count=task.chunk_count, chunk_uri=chunk_uri,
            frame_count=encoded.frame_count, size_bytes=encoded.size_bytes,
            duration_s=task.chunk.frame_count / task.source.frame_rate,
            vmaf=encoded.vmaf, vmaf_log_uri=log_uri,
            encode_s=sum(a.encode_s for a in attempts),
            score_s=sum(a.score_s for a in attempts), task=task,
            attempts=tuple(a.attempt for a in attempts), kept=kept, encoder=encoded.encoder,
        )
        record_uri = naming.chunk_record_uri(task.output_root, task.source.work_id, rid, index)
        _storage.write_json(record_uri, chunk_record(result, task_fingerprint(task)))
        return result

    def _encode_to_target(self, task: ChunkTask, staged, scratch: str):
        """Encode; while the quality gate says so, re-encode at a predicted CRF.

        The gate compares the chunk's mean-pooled VMAF with the rung's target: the
        trials that set the target are mean-pooled too, so both sides are on one scale
        (the harmonic mean and 5th percentile stay in the report for the worst frames).
        """
        rendition = task.rendition
        tries: list[_Try] = []
        gated = task.max_attempts > 1 and task.score_vmaf and rendition.target_vmaf > 0
        for attempt in range(task.max_attempts if gated else 1):
            current = dataclasses.replace(task, rendition=rendition)
            encoded = encode_staged(current, staged, scratch, attempt, self._timeout_s)
            kbps = encoded.size_bytes * 8 / float(task.chunk.frame_count / task.source.frame_rate)
            score = encoded.vmaf.mean if encoded.vmaf else None
            tries.append(_Try(Attempt(rendition.crf, round(kbps / 1000, 1), score), encoded))
            if not gated or gate_verdict(score, rendition.target_vmaf, task.gate_below,
                                         task.gate_above) == 0:
                break
            crf = next_crf(rendition, [t.attempt for t in tries])
            if crf == rendition.crf:
                break
            log.info("%s: %s chunk %d: VMAF %.2f, target %.2f: re-encoding at CRF %g",
                     task.title_id, rendition.rendition_id, task.chunk.index, score,
                     rendition.target_vmaf, crf)
            rendition = dataclasses.replace(rendition, crf=crf)
        return tries.index(_best(tries, task)), tries


@dataclasses.dataclass(frozen=True)
class _Try:
    attempt: Attempt
    encoded: EncodedChunk

    @property
    def encode_s(self) -> float:
        return self.encoded.encode_s

    @property
    def score_s(self) -> float:
        return self.encoded.score_s


def _best(tries: list[_Try], task: ChunkTask) -> _Try:
    """The encode to keep: the smallest one within the gate's window; else the smallest
    that reaches the target; else the best-scoring one."""
    target = task.rendition.target_vmaf
    if len(tries) == 1 or not target:
        return tries[-1]
    within = [t for t in tries if gate_verdict(t.attempt.vmaf, target, task.gate_below,
                                               task.gate_above) == 0]
    if within:
        return min(within, key=lambda t: t.encoded.size_bytes)
    reaching = [t for t in tries if t.attempt.vmaf >= target - task.gate_below]
    if reaching:
        return min(reaching, key=lambda t: t.encoded.size_bytes)
    return max(tries, key=lambda t: t.attempt.vmaf)


class EncodeChunks(beam.PTransform):
    """PCollection[ChunkTask] -> {'main': ChunkResult, 'dead_letter': DeadLetter}."""

    def __init__(self, tool_timeout_s: float = 3600.0):
        super().__init__()
        self._timeout_s = tool_timeout_s

    def expand(self, tasks):
        return (
            tasks
            | "SpreadOverWorkers" >> beam.Reshuffle()
            | "EncodeAndScore" >> beam.ParDo(_EncodeChunkFn(self._timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
