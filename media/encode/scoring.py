"""Score an encoded chunk against the same frames of its source (libvmaf, or vmaf-torch
with `--vmaf_backend`), one encode at a time (`scored`) or every rendition of a chunk in
one libvmaf process (`scored_together`).

The encode process of a chunk that will be scored with libvmaf also keeps the chunk's
VMAF reference frames, which it decodes anyway (`media.quality.vmaf.store_reference`: raw
frames at the VMAF size and step, up to `REFERENCE_CAP_BYTES`), in the scratch folder:
every libvmaf scoring of that chunk's encodes (each rendition, each gate re-encode) reads
them instead of decoding the source again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence

from media.core import faults, ffmpeg
from media.core.errors import MediaError
from media.core.types import (
    ChunkTask,
    TrialTask,
    VmafScore,
)
from media.encode.encoded import EncodedChunk, fault_label, rendition_scratch
from media.encode.staging import StagedSpan
from media.plan.ladder import scaled_width
from media.quality import gpu_vmaf, vmaf

log = logging.getLogger(__name__)


REFERENCE_CAP_BYTES = 1 << 30
"""Most bytes of VMAF reference frames kept for one chunk (at one size and step); a
chunk whose reference would take more is scored from its staged source, decoded again."""


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
                                step, first.settings.threads,
                                [bool(tasks[i].rendition.hdr) for i in ready])
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
                hdr=bool(task.rendition.hdr),
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
        hdr=bool(task.rendition.hdr),
    )
    scored = ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s, on_start=hook)
    vmaf.renumber_thinned(log_path, subsample)
    return vmaf.pool_log_file(log_path), scored.wall_s, scored.cpu_s
