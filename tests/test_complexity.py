"""A title's complexity: measured by the inspection's decode, used to choose and weigh
the trial samples and to carry their CRF changes to every segment."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from media.core import ffmpeg
from media.core.types import (
    ChunkSpan,
    EncodeSettings,
    SegmentGrid,
    SourceInfo,
    TrialResult,
    TrialTask,
)
from media.inspect.complexity import (
    analysis_box,
    binned,
    chunk_covering_samples,
    is_uniform,
    median_sample,
    sample_weights,
    segment_complexities,
    span_complexity,
    stratified_samples,
    title_complexity,
)
from media.plan.planning import title_samples, trial_points


def _source(bins=(), bin_frames=0, frames=1500) -> SourceInfo:
    return SourceInfo("s.mp4", "s", "mp4", "h264", 1920, 1080, Fraction(25), frames, 0.0,
                      "yuv420p", complexity=tuple(bins), complexity_bin_frames=bin_frames)


def test_bins_and_spans_count_partly_covered_bins_by_their_share():
    assert binned([1, 2, 3, 4, 5], 2) == (3, 7, 5)
    bins = (100, 300)  # 10 frames a bin: 10 then 30 bytes a frame
    assert span_complexity(bins, 10, 0, 10) == pytest.approx(10)
    assert span_complexity(bins, 10, 5, 10) == pytest.approx(20)  # half of each
    assert span_complexity(bins, 10, 0, 20) == pytest.approx(20)
    assert span_complexity(bins, 10, 15, 5) == pytest.approx(30)
    assert span_complexity((), 10, 0, 10) == 0.0
    # segments of 4 frames over bins of 10: the last segment is short
    assert segment_complexities(bins, 10, 4, 20) == pytest.approx([10, 10, 20, 30, 30])


def test_a_title_is_uniform_when_every_segment_is_near_the_median():
    assert is_uniform([100, 110, 95, 120])
    assert not is_uniform([100, 110, 95, 140])  # 1.27 x the median (110)
    assert not is_uniform([100, 110, 70, 105])  # the median is 1.4 x the easiest
    assert not is_uniform([100, 0, 100])  # a segment never measured


def test_samples_are_chosen_by_complexity_from_the_easiest_to_the_hardest():
    values = [5, 1, 9, 3, 7, 2, 8]
    # the easiest (1), the median (5, at index 0) and the hardest (9)
    assert stratified_samples(values, 3) == [0, 1, 2]
    assert stratified_samples(values, 2) == [1, 2]
    assert stratified_samples(values, 1) == [0]  # the median alone
    assert stratified_samples(values, 20) == list(range(7))
    assert median_sample(values, [1, 2, 4]) == 4  # 1, 7, 9: the 7
    # equal complexity: the position breaks the tie, so the choice is stable
    assert stratified_samples([4, 4, 4, 4, 4], 3) == [0, 2, 4]


def test_each_segment_counts_for_the_sample_nearest_in_log_complexity():
    values = [10, 12, 40, 100, 90, 21]
    weights = sample_weights(values, [0, 2, 3])
    # 10, 12 -> 10; 21 is nearer 40 than 10 in log (21/10 > 40/21)
    assert weights == {0: 2, 2: 2, 3: 2}
    assert sample_weights([10, 30, 30], [0, 2]) == {0: 1, 2: 2}
    assert sum(weights.values()) == len(values)


def test_title_complexity_needs_every_segment_measured():
    assert title_complexity(_source(), 100) is None
    title = title_complexity(_source((2500, 5000) * 30, 25), 100)
    assert title is not None and len(title) == 15
    assert title[0] == pytest.approx((2500 + 5000) * 2 / 100)
    # frames the analysis never saw (a count that runs past it): not usable
    assert title_complexity(_source((2500,) * 10, 25), 100) is None


def test_planning_samples_a_varied_title_by_complexity_and_a_uniform_one_once():
    ramp = (1, 2, 3, 9, 8, 7, 6, 5, 4, 3, 2, 1.5, 1.2, 1.1, 1.05)
    samples, probe = title_samples(15, 0.1, ramp)
    # the easiest (1), the hardest (9), the median (3, the first of the two at 3)
    assert samples == [0, 2, 3] and probe == 2
    flat = (100.0,) * 15
    # a uniform title: one sample, of middle complexity, whatever its length
    assert title_samples(15, 0.1, flat) == ([7], 7)
    assert title_samples(15, 1.0, flat) == ([7], 7)
    assert title_samples(4, 0.1, (100.0,) * 4) == ([2], 2)
    assert title_samples(4, 0.1, (100.0, 100, 100, 200))[0] == [0, 2, 3]
    assert title_samples(15, 0.1) == ([2, 7, 12], 7)  # complexity unknown: by position


def test_every_chunk_gets_a_sample_where_there_are_as_many_samples_as_chunks():
    # the 16 s detailed benchmark title: 4 segments, chunks of 3 (segments 0-2 and 3);
    # by complexity alone its samples were 0 (easiest), 2 (median), 1 (hardest)
    detailed = (13956.3, 19691.5, 18062.8, 14676.4)
    assert title_samples(4, 0.1, detailed) == ([0, 1, 2], 2)
    samples, probe = title_samples(4, 0.1, detailed, chunk_segments=3)
    assert samples == [0, 1, 3] and probe == 3  # the easiest and the hardest kept
    # more chunks than samples: by complexity alone (the 60 s titles: 5 chunks, 3 samples)
    ramp = (1, 2, 3, 9, 8, 7, 6, 5, 4, 3, 2, 1.5, 1.2, 1.1, 1.05)
    assert title_samples(15, 0.1, ramp, chunk_segments=3) == title_samples(15, 0.1, ramp)
    # every chunk already has one: unchanged
    assert title_samples(6, 0.5, (1, 2, 3, 4, 5, 6), chunk_segments=2)[0] == [0, 2, 5]
    # a uniform title keeps its one sample
    assert title_samples(8, 0.5, (100.0,) * 8, chunk_segments=3) == ([4], 4)
    # by complexity: 2 (easiest), 0 (median), 1 (hardest), all in the first two chunks;
    # the last chunk (segments 4, 5) gets its own middle one, 5, in place of 0, the one
    # of two in the first chunk that is neither the easiest nor the hardest
    assert chunk_covering_samples((5, 9, 1, 4, 6, 7), 3, 2) == [1, 2, 5]


def test_trial_points_weigh_each_sample_by_the_segments_it_stands_for():
    src = _source()

    def result(seg, size, vmaf):
        task = TrialTask(src, ((1280, 720),), (24.0,), ChunkSpan(seg, seg * 100, 100), seg,
                         2, SegmentGrid(100, Fraction(25)), "/o", EncodeSettings())
        return TrialResult(task, 1280, 720, 24.0, seg, size, 100, vmaf)

    results = [result(0, 100_000, 90.0), result(1, 300_000, 80.0)]
    [even] = trial_points(results)
    [weighed] = trial_points(results, {0: 1, 1: 3})
    assert even.kbps == pytest.approx(400.0) and even.vmaf == pytest.approx(85.0)
    # (1 x 100 + 3 x 300) kB over 4 x 4 s; VMAF (90 + 3 x 80) / 4
    assert weighed.kbps == pytest.approx(500.0) and weighed.vmaf == pytest.approx(82.5)


def test_the_analysis_picture_fits_a_small_box_and_never_grows_the_source():
    assert analysis_box(1920, 1080) == (480, 270)
    assert analysis_box(321, 181) == (320, 180)
    assert analysis_box(1080, 1920) == (480, 270)  # portrait: fitted in, about 152x270
    assert analysis_box(2, 4000) == (2, 270)


def test_inspection_measures_where_a_title_gets_harder(tmp_path):
    """Real media: 4 s of still colour bars, then 4 s of moving noise. The analysis bytes
    of the noisy seconds are many times the still ones'; the findings are the same with
    and without the analysis, and without it nothing is measured."""
    from media.inspect import inspect_file

    path = str(tmp_path / "still-then-noise.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "smptebars=size=320x180:rate=25:duration=4",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4,noise=alls=20:allf=t+u",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p", path))
    findings, facts = inspect_file(path, analyse=True)
    assert facts.complexity_bin_frames == 25
    bins = facts.complexity_bins
    assert len(bins) == 8 and all(b > 0 for b in bins)
    still, noisy = max(bins[:4]), min(bins[4:])
    assert noisy > 5 * still, bins
    plain_findings, plain = inspect_file(path)
    assert plain.complexity_bins == () and plain.complexity_bin_frames == 0
    assert [f.message for f in plain_findings] == [f.message for f in findings]
    assert dataclasses.replace(facts, complexity_bins=(), complexity_bin_frames=0) == plain


def test_a_portrait_source_is_analysed_in_the_box(tmp_path):
    """Real media, a 180x322 portrait clip: the analysis fits it into the box (its
    seconds measured), and a still picture is uniform."""
    from media.inspect import inspect_file

    path = str(tmp_path / "portrait.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "smptebars=size=180x322:rate=25:duration=3", "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p", path))
    _, facts = inspect_file(path, analyse=True)
    assert len(facts.complexity_bins) == 3 and is_uniform(facts.complexity_bins)


def test_a_failed_analysis_costs_the_source_nothing(tmp_path, monkeypatch, caplog):
    """A fault the analysis encode cannot be made to show on real media (an option x264
    refuses): the decode runs again without it; the findings are the same and the facts
    carry no complexity, so planning samples by position."""
    from media.inspect import complexity, inspect_file

    path = str(tmp_path / "bars.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25:duration=3", "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p", path))
    plain_findings, plain = inspect_file(path)
    monkeypatch.setattr(complexity, "analysis_codec_args",
                        lambda bin_frames, stream=0: [f"-c:{stream}", "libx264",
                                                      f"-crf:{stream}", "not-a-number"])
    findings, facts = inspect_file(path, analyse=True)
    assert facts == plain
    assert [f.message for f in findings] == [f.message for f in plain_findings]
    assert "without interlace detection and the complexity analysis" in caplog.text
