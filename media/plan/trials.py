"""Trial encodes: which tasks a title's trials make, and how one task runs (two processes).

The title's samples and their tasks (`sample_spans`, `probe_tasks`, `refine_tasks`): the
probe sample at every candidate resolution first, then the other samples at the
resolutions the probe's hull calls for. A task encodes one sample segment at several
resolutions and every trial CRF.

The encode process decodes the staged sample once, scales it once per resolution and
feeds one x264 encoder per (resolution, CRF) (FFmpeg's split filter). The same process
keeps the sample's VMAF reference frames (scaled to the display size, thinned to the
frames the scoring step needs) as raw frames. The score process reads them back and runs
one libvmaf per encode. Against one process pair per resolution, that saves decoding
the sample twice per resolution, which on a high-bitrate mezzanine is much of the work.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from media.core import ffmpeg
from media.core.config import JobConfig
from media.core.errors import MediaError
from media.core.records import span_basis
from media.core.types import (
    ChunkSpan,
    EncodeSettings,
    Rendition,
    SegmentGrid,
    SourceInfo,
    TrialResult,
    TrialTask,
)
from media.encode.commands import encode_renditions_argv
from media.encode.encoded import packet_sizes
from media.encode.encoders import codec_crf, trial_encoder
from media.encode.scoring import reference_output, vmaf_size
from media.encode.staging import StagedSpan
from media.inspect.complexity import title_complexity
from media.plan.chunking import segment_count
from media.plan.ladder import vmaf_height
from media.plan.planning import (
    candidate_resolutions,
    heights_to_refine,
    title_samples,
    trial_points,
)
from media.quality import vmaf

TRIAL_X264_THREADS = 1
"""x264 threads per trial encoder where `--encoder_threads` is 0: on a short sample, frame
threads cost more to start than they save (21 encodes of a 1080p probe: 3.1 CPU s
against 3.7-4.3). Calibration encodes keep the final encodes' threads: they stand for them."""


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


def _trial_rendition(width: int, height: int, crf: float, hdr: str = "") -> Rendition:
    # maxrate 0: plain CRF, so the trials measure the encoder's uncapped curve.
    return Rendition(f"trial-{height}p-crf{crf:g}", width, height, crf, 0, 0, hdr=hdr)


def trial_encode_argv(task: TrialTask, staged_path: str, out_paths: Sequence[str],
                      reference_path: str) -> list[str]:
    """Decode the sample once; encode it at every size and CRF of the task (the chunk
    encoder's one-process graph, `media.encode.commands.encode_renditions_argv`), and keep its VMAF
    reference frames at `reference_path` (`media.quality.vmaf.store_reference`)."""
    renditions = [_trial_rendition(*size_crf, hdr=task.hdr) for size_crf in trial_grid(task)]
    return encode_renditions_argv(staged_path, out_paths, task.source, task.span, renditions,
                                  task.settings, task.grid,
                                  reference_output(task, reference_path, task.vmaf_subsample))


def trial_score_argv(task: TrialTask, reference_path: str, encoded: Sequence[str],
                     log_paths: Sequence[str]) -> list[str]:
    """Read the kept reference once; score every encode of the task with its own libvmaf."""
    width, height = vmaf_size(task)
    return vmaf.score_many_argv(reference_path, encoded, log_paths, width, height,
                                task.vmaf_subsample, task.settings.threads,
                                [bool(task.hdr)] * len(encoded))


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


def complexity_of(source: SourceInfo, grid: SegmentGrid) -> tuple[float, ...] | None:
    """The title's complexity per segment of `grid`, where the inspection measured it."""
    return title_complexity(source, grid.segment_frames)


def sample_spans(source: SourceInfo, config: JobConfig,
                 grid: SegmentGrid) -> tuple[list[ChunkSpan], int]:
    """The title's trial samples (the first `trial_seconds` of the segments
    `media.plan.planning.title_samples` chooses) and the probe sample's segment index."""
    frames = grid.segment_frames
    trial_frames = max(1, min(frames, round(config.trial_seconds * source.frame_rate)))
    total = segment_count(source.frame_count, frames)
    if total > 1 and source.frame_count - (total - 1) * frames < trial_frames:
        # a tail shorter than a sample: its few frames measure their keyframe, not the
        # title (a 4-frame tail pulled its chunk's CRF 3.9 steps down)
        total -= 1
    complexity = complexity_of(source, grid)
    samples, probe = title_samples(total, config.trial_fraction,
                                   None if complexity is None else complexity[:total],
                                   grid.chunk_segments)
    return [ChunkSpan(i, i * frames, min(trial_frames, source.frame_count - i * frames))
            for i in samples], probe


def trial_tasks(source: SourceInfo, config: JobConfig, grid: SegmentGrid,
                spans: list[ChunkSpan], heights: Sequence[int] | None = None,
                first_index: int = 0, codec: str = "", hdr: str = "") -> list[TrialTask]:
    """One trial task per sample of `spans`, each encoding its sample at `heights`
    (default: every candidate resolution) and every trial CRF. Results are numbered from
    `first_index` among the title's results: the tasks' own after those before them.
    With a `codec` (a codec ladder of `--codecs`), with its software encoder at the
    trial CRFs carried onto its scale (`media.encode.encoders.codec_crf`); `hdr` ('pq',
    'hlg'): the codec's ladder is kept HDR (`Rendition.hdr`), and so are its trials."""
    sizes = tuple((w, h) for w, h in candidate_resolutions(source)
                  if heights is None or h in heights)
    crfs = (tuple(codec_crf(codec, c) for c in config.trial_crfs) if codec
            else tuple(config.trial_crfs))
    per_task = len(sizes) * len(crfs)
    settings = EncodeSettings(preset=config.trial_preset,
                              threads=config.encode.threads or TRIAL_X264_THREADS)
    if codec:
        settings = dataclasses.replace(settings, encoder=trial_encoder(codec))
    return [
        TrialTask(source=source, sizes=sizes, crfs=crfs, span=span,
                  trial_index=first_index + i * per_task,
                  trial_count=first_index + len(spans) * per_task,
                  grid=grid, output_root=config.output_root, settings=settings,
                  vmaf_height=vmaf_height(source), vmaf_subsample=config.trial_vmaf_subsample,
                  codec=codec, hdr=hdr)
        for i, span in enumerate(spans)
    ]


