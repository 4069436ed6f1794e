"""Tests for media.quality.vmaf: pooling a hand-made libvmaf log, the scoring argv, and one real
run.

The pooled numbers are worked by hand: mean; VMAF's harmonic mean
n / Σ 1/(1+s) − 1; the 5th percentile with numpy's linear interpolation
(position (n−1)·0.05 in the sorted scores); the minimum.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction

import pytest

from media.core import ffmpeg
from media.core.config import JobConfig
from media.core.errors import MediaError
from media.core.types import ChunkSpan, ChunkTask, EncodeSettings, Rendition, SourceInfo, TitlePlan
from media.encode.chunk import encode_chunk
from media.plan.chunking import segment_grid
from media.quality.vmaf import (
    FLAT_SCORED_FRAMES,
    MIN_SCORED_FRAMES,
    chunk_step,
    frame_scores,
    harmonic_mean,
    percentile,
    pool,
    pool_log_file,
    score_chunk_argv,
    scored_frames_needed,
)
from tests.media_factory import make_clip

POOL_TOLERANCE = 1e-9
MIN_SELF_VMAF = 90.0
"""An ultrafast CRF 18 encode of a 320x180 test pattern scores ~94 against its source."""


def libvmaf_log(scores: list[float]) -> dict:
    """A log shaped like libvmaf's `log_fmt=json` output."""
    return {
        "version": "3.0.0",
        "fps": 100.0,
        "frames": [
            {"frameNum": i, "metrics": {"integer_adm2": 0.9, "integer_motion": 1.0, "vmaf": s}}
            for i, s in enumerate(scores)
        ],
        "pooled_metrics": {"vmaf": {"min": 0.0, "max": 0.0, "mean": 0.0, "harmonic_mean": 0.0}},
    }


# 11 frames; sorted: 40 60 91 92 93 94 95 96 97 98 99 (sum 955).
ELEVEN = [95, 93, 97, 40, 92, 96, 94, 91, 98, 60, 99]

POOL_TABLE = [
    # scores, mean, harmonic mean, p5, minimum
    # 11 / (1/96+1/94+1/98+1/41+1/93+1/97+1/95+1/92+1/99+1/61+1/100) - 1 = 80.72266;
    # p5 at position 10·0.05 = 0.5: halfway between 40 and 60.
    (ELEVEN, 955 / 11, 80.72265998668493, 50.0, 40.0),
    # 1+s = 1, 2, 4: 3 / (1 + 1/2 + 1/4) - 1 = 12/7 - 1 = 5/7; p5 at 0.1: 0 + 0.1·1.
    ([3.0, 0.0, 1.0], 4 / 3, 5 / 7, 0.1, 0.0),
    # p5 at position 4·0.05 = 0.2: 10 + 0.2·10 = 12.
    ([50.0, 40.0, 30.0, 20.0, 10.0], 30.0,
     5 / (1 / 11 + 1 / 21 + 1 / 31 + 1 / 41 + 1 / 51) - 1, 12.0, 10.0),
    # p5 at position 20·0.05 = 1.0: exactly the second smallest.
    ([100.0] * 19 + [20.0, 80.0], (1900 + 100) / 21, 21 / (19 / 101 + 1 / 21 + 1 / 81) - 1,
     80.0, 20.0),
    # one frame: every statistic is that frame
    ([87.5], 87.5, 87.5, 87.5, 87.5),
]


@pytest.mark.parametrize("scores, mean, hmean, p5, minimum", POOL_TABLE)
def test_pool_known_answers(scores, mean, hmean, p5, minimum):
    pooled = pool(frame_scores(libvmaf_log(scores)))
    assert pooled.mean == pytest.approx(mean, abs=POOL_TOLERANCE)
    assert pooled.harmonic_mean == pytest.approx(hmean, abs=POOL_TOLERANCE)
    assert pooled.p5 == pytest.approx(p5, abs=POOL_TOLERANCE)
    assert pooled.minimum == minimum
    assert pooled.frame_count == len(scores)
    assert pooled.minimum <= pooled.p5 <= pooled.mean
    assert pooled.harmonic_mean <= pooled.mean


def test_frame_scores_keeps_frame_order_and_reads_strings():
    log = {"frames": [{"frameNum": 0, "metrics": {"vmaf": "91.5"}},
                      {"frameNum": 1, "metrics": {"vmaf": 12}}]}
    assert frame_scores(log) == [91.5, 12.0]


