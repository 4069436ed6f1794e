"""Tests for media.encode.commands: the chunk's cut window and the libx264 argv (no FFmpeg run)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from media.core.types import ChunkSpan, EncodeSettings, Rendition, SegmentGrid, SourceInfo
from media.encode.commands import (
    chunk_window_s,
    encode_chunk_argv,
    encode_renditions_argv,
    shared_process_threads,
)

NTSC = Fraction(30000, 1001)
WINDOW_TOLERANCE_S = 1e-9


def source(rate: Fraction = Fraction(25), video_start_s: float = 0.0,
           frame_count: int = 1000) -> SourceInfo:
    return SourceInfo(source_uri="/in/t.mp4", title_id="t", container="mov",
                      video_codec="h264", width=1920, height=1080, frame_rate=rate,
                      frame_count=frame_count, video_start_s=video_start_s, pix_fmt="yuv420p")


# (rate, video_start_s, chunk, (start_s, end_s)): cuts half a frame before the chunk's
# first frame and half a frame before the frame after its last.
WINDOW_TABLE = [
    (Fraction(25), 0.0, ChunkSpan(0, 0, 100), (0.0, 3.98)),         # -0.02 clamps to 0
    (Fraction(25), 0.0, ChunkSpan(1, 100, 100), (3.98, 7.98)),
    (Fraction(25), 0.0, ChunkSpan(2, 200, 50), (7.98, 9.98)),
    (Fraction(25), 1.5, ChunkSpan(0, 0, 100), (1.48, 5.48)),        # offset: no clamp
    (Fraction(25), 1.5, ChunkSpan(1, 100, 100), (5.48, 9.48)),
    (Fraction(25), 0.01, ChunkSpan(0, 0, 100), (0.0, 3.99)),        # 0.01 - 0.02 clamps
    (Fraction(50), 0.0, ChunkSpan(3, 600, 200), (11.99, 15.99)),
    # 29.97: (120 - 1/2) × 1001/30000 = 3.987283.. and 239.5 × 1001/30000 = 7.991316..
    (NTSC, 0.0, ChunkSpan(1, 120, 120), (119.5 * 1001 / 30000, 239.5 * 1001 / 30000)),
    (Fraction(1), 0.0, ChunkSpan(0, 0, 1), (0.0, 0.5)),
]


@pytest.mark.parametrize("rate, start, chunk, expected", WINDOW_TABLE)
def test_chunk_window_s(rate, start, chunk, expected):
    window = chunk_window_s(source(rate, start), chunk)
    assert window == pytest.approx(expected, abs=WINDOW_TOLERANCE_S)


@pytest.mark.parametrize("rate, video_start_s", [(Fraction(25), 0.0), (NTSC, 0.0),
                                                 (Fraction(24000, 1001), 0.5)])
def test_adjacent_chunk_windows_meet_exactly(rate, video_start_s):
    src = source(rate, video_start_s)
    chunks = [ChunkSpan(i, i * 96, 96) for i in range(5)]
    windows = [chunk_window_s(src, c) for c in chunks]
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end == start  # no frame can fall between two chunks or into both
    frame_s = 1 / rate
    for chunk, (start, end) in zip(chunks[1:], windows[1:], strict=True):
        # each cut sits strictly between two frames' nominal times
        first = video_start_s + float(chunk.start_frame * frame_s)
        assert first - float(frame_s) < start < first
        assert end - start == pytest.approx(float(chunk.frame_count * frame_s), abs=1e-9)


RENDITION = Rendition("720p-3000k", 1280, 720, crf=21.5, maxrate_kbps=3000, bufsize_kbit=6000)
CHUNK = ChunkSpan(index=2, start_frame=200, frame_count=100)
SEGMENT_FRAMES = 50
GRID = SegmentGrid(SEGMENT_FRAMES, Fraction(25))
VERYFAST = EncodeSettings(preset="veryfast")


def build_argv(settings: EncodeSettings = VERYFAST,
               staged: str = "/scratch/source-span.mkv") -> list[str]:
    return encode_chunk_argv(staged, "/scratch/chunk.mp4", source(), CHUNK, RENDITION,
                             settings, GRID)


def value_of(argv: list[str], option: str) -> str:
    assert argv.count(option) == 1, f"{option} appears {argv.count(option)} times in {argv}"
    return argv[argv.index(option) + 1]


def test_argv_is_a_list_of_strings():
    argv = build_argv()
    assert isinstance(argv, list)
    assert all(isinstance(arg, str) for arg in argv)
    assert argv[-1] == "/scratch/chunk.mp4"


@pytest.mark.parametrize("option, expected", [
    ("-c:v", "libx264"),
    ("-preset", "veryfast"),
    ("-profile:v", "high"),
    ("-crf", "21.5"),
    ("-maxrate", "3000k"),
    ("-bufsize", "6000k"),
    ("-pix_fmt", "yuv420p"),
    ("-x264-params", "keyint=50:min-keyint=50:scenecut=0:open-gop=0"),
    ("-force_key_frames", "expr:eq(mod(n,50),0)"),
    ("-frames:v", "100"),
    ("-video_track_timescale", "90000"),
])
def test_output_options(option, expected):
    assert value_of(build_argv(), option) == expected


def test_input_keeps_timestamps_and_drops_audio():
    argv = build_argv()
    assert "-copyts" in argv
    assert argv.index("-copyts") < argv.index("-i")  # an input option, before the input
    assert value_of(argv, "-i") == "/scratch/source-span.mkv"
    assert "-an" in argv
    assert argv.index("-an") > argv.index("-i")


def test_filtergraph_cuts_the_window_and_scales_to_the_rendition():
    graph = value_of(build_argv(), "-filter_complex")
    # chunk 2 = frames [200, 300) at 25 fps: cut at 7.98 s and 11.98 s
    assert "trim=end=11.980000:start=7.980000" in graph
    assert "setpts=PTS-STARTPTS" in graph
    assert "fps=fps=25/1" in graph
    assert "scale=1280:720:flags=bicubic" in graph
    assert "format=yuv420p" in graph
    # order matters: cut on source timestamps, then rebase, then scale
    assert graph.index("trim=") < graph.index("setpts=") < graph.index("scale=")


@pytest.mark.parametrize("threads, expected", [(0, None), (4, "4")])
def test_threads(threads, expected):
    argv = build_argv(EncodeSettings(preset="fast", threads=threads))
    if expected is None:
        assert "-threads" not in argv
    else:
        assert value_of(argv, "-threads") == expected


def ladder(*heights: int) -> list[Rendition]:
    return [Rendition(f"{h}p", h * 16 // 9 // 2 * 2, h, 23, 1000, 2000) for h in heights]


@pytest.mark.parametrize("heights, cores, expected", [
    # the fixed ladder on 2 cores: 1080p is 54 % of the pixels, the rest one core's share
    ((1080, 720, 540, 360, 234), 2, [0, 1, 1, 1, 1]),
    # on 8 cores every rendition over an eighth of the pixels keeps x264's threads
    ((1080, 720, 540, 360, 234), 8, [0, 0, 0, 1, 1]),
    # four rungs at one size share the work evenly: one thread each is enough
    ((1080, 1080, 1080, 1080, 432, 432), 2, [1, 1, 1, 1, 1, 1]),
    ((1080, 540), 2, [0, 1]),
    ((1080, 540), 1, [1, 1]),  # one core: no encoder gains from threads
    ((720,), 2, [0]),  # alone: x264's own threads
])
def test_shared_process_threads(heights, cores, expected):
    assert shared_process_threads(ladder(*heights), cores) == expected


def output_threads(argv: list[str], paths: list[str]) -> list[str | None]:
    """Each output's -threads value, read between the output before it and its path."""
    found, start = [], 0
    for path in paths:
        end = argv.index(path)
        options = argv[start:end]
        found.append(options[options.index("-threads") + 1] if "-threads" in options else None)
        start = end + 1
    return found


