"""Encode one chunk of one rendition: plain functions, no Beam.

`stage_chunk` copies the chunk's span of the source into a scratch folder (O(chunk)
bytes); `encode_staged` encodes it with the task's encoder and (unless told not to) scores
the encode (`media.encode.scoring`). A quality gate calls `encode_staged` again with
another CRF without staging again (`media.encode.gate`). `encode_chunk` does both.
`encode_renditions` makes the first encodes of every rendition of a chunk in one FFmpeg
process, which decodes the span once rather than once per rendition.

Every encode is written as a fragmented MP4, a fragment per segment of the grid, which
`media.package.assemble.segment_chunk` cuts into the final CMAF segments as it is (no
remux), and whose frames are counted from its fragments' headers.

An encoded chunk that is unreadable or has the wrong number of frames raises `BadChunk`
(`media.encode.retries` says whether to try again). The fault hooks of
`media.core.faults` (kill the FFmpeg process, corrupt the encoded chunk) are here; they
cost nothing unless `LADDERFLOW_FAULTS` is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import BinaryIO

from media.core import faults, ffmpeg
from media.core.types import (
    ChunkTask,
    EncodeSettings,
)
from media.encode import commands
from media.encode.encoded import (
    BadChunk,
    EncodedChunk,
    WrongFrameCount,
    count_frames,
    fault_label,
    rendition_scratch,
)
from media.encode.encoders import resolve_encoder
from media.encode.scoring import keeps_reference, reference_file, reference_output, scored
from media.encode.staging import StagedSpan, stage_span
from media.package.isobmff import add_hdr_boxes
from media.plan.rate_control import task_rendition

log = logging.getLogger(__name__)


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
        fragmented=True,
    )
    hook = faults.ffmpeg_hook("encode", fault_label(task))
    run = _run_encode(argv, keep, timeout_s, hook)
    encoded = _checked(task, out_path, run.wall_s, run.cpu_s, staged,
                       commands.rendition_encoder(task.rendition, settings).name)
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
        [task_rendition(t) for t in tasks], settings,
        first.grid, reference_output(first, keep, step), fragmented=True)
    hook = faults.ffmpeg_hook_all("encode", [fault_label(task) for task in tasks])
    run = _run_encode(argv, keep, timeout_s, hook)
    pixels = [t.rendition.width * t.rendition.height for t in tasks]
    out: list[EncodedChunk | BadChunk] = []
    for task, path, count in zip(tasks, paths, pixels, strict=True):
        share = count / sum(pixels)
        try:
            encoded = _checked(task, path, run.wall_s * share, run.cpu_s * share, staged,
                               commands.rendition_encoder(task.rendition, settings).name)
            out.append(dataclasses.replace(encoded, reference_path=keep))
        except BadChunk as exc:
            out.append(exc)
    return out


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


def _checked(task: ChunkTask, out_path: str, wall_s: float, cpu_s: float,
             staged: StagedSpan, encoder: str) -> EncodedChunk:
    """The encoded chunk at `out_path`, once it has the frames it should have (an HDR
    rung's with the source's HDR10 boxes in its init: `add_hdr_boxes`)."""
    if task.rendition.hdr:
        add_hdr_boxes(out_path, task.source.mastering_display, task.source.content_light)
    faults.corrupt_chunk(fault_label(task), out_path)
    frames = count_frames(out_path)
    if frames != task.chunk.frame_count:
        raise WrongFrameCount(
            f"chunk {task.chunk.index} of {task.title_id} ({task.rendition.rendition_id}) has "
            f"{frames} frames; expected {task.chunk.frame_count}"
        )
    return EncodedChunk(out_path, frames, os.path.getsize(out_path), wall_s, cpu_s,
                        staged_bytes=staged.bytes_copied, encoder=encoder)


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
