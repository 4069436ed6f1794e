"""Inspection over spans: each span read by range and checked alone, the span results
merged into one verdict, which must be the whole-file verdict (`inspect_file`).

Clips are a few seconds of 320x240 with a keyframe every second (`_make` of
tests/test_inspection.py); spans are forced to 1.5 s, so every clip has 3 or 4 spans
and every stretch, gap and damaged frame below lies across or beside a span join.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
import os
import pickle
from fractions import Fraction
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from media.core.types import IngestEvent
from media.inspect import FATAL, WARNING, inspect_file, summarize
from media.inspect.demux import head_summary
from media.inspect.frame_timing import _timing_facts, _timing_findings
from media.inspect.spans import (
    inspect_by_spans,
    inspect_span,
    merged_summary,
    span_plan,
)
from media.inspect.timestamps import Timestamps
from tests.test_inspection import _cut, _damage, _make
from tests.test_real_sources import (
    MP4_25,
    TIMING_TABLE,
    _clip,
    concatenated,
    hole,
    looped,
    open_gop,
)
from tests.test_real_sources import _summary as _table_summary
from transforms.dead_letter import DEAD_LETTER
from transforms.inspect import Inspect, inspect_video

SPAN_S = 1.5
"""Forced span length: 25 fps clips with a keyframe each second."""
FRAME_S = 0.04
"""One frame at 25 fps: how far a stretch's times may move."""
COMPLEXITY_TOLERANCE = 0.08
"""Each complexity bin within 8 % of the whole decode's: the keyframes are on the same
grid, but the analysis encode of each span starts afresh, and its first bin costs up to
6 % more than the same bin mid-stream."""


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    made: dict[str, str] = {}

    def clip(name: str) -> str:
        if name not in made:
            made[name] = _MAKERS[name](str(root / name))
        return made[name]

    return clip


def _gaps(path: str) -> str:
    # Timestamps jump 0.2 s after frame 49 (the last of the second keyframe's group:
    # a span join) and again 0.2 s after frame 59 (inside a span).
    return _make(path + ".mp4", seconds=5,
                 vf="setpts='PTS+(gte(N,50)+gte(N,60))*0.2/TB'",
                 video_opts=("-fps_mode", "passthrough"))


_MAKERS = {
    "clean": lambda p: _make(p + ".mp4", seconds=5),
    # Black from the start to 2.5 s: across the first span join (at the 1 s keyframe).
    "black_intro": lambda p: _make(
        p + ".mp4", seconds=5, vf="drawbox=enable='lt(t,2.5)':color=black:t=fill"),
    "frozen": lambda p: _make(
        p + ".mp4", seconds=5, vf="loop=loop=75:size=1:start=60,trim=duration=5"),
    "silence": lambda p: _make(
        p + ".mp4", seconds=5, af="volume=enable='between(t,1,3.5)':volume=0"),
    "gaps": _gaps,
    "long": lambda p: _make(p + ".mp4", seconds=40),
}


def _damaged_tail(media, tmp_path) -> str:
    return _damage(media("clean"), str(tmp_path / "damaged_tail.mp4"), [110, 115, 120])


def _both(path: str, analyse: bool = False, span_s: float = SPAN_S):
    whole = inspect_file(path, analyse=analyse)
    spans = inspect_by_spans(path, span_s=span_s, analyse=analyse)
    return whole, spans


def _same_verdict(whole, spans) -> None:
    """The same findings (codes, severities, order; times within a frame) and facts."""
    (wf, wfacts), (sf, sfacts) = whole, spans
    assert [(f.severity, f.code) for f in sf] == [(f.severity, f.code) for f in wf]
    for a, b in zip(wf, sf, strict=True):
        for x, y in ((a.start_s, b.start_s), (a.end_s, b.end_s)):
            assert (x is None) == (y is None)
            if x is not None:
                assert y == pytest.approx(x, abs=FRAME_S + 1e-6), (a, b)
    plain = {"complexity_bins": (), "complexity_bin_frames": 0}
    assert dataclasses.replace(sfacts, **plain) == dataclasses.replace(wfacts, **plain)


def test_spans_are_planned_on_half_frames_and_a_short_clip_is_one(media):
    head = head_summary(media("clean"))
    plan = span_plan(head, SPAN_S)
    assert [s.index for s in plan.spans] == [0, 1, 2, 3]
    assert plan.spans[0].start_s is None and plan.spans[-1].end_s is None
    bounds = [s.end_s for s in plan.spans[:-1]]
    assert bounds == pytest.approx([1.5, 2.98, 4.46])  # 37.5, 74.5 and 111.5 frames
    assert len(span_plan(head).spans) == 1  # 5 s at the default span length


