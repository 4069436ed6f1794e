"""Encode and score: the expensive, parallel stage.

A `Reshuffle` first, so the runner spreads the chunk groups (every rendition of one
chunk, `ChunkGroup`) over workers instead of fusing them with the fan-out. A group stages
only its chunk's span of the source, makes the first encode of every rendition in one
FFmpeg process (one decode; it also keeps the chunk's VMAF reference frames, which every
libvmaf scoring of the chunk reads), then scores, gates and stores each rendition: the
chunk, its VMAF log and a record of the finished work. A lone `ChunkTask` is encoded on its own. A
task whose record exists (same settings, and its chunk there with the recorded size) is
not encoded again: re-running resumes (invariant 6).

A try that fails for a reason another try may not meet (the FFmpeg process killed by a
signal, an OSError from storage, an encoded chunk that fails its frame-count check:
`transient`) is made again, from staging on, in a fresh scratch folder, up to
`max_tries` tries in all (a failed shared first try counts as one for each rendition);
then, or at once for any other `MediaError` (a source FFmpeg cannot read fails the same
way every time), the title goes to the dead letter with the cause. A task yields one
result or one dead letter, never both and never two: the chunk and its record are
written under fixed names, so a retry overwrites what a failed try left. Tries that
failed are listed in the result (`retries`) and in report.json.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import tempfile
import time

import apache_beam as beam
from apache_beam import pvalue

from media.core import faults, naming
from media.core.errors import MediaError, ToolFailed
from media.core.records import chunk_record, result_from_record, task_fingerprint
from media.core.types import Attempt, ChunkGroup, ChunkResult, ChunkTask
from media.encode.chunk import (
    BadChunk,
    EncodedChunk,
    encode_renditions,
    encode_staged,
    encoded_kbps,
    fault_label,
    rendition_scratch,
    scored,
    scored_together,
    stage_chunk,
)
from media.encode.encoders import resolve_encoder
from media.plan.planning import chunk_crf, gate_verdict, held_by_cap, next_crf, retry_aim
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for

__all__ = ["CHUNK_TRIES", "EncodeChunks", "transient"]

log = logging.getLogger(__name__)

CHUNK_TRIES = 3
"""Tries per chunk at most when a try fails for a transient reason (see `transient`)."""
RETRY_BACKOFF_S = 0.25
"""Wait before the second try; doubled before each later one."""


def transient(exc: BaseException) -> bool:
    """Whether another try may succeed where this one failed: an FFmpeg process killed by
    a signal (not for running past its time limit), a storage error (OSError), or an
    encoded chunk that failed its check. A source that FFmpeg cannot read is not."""
    if isinstance(exc, ToolFailed):
        return exc.returncode < 0 and not exc.timed_out
    return isinstance(exc, (OSError, BadChunk))


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ToolFailed) and exc.returncode < 0 and not exc.timed_out:
        try:
            name = signal.Signals(-exc.returncode).name
        except ValueError:
            name = f"signal {-exc.returncode}"
        return f"FFmpeg was killed by {name}"
    return f"{type(exc).__name__}: {exc}"


def _hint(exc: BaseException) -> str:
    if isinstance(exc, ToolFailed):
        return (
            "FFmpeg was killed again and again (out of memory? a preempted worker?); "
            "run again, on workers with more memory (finished chunks are reused)."
        )
    if isinstance(exc, OSError):
        return "Storage failed again and again; run again (finished chunks are reused)."
    return getattr(exc, "hint", "")


class _EncodeChunkFn(beam.DoFn):
    def __init__(
        self,
        tool_timeout_s: float,
        max_tries: int = CHUNK_TRIES,
        retry_backoff_s: float = RETRY_BACKOFF_S,
    ):
        self._timeout_s = tool_timeout_s
        self._max_tries = max(1, max_tries)
        self._backoff_s = retry_backoff_s

    def process(self, element: ChunkTask | ChunkGroup):
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
        """Encode one rendition of one chunk, trying again after a transient failure;
        `failure` is that of a first try already made (with the other renditions)."""
        stage = f"encode ({task.rendition.rendition_id}, chunk {task.chunk.index})"
        failed: list[str] = []
        while True:
            if failure is None:
                try:
                    yield self._encode(task, tuple(failed))
                    return
                except (MediaError, OSError) as exc:
                    failure = exc
            if not transient(failure):  # a MediaError of the source: the same every time
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    dead_letter_for(task.title_id, task.source.source_uri, stage, failure),
                )
                return
            failed.append(_cause(failure))
            if len(failed) >= self._max_tries:
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    dead_letter_for(
                        task.title_id,
                        task.source.source_uri,
                        stage,
                        MediaError(
                            f"{stage} failed {len(failed)} times: {'; '.join(failed)}",
                            _hint(failure),
                        ),
                    ),
                )
                return
            log.warning(
                "%s: %s failed (try %d of %d), trying again: %s",
                task.title_id,
                stage,
                len(failed),
                self._max_tries,
                failed[-1],
            )
            time.sleep(self._backoff_s * 2 ** (len(failed) - 1))
            failure = None

    def _finished(self, task: ChunkTask) -> ChunkResult | None:
        record_uri = naming.chunk_record_uri(
            task.output_root, task.source.work_id, task.rendition.rendition_id, task.chunk.index
        )
        if not _storage.exists(record_uri):
            return None
        result = result_from_record(_storage.read_json(record_uri), task)
        if (
            result is not None
            and _storage.exists(result.chunk_uri)
            and _storage.size_of(result.chunk_uri) == result.size_bytes
        ):
            log.info("%s: reusing finished chunk %s", task.title_id, result.chunk_uri)
            return result
        return None

    def _encode(self, task: ChunkTask, retries: tuple[str, ...] = ()) -> ChunkResult:
        with tempfile.TemporaryDirectory(prefix="ladderflow-encode-") as scratch:
            with _storage.open_source(task.source.source_uri) as source:
                staged = stage_chunk(task, source, scratch)
            return self._finish(task, staged, scratch, retries=retries)

    def _finish(self, task: ChunkTask, staged, scratch: str, first: EncodedChunk | None = None,
                retries: tuple[str, ...] = ()) -> ChunkResult:
        """Gate (from `first`, an unscored first encode, if given), store the chunk kept,
        its VMAF log and its record."""
        rid, index = task.rendition.rendition_id, task.chunk.index
        label = fault_label(task)
        chunk_uri = naming.chunk_uri(task.output_root, task.source.work_id, rid, index)
        kept, attempts = self._encode_to_target(task, staged, scratch, first)
        encoded = attempts[kept].encoded
        faults.storage_write("chunk", label, chunk_uri)
        _storage.upload(encoded.path, chunk_uri)
        log_uri = ""
        if encoded.vmaf_log_path:
            log_uri = naming.vmaf_log_uri(rid, index, task.source.media_dir)
            _storage.upload(
                encoded.vmaf_log_path, naming.join(task.output_root, task.title_id, log_uri)
            )
        result = ChunkResult(
            title_id=task.title_id,
            rendition_id=rid,
            index=index,
            chunk_count=task.chunk_count,
            chunk_uri=chunk_uri,
            frame_count=encoded.frame_count,
            size_bytes=encoded.size_bytes,
            duration_s=task.chunk.frame_count / task.source.frame_rate,
            vmaf=encoded.vmaf,
            vmaf_log_uri=log_uri,
            encode_s=sum(a.encode_s for a in attempts),
            score_s=sum(a.score_s for a in attempts),
            encode_cpu_s=sum(a.encoded.encode_cpu_s for a in attempts),
            score_cpu_s=sum(a.encoded.score_cpu_s for a in attempts),
            task=task,
            attempts=tuple(a.attempt for a in attempts),
            kept=kept,
            encoder=encoded.encoder,
            retries=retries,
        )
        record_uri = naming.chunk_record_uri(task.output_root, task.source.work_id, rid, index)
        faults.storage_write("record", label, record_uri)
        _storage.write_json(record_uri, chunk_record(result, task_fingerprint(task)))
        return result

    def _encode_to_target(self, task: ChunkTask, staged, scratch: str,
                          first: EncodedChunk | None = None):
        """Encode at the chunk's own CRF (`chunk_crf`); while the quality gate says so,
        re-encode at the CRF predicted to reach its window (`retry_aim`).

        The gate compares the chunk's mean-pooled VMAF with the rung's target: the
        trials that set the target are mean-pooled too, so both sides are on one scale
        (the harmonic mean and 5th percentile stay in the report for the worst frames).
        Every encode is scored against the reference frames the first one kept, if it
        kept them (`first`'s are in the group's scratch folder, above `scratch`).
        """
        rendition = chunk_crf(task.rendition, task.chunk)  # this chunk's own CRF
        tries: list[_Try] = []
        gated = task.max_attempts > 1 and task.score_vmaf and rendition.target_vmaf > 0
        reference = first.reference_path if first is not None else ""
        for attempt in range(task.max_attempts if gated else 1):
            current = dataclasses.replace(task, rendition=rendition)
            if attempt == 0 and first is not None:
                encoded = scored(current, first, staged, scratch, 0, self._timeout_s,
                                 task.vmaf_subsample)
            else:
                encoded = encode_staged(current, staged, scratch, attempt, self._timeout_s,
                                        task.vmaf_subsample, reference)
            reference = encoded.reference_path  # the chunk's reference frames, if kept
            score = encoded.vmaf.mean if encoded.vmaf else None
            tries.append(_Try(Attempt(rendition.crf, round(encoded_kbps(task, encoded), 1),
                                      score), encoded))
            verdict = gate_verdict(score, rendition.target_vmaf, task.gate_below,
                                   task.gate_above) if gated else 0
            if verdict == 0:
                break
            if verdict < 0 and held_by_cap(rendition, tries[-1].attempt):
                log.info(
                    "%s: %s chunk %d: VMAF %.2f, target %.2f, at the rung's VBV cap "
                    "(%.0f of %d kb/s): a lower CRF would not add bits; kept, flagged",
                    task.title_id, rendition.rendition_id, task.chunk.index, score,
                    rendition.target_vmaf, tries[-1].attempt.kbps, rendition.maxrate_kbps,
                )
                break
            crf = next_crf(rendition, [t.attempt for t in tries],
                           retry_aim(rendition, task, verdict))
            if crf == rendition.crf:
                break
            log.info(
                "%s: %s chunk %d: VMAF %.2f, target %.2f: re-encoding at CRF %g",
                task.title_id,
                rendition.rendition_id,
                task.chunk.index,
                score,
                rendition.target_vmaf,
                crf,
            )
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
    within = [
        t
        for t in tries
        if gate_verdict(t.attempt.vmaf, target, task.gate_below, task.gate_above) == 0
    ]
    if within:
        return min(within, key=lambda t: t.encoded.size_bytes)
    reaching = [t for t in tries if t.attempt.vmaf >= target - task.gate_below]
    if reaching:
        return min(reaching, key=lambda t: t.encoded.size_bytes)
    return max(tries, key=lambda t: t.attempt.vmaf)


class EncodeChunks(beam.PTransform):
    """PCollection[ChunkGroup | ChunkTask] -> {'main': ChunkResult (one per task),
    'dead_letter': DeadLetter}."""

    def __init__(self, tool_timeout_s: float = 3600.0, max_tries: int = CHUNK_TRIES):
        super().__init__()
        self._timeout_s = tool_timeout_s
        self._max_tries = max_tries

    def expand(self, tasks):
        return (
            tasks
            | "SpreadOverWorkers" >> beam.Reshuffle()
            | "EncodeAndScore"
            >> beam.ParDo(_EncodeChunkFn(self._timeout_s, self._max_tries)).with_outputs(
                DEAD_LETTER, main="main"
            )
        )
