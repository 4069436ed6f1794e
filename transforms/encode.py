"""Encode and score: the expensive, parallel stage.

A `Reshuffle` first, so the runner spreads the chunk groups (every rendition of one
chunk, `ChunkGroup`) over workers instead of fusing them with the fan-out. A group stages
only its chunk's span of the source, makes the first encode of every rendition in one
FFmpeg process (one decode; it also keeps the chunk's VMAF reference frames, which every
libvmaf scoring of the chunk reads), then scores, gates and stores each rendition: the
kept encode cut into its final CMAF media segments, written under their published names
(`media.package.assemble.segment_chunk`), its init segment in the work area, its VMAF
log and a record of the finished work. A lone `ChunkTask` is encoded on its own. A task
whose record exists (same settings, and its init segment and every media segment there
at the recorded sizes) is not encoded again: re-running resumes (invariant 6). Results
are slim records (`media.encode.encoded.slim_result`).

A try that fails for a reason another try may not meet (the FFmpeg process killed by a
signal, an OSError from storage, an encoded chunk that fails its frame-count check:
`transient`) is made again, from staging on, in a fresh scratch folder, up to
`max_tries` tries in all (a failed shared first try counts as one for each rendition);
then, or at once for any other `MediaError` (a source FFmpeg cannot read fails the same
way every time), the title goes to the dead letter with the cause. A task yields one
result or one dead letter, never both and never two: the chunk and its record are
written under fixed names, so a retry overwrites what a failed try left (only the
kept encode of the quality gate writes segments). Tries that
failed are listed in the result (`retries`) and in report.json.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile

import apache_beam as beam
from apache_beam import pvalue

from media.core import faults, naming
from media.core.errors import MediaError
from media.core.records import chunk_record, result_from_record, task_fingerprint
from media.core.types import AudioTask, ChunkGroup, ChunkResult, ChunkTask
from media.encode.chunk import encode_renditions, stage_chunk
from media.encode.encoded import EncodedChunk, fault_label, rendition_scratch, slim_result
from media.encode.encoders import resolve_encoder
from media.encode.gate import GateEncodes, chunk_result
from media.encode.retries import transient, with_retries
from media.encode.scoring import scored_together
from media.package.assemble import segment_chunk
from media.package.iframes import iframe_range
from media.plan.rate_control import encode_to_target
from transforms import _storage, metrics
from transforms.assemble import write_segments
from transforms.audio import _EncodeAudioFn
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters

__all__ = ["AUDIO_SPANS", "CHUNK_TRIES", "EncodeChunks", "transient"]

log = logging.getLogger(__name__)

AUDIO_SPANS = "audio_spans"
"""The encode stage's output of encoded audio spans (keyed parts of their tracks)."""
CHUNK_TRIES = 3
"""Tries per chunk at most when a try fails for a transient reason (see `transient`)."""
RETRY_BACKOFF_S = 0.25
"""Wait before the second try; doubled before each later one."""


