"""Encode one chunk of one rendition, and score it: plain functions, no Beam.

`stage_chunk` copies the chunk's span of the source into a scratch folder (O(chunk)
bytes); `encode_staged` encodes it with libx264 and (unless told not to) scores the
encode against the same frames of the source, with libvmaf or vmaf-torch
(`score_encoded`, `--vmaf_backend`). A quality gate calls
`encode_staged` again with another CRF without staging again. `encode_chunk` does both.
`encode_renditions` makes the first encodes of every rendition of a chunk in one FFmpeg
process, which decodes the span once rather than once per rendition;
`scored_together` scores them in one libvmaf process (`scored` scores one encode).
`GateEncodes` is "encode and score this chunk at CRF c" for the quality gate
(`media.plan.rate_control.encode_to_target`), and `chunk_result` what it kept.

The encode process of a chunk that will be scored with libvmaf also keeps the chunk's
VMAF reference frames, which it decodes anyway (`media.quality.vmaf.store_reference`: raw frames
at the VMAF size and step, up to `REFERENCE_CAP_BYTES`), in the scratch folder: every
libvmaf scoring of that chunk's encodes (each rendition, each gate re-encode) reads
them instead of decoding the source again.

An encoded chunk that is unreadable or has the wrong number of frames raises `BadChunk`
(a retry may fix it; the encode DoFn retries it a bounded number of times). The fault
hooks of `media.core.faults` (kill the FFmpeg process, corrupt the encoded chunk) are here;
they cost nothing unless `LADDERFLOW_FAULTS` is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import av

from media.core import faults, ffmpeg
from media.core.errors import MediaError, ToolFailed
from media.core.types import (
    Attempt,
    ChunkResult,
    ChunkTask,
    EncodeSettings,
    Rendition,
    TrialTask,
    VmafScore,
)
from media.encode import commands
from media.encode.encoders import resolve_encoder
from media.encode.staging import StagedSpan, stage_span
from media.plan.ladder import scaled_width
from media.plan.rate_control import chunk_crf
from media.quality import gpu_vmaf, vmaf

log = logging.getLogger(__name__)

REFERENCE_CAP_BYTES = 1 << 30
"""Most bytes of VMAF reference frames kept for one chunk (at one size and step); a
chunk whose reference would take more is scored from its staged source, decoded again."""


class BadChunk(MediaError):
    """An encoded chunk failed its check: unreadable, or not the frames it should have."""

    hint = (
        "The source ends early or has damaged frames (re-export it), or the worker's "
        "disk failed (run again: finished chunks are reused)."
    )


def transient(exc: BaseException) -> bool:
    """Whether another try may succeed where this one failed: an FFmpeg process killed by
    a signal (not for running past its time limit), a storage error (OSError), or an
    encoded chunk that failed its check. A source that FFmpeg cannot read is not."""
    if isinstance(exc, ToolFailed):
        return exc.returncode < 0 and not exc.timed_out
    return isinstance(exc, (OSError, BadChunk))


def failure_cause(exc: BaseException) -> str:
    """What made a try fail, in a few words (for the log and the result's `retries`)."""
    if isinstance(exc, ToolFailed) and exc.returncode < 0 and not exc.timed_out:
        try:
            name = signal.Signals(-exc.returncode).name
        except ValueError:
            name = f"signal {-exc.returncode}"
        return f"FFmpeg was killed by {name}"
    return f"{type(exc).__name__}: {exc}"


def retry_hint(exc: BaseException) -> str:
    """What to do about a failure that came back on every try."""
    if isinstance(exc, ToolFailed):
        return (
            "FFmpeg was killed again and again (out of memory? a preempted worker?); "
            "run again, on workers with more memory (finished chunks are reused)."
        )
    if isinstance(exc, OSError):
        return "Storage failed again and again; run again (finished chunks are reused)."
    return getattr(exc, "hint", "")


def fault_label(task: ChunkTask) -> str:
    """What the rules of `LADDERFLOW_FAULTS` match against: title/rendition/chunk index."""
    return f"{task.title_id}/{task.rendition.rendition_id}/{task.chunk.index}"


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk encoded into a scratch folder."""

    path: str
    frame_count: int
    size_bytes: int
    encode_s: float
    encode_cpu_s: float
    vmaf: VmafScore | None = None
    vmaf_log_path: str = ""
    score_s: float = 0.0
    staged_bytes: int = 0
    """Bytes of source copied to stage the chunk (O(chunk), not O(title))."""
    encoder: str = "x264"
    reference_path: str = ""
    """The chunk's VMAF reference frames kept for scoring it ('' if none: decode them)."""
    score_cpu_s: float = 0.0
    """CPU seconds of the scoring (vmaf-torch: its wall seconds, the work being on the GPU)."""


def encoded_kbps(task: ChunkTask, encoded: EncodedChunk) -> float:
    """The average rate of an encode of the task's chunk, kb/s."""
    seconds = task.chunk.frame_count / float(task.source.frame_rate)
    return encoded.size_bytes * 8 / seconds / 1000


def stage_chunk(task: ChunkTask, source: str | BinaryIO, scratch: str) -> StagedSpan:
    start_s, end_s = commands.chunk_window_s(task.source, task.chunk)
    return stage_span(
        source, start_s, end_s, os.path.join(scratch, "source-span.mkv"), task.source.source_uri
    )


def encode_staged(
    task: ChunkTask,
    staged: StagedSpan,
    scratch: str,
    attempt: int = 0,
    timeout_s: float | None = None,
    vmaf_subsample: int = 1,
    reference_path: str = "",
) -> EncodedChunk:
    """Encode the staged chunk with the task's rendition (and score it).

    Scoring reads the chunk's VMAF reference frames from `reference_path` (kept by an
    earlier encode of the chunk), else from `reference_file` in `scratch` if it is
    there; else this encode keeps them there (`keeps_reference`) for this and later
    scorings of the chunk at the same size and step.
    """
    out_path = os.path.join(scratch, f"chunk-{attempt}.mp4")
    settings = _resolved(task.settings)
    keep = ""
    if not reference_path:
        found = reference_file(scratch, task, vmaf_subsample)
        if os.path.isfile(found):
            reference_path = found
        elif keeps_reference(task, vmaf_subsample):
            keep = found
    argv = commands.encode_chunk_argv(
        staged.path,
        out_path,
        task.source,
        task.chunk,
        task.rendition,
        settings,
        task.grid,
        reference_output(task, keep, vmaf_subsample),
    )
    hook = faults.ffmpeg_hook("encode", fault_label(task))
    run = _run_encode(argv, keep, timeout_s, hook)
    encoded = _checked(task, out_path, run.wall_s, run.cpu_s, staged, settings.encoder)
    encoded = dataclasses.replace(encoded, reference_path=reference_path or keep)
    return scored(task, encoded, staged, scratch, attempt, timeout_s, vmaf_subsample)


def encode_renditions(
    tasks: Sequence[ChunkTask],
    staged: StagedSpan,
    scratch: str,
    timeout_s: float | None = None,
    vmaf_subsample: int | None = None,
) -> list[EncodedChunk | BadChunk]:
    """The first encodes of several renditions of one chunk, in one FFmpeg process.

    The staged span is decoded once and scaled once per size, instead of once per
    rendition. Each rendition's chunk goes to `rendition_scratch(scratch, task)`. A
    rendition whose chunk fails its check has its `BadChunk` in its place in the list;
    a failure of the process itself (killed, timed out) raises, as it fails them all.
    The process's seconds are shared among the renditions by pixels per frame. The
    encodes are not scored (`scored_together` or `scored` does that). Where they
    will be scored with libvmaf (`keeps_reference`), the process also keeps the chunk's
    VMAF reference frames at `reference_file(scratch, ...)` for the step
    `vmaf_subsample` (None: the tasks' own), and each encode carries its path.
    """
    first = tasks[0]
    settings = _resolved(first.settings)
    step = first.vmaf_subsample if vmaf_subsample is None else vmaf_subsample
    keep = reference_file(scratch, first, step) if keeps_reference(first, step) else ""
    paths = [os.path.join(rendition_scratch(scratch, task), "chunk-0.mp4") for task in tasks]
    argv = commands.encode_renditions_argv(
        staged.path, paths, first.source, first.chunk,
        [chunk_crf(t.rendition, t.chunk) for t in tasks], settings,
        first.grid, reference_output(first, keep, step))
    hook = faults.ffmpeg_hook_all("encode", [fault_label(task) for task in tasks])
    run = _run_encode(argv, keep, timeout_s, hook)
    pixels = [t.rendition.width * t.rendition.height for t in tasks]
    out: list[EncodedChunk | BadChunk] = []
    for task, path, count in zip(tasks, paths, pixels, strict=True):
        share = count / sum(pixels)
        try:
            encoded = _checked(task, path, run.wall_s * share, run.cpu_s * share, staged,
                               settings.encoder)
            out.append(dataclasses.replace(encoded, reference_path=keep))
        except BadChunk as exc:
            out.append(exc)
    return out


def reference_file(scratch: str, task: ChunkTask, subsample: int) -> str:
    """Where the chunk's VMAF reference frames are kept in `scratch`: named after the size
    and step they hold, as they serve no scoring at another size or step."""
    width, height = vmaf_size(task)
    return os.path.join(scratch, f"reference-{width}x{height}-s{subsample}.nut")


def vmaf_size(task: ChunkTask | TrialTask) -> tuple[int, int]:
    """The (width, height) at which the task's encodes are scored."""
    return scaled_width(task.source, task.vmaf_height), task.vmaf_height


def keeps_reference(task: ChunkTask, subsample: int) -> bool:
    """Whether an encode of the task's chunk keeps its VMAF reference frames: they will
    be scored with libvmaf (vmaf-torch decodes the source itself) and the frames kept
    for the step `subsample` take at most `REFERENCE_CAP_BYTES`."""
    if not task.score_vmaf or task.settings.vmaf_backend == "torch":  # no torch import
        return False
    if gpu_vmaf.resolve_vmaf_backend(task.settings.vmaf_backend).name == "torch":
        return False
    width, height = vmaf_size(task)
    size = vmaf.stored_reference_bytes(task.chunk.frame_count, width, height, subsample)
    if size > REFERENCE_CAP_BYTES:
        log.debug("chunk %d of %s: its VMAF reference would take %d bytes (over %d); "
                  "scoring from the source", task.chunk.index, task.title_id, size,
                  REFERENCE_CAP_BYTES)
        return False
    return True


def reference_output(task: ChunkTask | TrialTask, path: str, subsample: int):
    """The encode's extra output that keeps the chunk's VMAF reference frames at `path`
    (a function of the decoded source frames; None without a path)."""
    if not path:
        return None
    width, height = vmaf_size(task)
    return lambda frames: vmaf.store_reference(
        vmaf.reference_frames(frames, task.source, width, height, subsample), path)


def _run_encode(argv: list[str], keep: str, timeout_s: float | None, hook) -> ffmpeg.ToolRun:
    """Run an encode process; if it fails, remove the reference frames it was keeping at
    `keep`, so that no scoring reads a part of them."""
    try:
        return ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=hook)
    except BaseException:
        if keep:
            with contextlib.suppress(FileNotFoundError):
                os.remove(keep)
        raise


