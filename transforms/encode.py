"""Encode and score: the expensive, parallel stage.

A `Reshuffle` first, so the runner spreads the (chunk, rendition) tasks over workers
instead of fusing them with the fan-out. Each task stages only its chunk's span of the
source, encodes it with x264, scores it with libvmaf, and stores the chunk, its VMAF
log and a record of the finished work. A task whose record exists (same settings) is
not encoded again: re-running resumes (invariant 6).
"""

from __future__ import annotations

import logging
import tempfile

import apache_beam as beam
from apache_beam import pvalue

from media import naming
from media.encode import encode_chunk
from media.errors import MediaError
from media.records import chunk_record, result_from_record, task_fingerprint
from media.types import ChunkResult, ChunkTask
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for

__all__ = ["EncodeChunks"]

log = logging.getLogger(__name__)


class _EncodeChunkFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    def process(self, task: ChunkTask):
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
        record_uri = naming.chunk_record_uri(task.output_root, task.title_id,
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
        chunk_uri = naming.chunk_uri(task.output_root, task.title_id, rid, index)
        with tempfile.TemporaryDirectory(prefix="ladderflow-encode-") as scratch:
            with _storage.open_source(task.source.source_uri) as source:
                encoded = encode_chunk(task, source, scratch, self._timeout_s)
            _storage.upload(encoded.path, chunk_uri)
            log_uri = ""
            if encoded.vmaf_log_path:
                log_uri = naming.vmaf_log_uri(rid, index)
                _storage.upload(encoded.vmaf_log_path,
                                naming.join(task.output_root, task.title_id, log_uri))
        result = ChunkResult(
            title_id=task.title_id, rendition_id=rid, index=index,
            chunk_count=task.chunk_count, chunk_uri=chunk_uri,
            frame_count=encoded.frame_count, size_bytes=encoded.size_bytes,
            duration_s=task.chunk.frame_count / task.source.frame_rate,
            vmaf=encoded.vmaf, vmaf_log_uri=log_uri, encode_s=encoded.encode_s,
            score_s=encoded.score_s, task=task,
        )
        record_uri = naming.chunk_record_uri(task.output_root, task.title_id, rid, index)
        _storage.write_json(record_uri, chunk_record(result, task_fingerprint(task)))
        return result


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