@pytest.mark.parametrize("pct, expected", [(0, 40), (5, 50), (50, 94), (90, 98), (100, 99)])
def test_percentile_matches_numpy_linear(pct, expected):
    assert percentile(ELEVEN, pct) == pytest.approx(expected, abs=POOL_TOLERANCE)


def test_harmonic_mean_is_finite_with_a_zero_score():
    assert harmonic_mean([0.0, 0.0]) == 0.0


@pytest.mark.parametrize("log", [
    {},
    {"frames": None},
    {"frames": [1, 2]},
    {"frames": [{"frameNum": 0}]},
    {"frames": [{"frameNum": 0, "metrics": {"psnr_y": 40.0}}]},
    {"frames": [{"frameNum": 0, "metrics": {"vmaf": "n/a"}}]},
    {"frames": [{"frameNum": 0, "metrics": {"vmaf": None}}]},
    [],
    "not a log",
], ids=["empty", "frames-null", "frames-ints", "no-metrics", "no-vmaf", "vmaf-text",
        "vmaf-null", "list", "str"])
def test_malformed_log_raises_media_error(log):
    with pytest.raises(MediaError):
        frame_scores(log)


def test_a_log_without_frames_cannot_be_pooled():
    with pytest.raises(MediaError, match="no frames"):
        pool(frame_scores({"frames": []}))


def test_pool_log_file_reads_the_json_log(tmp_path):
    path = tmp_path / "vmaf.json"
    path.write_text(json.dumps(libvmaf_log(ELEVEN)), encoding="utf-8")
    pooled = pool_log_file(str(path))
    assert pooled.frame_count == 11
    assert pooled.p5 == pytest.approx(50.0, abs=POOL_TOLERANCE)


def test_truncated_log_file_raises_media_error(tmp_path):
    path = tmp_path / "vmaf.json"
    path.write_text(json.dumps(libvmaf_log(ELEVEN))[:200], encoding="utf-8")
    with pytest.raises(MediaError):
        pool_log_file(str(path))


# --- the scoring argv -----------------------------------------------------------------


def source(width: int = 1920, height: int = 1080, rate: Fraction = Fraction(25),
           frame_count: int = 300, path: str = "/in/t.mp4") -> SourceInfo:
    return SourceInfo(source_uri=path, title_id="t", container="mov", video_codec="h264",
                      width=width, height=height, frame_rate=rate, frame_count=frame_count,
                      video_start_s=0.0, pix_fmt="yuv420p")


def score_argv(src: SourceInfo, width: int, height: int, threads: int = 0) -> list[str]:
    return score_chunk_argv("/scratch/chunk.mp4", "/scratch/source-span.mkv", src,
                            ChunkSpan(1, 100, 100), width, height, "/scratch/vmaf.json",
                            threads=threads)


def graph_of(argv: list[str]) -> str:
    return argv[argv.index("-filter_complex") + 1]


def test_score_argv_inputs_and_output():
    argv = score_argv(source(), 1920, 1080)
    assert all(isinstance(arg, str) for arg in argv)
    inputs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-i"]
    assert inputs == ["/scratch/chunk.mp4", "/scratch/source-span.mkv"]  # distorted first
    assert "-copyts" in argv
    assert argv[-3:] == ["-f", "null", "-"]


def test_score_argv_libvmaf_options():
    graph = graph_of(score_argv(source(), 1920, 1080, threads=3))
    vmaf = graph[graph.index("libvmaf="):]
    assert "log_fmt=json" in vmaf
    assert "log_path=/scratch/vmaf.json" in vmaf
    # '=' inside the model value is escaped once per filtergraph level.
    assert "model=version\\\\=vmaf_v0.6.1" in vmaf
    assert "shortest=1" in vmaf
    assert "n_threads=3" in vmaf


@pytest.mark.parametrize("src, size, reference_scaled", [
    (source(1920, 1080), (1920, 1080), False),   # 720p encode up to the 1080p source
    (source(3840, 2160), (1920, 1080), True),    # 4K source scored at 1080 lines
    (source(1280, 536), (1280, 536), False),
])
def test_score_argv_upscales_the_distorted_input_bicubic(src, size, reference_scaled):
    graph = graph_of(score_argv(src, *size))
    filters = graph.split(";")
    scale = f"scale={size[0]}:{size[1]}:flags=bicubic"
    distorted = [f for f in filters if f.startswith("[0:v]")]
    assert distorted and "setpts=PTS-STARTPTS" in distorted[0]
    # follow the distorted chain from [0:v] to libvmaf's first input
    label, seen = distorted[0].rsplit("[", 1)[1].rstrip("]"), [distorted[0]]
    while "libvmaf" not in seen[-1]:
        seen.append(next(f for f in filters if f.startswith(f"[{label}]")))
        label = seen[-1].rsplit("[", 1)[1].rstrip("]")
    # reaching libvmaf through its first input label: the distorted input is 'main'
    assert any(scale in f for f in seen)
    assert graph.count(scale) == (2 if reference_scaled else 1)
    # the reference is the chunk's frames: up to 7.98 s, slot 0 at 4 s, 100 slots
    assert "trim=end=7.980000" in graph and "setpts=PTS-4.000000/TB" in graph
    assert "trim=end_frame=100" in graph


