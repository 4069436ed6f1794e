"""Tests for media.plan.chunking (the segment grid and chunk plan) and media.plan.ladder.

Known answers worked by hand: S = round(segment_s × rate), chunks of whole segments,
ladder widths = even(source aspect × rung height).
"""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import pytest

from media.core.errors import ConfigurationError
from media.core.types import ChunkSpan, SourceInfo
from media.plan.chunking import (
    chunk_segment_count,
    grid_chunks,
    grid_summary,
    plan_chunks,
    segment_count,
    segment_frames,
    segment_grid,
    shot_aligned_starts,
    shot_chunk_starts,
    title_cuts_s,
)
from media.plan.ladder import FIXED_LADDER, even, fixed_ladder, scaled_width, vmaf_height

NTSC = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)


def source(width: int, height: int, rate: Fraction = Fraction(25)) -> SourceInfo:
    return SourceInfo(source_uri="gs://b/in/t.mp4", title_id="t", container="mov",
                      video_codec="h264", width=width, height=height, frame_rate=rate,
                      frame_count=250, video_start_s=0.0, pix_fmt="yuv420p")


# --- the segment grid -----------------------------------------------------------------


@pytest.mark.parametrize("rate, segment_s, expected", [
    (Fraction(25), 4.0, 100),
    (NTSC, 4.0, 120),    # 119.88 frames → 120 (4.004 s)
    (FILM, 4.0, 96),     # 95.904 → 96 (4.004 s)
    (Fraction(50), 4.0, 200),
    (Fraction(24), 6.0, 144),
    (Fraction(60000, 1001), 2.0, 120),  # 119.88 → 120
    (Fraction(25), 0.5, 12),  # 12.5: Python's round() takes half to even
    (Fraction(1), 0.1, 1),  # never fewer than one frame
])
def test_segment_frames(rate, segment_s, expected):
    assert segment_frames(rate, segment_s) == expected


@pytest.mark.parametrize("segment_s", [0, 0.0, -4.0])
def test_segment_frames_rejects_non_positive_durations(segment_s):
    with pytest.raises(ConfigurationError):
        segment_frames(Fraction(25), segment_s)


@pytest.mark.parametrize("rate, segment_s, chunk_segments, frames, seconds", [
    (Fraction(25), 4.0, 3, 100, Fraction(4)),
    (NTSC, 4.0, 3, 120, Fraction(1001, 250)),  # 4.004 s exactly, not a float near it
    (FILM, 2.0, 6, 48, Fraction(1001, 500)),
])
def test_the_grid_is_exact_and_carries_the_video_timescale(rate, segment_s, chunk_segments,
                                                           frames, seconds):
    grid = segment_grid(rate, segment_s, chunk_segments)
    assert (grid.segment_frames, grid.segment_s, grid.chunk_frames) == (
        frames, seconds, frames * chunk_segments)
    assert grid.timescale == 90000  # exact for every rate here: whole ticks per frame
    assert 90000 * grid.segment_s == int(90000 * grid.segment_s)
    assert grid_chunks(1000, grid) == plan_chunks(1000, frames, chunk_segments)


def test_a_grid_needs_a_whole_chunk():
    with pytest.raises(ConfigurationError):
        segment_grid(Fraction(25), 4.0, 0)


@pytest.mark.parametrize("frames, per_segment, expected", [
    (300, 100, 3), (301, 100, 4), (1, 100, 1), (100, 100, 1), (99, 100, 1),
])
def test_segment_count(frames, per_segment, expected):
    assert segment_count(frames, per_segment) == expected


# --- the chunk plan -------------------------------------------------------------------


PLAN_TABLE = [
    # exact multiple: 600 frames = 3 chunks of 2 × 100
    ((600, 100, 2), [(0, 0, 200), (1, 200, 200), (2, 400, 200)]),
    # remainder: the last chunk is shorter (and ends mid-segment)
    ((250, 100, 2), [(0, 0, 200), (1, 200, 50)]),
    ((450, 100, 2), [(0, 0, 200), (1, 200, 200), (2, 400, 50)]),
    # a one-frame title
    ((1, 100, 3), [(0, 0, 1)]),
    # one chunk covers the whole title
    ((300, 100, 3), [(0, 0, 300)]),
    ((299, 100, 10), [(0, 0, 299)]),
    # one segment per chunk, 29.97 fps grid
    ((361, 120, 1), [(0, 0, 120), (1, 120, 120), (2, 240, 120), (3, 360, 1)]),
]


