"""Trial encodes: one sample segment at one resolution, every trial CRF in one pass.

A trial task decodes its staged sample once, scales it once and feeds one x264 encoder
per CRF (FFmpeg's split filter); scoring decodes the reference once and runs one
libvmaf per encode. Against one process per CRF, that saves the repeated decoding and
scaling, which at small trial sizes is much of the work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import ffmpeg as ffmpeg_python

from media import ffmpeg, vmaf
from media.encode import count_frames
from media.errors import MediaError
from media.ladder import scaled_width
from media.staging import StagedSpan
from media.types import Rendition, TrialTask
from media.x264 import source_frames, x264_options


@dataclass(frozen=True)
class TrialEncode:
    crf: float
    size_bytes: int
    frames: int
    vmaf_mean: float


def _trial_rendition(task: TrialTask, crf: float) -> Rendition:
    # maxrate 0: plain CRF, so the trials measure the encoder's uncapped curve.
    return Rendition(f"trial-{task.height}p-crf{crf:g}", task.width, task.height, crf, 0, 0)


def trial_encode_argv(task: TrialTask, staged_path: str, out_paths: Sequence[str]) -> list[str]:
    """Decode and scale the sample once; encode it at every CRF of the task."""
    video = source_frames(staged_path, task.source, task.span, task.settings.decoder)
    video = video.filter("scale", task.width, task.height, flags="bicubic")
    video = video.filter("setsar", "1").filter("format", "yuv420p")
    branches = video.filter_multi_output("split", len(task.crfs))
    outputs = [
        ffmpeg_python.output(branches[i], path, an=None, **{"frames:v": task.span.frame_count},
                             **x264_options(_trial_rendition(task, crf), task.settings,
                                            task.segment_frames))
        for i, (crf, path) in enumerate(zip(task.crfs, out_paths, strict=True))
    ]
    return ffmpeg_python.merge_outputs(*outputs).get_args()


def trial_score_argv(task: TrialTask, staged_path: str, encoded: Sequence[str],
                     log_paths: Sequence[str]) -> list[str]:
    """Decode the reference once; score every encode of the task with its own libvmaf."""
    height = task.vmaf_height
    width = scaled_width(task.source, height)
    reference = source_frames(staged_path, task.source, task.span, task.settings.decoder)
    reference = vmaf.thinned(reference, task.vmaf_subsample)
    if vmaf.needs_scaling(task.source, width, height):
        reference = reference.filter("scale", width, height, flags="bicubic")
    references = reference.filter("format", "yuv420p").filter_multi_output("split", len(encoded))
    outputs = []
    for i, (path, log_path) in enumerate(zip(encoded, log_paths, strict=True)):
        distorted = ffmpeg_python.input(path).video.filter("setpts", "PTS-STARTPTS")
        distorted = vmaf.thinned(distorted, task.vmaf_subsample)
        distorted = distorted.filter("scale", width, height, flags="bicubic")
        distorted = distorted.filter("format", "yuv420p")
        options = vmaf.libvmaf_options(log_path, task.settings.threads, task.vmaf_subsample,
                                       instances=len(encoded))
        scored = ffmpeg_python.filter([distorted, references[i]], "libvmaf", **options)
        outputs.append(ffmpeg_python.output(scored, "-", f="null"))
    return ffmpeg_python.merge_outputs(*outputs).get_args()


def run_trials(task: TrialTask, staged: StagedSpan, scratch: str,
               timeout_s: float | None = None) -> tuple[list[TrialEncode], float, float]:
    """Encode and score the task's sample at every CRF: (results, encode s, score s)."""
    encoded = [os.path.join(scratch, f"trial-crf{crf:g}.mp4") for crf in task.crfs]
    logs = [os.path.join(scratch, f"trial-crf{crf:g}.json") for crf in task.crfs]
    run = ffmpeg.run(ffmpeg.ffmpeg_argv(*trial_encode_argv(task, staged.path, encoded)),
                     timeout_s=timeout_s)
    scored = ffmpeg.run(ffmpeg.ffmpeg_argv(*trial_score_argv(task, staged.path, encoded, logs)),
                        timeout_s=timeout_s)
    results = []
    for crf, path, log in zip(task.crfs, encoded, logs, strict=True):
        frames = count_frames(path)
        if frames != task.span.frame_count:
            raise MediaError(f"trial at {task.height}p CRF {crf:g} has {frames} frames; "
                             f"expected {task.span.frame_count}")
        score = vmaf.pool_log_file(log)
        results.append(TrialEncode(crf, os.path.getsize(path), frames, score.mean))
    return results, run.wall_s, scored.wall_s