# --- one real run ---------------------------------------------------------------------


def _clip_task(clip: str, frames: int, rendition: Rendition, out: str,
               settings: EncodeSettings) -> ChunkTask:
    """The one chunk of a 320x180 25 fps clip of `frames` frames, at `rendition`."""
    src = SourceInfo(source_uri=clip, title_id=os.path.basename(clip).split(".")[0],
                     container="mov", video_codec="h264", width=320, height=180,
                     frame_rate=Fraction(25), frame_count=frames, video_start_s=0.0,
                     pix_fmt="yuv420p")
    return ChunkTask(source=src, rendition=rendition, chunk=ChunkSpan(0, 0, frames),
                     chunk_count=1, grid=segment_grid(Fraction(25), 2.0, 1), output_root=out,
                     settings=settings,
                     vmaf_height=180)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A 4 s 320x180 clip encoded as one chunk and scored against its source."""
    folder = tmp_path_factory.mktemp("vmaf")
    clip = make_clip(str(folder / "clip.mp4"), duration_s=4, width=320, height=180,
                     rate="25", audio=False, gop=50)
    task = _clip_task(clip, 100, Rendition("180p-250k", 320, 180, 18.0, 250, 500),
                      str(folder / "out"), EncodeSettings(preset="ultrafast"))
    scratch = folder / "scratch"
    scratch.mkdir()
    return task, encode_chunk(task, clip, str(scratch))


def test_real_encode_scores_high_against_its_source(encoded):
    task, chunk = encoded
    assert chunk.frame_count == task.chunk.frame_count == 100
    assert chunk.vmaf is not None
    assert chunk.vmaf.mean > MIN_SELF_VMAF
    assert chunk.vmaf.frame_count == 100
    with open(chunk.vmaf_log_path, encoding="utf-8") as handle:
        log = json.load(handle)
    assert len(log["frames"]) == task.chunk.frame_count
    assert [f["frameNum"] for f in log["frames"]] == list(range(100))
    # libvmaf's own pooled mean agrees with ours
    assert chunk.vmaf.mean == pytest.approx(log["pooled_metrics"]["vmaf"]["mean"], abs=0.01)


@pytest.mark.parametrize("folder_name", ["logs,1", "logs:1"])
def test_log_path_with_filtergraph_characters(encoded, tmp_path, folder_name):
    task, chunk = encoded
    log_dir = tmp_path / folder_name
    log_dir.mkdir()
    log_path = str(log_dir / "vmaf.json")
    staged = os.path.join(os.path.dirname(chunk.path), "source-span.mkv")
    argv = score_chunk_argv(chunk.path, staged, task.source, task.chunk, 320, 180, log_path)
    ffmpeg.run(ffmpeg.ffmpeg_argv(*argv))
    assert pool_log_file(log_path).frame_count == 100


THINNED_TOLERANCE = 1e-6
"""The thinned stream scores the same frames from the same pixels: equal to print precision."""


@pytest.mark.parametrize("step", [5, 9])
def test_thinned_scoring_gives_the_scores_of_every_frame_subsampling(encoded, tmp_path, step):
    """Scoring every `step`-th frame from the thinned streams (each scored frame and its
    two neighbours) gives, frame for frame, what libvmaf's own n_subsample gives when it
    reads every frame: motion still sees the frames before and after."""
    import ffmpeg as ffmpeg_python

    from media.quality.vmaf import libvmaf_options, renumber_thinned, scoring_streams

    task, chunk = encoded
    staged = os.path.join(os.path.dirname(chunk.path), "source-span.mkv")
    thin_log = str(tmp_path / "thinned.json")
    argv = score_chunk_argv(chunk.path, staged, task.source, task.chunk, 320, 180, thin_log,
                            subsample=step)
    assert "select=" in graph_of(argv) and f"n_subsample={min(step, 3)}" in graph_of(argv)
    ffmpeg.run(ffmpeg.ffmpeg_argv(*argv))
    renumber_thinned(thin_log, step)

    full_log = str(tmp_path / "every-frame.json")
    distorted, reference = scoring_streams(chunk.path, staged, task.source, task.chunk, 320, 180)
    options = libvmaf_options(full_log) | {"n_subsample": str(step)}
    scored = ffmpeg_python.filter([distorted, reference], "libvmaf", **options)
    ffmpeg.run(ffmpeg.ffmpeg_argv(*ffmpeg_python.output(scored, "-", f="null").get_args()))

    with open(thin_log, encoding="utf-8") as a, open(full_log, encoding="utf-8") as b:
        thin, full = json.load(a)["frames"], json.load(b)["frames"]
    assert [f["frameNum"] for f in thin] == [f["frameNum"] for f in full] == list(
        range(0, 100, step))
    for mine, theirs in zip(thin, full, strict=True):
        assert mine["metrics"]["vmaf"] == pytest.approx(theirs["metrics"]["vmaf"],
                                                        abs=THINNED_TOLERANCE)
        assert mine["metrics"]["integer_motion2"] == pytest.approx(
            theirs["metrics"]["integer_motion2"], abs=THINNED_TOLERANCE)


STORED_TOLERANCE = 1e-3
"""Scores from the kept raw frames against scores from the decoded source."""
PLAIN_TOLERANCE = 1e-3
"""A chunk's score against plain libvmaf's on the same encode and source (same frames)."""


@pytest.mark.parametrize("tags", [
    ("-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709",
     "-color_trc", "bt709"),
    ("-color_range", "pc"),
], ids=["bt709-limited", "full-range"])
def test_a_tagged_source_scores_as_plain_libvmaf_scores_it(tmp_path, tags):
    """Most sources carry colour tags; the kept reference (raw frames in NUT) does not.
    libvmaf must still compare the same pixels: the chunk's score from its kept reference
    equals plain libvmaf's on the encode and the source (which agree on their tags)."""
    clip = str(tmp_path / "tagged.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2", "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "16", "-g", "50", "-pix_fmt", "yuv420p", *tags, clip))
    task = _clip_task(clip, 50, Rendition("180p", 320, 180, 18.0, 0, 0), str(tmp_path / "out"),
                      EncodeSettings(preset="ultrafast", vmaf_backend="libvmaf"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    chunk = encode_chunk(task, clip, str(scratch))
    assert chunk.reference_path  # scored from the kept reference

    log = str(tmp_path / "plain.json")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-i", chunk.path, "-i", clip, "-lavfi",
        f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}", "-f", "null", "-"))
    plain = pool_log_file(log)
    assert chunk.vmaf.frame_count == plain.frame_count == 50
    assert chunk.vmaf.mean == pytest.approx(plain.mean, abs=PLAIN_TOLERANCE)
    assert chunk.vmaf.mean > MIN_SELF_VMAF


@pytest.mark.parametrize("step", [1, 5])
def test_a_stored_reference_scores_as_the_decoded_source(encoded, tmp_path, step):
    from media.encode.commands import source_frames
    from media.quality.vmaf import (
        reference_frames,
        renumber_thinned,
        store_reference,
        stored_reference_bytes,
    )

    task, chunk = encoded
    staged = os.path.join(os.path.dirname(chunk.path), "source-span.mkv")
    stored = str(tmp_path / "reference.nut")
    frames = source_frames(staged, task.source, task.chunk)
    ffmpeg.run(ffmpeg.ffmpeg_argv(*store_reference(
        reference_frames(frames, task.source, 320, 180, step), stored).get_args()))
    header = os.path.getsize(stored) - stored_reference_bytes(100, 320, 180, step)
    assert 0 < header < 4096  # the kept raw frames, and a small NUT header

    logs = {}
    for name, reference_path in (("decoded", ""), ("stored", stored)):
        logs[name] = str(tmp_path / f"{name}.json")
        ffmpeg.run(ffmpeg.ffmpeg_argv(*score_chunk_argv(
            chunk.path, staged, task.source, task.chunk, 320, 180, logs[name], subsample=step,
            reference_path=reference_path)))
        renumber_thinned(logs[name], step)
    decoded, kept = pool_log_file(logs["decoded"]), pool_log_file(logs["stored"])
    assert kept.frame_count == decoded.frame_count == len(range(0, 100, step))
    assert kept.mean == pytest.approx(decoded.mean, abs=STORED_TOLERANCE)
    assert kept.minimum == pytest.approx(decoded.minimum, abs=STORED_TOLERANCE)


@pytest.mark.parametrize("frames, step, expected", [
    (300, 15, 15),  # a 12 s chunk at 25 fps: 20 frames at the step asked for
    (299, 15, 15),  # frames 0, 15, ... 285: still 20
    (285, 15, 13),  # 19 at 15; 22 at 13
    (100, 15, 5),  # a 4 s tail chunk: every 5th frame, 20 of them
    (60, 15, 3),
    (40, 15, 1),  # too short for any step: every frame
    (1000, 1, 1),
    (100, 5, 5),
])
def test_chunk_step_keeps_enough_frames_scored(frames, step, expected):
    assert chunk_step(frames, step) == expected


def test_chunk_step_is_odd_no_larger_than_asked_and_scores_enough_frames():
    for frames in range(1, 400):
        for step in (1, 3, 5, 9, 15, 25):
            got = chunk_step(frames, step)
            assert got <= step and got % 2 == 1
            assert got == 1 or -(-frames // got) >= MIN_SCORED_FRAMES


@pytest.mark.parametrize("frames, step, scored, expected", [
    (300, 15, 7, 41),  # a flat title's 12 s chunk: 8 frames, not 20
    (100, 15, 7, 15),  # its 4 s tail chunk: 7 frames
    (300, 15, 20, 15),  # a title that needs 20: as before
    (300, 1, 7, 1),  # every frame, where asked, stays every frame
    (10, 15, 7, 1),  # too short for any step
])
def test_chunk_step_widens_for_a_title_that_needs_fewer_frames(frames, step, scored, expected):
    assert chunk_step(frames, step, scored) == expected


def test_chunk_step_for_fewer_frames_is_odd_and_scores_them():
    for frames in range(1, 400):
        for step in (3, 5, 15):
            for scored in (FLAT_SCORED_FRAMES, 12):
                got = chunk_step(frames, step, scored)
                assert got % 2 == 1
                assert got == 1 or scored <= -(-frames // got) < 2 * scored + 1


@pytest.mark.parametrize("spread, frames", [
    (None, MIN_SCORED_FRAMES),  # not measured: the default
    (0.0, FLAT_SCORED_FRAMES),  # never fewer than the floor
    (0.14, FLAT_SCORED_FRAMES),  # the cartoon's trials
    (0.2, 13),
    (0.24, 19),
    (0.9, MIN_SCORED_FRAMES),  # the grainy source's: never more than the default
])
def test_scored_frames_needed_grows_with_the_spread_of_frame_scores(spread, frames):
    assert scored_frames_needed(spread) == frames


def test_split_gives_a_short_tail_chunk_a_finer_step():
    from transforms.split import plan_tasks

    source = SourceInfo(source_uri="/in/t.mp4", title_id="t", container="mov",
                        video_codec="h264", width=640, height=360, frame_rate=Fraction(25),
                        frame_count=400, video_start_s=0.0, pix_fmt="yuv420p")
    plan = TitlePlan(source, (Rendition("360p", 640, 360, 23, 800, 1600),), "fixed",
                     segment_grid(Fraction(25), 4.0, 3))
    tasks, _, _ = plan_tasks(plan, JobConfig(output_root="/out", vmaf_subsample=15))
    assert [(t.chunk.frame_count, t.vmaf_subsample) for t in tasks] == [(300, 15), (100, 5)]
    # a title whose trials found its frame scores flat: 8 and 7 frames scored
    flat = TitlePlan(source, plan.renditions, "per-title", plan.grid,
                     scored_frames=FLAT_SCORED_FRAMES)
    tasks, _, _ = plan_tasks(flat, JobConfig(output_root="/out", vmaf_subsample=15))
    assert [(t.chunk.frame_count, t.vmaf_subsample) for t in tasks] == [(300, 41), (100, 15)]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2,
                    reason="needs CPU affinity and two cores")
def test_threads_follow_the_cores_this_process_may_use():
    # A taskset or a container's cpuset can leave fewer cores than the machine has:
    # libvmaf, the encoders and the DirectRunner's workers count those, not the machine's.
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    from media.core.ffmpeg import available_cores
    from media.quality.vmaf import libvmaf_options
    from pipeline.launcher import local_parallelism

    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(everything)})
    try:
        assert available_cores() == 1 < os.cpu_count()
        assert libvmaf_options("/s/v.json")["n_threads"] == "1"
        options = PipelineOptions([])
        local_parallelism([], options)
        assert options.view_as(DirectOptions).direct_num_workers == 1
    finally:
        os.sched_setaffinity(0, everything)
    assert available_cores() == len(everything)
    assert libvmaf_options("/s/v.json")["n_threads"] == str(len(everything))
