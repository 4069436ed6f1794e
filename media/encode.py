"""Encode one chunk of one rendition, and score it: plain functions, no Beam.

`stage_chunk` copies the chunk's span of the source into a scratch folder (O(chunk)
bytes); `encode_staged` encodes it with libx264 and (unless told not to) scores the
encode against the same frames of the source, with libvmaf or vmaf-torch
(`score_encoded`, `--vmaf_backend`). A quality gate calls
`encode_staged` again with another CRF without staging again. `encode_chunk` does both.
`encode_renditions` makes the first encodes of every rendition of a chunk in one FFmpeg
process, which decodes the span once rather than once per rendition; `scored` then
scores each.

An encoded chunk that is unreadable or has the wrong number of frames raises `BadChunk`
(a retry may fix it; the encode DoFn retries it a bounded number of times). The fault
hooks of `media.faults` (kill the FFmpeg process, corrupt the encoded chunk) are here;
they cost nothing unless `LADDERFLOW_FAULTS` is set.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import av

from media import faults, ffmpeg, gpu_vmaf, vmaf, x264
from media.encoders import resolve_encoder
from media.errors import MediaError
from media.ladder import scaled_width
from media.staging import StagedSpan, stage_span
from media.types import ChunkTask, EncodeSettings, VmafScore

log = logging.getLogger(__name__)


class BadChunk(MediaError):
    """An encoded chunk failed its check: unreadable, or not the frames it should have."""

    hint = (
        "The source ends early or has damaged frames (re-export it), or the worker's "
        "disk failed (run again: finished chunks are reused)."
    )


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


def stage_chunk(task: ChunkTask, source: str | BinaryIO, scratch: str) -> StagedSpan:
    start_s, end_s = x264.chunk_window_s(task.source, task.chunk)
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
) -> EncodedChunk:
    """Encode the staged chunk with the task's rendition (and score it)."""
    out_path = os.path.join(scratch, f"chunk-{attempt}.mp4")
    settings = _resolved(task.settings)
    argv = x264.encode_chunk_argv(
        staged.path,
        out_path,
        task.source,
        task.chunk,
        task.rendition,
        settings,
        task.segment_frames,
    )
    label = fault_label(task)
    run = ffmpeg.run(
        ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=faults.ffmpeg_hook("encode", label)
    )
    encoded = _checked(task, out_path, run.wall_s, run.cpu_s, staged, settings.encoder)
    return scored(task, encoded, staged, scratch, attempt, timeout_s, vmaf_subsample)


def encode_renditions(
    tasks: Sequence[ChunkTask],
    staged: StagedSpan,
    scratch: str,
    timeout_s: float | None = None,
) -> list[EncodedChunk | BadChunk]:
    """The first encodes of several renditions of one chunk, in one FFmpeg process.

    The staged span is decoded once and scaled once per size, instead of once per
    rendition. Each rendition's chunk goes to `rendition_scratch(scratch, task)`. A
    rendition whose chunk fails its check has its `BadChunk` in its place in the list;
    a failure of the process itself (killed, timed out) raises, as it fails them all.
    The process's seconds are shared among the renditions by pixels per frame. The
    encodes are not scored (`scored` does that, one rendition at a time).
    """
    first = tasks[0]
    settings = _resolved(first.settings)
    paths = [os.path.join(rendition_scratch(scratch, task), "chunk-0.mp4") for task in tasks]
    argv = x264.encode_renditions_argv(
        staged.path, paths, first.source, first.chunk, [t.rendition for t in tasks], settings,
        first.segment_frames)
    hook = faults.ffmpeg_hook_all("encode", [fault_label(task) for task in tasks])
    run = ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=hook)
    pixels = [t.rendition.width * t.rendition.height for t in tasks]
    out: list[EncodedChunk | BadChunk] = []
    for task, path, count in zip(tasks, paths, pixels, strict=True):
        share = count / sum(pixels)
        try:
            out.append(_checked(task, path, run.wall_s * share, run.cpu_s * share, staged,
                                settings.encoder))
        except BadChunk as exc:
            out.append(exc)
    return out


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
    """`encoded` with its VMAF score (unchanged when the task does not score)."""
    if not task.score_vmaf:
        return encoded
    log_path = os.path.join(scratch, f"vmaf-{attempt}.json")
    score, score_s = score_encoded(task, encoded.path, staged.path, log_path, vmaf_subsample,
                                   timeout_s, fault_label(task))
    return dataclasses.replace(encoded, vmaf=score, vmaf_log_path=log_path, score_s=score_s)


def score_encoded(
    task: ChunkTask,
    encoded_path: str,
    staged_path: str,
    log_path: str,
    subsample: int = 1,
    timeout_s: float | None = None,
    label: str = "",
) -> tuple[VmafScore, float]:
    """Score an encoded chunk against the same frames of its source, with the VMAF
    backend of the task's settings (`media.gpu_vmaf`): the pooled score and wall seconds.
    Either backend leaves a libvmaf-shaped JSON log at `log_path`."""
    height = task.vmaf_height
    width = scaled_width(task.source, height)
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
            return score, time.monotonic() - start
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
    )
    scored = ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=hook)
    vmaf.renumber_thinned(log_path, subsample)
    return vmaf.pool_log_file(log_path), scored.wall_s


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
    """Number of video frames in a file, from its packets (no decode)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, IndexError) as exc:
        raise BadChunk(f"the encoder wrote an unreadable chunk {path}: {exc}") from exc