def test_a_shared_process_gives_its_small_x264_encoders_one_thread(monkeypatch):
    monkeypatch.setattr("media.encode.commands.available_cores", lambda: 2)
    paths = [f"/o/{h}.mp4" for h in (1080, 720, 360)]
    argv = encode_renditions_argv("/s.mkv", paths, source(), CHUNK, ladder(1080, 720, 360),
                                  EncodeSettings(), GRID)
    assert output_threads(argv, paths) == [None, "1", "1"]
    # threads the user set hold for every encoder
    argv = encode_renditions_argv("/s.mkv", paths, source(), CHUNK, ladder(1080, 720, 360),
                                  EncodeSettings(threads=3), GRID)
    assert output_threads(argv, paths) == ["3", "3", "3"]


def test_crf_formatting_drops_a_trailing_zero():
    argv = encode_chunk_argv("/s.mkv", "/o.mp4", source(), CHUNK,
                             Rendition("x", 640, 360, 23.0, 700, 1400), EncodeSettings(),
                             SegmentGrid(100, Fraction(25)))
    assert value_of(argv, "-crf") == "23"
    assert value_of(argv, "-x264-params") == "keyint=100:min-keyint=100:scenecut=0:open-gop=0"
    assert value_of(argv, "-force_key_frames") == "expr:eq(mod(n,100),0)"


def test_paths_with_spaces_and_quotes_stay_single_arguments():
    staged = "/scratch dir/it's a; $(span).mkv"
    argv = build_argv(staged=staged)
    assert value_of(argv, "-i") == staged


def test_ntsc_rate_is_exact_in_the_graph():
    src = source(NTSC)
    argv = encode_chunk_argv("/s.mkv", "/o.mp4", src, ChunkSpan(0, 0, 120), RENDITION,
                             EncodeSettings(), SegmentGrid(120, NTSC))
    assert "fps=fps=30000/1001" in value_of(argv, "-filter_complex")
    assert value_of(argv, "-frames:v") == "120"
