"""Score an encoded chunk against its source with libvmaf, and pool the scores.

The encode is upscaled (bicubic) to the display resolution, min(1080, source height)
lines, and compared with the same frames of the source scaled to that size, as the
field measures streaming quality. libvmaf writes a JSON log with a score per frame;
we pool it ourselves (mean, harmonic mean, 5th percentile, minimum) and keep the log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import ffmpeg as ffmpeg_python

from media.core.errors import MediaError
from media.core.ffmpeg import available_cores
from media.core.types import ChunkSpan, SourceInfo, VmafScore
from media.encode.commands import source_frames
from media.encode.conditioning import tone_mapped

VMAF_MODEL = "vmaf_v0.6.1"


def score_chunk_argv(encoded_path: str, staged_path: str, source: SourceInfo,
                     chunk: ChunkSpan, width: int, height: int, log_path: str,
                     threads: int = 0, subsample: int = 1, decoder: str = "cpu",
                     reference_path: str = "", hdr: bool = False) -> list[str]:
    """FFmpeg arguments (without the binary) that score one chunk into a JSON log.

    `shortest=1` in the framesync options ends scoring at the shorter input: a chunk
    whose encode lost frames would otherwise be scored against repeated last frames.
    `subsample` n > 1 scores every n-th frame only (`thinned`, libvmaf's n_subsample).
    `reference_path`, if given, is the chunk's reference as `store_reference` wrote it
    for this size and step: read instead of decoding the staged source again.
    `hdr`: the encode is an HDR rung, tone-mapped as the reference was (`distorted_frames`).
    """
    distorted = distorted_frames(encoded_path, width, height, subsample, hdr)
    if reference_path:
        reference = stored_reference(reference_path)
    else:
        reference = reference_frames(source_frames(staged_path, source, chunk, decoder),
                                     source, width, height, subsample)
    scored = compared(distorted, reference, libvmaf_options(log_path, threads, subsample))
    return ffmpeg_python.output(scored, "-", f="null").get_args()


def score_many_argv(reference_path: str, encoded_paths: Sequence[str],
                    log_paths: Sequence[str], width: int, height: int, subsample: int = 1,
                    threads: int = 0, hdr: Sequence[bool] = ()) -> list[str]:
    """FFmpeg arguments that read a span's kept reference frames once (`stored_reference`)
    and score each of `encoded_paths`, encodes of that span (a trial sample's sizes and
    CRFs, a chunk's renditions), with its own libvmaf into its own JSON log. Against a
    process per encode, this spares a start and a read of the reference per encode, and
    the libvmafs share the cores. `hdr`: which encodes are HDR rungs (`distorted_frames`)."""
    kept_hdr = list(hdr) or [False] * len(encoded_paths)
    references = stored_reference(reference_path).filter_multi_output(
        "split", len(encoded_paths))
    outputs = []
    for i, (path, log_path) in enumerate(zip(encoded_paths, log_paths, strict=True)):
        options = libvmaf_options(log_path, threads, subsample, instances=len(encoded_paths))
        scored = compared(distorted_frames(path, width, height, subsample, kept_hdr[i]),
                          references[i], options)
        outputs.append(ffmpeg_python.output(scored, "-", f="null"))
    return ffmpeg_python.merge_outputs(*outputs).get_args()


def scoring_streams(encoded_path: str, staged_path: str, source: SourceInfo,
                    chunk: ChunkSpan, width: int, height: int, decoder: str = "cpu",
                    subsample: int = 1, hdr: bool = False):
    """The (distorted, reference) ffmpeg-python streams that VMAF compares, both
    `width`x`height` yuv420p: the encode upscaled bicubic, and the chunk's conditioned
    source frames (scaled only where their size or pixel shape differs). libvmaf and
    `media.quality.gpu_vmaf` score the same two streams; libvmaf passes its `subsample` step,
    and both streams are `thinned` to the frames it needs before they are scaled."""
    reference = source_frames(staged_path, source, chunk, decoder)
    return (distorted_frames(encoded_path, width, height, subsample, hdr),
            reference_frames(reference, source, width, height, subsample))


def compared(distorted, reference, options: dict[str, str]):
    """libvmaf (with `options`) comparing two streams, each `untagged` on the way in."""
    return ffmpeg_python.filter([untagged(distorted), untagged(reference)], "libvmaf",
                                **options)


def distorted_frames(encoded_path: str, width: int, height: int, subsample: int = 1,
                     hdr: bool = False):
    """An encode's frames as VMAF sees them: `thinned`, upscaled bicubic, yuv420p.

    VMAF is defined on SDR pictures: an HDR rung's frames (`hdr`) are first tone-mapped
    as the reference was, with the same `tone_mapped` chain (from their own colour tags),
    so that the score measures the encode, not the tone mapping (docs/per-title.md)."""
    distorted = ffmpeg_python.input(encoded_path).video
    distorted = distorted.filter("setpts", "PTS-STARTPTS")
    distorted = thinned(distorted, subsample)
    if hdr:
        distorted = tone_mapped(distorted)
    distorted = distorted.filter("scale", width, height, flags="bicubic")
    return distorted.filter("format", "yuv420p")


UNTAGGED = {"range": "unknown", "colorspace": "unknown", "color_primaries": "unknown",
            "color_trc": "unknown"}


def untagged(stream):
    """`stream` with its frames' colour tags (range, matrix, primaries, transfer) cleared,
    their pixels untouched.

    Where libvmaf's two inputs carry different tags, FFmpeg converts one of them on the
    way in; a kept reference (`store_reference`) has no tags while a tagged encode keeps
    them. Both sides are the same pipeline's pixels, so each input to libvmaf is
    untagged (`compared`) and they are compared as they are (docs/performance.md)."""
    return stream.filter("setparams", **UNTAGGED)


def reference_frames(frames, source: SourceInfo, width: int, height: int, subsample: int = 1):
    """The conditioned source `frames` (a stream) as VMAF compares them: `thinned`,
    scaled to `width`x`height` only where their size or pixel shape differs, yuv420p."""
    reference = thinned(frames, subsample)
    if needs_scaling(source, width, height):
        reference = reference.filter("scale", width, height, flags="bicubic").filter(
            "setsar", "1")
    return reference.filter("format", "yuv420p")


def store_reference(reference, path: str):
    """An ffmpeg-python output that keeps a `reference_frames` stream at `path` for later
    scoring runs (`stored_reference`): raw yuv420p in NUT, so a chunk's source is decoded
    once for every encode that is scored against it, and reading it back costs nothing.
    (Luma alone would be smaller, but FFmpeg takes its gray format as full range and
    would stretch the picture's levels on the way in: the frames are kept as they are.)"""
    return ffmpeg_python.output(reference, path, f="nut", **{"c:v": "rawvideo"})


def stored_reference(path: str):
    """The reference frames `store_reference` kept, as the yuv420p stream libvmaf takes."""
    return ffmpeg_python.input(path, f="nut").video.filter("format", "yuv420p")


def stored_reference_bytes(frame_count: int, width: int, height: int, subsample: int = 1) -> int:
    """Bytes `store_reference` writes for `frame_count` frames at one size and step."""
    kept = frame_count if subsample <= THINNED_STEP else (
        sum(1 for n in range(frame_count) if (n + 1) % subsample < THINNED_STEP))
    return kept * (width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2))


MIN_SCORED_FRAMES = 20
"""Frames a chunk's pooled score comes from, at least, whatever the step asked for."""
FLAT_SCORED_FRAMES = 7
"""Frames a chunk's pooled score comes from, at least, on a title whose frame scores
barely vary (`scored_frames_needed`)."""
SCORING_ERROR = 0.25
"""How far (VMAF) a subsampled chunk score may stray from every frame's, by design: half
of what the scoring benchmark allows."""
SPREAD_FACTOR = 4.5
"""Bound on a chunk mean's error over n frames, times sqrt(n), over the spread of the
title's trial frame scores (`media.plan.planning.frame_spread`); above the largest ratio
measured (docs/performance.md, Scoring)."""


def scored_frames_needed(frame_sd: float | None) -> int:
    """Frames a chunk needs scored for its mean to stay within SCORING_ERROR of every
    frame's, judged from `frame_sd`, the spread of frame scores within the title's trial
    encodes (None: not measured): (SPREAD_FACTOR * sd / SCORING_ERROR) ** 2, between
    FLAT_SCORED_FRAMES and MIN_SCORED_FRAMES.

    A flat title needs few frames, a grainy one all of them. Scoring costs the same per
    frame whatever was encoded, so a cheap encode's scoring would otherwise cost more
    than the encode.

    >>> scored_frames_needed(0.15), scored_frames_needed(0.7), scored_frames_needed(None)
    (8, 20, 20)
    """
    if frame_sd is None:
        return MIN_SCORED_FRAMES
    needed = math.ceil((SPREAD_FACTOR * frame_sd / SCORING_ERROR) ** 2)
    return max(FLAT_SCORED_FRAMES, min(MIN_SCORED_FRAMES, needed))


def chunk_step(frame_count: int, step: int, scored_frames: int = MIN_SCORED_FRAMES) -> int:
    """The step a chunk of `frame_count` frames is scored at: `step`, or the largest odd
    step below it that still scores `scored_frames` of its frames (1: every frame).

    The error of a subsampled mean grows as the frames it is taken from get fewer, not
    with the step itself (docs/performance.md, Scoring), so a short chunk's step shrinks.
    Where a title needs fewer than MIN_SCORED_FRAMES (`scored_frames_needed`: its frame
    scores barely vary), the step grows to score about that many (a step of 1, every
    frame, is kept as asked).
    """
    if step > 1 and scored_frames < MIN_SCORED_FRAMES:
        widest = frame_count // scored_frames
        step = max(step, widest - 1 + widest % 2)
    while step > 1 and -(-frame_count // step) < scored_frames:
        step -= 2
    return max(step, 1)


THINNED_STEP = 3
"""libvmaf's step on a thinned stream: every scored frame comes with its two neighbours."""


def thinned(stream, subsample: int):
    """The frames libvmaf needs to score every `subsample`-th frame of `stream`.

    VMAF's motion feature compares each frame with the one before and the one after it,
    so libvmaf reads every frame even when it scores every n-th. A scored frame and its
    two neighbours are all it uses: this keeps frames n-1, n and n+1 of every n-th and
    drops the rest before they are scaled and compared. On the thinned stream libvmaf
    scores every THINNED_STEP-th frame: the same frames, with the same scores (n 0, s,
    2s... sit at positions 0, 3, 6...). Steps of 3 or less keep every frame.
    """
    if subsample <= THINNED_STEP:
        return stream
    return stream.filter("select", f"lt(mod(n+1,{subsample}),{THINNED_STEP})")


def libvmaf_step(subsample: int) -> int:
    """libvmaf's n_subsample for a `thinned` stream scored every `subsample`-th frame."""
    return subsample if subsample <= THINNED_STEP else THINNED_STEP


def renumber_thinned(log_path: str, subsample: int) -> None:
    """Give the frames of a log scored on a `thinned` stream their numbers in the chunk."""
    if subsample <= THINNED_STEP:
        return
    with open(log_path, encoding="utf-8") as handle:
        log = json.load(handle)
    for frame in log.get("frames", []):
        frame["frameNum"] = frame["frameNum"] // THINNED_STEP * subsample
    with open(log_path, "w", encoding="utf-8") as handle:
        json.dump(log, handle)


def needs_scaling(source: SourceInfo, width: int, height: int) -> bool:
    """Whether the (conditioned) reference must be scaled to `width`x`height`: its size
    differs, or its pixels are not square (`width` is the display width)."""
    return (source.width, source.height) != (width, height) or source.sample_aspect_ratio != 1


def libvmaf_options(log_path: str, threads: int = 0, subsample: int = 1,
                    instances: int = 1) -> dict[str, str]:
    """Options of one libvmaf filter; `instances` filters in one graph share the cores."""
    cores = threads or available_cores()
    options = {
        "model": f"version={VMAF_MODEL}",
        "log_fmt": "json",
        # ffmpeg-python escapes filter option values itself; escaping here would double it.
        "log_path": log_path,
        "shortest": "1",
        "n_threads": str(max(1, cores // instances)),
    }
    if subsample > 1:  # the stream is `thinned` to the frames that step needs
        options["n_subsample"] = str(libvmaf_step(subsample))
    return options


def frame_scores(log: dict) -> list[float]:
    """Per-frame VMAF scores from a libvmaf JSON log."""
    try:
        return [float(frame["metrics"]["vmaf"]) for frame in log["frames"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise MediaError(f"libvmaf log has no per-frame 'vmaf' scores: {exc}") from exc


def harmonic_mean(scores: Sequence[float]) -> float:
    """VMAF's harmonic mean (scores shifted by 1 so that a 0 does not divide by zero)."""
    return len(scores) / sum(1.0 / (1.0 + s) for s in scores) - 1.0


def percentile(scores: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    ordered = sorted(scores)
    position = (len(ordered) - 1) * pct / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def pool(scores: Sequence[float]) -> VmafScore:
    if not scores:
        raise MediaError("libvmaf scored no frames")
    return VmafScore(
        mean=sum(scores) / len(scores),
        harmonic_mean=harmonic_mean(scores),
        p5=percentile(scores, 5),
        minimum=min(scores),
        frame_count=len(scores),
    )


def pool_log_file(path: str) -> VmafScore:
    return pool(log_frame_scores(path))


def log_frame_scores(path: str) -> list[float]:
    """The per-frame scores of the libvmaf JSON log at `path`."""
    try:
        with open(path, encoding="utf-8") as handle:
            log = json.load(handle)
    except (OSError, ValueError) as exc:
        raise MediaError(f"libvmaf wrote no readable log at {path}: {exc}") from exc
    return frame_scores(log)