@pytest.mark.parametrize("args, expected", PLAN_TABLE)
def test_plan_chunks_known_answers(args, expected):
    frame_count, per_segment, per_chunk = args
    chunks = plan_chunks(*args)
    assert chunks == [ChunkSpan(*row) for row in expected]
    # The chunks tile the title: contiguous, no gap, no overlap, every frame once.
    assert chunks[0].start_frame == 0
    assert all(a.end_frame == b.start_frame for a, b in itertools.pairwise(chunks))
    assert chunks[-1].end_frame == frame_count
    # Every chunk but the last is whole segments, so each chunk starts on the grid.
    assert all(c.start_frame % per_segment == 0 for c in chunks)
    assert all(c.frame_count == per_segment * per_chunk for c in chunks[:-1])


@pytest.mark.parametrize("chunk, expected", [
    (ChunkSpan(0, 0, 200), 2), (ChunkSpan(1, 200, 50), 1), (ChunkSpan(0, 0, 201), 3),
])
def test_chunk_segment_count(chunk, expected):
    assert chunk_segment_count(chunk, 100) == expected


@pytest.mark.parametrize("args, error", [
    ((0, 100, 2), ValueError),
    ((-5, 100, 2), ValueError),
    ((100, 0, 2), ConfigurationError),
    ((100, -1, 2), ConfigurationError),
    ((100, 100, 0), ConfigurationError),
])
def test_plan_chunks_rejects_invalid_arguments(args, error):
    with pytest.raises(error):
        plan_chunks(*args)


# --- the fixed ladder -----------------------------------------------------------------


def test_fixed_ladder_1080p_source_gets_all_five_rungs():
    ladder = fixed_ladder(source(1920, 1080))
    rows = [(r.rendition_id, r.width, r.height, r.maxrate_kbps, r.bufsize_kbit) for r in ladder]
    assert rows == [
        ("1080p-5000k", 1920, 1080, 5000, 10000),
        ("720p-3000k", 1280, 720, 3000, 6000),
        ("540p-1600k", 960, 540, 1600, 3200),
        ("360p-700k", 640, 360, 700, 1400),
        ("234p-250k", 416, 234, 250, 500),  # 16/9 × 234 = 416 exactly
    ]
    assert all(r.crf == 23.0 for r in ladder)


def test_fixed_ladder_skips_rungs_taller_than_the_source():
    ladder = fixed_ladder(source(960, 540), crf=20)
    assert [(r.rendition_id, r.width, r.height) for r in ladder] == [
        ("540p-1600k", 960, 540), ("360p-700k", 640, 360), ("234p-250k", 416, 234),
    ]
    assert {r.crf for r in ladder} == {20}


def test_fixed_ladder_scope_source_keeps_its_aspect_with_even_widths():
    # 1280x536 (2.39:1): only 360 and 234 fit. 1280/536 × 360 = 859.70 → 860;
    # 1280/536 × 234 = 558.81 → 558 (nearest even).
    ladder = fixed_ladder(source(1280, 536))
    assert [(r.rendition_id, r.width, r.height) for r in ladder] == [
        ("360p-700k", 860, 360), ("234p-250k", 558, 234),
    ]
    aspect = Fraction(1280, 536)
    for r in ladder:
        assert r.width % 2 == 0 and r.height % 2 == 0
        # Even rounding moves the width by at most one pixel: aspect within 1/height.
        assert abs(Fraction(r.width, r.height) - aspect) <= Fraction(1, r.height)


def test_source_shorter_than_the_smallest_rung_gets_a_second_rung_really_under_it():
    ladder = fixed_ladder(source(356, 200))
    # Two bit rates at least (HLS authoring spec 9.9), the second a real step under the
    # first where the cap does not bind (the ladder invariant): half the height and the
    # cap, 6 CRF steps up.
    assert [(r.rendition_id, r.width, r.height, r.maxrate_kbps, r.crf) for r in ladder] == [
        ("200p-250k", 356, 200, 250, 23.0), ("100p-125k", 178, 100, 125, 29.0),
    ]


def test_a_source_with_room_for_one_rung_gets_a_second_rate():
    assert [(r.rendition_id, r.crf) for r in fixed_ladder(source(426, 240), crf=40)] == [
        ("234p-250k", 40.0), ("116p-125k", 46.0)]


