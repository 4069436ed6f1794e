"""Tests for media.plan.trials: one sample, several resolutions and CRFs, one decode each way.

A real 2 s 640x360 clip is trial-encoded at two resolutions and two CRFs in one task.
Each result must be what a plain encode and a plain libvmaf run of the same frames give:
the same frames and bytes as the encoder alone makes, and the VMAF of scoring that
encode against the decoded source, within a named tolerance.
"""

from __future__ import annotations

import os
import statistics
from fractions import Fraction

import pytest

from media.core import ffmpeg
from media.core.config import JobConfig
from media.core.types import ChunkSpan, EncodeSettings, SegmentGrid, SourceInfo, TrialTask
from media.encode.commands import chunk_window_s
from media.encode.encoded import packet_sizes
from media.encode.staging import stage_span
from media.plan.trials import (
    frame_sd,
    run_trials,
    trial_encode_argv,
    trial_grid,
    trial_score_argv,
    trial_tasks,
)
from media.quality import vmaf
from tests.media_factory import make_clip

SAME_SCORE_VMAF = 1e-3
"""A trial's VMAF against scoring its encode from the decoded source (VMAF reads luma only,
which the kept reference holds exactly)."""
SIZES = ((640, 360), (320, 180))
CRFS = (22.0, 34.0)


@pytest.fixture(scope="module")
def trialled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trials")
    clip = make_clip(str(folder / "clip.mp4"), duration_s=4, width=640, height=360,
                     audio=False, gop=25)
    src = SourceInfo(source_uri=clip, title_id="clip", container="mov", video_codec="h264",
                     width=640, height=360, frame_rate=Fraction(25), frame_count=100,
                     video_start_s=0.0, pix_fmt="yuv420p")
    task = TrialTask(source=src, sizes=SIZES, crfs=CRFS, span=ChunkSpan(1, 50, 35),
                     trial_index=4, trial_count=12, grid=SegmentGrid(50, Fraction(25)),
                     output_root=str(folder / "out"),
                     settings=EncodeSettings(preset="ultrafast"), vmaf_height=360,
                     vmaf_subsample=5)
    scratch = folder / "scratch"
    scratch.mkdir()
    staged = stage_span(clip, *chunk_window_s(src, task.span), str(scratch / "span.mkv"), clip)
    results, encoding, scoring = run_trials(task, staged, str(scratch))
    return task, staged, str(scratch), results, encoding, scoring


def test_every_size_and_crf_in_grid_order(trialled):
    task, _, _, results, encoding, scoring = trialled
    assert trial_grid(task) == [(640, 360, 22.0), (640, 360, 34.0), (320, 180, 22.0),
                                (320, 180, 34.0)]
    assert [(r.width, r.height, r.crf) for r in results] == trial_grid(task)
    assert all(r.frames == 35 for r in results)
    # a higher CRF gives fewer bits and a lower score, at each size
    for big, small in ((results[0], results[1]), (results[2], results[3])):
        assert small.size_bytes < big.size_bytes and small.vmaf_mean < big.vmaf_mean
    # the quarter-size encodes lose to the full-size ones at the same CRF
    assert results[2].vmaf_mean < results[0].vmaf_mean
    assert encoding.wall_s > 0 and scoring.wall_s > 0
    assert encoding.cpu_s > 0 and scoring.cpu_s > 0
    # the one keyframe is each encode's first frame, and its largest
    for r in results:
        path = os.path.join(trialled[2], f"trial-{r.height}p-crf{r.crf:g}.mp4")
        sizes = packet_sizes(path)
        assert r.keyframe_bytes == sizes[0] == max(sizes) and len(sizes) == r.frames
        assert sum(sizes) < r.size_bytes  # the rest is the container's


def test_the_spread_leaves_out_the_keyframe():
    assert frame_sd([99.0, 90.0, 90.0, 90.0]) == 0.0  # the sample's first, its keyframe
    assert frame_sd([90.0, 92.0, 94.0]) == pytest.approx(1.0)
    assert frame_sd([90.0, 92.0]) == pytest.approx(1.0)  # too few to leave one out
    assert frame_sd([90.0]) == 0.0


@pytest.mark.parametrize(("given", "per_encoder"), [
    (0, "1"),  # left to x264: one thread per encoder of a short sample
    (4, "4"),  # --encoder_threads given: kept
])
def test_the_trial_encoders_run_one_thread_each(trialled, tmp_path, given, per_encoder):
    task, staged, _, _, _, _ = trialled
    config = JobConfig(output_root=str(tmp_path), encode=EncodeSettings(threads=given))
    (made,) = trial_tasks(task.source, config, task.grid, [task.span])
    paths = [f"/x/{i}.mp4" for i in range(len(trial_grid(made)))]
    argv = trial_encode_argv(made, staged.path, paths, "/x/reference.nut")
    threads = [argv[i + 1] for i, a in enumerate(argv) if a == "-threads"]
    assert threads == [per_encoder] * len(paths)
    assert made.settings.preset == config.trial_preset


def test_one_decode_of_the_sample_for_every_encode_and_one_for_every_score(trialled):
    task, staged, _, _, _, _ = trialled
    paths = [f"/x/{i}.mp4" for i in range(4)]
    encode = trial_encode_argv(task, staged.path, paths, "/x/reference.nut")
    assert [encode[i + 1] for i, a in enumerate(encode) if a == "-i"] == [staged.path]
    score = trial_score_argv(task, "/x/reference.nut", paths, [p + ".json" for p in paths])
    inputs = [score[i + 1] for i, a in enumerate(score) if a == "-i"]
    assert sorted(inputs) == sorted(["/x/reference.nut", *paths])  # no second decode
    assert score[score.index("-filter_complex") + 1].count("libvmaf") == 4


def test_each_trial_scores_as_its_encode_scored_alone(trialled):
    task, staged, scratch, results, _, _ = trialled
    for result in results:
        encoded = os.path.join(scratch, f"trial-{result.height}p-crf{result.crf:g}.mp4")
        log = os.path.join(scratch, f"alone-{result.height}-{result.crf:g}.json")
        ffmpeg.run(ffmpeg.ffmpeg_argv(*vmaf.score_chunk_argv(
            encoded, staged.path, task.source, task.span, 640, 360, log, subsample=5)))
        alone = vmaf.log_frame_scores(log)
        assert len(alone) == len(range(0, 35, 5))
        assert result.vmaf_mean == pytest.approx(statistics.fmean(alone), abs=SAME_SCORE_VMAF)
        # the spread of its frame scores after its keyframe, from which the final
        # chunks' step is chosen
        assert result.vmaf_sd == pytest.approx(statistics.pstdev(alone[1:]),
                                               abs=SAME_SCORE_VMAF)
        assert result.vmaf_sd > 0
