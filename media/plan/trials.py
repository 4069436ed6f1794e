"""Trial encodes: one sample segment at several resolutions, every trial CRF, two processes.

The encode process decodes the staged sample once, scales it once per resolution and
feeds one x264 encoder per (resolution, CRF) (FFmpeg's split filter). The same process
keeps the sample's VMAF reference frames (scaled to the display size, thinned to the
frames the scoring step needs) as raw frames. The score process reads them back and runs
one libvmaf per encode. Against one process pair per resolution, that saves decoding
the sample twice per resolution, which on a high-bitrate mezzanine is much of the work.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from media.core import ffmpeg
from media.core.errors import MediaError
from media.core.types import Rendition, TrialTask
from media.encode.chunk import packet_sizes, reference_output, vmaf_size
from media.encode.commands import encode_renditions_argv
from media.encode.staging import StagedSpan
from media.quality import vmaf

TRIAL_X264_THREADS = 1
"""x264 threads per trial encoder, where `--encoder_threads` is left at 0 (trials are
always x264).

Left to itself x264 starts frame threads and a lookahead thread per encoder (three and
one on 2 cores); on a sample of 25 frames they cost more to start and join than they
save, and the trial process's several encoders already keep the cores busy. On the flat
benchmark source's probe (21 encodes of a 1080p sample) the encode process took 3.1 CPU
s against 3.7-4.3 (and less wall time), with the same bytes out. The calibration's
encodes keep the final encodes' settings, threads included: they stand for those
encodes, and x264's frame threads change its output a little (one thread moved a grainy
title's 720p calibration by up to 0.3 VMAF)."""


@dataclass(frozen=True)
class TrialEncode:
    width: int
    height: int
    crf: float
    size_bytes: int
    frames: int
    vmaf_mean: float
    keyframe_bytes: int
    """Bytes of the encode's first frame, its one keyframe."""
    vmaf_sd: float
    """Spread (standard deviation) of the encode's frame scores."""


def frame_sd(scores: Sequence[float]) -> float:
    """Spread of a trial's frame scores as a chunk's would spread: their standard
    deviation without the first, the sample's keyframe. A trial starts with its one
    keyframe, scored better than the frames after it (by about 0.5 to 1 VMAF in the
    flat benchmark source's probe), a fifth of its scored frames where a chunk has one
    in every segment."""
    return statistics.pstdev(scores[1:]) if len(scores) > 2 else statistics.pstdev(scores)


def trial_grid(task: TrialTask) -> list[tuple[int, int, float]]:
    """(width, height, CRF) of every encode of the task, in result order."""
    return [(width, height, crf) for width, height in task.sizes for crf in task.crfs]


def _trial_rendition(width: int, height: int, crf: float) -> Rendition:
    # maxrate 0: plain CRF, so the trials measure the encoder's uncapped curve.
    return Rendition(f"trial-{height}p-crf{crf:g}", width, height, crf, 0, 0)


def trial_encode_argv(task: TrialTask, staged_path: str, out_paths: Sequence[str],
                      reference_path: str) -> list[str]:
    """Decode the sample once; encode it at every size and CRF of the task (the chunk
    encoder's one-process graph, `media.encode.commands.encode_renditions_argv`), and keep its VMAF
    reference frames at `reference_path` (`media.quality.vmaf.store_reference`)."""
    renditions = [_trial_rendition(*size_crf) for size_crf in trial_grid(task)]
    return encode_renditions_argv(staged_path, out_paths, task.source, task.span, renditions,
                                  task.settings, task.segment_frames,
                                  reference_output(task, reference_path, task.vmaf_subsample))


def trial_score_argv(task: TrialTask, reference_path: str, encoded: Sequence[str],
                     log_paths: Sequence[str]) -> list[str]:
    """Read the kept reference once; score every encode of the task with its own libvmaf."""
    width, height = vmaf_size(task)
    return vmaf.score_many_argv(reference_path, encoded, log_paths, width, height,
                                task.vmaf_subsample, task.settings.threads)


def run_trials(task: TrialTask, staged: StagedSpan, scratch: str,
               timeout_s: float | None = None
               ) -> tuple[list[TrialEncode], ffmpeg.ToolRun, ffmpeg.ToolRun]:
    """Encode and score the task's sample at every size and CRF: (results, the encode
    process, the score process), the results in `trial_grid` order."""
    grid = trial_grid(task)
    names = [f"trial-{height}p-crf{crf:g}" for _, height, crf in grid]
    encoded = [os.path.join(scratch, f"{name}.mp4") for name in names]
    logs = [os.path.join(scratch, f"{name}.json") for name in names]
    reference = os.path.join(scratch, "reference.nut")
    run = ffmpeg.run(ffmpeg.ffmpeg_argv(*trial_encode_argv(task, staged.path, encoded,
                                                           reference)), timeout_s=timeout_s)
    scored = ffmpeg.run(ffmpeg.ffmpeg_argv(*trial_score_argv(task, reference, encoded, logs)),
                        timeout_s=timeout_s)
    results = []
    for (width, height, crf), path, log in zip(grid, encoded, logs, strict=True):
        sizes = packet_sizes(path, "trial")
        frames = len(sizes)
        if frames != task.span.frame_count:
            raise MediaError(f"trial at {height}p CRF {crf:g} has {frames} frames; "
                             f"expected {task.span.frame_count}")
        scores = vmaf.log_frame_scores(log)
        results.append(TrialEncode(width, height, crf, os.path.getsize(path), frames,
                                   vmaf.pool(scores).mean, sizes[0], frame_sd(scores)))
    return results, run, scored