def test_a_clean_clip_has_the_whole_file_verdict_and_every_frame(media):
    path = media("clean")
    whole, spans = _both(path, analyse=True)
    _same_verdict(whole, spans)
    head = head_summary(path)
    plan = span_plan(head, SPAN_S)
    results = [inspect_span(path, span, head, plan) for span in plan.spans]
    assert sum(r.frames for r in results) == 125
    merged = merged_summary(head, results)
    assert merged.video_pts == () and merged.video_frames == 125
    assert merged.timestamps == Timestamps.of(summarize(path).video_pts, bounded=False)
    assert [r.timestamps.count for r in results] == [25, 25, 50, 25]  # whole groups of pictures


def test_complexity_is_measured_on_the_whole_decodes_bins(media):
    (_, whole), (_, spans) = _both(media("clean"), analyse=True)
    assert spans.complexity_bin_frames == whole.complexity_bin_frames == 25
    assert len(spans.complexity_bins) == len(whole.complexity_bins) == 5
    for a, b in zip(whole.complexity_bins, spans.complexity_bins, strict=True):
        assert b == pytest.approx(a, rel=COMPLEXITY_TOLERANCE)


def test_a_black_intro_across_a_span_join_is_one_stretch(media):
    whole, spans = _both(media("black_intro"))
    _same_verdict(whole, spans)
    black = [f for f in spans[0] if f.code == "black"]
    assert len(black) == 1 and black[0].severity == WARNING
    assert black[0].start_s == pytest.approx(0.0, abs=FRAME_S)
    assert black[0].end_s == pytest.approx(2.5, abs=FRAME_S)


def test_a_frozen_stretch_to_the_end_is_found_over_spans(media):
    """2 s spans: the held frame crosses the join at 3 s. (freezedetect compares each
    frame with the first of its freeze, which each span starts afresh: a join inside a
    nearly still stretch may move where a freeze is said to start.)"""
    whole, spans = _both(media("frozen"), span_s=2.0)
    _same_verdict(whole, spans)
    frozen = [f for f in spans[0] if f.code == "frozen"]
    assert len(frozen) == 1 and frozen[0].end_s == pytest.approx(5.0, abs=FRAME_S)


def test_silence_across_span_joins_is_one_stretch(media):
    whole, spans = _both(media("silence"))
    _same_verdict(whole, spans)
    silence = [f for f in spans[0] if f.code == "silence"]
    assert len(silence) == 1
    assert (silence[0].start_s, silence[0].end_s) == pytest.approx((1.0, 3.5), abs=FRAME_S)


def test_timestamp_gaps_at_a_span_join_and_inside_a_span(media):
    path = media("gaps")
    whole, spans = _both(path)
    _same_verdict(whole, spans)
    gaps = [f for f in spans[0] if f.code == "timestamp_gaps"]
    assert len(gaps) == 1 and "2 gap(s)" in gaps[0].message
    assert gaps[0].message == next(f.message for f in whole[0] if f.code == "timestamp_gaps")
    assert spans[1].frame_rate == 25 and spans[1].video_end_s == pytest.approx(5.4)


def test_a_damaged_group_before_a_join_is_counted_once(media, tmp_path):
    """Frames 80 and 90 damaged: the group from the 3 s keyframe is the third span's own
    and the fourth span's pre-roll, whose errors that span does not count."""
    path = _damage(media("clean"), str(tmp_path / "damaged_join.mp4"), [80, 90])
    whole, spans = _both(path)
    _same_verdict(whole, spans)
    (errors,) = [f for f in spans[0] if f.code == "decode_errors"]
    assert errors.message == next(f.message for f in whole[0] if f.code == "decode_errors")


def test_a_damaged_tail_is_a_warning_with_the_whole_files_error_count(media, tmp_path):
    whole, spans = _both(_damaged_tail(media, tmp_path))
    _same_verdict(whole, spans)
    errors = next(f for f in spans[0] if f.code == "decode_errors")
    assert errors.severity == WARNING
    assert errors.message == next(f.message for f in whole[0] if f.code == "decode_errors")