def _resolved(settings: EncodeSettings) -> EncodeSettings:
    """`settings` with the encoder this worker uses for it (`--encoder auto` resolved)."""
    encoder, _ = resolve_encoder(settings.encoder)
    return dataclasses.replace(settings, encoder=encoder.name)


def rendition_scratch(scratch: str, task: ChunkTask) -> str:
    """A rendition's own folder in a scratch folder that several renditions share."""
    folder = os.path.join(scratch, task.rendition.rendition_id)
    os.makedirs(folder, exist_ok=True)
    return folder


def _checked(task: ChunkTask, out_path: str, wall_s: float, cpu_s: float,
             staged: StagedSpan, encoder: str) -> EncodedChunk:
    """The encoded chunk at `out_path`, once it has the frames it should have."""
    faults.corrupt_chunk(fault_label(task), out_path)
    frames = count_frames(out_path)
    if frames != task.chunk.frame_count:
        raise BadChunk(
            f"chunk {task.chunk.index} of {task.title_id} ({task.rendition.rendition_id}) has "
            f"{frames} frames; expected {task.chunk.frame_count}"
        )
    return EncodedChunk(out_path, frames, os.path.getsize(out_path), wall_s, cpu_s,
                        staged_bytes=staged.bytes_copied, encoder=encoder)