@pytest.mark.parametrize("height", [203, 207, 231])
def test_odd_height_source_is_never_upscaled(height):
    ladder = fixed_ladder(source(360, height))
    assert len(ladder) == 2
    assert all(r.height <= height and r.height % 2 == 0 for r in ladder)


@pytest.mark.parametrize("height, expected", [(201, 200), (205, 204), (233, 232)])
def test_odd_height_sources_that_round_down(height, expected):
    assert [r.height for r in fixed_ladder(source(360, height))] == [expected, expected // 2]


@pytest.mark.parametrize("max_renditions, expected", [
    (0, ["1080p-5000k", "720p-3000k", "540p-1600k", "360p-700k", "234p-250k"]),
    (1, ["1080p-5000k"]),
    (2, ["1080p-5000k", "720p-3000k"]),
    (5, ["1080p-5000k", "720p-3000k", "540p-1600k", "360p-700k", "234p-250k"]),
    (9, ["1080p-5000k", "720p-3000k", "540p-1600k", "360p-700k", "234p-250k"]),
])
def test_max_renditions_keeps_the_tallest(max_renditions, expected):
    ladder = fixed_ladder(source(1920, 1080), max_renditions=max_renditions)
    assert [r.rendition_id for r in ladder] == expected


def test_max_renditions_applies_after_skipping_tall_rungs():
    ladder = fixed_ladder(source(960, 540), max_renditions=2)
    assert [r.rendition_id for r in ladder] == ["540p-1600k", "360p-700k"]


def test_rendition_ids_are_unique_and_heights_descend():
    ladder = fixed_ladder(source(3840, 2160))
    assert len({r.rendition_id for r in ladder}) == len(ladder) == len(FIXED_LADDER)
    heights = [r.height for r in ladder]
    assert heights == sorted(heights, reverse=True)


@pytest.mark.parametrize("value, expected", [
    (1.0, 2), (0.0, 2), (3.0, 4), (4.9, 4), (5.1, 6), (859.70, 860), (558.81, 558),
])
def test_even(value, expected):
    assert even(value) == expected


@pytest.mark.parametrize("width, height, rung, expected", [
    (1920, 1080, 720, 1280), (1440, 1080, 720, 960), (720, 576, 360, 450),
    (1080, 1920, 1080, 608),  # portrait: 607.5 → 608
])
def test_scaled_width(width, height, rung, expected):
    assert scaled_width(source(width, height), rung) == expected


@pytest.mark.parametrize("height, expected", [
    (2160, 1080), (1080, 1080), (1081, 1080), (720, 720), (536, 536), (180, 180), (201, 200),
])
def test_vmaf_height(height, expected):
    assert vmaf_height(source(height * 16 // 9, height)) == expected


# --- a grid cut at shot changes (`--segment_grid shots`) ---------------------------------


def _source_at(video_start_s: float, container_start_s: float) -> SourceInfo:
    return dataclasses.replace(source(64, 36), video_start_s=video_start_s,
                               container_start_s=container_start_s)


def _lengths(starts: list[int], frame_count: int) -> list[int]:
    bounds = [*starts, frame_count]
    return [b - a for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("seed", range(40))
def test_a_shot_grid_keeps_every_segment_between_the_floor_and_a_whole_segment(seed):
    import random

    rng = random.Random(seed)
    frame_count, segment, floor = rng.randint(1, 2000), rng.randint(10, 120), 0
    floor = rng.randint(1, segment)
    cuts = rng.sample(range(1, frame_count + 1), min(frame_count, rng.randint(0, 40)))
    starts = shot_aligned_starts(frame_count, segment, cuts, floor)
    lengths = _lengths(starts, frame_count)
    assert starts[0] == 0 and all(n >= 1 for n in lengths)
    assert all(n <= segment for n in lengths)
    assert all(n >= floor for n in lengths[:-1])
    if 2 * floor <= segment:  # the last too, where the title has that many frames
        assert lengths[-1] >= min(floor, frame_count)
    for a, b in itertools.pairwise(starts):  # a cut, halfway to one or to the end, or
        assert (b in cuts or b == a + segment  # a whole segment
                or any(b == a + (c - a) // 2 for c in [*cuts, frame_count]))


@pytest.mark.parametrize("seed", range(40))
def test_with_a_floor_of_half_a_segment_every_cut_far_enough_from_the_last_is_a_boundary(
        seed):
    import random

    rng = random.Random(seed)
    segment = rng.randint(10, 120)
    floor = -(-segment // 2)
    cuts, at = [], 0
    for _ in range(rng.randint(1, 20)):
        at += rng.randint(floor + 1, 4 * segment)
        cuts.append(at)
    frame_count = at + rng.randint(floor, 3 * segment)
    starts = shot_aligned_starts(frame_count, segment, cuts, floor)
    assert set(cuts) <= set(starts)
    assert max(_lengths(starts, frame_count)) <= segment


def test_no_cut_gives_the_even_grid_and_a_cut_near_the_end_none():
    assert shot_aligned_starts(250, 100, [], 50) == [0, 100, 200]
    assert shot_aligned_starts(300, 100, [270], 50) == [0, 100, 200]  # 30 frames left
    assert shot_aligned_starts(300, 100, [240], 50) == [0, 100, 170, 240]
    with pytest.raises(ConfigurationError):
        shot_aligned_starts(300, 100, [], 101)


def test_the_title_grid_is_even_without_cuts_and_cut_at_them_with():
    even = segment_grid(Fraction(25), 2.0, 1, 225)
    assert even.starts == () and not even.shot_aligned
    grid = segment_grid(Fraction(25), 2.0, 1, 225, cuts_s=[1.6, 4.0, 5.0, 7.2])
    assert grid.starts == (0, 40, 70, 100, 125, 152, 180)
    assert grid.segment_bounds(225)[-1] == 225
    assert grid.segment_starts_s(225)[1] == Fraction(8, 5)
    # cuts on the even grid leave it even
    assert segment_grid(Fraction(25), 2.0, 1, 225, cuts_s=[2.0, 6.0]).starts == ()
    # a floor of a whole segment leaves no room to move
    assert segment_grid(Fraction(25), 2.0, 1, 225, cuts_s=[1.6], min_segment_s=2.0).starts == ()


def test_the_chunks_of_a_shot_grid_are_its_segments_and_end_early_on_cuts():
    grid = segment_grid(Fraction(25), 2.0, 3, 225, cuts_s=[1.6, 4.0, 5.0, 7.2])
    chunks = grid_chunks(225, grid)
    assert [(c.start_frame, c.frame_count, c.segment_starts, c.first_segment)
            for c in chunks] == [(0, 100, (0, 40, 70), 0), (100, 80, (100, 125, 152), 3),
                                 (180, 45, (180,), 6)]
    assert chunks[1].segment_bounds(50) == [100, 125, 152, 180]
    assert chunks[1].first_number(50) == 3
    assert shot_chunk_starts([0, 40, 70, 100, 125, 152, 180], {70, 152}, 3) == [0, 2, 5]
    assert shot_chunk_starts([0, 40, 70, 100], set(), 2) == [0, 2]


def test_a_lean_grid_has_no_starts_to_give():
    grid = segment_grid(Fraction(25), 2.0, 1, 225, cuts_s=[1.6])
    lean = grid.lean()
    assert lean.starts is None and lean.shot_aligned
    with pytest.raises(ValueError, match="without its segment starts"):
        lean.segment_bounds(225)
    even = segment_grid(Fraction(25), 2.0, 1)
    assert even.lean() is even


def test_the_grid_summary_counts_chunk_ends_moved_onto_cuts():
    cuts = [1.6, 4.0, 5.0, 7.2]
    grid = segment_grid(Fraction(25), 2.0, 1, 225, cuts_s=cuts)
    assert grid_summary(grid, 225, cuts) == {
        "kind": "shots", "segments": 7, "chunks": 7, "min_segment_s": 1.0,
        "max_segment_s": 1.8, "shot_cuts": 4, "boundaries_on_cuts": 4,
        "chunk_ends_on_cuts": 4, "chunk_ends_moved_onto_cuts": 3}
    even = segment_grid(Fraction(25), 2.0, 1)
    assert grid_summary(even, 225, cuts)["chunk_ends_on_cuts"] == 1


def test_cuts_are_read_on_the_title_timeline():
    source = dataclasses.replace(sample_source := _source_at(1.4, 0.8), title_id="x")
    assert sample_source.video_start_s - sample_source.container_start_s == pytest.approx(0.6)
    assert title_cuts_s(source, [2.6, 5.0]) == pytest.approx([2.0, 4.4])