class _EncodeChunkFn(_storage.ReleasesKeptSource, beam.DoFn):
    def __init__(self, tool_timeout_s: float, max_tries: int = CHUNK_TRIES,
                 retry_backoff_s: float = RETRY_BACKOFF_S):
        self._timeout_s = tool_timeout_s
        self._max_tries = max(1, max_tries)
        self._backoff_s = retry_backoff_s
        self._audio = _EncodeAudioFn(tool_timeout_s)

    def process(self, element: ChunkTask | ChunkGroup | AudioTask):
        if isinstance(element, AudioTask):
            for out in self._audio.process(element):  # its own dead letters, as "audio"
                yield out if isinstance(out, pvalue.TaggedOutput) else pvalue.TaggedOutput(
                    AUDIO_SPANS, out)
            return
        yield from self._encode_chunk(element)

    @dead_letters("encode")
    def _encode_chunk(self, element: ChunkTask | ChunkGroup):
        tasks = element.tasks if isinstance(element, ChunkGroup) else (element,)
        if not getattr(self, "_told", False):
            self._told = True
            log.info("encoder on this worker: %s", resolve_encoder(tasks[0].settings.encoder)[1])
        pending = []
        for task in tasks:
            reused = self._finished(task)
            if reused is not None:
                yield reused
            else:
                pending.append(task)
        left: list[tuple[ChunkTask, BaseException | None]] = [(t, None) for t in pending]
        if len(pending) > 1:
            left = yield from self._encode_together(pending)
        for task, failure in left:
            yield from self._encode_alone(task, failure)

    def _encode_together(self, tasks: list[ChunkTask]):
        """Stage the chunk once and make the first encode of every rendition in one FFmpeg
        process; then score, gate and store each. Yields the results; returns the
        renditions to encode alone, each with the failure of its first try."""
        left: list[tuple[ChunkTask, BaseException | None]] = []
        settled: set[str] = set()
        try:
            with tempfile.TemporaryDirectory(prefix="ladderflow-encode-") as scratch:
                with _storage.open_source(tasks[0].source.source_uri) as source:
                    staged = stage_chunk(tasks[0], source, scratch)
                firsts = encode_renditions(tasks, staged, scratch, self._timeout_s)
                firsts = scored_together(tasks, firsts, scratch, self._timeout_s)
                for task, first in zip(tasks, firsts, strict=True):
                    settled.add(task.rendition.rendition_id)
                    if isinstance(first, BaseException):
                        left.append((task, first))
                        continue
                    try:
                        result = self._finish(task, staged, rendition_scratch(scratch, task),
                                              first)
                    except (MediaError, OSError) as exc:
                        left.append((task, exc))
                        continue
                    yield result
        except (MediaError, OSError) as exc:  # staging or the shared process: all of them
            left += [(t, exc) for t in tasks if t.rendition.rendition_id not in settled]
        return left

    def _encode_alone(self, task: ChunkTask, failure: BaseException | None = None):
        """Encode one rendition of one chunk, trying again after a transient failure
        (`with_retries`); `failure` is that of a first try already made (with the other
        renditions). What fails for good is the title's dead letter."""
        stage = f"encode ({task.rendition.rendition_id}, chunk {task.chunk.index})"
        try:
            yield with_retries(lambda retries: self._encode(task, retries), stage,
                               self._max_tries, self._backoff_s, failure, task.title_id)
        except (MediaError, OSError) as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, stage, exc))

    def _finished(self, task: ChunkTask) -> ChunkResult | None:
        record_uri = naming.chunk_record_uri(task.output_root, task.source.work_id,
                                             task.rendition.rendition_id, task.chunk.index)
        if not _storage.exists(record_uri):
            return None
        result = result_from_record(_storage.read_json(record_uri), task)
        if result is not None and _segments_in_place(task, result):
            log.info("%s: reusing finished chunk %s", task.title_id, result.chunk_uri)
            metrics.CHUNKS_REUSED.inc()
            return slim_result(result, task)
        return None

    def _encode(self, task: ChunkTask, retries: tuple[str, ...] = ()) -> ChunkResult:
        with tempfile.TemporaryDirectory(prefix="ladderflow-encode-") as scratch:
            with _storage.open_source(task.source.source_uri) as source:
                staged = stage_chunk(task, source, scratch)
            return self._finish(task, staged, scratch, retries=retries)

    def _finish(self, task: ChunkTask, staged, scratch: str, first: EncodedChunk | None = None,
                retries: tuple[str, ...] = ()) -> ChunkResult:
        """Encode to the quality gate's window (from `first`, an unscored first encode, if
        given), store the chunk kept, its VMAF log and its record."""
        encodes = GateEncodes(task, staged, scratch, self._timeout_s, first)
        kept, attempts = encode_to_target(task, encodes)
        encoded = encodes.made[kept]
        rid, index, label = task.rendition.rendition_id, task.chunk.index, fault_label(task)
        chunk_uri = naming.chunk_uri(task.output_root, task.source.work_id, rid, index)
        chunk, frames = task.chunk, task.grid.segment_frames
        cut = segment_chunk(encoded.path, chunk.start_frame, chunk.frame_count, frames,
                            task.grid.frame_rate, scratch, self._timeout_s,
                            bounds=chunk.segment_bounds(frames) if chunk.segment_starts else None,
                            first_number=chunk.first_segment)
        faults.storage_write("chunk", label, chunk_uri)
        # The kept encode's final segments, under their published names (a retry or a
        # re-run rewrites the same names); then its init segment, which assembly reads.
        segments = write_segments(naming.title_root(task.output_root, task.title_id), "video",
                                  rid, cut.segments, cut.timing, task.source.media_dir,
                                  cut.first_number)
        _storage.write_bytes(chunk_uri, cut.init)
        log_uri = ""
        if encoded.vmaf_log_path:
            log_uri = naming.vmaf_log_uri(rid, index, task.source.media_dir)
            _storage.upload(encoded.vmaf_log_path,
                            naming.join(task.output_root, task.title_id, log_uri))
        result = dataclasses.replace(
            chunk_result(task, encodes.made, attempts, kept, chunk_uri, log_uri, retries),
            segments=segments, init_key=cut.init_key,
            iframe_ranges=tuple(iframe_range(data, init=cut.init) for data in cut.segments))
        record_uri = naming.chunk_record_uri(task.output_root, task.source.work_id, rid, index)
        faults.storage_write("record", label, record_uri)
        _storage.write_json(record_uri, chunk_record(result, task_fingerprint(task)))
        metrics.count_encoded(result)
        return slim_result(result, task)


def _segments_in_place(task: ChunkTask, result: ChunkResult) -> bool:
    """Whether a recorded chunk's init segment and its media segments are all where its
    record says, at their recorded sizes (a record from before chunks wrote their
    segments has none: such a chunk is encoded again)."""
    if not result.segments or not _storage.exists(result.chunk_uri):
        return False
    root = naming.title_root(task.output_root, task.title_id)
    for segment in result.segments:
        uri = naming.join(root, segment.uri)
        if not _storage.exists(uri) or _storage.size_of(uri) != segment.size_bytes:
            return False
    return True


class EncodeChunks(beam.PTransform):
    """PCollection[ChunkGroup | ChunkTask | AudioTask] -> {'main': ChunkResult (one per
    chunk task), 'audio_spans': ((title, generation, track), Part[AudioSpanResult]) (one per
    audio span, for `transforms.audio.GatherAudio`), 'dead_letter': DeadLetter}.

    Audio spans share the stage with the video so that they are encoded while it is: a
    runner that runs one stage at a time (the local FnApiRunner) would otherwise encode
    every audio span before or after every chunk."""

    def __init__(self, tool_timeout_s: float = 3600.0, max_tries: int = CHUNK_TRIES):
        super().__init__()
        self._timeout_s = tool_timeout_s
        self._max_tries = max_tries

    def expand(self, tasks):
        return (tasks
                | "SpreadOverWorkers" >> beam.Reshuffle()
                | "EncodeAndScore" >> beam.ParDo(_EncodeChunkFn(
                    self._timeout_s, self._max_tries)).with_outputs(
                        AUDIO_SPANS, DEAD_LETTER, main="main"))