def scored(
    task: ChunkTask,
    encoded: EncodedChunk,
    staged: StagedSpan,
    scratch: str,
    attempt: int = 0,
    timeout_s: float | None = None,
    vmaf_subsample: int = 1,
) -> EncodedChunk:
    """`encoded` with its VMAF score, scored against its `reference_path` where it has
    one; unchanged when the task does not score or it has a score already (from
    `scored_together`)."""
    if not task.score_vmaf or encoded.vmaf is not None:
        return encoded
    log_path = os.path.join(scratch, f"vmaf-{attempt}.json")
    score, score_s, cpu_s = score_encoded(task, encoded.path, staged.path, log_path,
                                          vmaf_subsample, timeout_s, fault_label(task),
                                          encoded.reference_path)
    return dataclasses.replace(encoded, vmaf=score, vmaf_log_path=log_path, score_s=score_s,
                               score_cpu_s=cpu_s)


def scored_together(
    tasks: Sequence[ChunkTask],
    encodes: Sequence[EncodedChunk | BaseException],
    scratch: str,
    timeout_s: float | None = None,
) -> list[EncodedChunk | BaseException]:
    """The first encodes of a chunk's renditions (`encode_renditions`), scored in one
    libvmaf process that reads the chunk's kept reference frames once: each with its
    score, its log (`vmaf-0.json` in its rendition's scratch folder, as `scored` names
    it) and an equal share of the process's seconds (each scores the same frames at the
    same size). An encode that is not scored here (its task does not score, no kept
    reference, a failure in its place) comes back as it was, as does every encode if
    fewer than two can be scored together or the process fails: `scored` then scores
    each on its own, and a failure there is that rendition's alone."""
    ready = [i for i, (task, encoded) in enumerate(zip(tasks, encodes, strict=True))
             if isinstance(encoded, EncodedChunk) and task.score_vmaf and encoded.reference_path]
    if len(ready) < 2:
        return list(encodes)
    first = tasks[ready[0]]
    step = first.vmaf_subsample  # the step of the reference its encode process kept
    logs = [os.path.join(rendition_scratch(scratch, tasks[i]), "vmaf-0.json") for i in ready]
    argv = vmaf.score_many_argv(encodes[ready[0]].reference_path,
                                [encodes[i].path for i in ready], logs, *vmaf_size(first),
                                step, first.settings.threads)
    hook = faults.ffmpeg_hook_all("score", [fault_label(tasks[i]) for i in ready])
    try:
        run = ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=hook)
    except MediaError as exc:
        log.warning("%s chunk %d: scoring its renditions together failed (%s); scoring "
                    "each on its own", first.title_id, first.chunk.index, exc)
        return list(encodes)
    out = list(encodes)
    for i, log_path in zip(ready, logs, strict=True):
        try:
            vmaf.renumber_thinned(log_path, step)
            score = vmaf.pool_log_file(log_path)
        except (MediaError, OSError, ValueError):  # left to `scored`, its failure its own
            continue
        out[i] = dataclasses.replace(encodes[i], vmaf=score, vmaf_log_path=log_path,
                                     score_s=run.wall_s / len(ready),
                                     score_cpu_s=run.cpu_s / len(ready))
    return out