def probe_tasks(source: SourceInfo, config: JobConfig, grid: SegmentGrid,
                samples: tuple[list[ChunkSpan], int] | None = None,
                codec: str = "", hdr: str = "") -> list[TrialTask]:
    """The first round: the probe sample at every candidate resolution. `samples`:
    `sample_spans`, where the caller has them already; `codec`: see `trial_tasks`."""
    spans, probe = samples or sample_spans(source, config, grid)
    return trial_tasks(source, config, grid, [s for s in spans if s.index == probe],
                       codec=codec, hdr=hdr)


def refine_tasks(probed: Sequence[TrialResult], config: JobConfig
                 ) -> tuple[list[TrialTask], list[int]]:
    """The second round, after the probe: the other samples at the resolutions the
    probe's hull calls for (`heights_to_refine`), numbered after the probe's results.
    Returns the tasks and those resolutions."""
    first = probed[0].task
    spans = [s for s in sample_spans(first.source, config, first.grid)[0]
             if s.index != first.span.index]
    heights = heights_to_refine(
        trial_points(probed), top_vmaf=config.top_vmaf, max_kbps=config.max_kbps or None,
        min_kbps=config.min_kbps, step_ratio=config.step_ratio, max_rungs=config.max_rungs)
    tasks = (trial_tasks(without_complexity(first.source), config, first.grid, spans,
                         heights, first_index=len(probed), codec=first.codec, hdr=first.hdr)
             if spans else [])
    return tasks, heights


def without_complexity(source: SourceInfo) -> SourceInfo:
    """`source` without its per-second complexity (7,200 numbers at 2 hours), which
    planning reads from the title's first trial result alone (`lean_result`)."""
    if not source.complexity:
        return source
    return dataclasses.replace(source, complexity=(), complexity_bin_frames=0)


def lean_result(result: TrialResult) -> TrialResult:
    """`result` as the trial gathers carry it: the source's complexity on the title's
    first result only (index 0, the probe's, where `sample_spans` and `plan_title` read
    it), so a part stays a few kilobytes whatever the title's length."""
    if result.index == 0 or not result.task.source.complexity:
        return result
    task = dataclasses.replace(result.task, source=without_complexity(result.task.source))
    return dataclasses.replace(result, task=task)


def trial_record(task: TrialTask, encodes: Sequence[TrialEncode], encoding: ffmpeg.ToolRun,
                 scoring: ffmpeg.ToolRun) -> dict:
    """The stored record of a task's results, which a re-run reuses (`trial_results`).
    The encode process's seconds are shared among the encodes by pixels per frame; the
    score process's evenly (each scores the same frames at the same size)."""
    pixels = sum(e.width * e.height for e in encodes)
    shares = [e.width * e.height / pixels for e in encodes]
    results = [{"size": [e.width, e.height], "crf": e.crf, "size_bytes": e.size_bytes,
                "frames": e.frames, "vmaf_mean": e.vmaf_mean,
                "keyframe_bytes": e.keyframe_bytes, "vmaf_sd": e.vmaf_sd,
                "encode_s": encoding.wall_s * share,
                "score_s": scoring.wall_s / len(encodes),
                "cpu_s": encoding.cpu_s * share + scoring.cpu_s / len(encodes)}
               for e, share in zip(encodes, shares, strict=True)]
    return {"task": _task_key(task), "results": results}


def trial_results(task: TrialTask, record: dict) -> list[TrialResult] | None:
    """The results a stored record holds; None where it was made for other settings."""
    if record.get("task") != _task_key(task):
        return None
    out = []
    for i, r in enumerate(record["results"]):
        width, height = r["size"]
        out.append(TrialResult(task, width, height, r["crf"], task.trial_index + i,
                               r["size_bytes"], r["frames"], r["vmaf_mean"], r["encode_s"],
                               r["score_s"], r.get("keyframe_bytes", 0), r.get("cpu_s", 0.0),
                               r.get("vmaf_sd")))
    return out


def _task_key(task: TrialTask) -> dict:
    """What decides a trial's result; a record made for other settings is not reused."""
    key = {"source": [task.source.source_uri, task.source.size_bytes],
           "span": span_basis(task.span), "sizes": [list(s) for s in task.sizes],
           "crfs": list(task.crfs), "preset": task.settings.preset,
           "vmaf": [task.vmaf_height, task.vmaf_subsample]}
    if task.codec:  # a codec ladder's trials (the one ladder's records stay as they were)
        key["encoder"] = task.settings.encoder
    if task.hdr:
        key["hdr"] = task.hdr
    return key


def trial_record_name(task: TrialTask, uri: str) -> str:
    """Where a task's record is stored, given the one ladder's `uri` for its segment
    (`media.core.naming.trial_record_uri`): a codec ladder's beside it, prefixed with
    the codec."""
    if not task.codec:
        return uri
    folder, _, name = uri.rpartition("/")
    return f"{folder}/{task.codec}-{name}"