def test_a_truncated_file_is_refused_as_a_whole_file_is(media, tmp_path):
    path = _cut(media("clean"), str(tmp_path / "cut.mp4"))
    whole, spans = _both(path)
    assert [(f.severity, f.code) for f in spans[0]] == [(FATAL, "truncated")]
    assert [(f.severity, f.code) for f in whole[0]] == [(FATAL, "truncated")]


def test_damage_throughout_and_non_media_are_refused(media, tmp_path):
    wrecked = _damage(media("clean"), str(tmp_path / "wrecked.mp4"), None)
    whole, spans = _both(wrecked)
    _same_verdict(whole, spans)
    assert spans[0][0].severity == FATAL and spans[0][0].code == "decode_errors"
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"this is not a video\n" * 100)
    findings, _ = inspect_by_spans(str(text), span_s=SPAN_S)
    assert [(f.severity, f.code) for f in findings] == [(FATAL, "unreadable")]


class _Counting(io.RawIOBase):
    """A seekable file object that counts the bytes read through it."""

    def __init__(self, path: str):
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this object
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def test_a_middle_span_reads_only_its_byte_range(media):
    """40 s in 2 s spans: the header step and a middle span each read a small part of
    the file through the handle (the header: the index at the end and the first frame;
    the span: the header again, then from a keyframe a little before the span to the
    keyframe after it, 5 to 6 s of 40), and the merged verdict over handles is the whole
    file's."""
    path = media("long")
    size = os.path.getsize(path)
    with _Counting(path) as handle:
        head = head_summary(handle, path)
        header_bytes = handle.bytes_read
    plan = span_plan(head, 2.0)
    assert len(plan.spans) == 20
    with _Counting(path) as handle:
        result = inspect_span(handle, plan.spans[10], head, plan)
        span_bytes = handle.bytes_read
    assert result.frames == result.timestamps.count == 50
    assert 0 < result.staged_bytes < span_bytes
    assert header_bytes < 0.1 * size, (header_bytes, size)
    assert span_bytes < 0.25 * size, (span_bytes, size)
    with _Counting(path) as handle:
        findings, facts = inspect_by_spans(handle, span_s=8.0, source_uri=path)
    whole = inspect_file(path)
    _same_verdict(whole, (findings, facts))


def test_the_inspect_stage_runs_spans_in_parallel_and_gathers_one_verdict(media, tmp_path):
    """Beam: the black intro's spans spread, gathered into one SourceInfo per title
    with the verdict `inspect_video` gives in one process; a wrecked source is a dead
    letter at inspection."""
    black = media("black_intro")
    wrecked = _damage(media("clean"), str(tmp_path / "wrecked.mp4"), None)
    alone = inspect_video(black, "black", analyse=True, span_s=SPAN_S)
    assert [f.code for f in alone.findings] == [f.code for f in inspect_file(black)[0]]
    expected = ("black", alone.frame_count, tuple(f.code for f in alone.findings),
                len(alone.complexity))
    assert alone.frame_count == 125 and len(alone.complexity) == 5
    with BeamTestPipeline() as pipeline:
        out = (pipeline
               | beam.Create([IngestEvent(black, "black"), IngestEvent(wrecked, "wrecked")])
               | Inspect(span_s=SPAN_S, analyse=True))
        titles = out["main"] | "Titles" >> beam.Map(
            lambda info: (info.title_id, info.frame_count,
                          tuple(f.code for f in info.findings), len(info.complexity)))
        letters = out[DEAD_LETTER] | "Letters" >> beam.Map(lambda d: (d.title_id, d.stage))
        assert_that(titles, equal_to([expected]), label="OneVerdict")
        assert_that(letters, equal_to([("wrecked", "inspect")]), label="Refused")


# --- slim span results: nothing gathered grows with the title ------------------------------

SPAN_RESULT_BYTES = 3000
"""A span's result, pickled, whatever its length: its timestamps are a summary
(`media.inspect.timestamps`), a few hundred bytes for a steady stream."""
PART_FRAMES = 30
"""Frames per part where tables of timestamps are cut into spans' parts."""


@pytest.fixture(scope="module")
def long_spans(media):
    """The 40 s clip in 4 s spans, each read and decoded alone."""
    path = media("long")
    head = head_summary(path)
    plan = span_plan(head, 4.0)
    return path, head, [inspect_span(path, span, head, plan) for span in plan.spans]