def score_encoded(
    task: ChunkTask,
    encoded_path: str,
    staged_path: str,
    log_path: str,
    subsample: int = 1,
    timeout_s: float | None = None,
    label: str = "",
    reference_path: str = "",
) -> tuple[VmafScore, float, float]:
    """Score an encoded chunk against the same frames of its source, with the VMAF
    backend of the task's settings (`media.quality.gpu_vmaf`): the pooled score, wall seconds and
    CPU seconds (vmaf-torch: wall seconds again; its work is on the GPU).
    Either backend leaves a libvmaf-shaped JSON log at `log_path`.

    libvmaf reads the source frames from `reference_path`, if given: the chunk's
    reference frames as an encode kept them (`reference_file`, which must be the one for
    this size and step); vmaf-torch decodes the staged source whatever it is given.
    A failure of that scoring is a failure: it is not scored from the source instead.
    """
    width, height = vmaf_size(task)
    if reference_path and os.path.basename(reference_path) != os.path.basename(
            reference_file("", task, subsample)):
        raise ValueError(f"{reference_path} holds no VMAF reference at {width}x{height}, "
                         f"step {subsample}")
    backend = gpu_vmaf.resolve_vmaf_backend(task.settings.vmaf_backend)
    hook = faults.ffmpeg_hook("score", label)
    if backend.name == "torch":
        start = time.monotonic()
        try:
            score = gpu_vmaf.score_chunk(
                encoded_path,
                staged_path,
                task.source,
                task.chunk,
                width,
                height,
                log_path,
                device=backend.device,
                subsample=subsample,
                decoder=task.settings.decoder,
                timeout_s=timeout_s,
                on_start=hook,
            )
            seconds = time.monotonic() - start
            return score, seconds, seconds
        except gpu_vmaf.GpuVmafFailed as exc:
            if task.settings.vmaf_backend != "auto":
                raise
            log.warning("%s; scoring this chunk with libvmaf instead", exc)
    argv = vmaf.score_chunk_argv(
        encoded_path,
        staged_path,
        task.source,
        task.chunk,
        width,
        height,
        log_path,
        threads=task.settings.threads,
        subsample=subsample,
        decoder=task.settings.decoder,
        reference_path=reference_path,
    )
    scored = ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=hook)
    vmaf.renumber_thinned(log_path, subsample)
    return vmaf.pool_log_file(log_path), scored.wall_s, scored.cpu_s


def encode_chunk(
    task: ChunkTask,
    source: str | BinaryIO,
    scratch: str,
    timeout_s: float | None = None,
    vmaf_subsample: int = 1,
) -> EncodedChunk:
    """Stage, encode (and score) `task` from `source` (a local path or seekable file)."""
    staged = stage_chunk(task, source, scratch)
    return encode_staged(task, staged, scratch, 0, timeout_s, vmaf_subsample)


def count_frames(path: str) -> int:
    """Number of video frames in a file: from its header where it says, else from its
    packets (no decode)."""
    try:
        with av.open(path) as container:
            if container.streams.video[0].frames:
                return int(container.streams.video[0].frames)
    except (av.FFmpegError, IndexError) as exc:
        raise BadChunk(f"the encoder wrote an unreadable chunk {path}: {exc}") from exc
    return len(packet_sizes(path))


def packet_sizes(path: str, what: str = "chunk") -> list[int]:
    """Bytes of each video frame of an encode, in decode order (no decode): the first is
    its keyframe. `what` names the encode in the error."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return [packet.size for packet in container.demux(stream) if packet.size]
    except (av.FFmpegError, IndexError) as exc:
        raise BadChunk(f"the encoder wrote an unreadable {what} {path}: {exc}") from exc


class GateEncodes:
    """Encode and score the task's staged chunk at a rendition's CRF, for the quality
    gate (`media.plan.rate_control.Encode`); `made` keeps every encode, in order. The
    first is `first` (an unscored encode of the group's process) where given; every
    encode is scored against the reference frames the first one kept, if it kept them
    (`first`'s are in the group's scratch folder, above `scratch`)."""

    def __init__(self, task: ChunkTask, staged: StagedSpan, scratch: str,
                 timeout_s: float | None, first: EncodedChunk | None = None):
        self._task, self._staged, self._scratch = task, staged, scratch
        self._timeout_s, self._first = timeout_s, first
        self._reference = first.reference_path if first is not None else ""
        self.made: list[EncodedChunk] = []

    def __call__(self, rendition: Rendition) -> tuple[Attempt, int]:
        task = self._task
        current = dataclasses.replace(task, rendition=rendition)
        attempt = len(self.made)
        if attempt == 0 and self._first is not None:
            encoded = scored(current, self._first, self._staged, self._scratch, 0,
                             self._timeout_s, task.vmaf_subsample)
        else:
            encoded = encode_staged(current, self._staged, self._scratch, attempt,
                                    self._timeout_s, task.vmaf_subsample, self._reference)
        self._reference = encoded.reference_path  # the chunk's reference frames, if kept
        self.made.append(encoded)
        score = encoded.vmaf.mean if encoded.vmaf else None
        made = Attempt(rendition.crf, round(encoded_kbps(task, encoded), 1), score)
        return made, encoded.size_bytes


def chunk_result(task: ChunkTask, made: Sequence[EncodedChunk], attempts: Sequence[Attempt],
                 kept: int, chunk_uri: str, vmaf_log_uri: str,
                 retries: tuple[str, ...] = ()) -> ChunkResult:
    """The result of a chunk's encodes (`made`, as the gate's `attempts`), the one at
    `kept` stored at `chunk_uri`; the seconds are those of every encode."""
    encoded = made[kept]
    return ChunkResult(
        title_id=task.title_id, rendition_id=task.rendition.rendition_id,
        index=task.chunk.index, chunk_count=task.chunk_count, chunk_uri=chunk_uri,
        frame_count=encoded.frame_count, size_bytes=encoded.size_bytes,
        duration_s=task.chunk.frame_count / task.source.frame_rate, vmaf=encoded.vmaf,
        vmaf_log_uri=vmaf_log_uri, encode_s=sum(e.encode_s for e in made),
        score_s=sum(e.score_s for e in made),
        encode_cpu_s=sum(e.encode_cpu_s for e in made),
        score_cpu_s=sum(e.score_cpu_s for e in made), task=task, attempts=tuple(attempts),
        kept=kept, encoder=encoded.encoder, retries=retries)