def test_a_span_result_does_not_grow_with_the_span(media, long_spans):
    """A 4 s span and a 21 s span of the same clip pickle to about the same size."""
    path, head, results = long_spans
    plan = span_plan(head, 20.0)
    long_one = inspect_span(path, plan.spans[1], head, plan)
    short_one = results[1]
    assert short_one.timestamps.count == 100 and long_one.timestamps.count == 525
    sizes = [len(pickle.dumps(r)) for r in (short_one, long_one)]
    assert max(sizes) < SPAN_RESULT_BYTES, sizes
    assert abs(sizes[1] - sizes[0]) < 100, sizes


def test_the_gathered_spans_are_one_small_record_each(long_spans):
    """10 spans: 10 records of the same small size, merged into the whole file's
    timestamps' summary (itself small) and frame count, with no list of timestamps."""
    path, head, results = long_spans
    sizes = [len(pickle.dumps(r)) for r in results]
    assert len(sizes) == 10 and max(sizes) < SPAN_RESULT_BYTES, sizes
    assert max(sizes) < 1.5 * min(sizes), sizes
    merged = merged_summary(head, results)
    assert merged.video_pts == () and merged.video_frames == 1000
    assert merged.timestamps == Timestamps.of(summarize(path).video_pts, bounded=False)
    assert len(pickle.dumps(merged.timestamps)) < SPAN_RESULT_BYTES


def _facts(pts, time_base, parts=None):
    """The timing facts of `pts`, whole, or from their summaries cut every `parts` frames
    and joined, as the spans' are."""
    summary = _table_summary(pts, time_base)
    if parts:
        stamps = Timestamps.joined([Timestamps.of(pts[i:i + parts])
                                    for i in range(0, len(pts), parts)])
        summary = dataclasses.replace(summary, video_pts=(), video_timestamps=stamps)
    return summary, _timing_facts(summary, None)


@pytest.mark.parametrize("name, pts, time_base", [row[:3] for row in TIMING_TABLE],
                         ids=[row[0] for row in TIMING_TABLE])
def test_timing_from_joined_summaries_is_the_whole_lists(name, pts, time_base):
    """The timing tables (steady, looped, 25 then 12.5, 23.976 with jitter, 29.97 in ms)
    cut into parts: the facts and findings of the joined summaries are the whole list's
    (but for the rate fitted to a variable-rate stream's runs, which is not used)."""
    whole_summary, whole = _facts(pts, time_base)
    parts_summary, parts = _facts(pts, time_base, PART_FRAMES)
    if whole.vfr:
        parts = dataclasses.replace(parts, nominal_rate=whole.nominal_rate)
    assert parts == whole
    assert _timing_findings(parts_summary, parts) == _timing_findings(whole_summary, whole)


def test_a_jittered_title_in_minutes_is_judged_as_the_whole_list():
    """10 minutes of 23.976 fps with 8 ms of jitter in 1/90000 (hundreds of distinct
    intervals: each minute counts them in bins) in 1-minute parts: each part is a few
    hundred bytes, and the verdict is the whole list's (the count of intervals off the
    typical one within 1 %)."""
    frames = 24000 * 600 // 1001
    pts = [round(k * 3753.75 + 720 * math.sin(k * 1.7)) for k in range(frames)]
    minute = 1438
    assert all(len(pickle.dumps(Timestamps.of(pts[i:i + minute]))) < SPAN_RESULT_BYTES
               for i in range(0, frames, minute))
    _, whole = _facts(pts, Fraction(1, 90000))
    _, parts = _facts(pts, Fraction(1, 90000), minute)
    assert not parts.vfr and parts.nominal_rate == whole.nominal_rate == Fraction(24000, 1001)
    assert parts.jitter_s == pytest.approx(whole.jitter_s, rel=1e-9) and parts.jitter_s > 0.007
    assert parts.irregular == pytest.approx(whole.irregular, rel=0.01)
    assert dataclasses.replace(parts, irregular=whole.irregular) == whole


def test_many_gaps_in_a_span_are_counted_and_the_longest_placed():
    """A steady 25 fps stream with 1 interval in 10 off a step (doubled frames, gaps of
    one and two frames): each minute's summary keeps `MAX_SEGMENTS` segments, and the
    gaps finding counts every gap, of the whole list's lengths and total."""
    step = [512] * 27 + [0, 1024, 1536]
    deltas = [step[(k * 7) % len(step)] for k in range(6000)]
    pts = [0, *itertools.accumulate(deltas)]
    summary, whole = _facts(pts, MP4_25)
    parts_summary, parts = _facts(pts, MP4_25, 1500)
    assert not parts.vfr and parts.nominal_rate == whole.nominal_rate == 25
    assert len(parts.gaps) < len(whole.gaps) == len(parts.gaps) + sum(
        n for _, n in parts.unplaced)
    (w,) = [f for f in _timing_findings(summary, whole) if f.code == "timestamp_gaps"]
    (p,) = [f for f in _timing_findings(parts_summary, parts) if f.code == "timestamp_gaps"]
    assert p.message.split(", at ")[0] == w.message.split(", at ")[0]


# --- sources as users hold them, at span joins ---------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The makers of tests/test_real_sources.py, each source made once."""
    folder = tmp_path_factory.mktemp("real-spans")
    made: dict[str, str] = {}

    def source(maker) -> str:
        if maker.__name__ not in made:
            made[maker.__name__] = str(maker(folder))
        return made[maker.__name__]

    return source


def _same_messages(whole, spans) -> None:
    """The same verdict, word for word but for times (decode errors and missing frames
    counted alike, idet's counts over the same first frames)."""
    _same_verdict(whole, spans)
    timeless = {"frozen", "black", "silence"}
    assert [f.message for f in spans[0] if f.code not in timeless] == [
        f.message for f in whole[0] if f.code not in timeless]


@pytest.mark.parametrize("maker", [open_gop, looped, concatenated, hole],
                         ids=lambda m: m.__name__)
@pytest.mark.parametrize("span_s", [1.5, 2.0])
def test_real_sources_have_the_whole_file_verdict_at_short_spans(real, maker, span_s):
    """An open-GOP MPEG-TS (each span's first group has leading pictures that refer to
    the group before), a stream-copy loop and two stream-copy joins (timestamp gaps, the
    frame before each held over it): no spurious decode error or missing frame, idet
    over the title's first frames, and a freeze over a gap at a join found."""
    whole, spans = _both(real(maker), span_s=span_s)
    _same_messages(whole, spans)


def test_the_open_gop_spans_decode_every_frame_once(real):
    """The open-GOP source's spans: each begins at a group's leading pictures (shown
    before its keyframe), decodes them from its pre-roll without an error, and the
    frames are the whole decode's, each counted once."""
    path = real(open_gop)
    head = head_summary(path)
    plan = span_plan(head, 1.5)
    results = [inspect_span(path, span, head, plan) for span in plan.spans]
    assert len(results) == 3
    assert [r.error_count for r in results] == [0, 0, 0]
    assert [r.frames for r in results] == [r.timestamps.count for r in results]
    assert sum(r.frames for r in results) == summarize(path).video_frames == 100
    # Bounds sit a quarter frame before a span's first frame; a keyframe every 20 frames.
    firsts = [round((r.span.start_s + 0.01 - head.video_start_s) / 0.04) for r in results[1:]]
    assert 19 in [n % 20 for n in firsts], firsts  # a leading picture starts a span


def test_a_freeze_over_a_gap_at_a_join_is_one_stretch(real):
    """The concatenated source holds its frame at 1.98 s over a 2.5 s gap; the span
    after the gap finds the freeze from its pre-roll, with its start."""
    whole, spans = _both(real(concatenated), span_s=1.5)
    (frozen,) = [f for f in spans[0] if f.code == "frozen"]
    assert (frozen.start_s, frozen.end_s) == pytest.approx((1.98, 4.52), abs=FRAME_S)
    assert [f.code for f in whole[0]].count("frozen") == 1


LONG_OPEN_GOP_S = 180.0
"""A broadcast-like open-GOP MPEG-TS long enough for three spans at the default length."""


def test_a_long_open_gop_ts_has_the_whole_file_verdict_at_the_default_spans(
        tmp_path_factory):
    """3 minutes of open GOPs (a keyframe every 0.8 s, no IDR after the first) in
    MPEG-TS at the default 60 s spans: no error nor missing frame at the joins."""
    folder = Path(tmp_path_factory.mktemp("long-open-gop"))
    path = str(_clip(folder / "open_gop_long.ts", LONG_OPEN_GOP_S, size="160x90",
                     x264="open-gop=1:keyint=20:min-keyint=20:bframes=3:scenecut=0",
                     extra=("-preset", "veryfast")))
    head = head_summary(path)
    assert len(span_plan(head).spans) == 3
    whole, spans = _both(path, span_s=60.0)
    _same_messages(whole, spans)
    assert not [f for f in spans[0] if f.code in ("decode_errors", "missing_frames")]
    assert spans[1].video_end_s == pytest.approx(whole[1].video_end_s)
