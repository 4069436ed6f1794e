"""Tests for media.encode.commands: the chunk's cut window, and the FFmpeg argv of every
encoder, pinned word for word (no FFmpeg run)."""

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
    ("-x264-params", "keyint=50:min-keyint=50:scenecut=0:open-gop=0:stitchable=1"),
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
    # chunk 2 = frames [200, 300) at 25 fps: cut at 11.98 s, slot 0 at 8 s, 100 slots
    assert "trim=end=11.980000" in graph
    assert "setpts=PTS-8.000000/TB" in graph
    assert "fps=eof_action=pass:fps=25/1:start_time=0" in graph
    assert "tpad=stop=100:stop_mode=clone" in graph
    assert "trim=end_frame=100" in graph
    assert "scale=1280:720:flags=bicubic" in graph
    assert "format=yuv420p" in graph
    # order matters: cut on source timestamps, rebase, one frame a slot, count, then scale
    assert (graph.index("trim=") < graph.index("setpts=") < graph.index("fps=")
            < graph.index("tpad=") < graph.index("end_frame") < graph.index("scale="))


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


def test_fragmented_outputs_are_mp4_with_a_fragment_per_keyframe():
    """Chunk encodes write fragmented MP4 (cut into segments with no remux); other users
    of the command (trial encodes) keep plain MP4."""
    paths = [f"/o/{h}.mp4" for h in (1080, 360)]
    argv = encode_renditions_argv("/s.mkv", paths, source(), CHUNK, ladder(1080, 360),
                                  EncodeSettings(), GRID, fragmented=True)
    start = 0
    for path in paths:  # each output's own options, between the one before and its path
        options = argv[start:argv.index(path)]
        assert options[options.index("-movflags") + 1] == (
            "+frag_keyframe+empty_moov+default_base_moof+cmaf")
        assert options[options.index("-f") + 1] == "mp4"
        start = argv.index(path) + 1
    plain = encode_renditions_argv("/s.mkv", paths, source(), CHUNK, ladder(1080, 360),
                                   EncodeSettings(), GRID)
    assert "-movflags" not in plain


def test_crf_formatting_drops_a_trailing_zero():
    argv = encode_chunk_argv("/s.mkv", "/o.mp4", source(), CHUNK,
                             Rendition("x", 640, 360, 23.0, 700, 1400), EncodeSettings(),
                             SegmentGrid(100, Fraction(25)))
    assert value_of(argv, "-crf") == "23"
    assert value_of(argv, "-x264-params") == (
        "keyint=100:min-keyint=100:scenecut=0:open-gop=0:stitchable=1")
    assert value_of(argv, "-force_key_frames") == "expr:eq(mod(n,100),0)"


def test_paths_with_spaces_and_quotes_stay_single_arguments():
    staged = "/scratch dir/it's a; $(span).mkv"
    argv = build_argv(staged=staged)
    assert value_of(argv, "-i") == staged


def test_ntsc_rate_is_exact_in_the_graph():
    src = source(NTSC)
    argv = encode_chunk_argv("/s.mkv", "/o.mp4", src, ChunkSpan(0, 0, 120), RENDITION,
                             EncodeSettings(), SegmentGrid(120, NTSC))
    assert "fps=eof_action=pass:fps=30000/1001" in value_of(argv, "-filter_complex")
    assert value_of(argv, "-frames:v") == "120"


# --- every encoder's argv, pinned word for word ----------------------------------------

CAPPED = RENDITION
FIXED = Rendition("360p-1000k", 640, 360, 23.0, 1500, 3000, target_kbps=1000)
PLAIN = Rendition("trial", 640, 360, 70.0, 0, 0)
"""Plain constant quality (a trial encode), with a quality value past every encoder's range."""

CUT = ("[0:v]trim=end=11.980000[s0];[s0]setpts=PTS-8.000000/TB[s1];"
       "[s1]fps=eof_action=pass:fps=25/1:start_time=0[s2];[s2]tpad=stop=100:stop_mode=clone[s3];"
       "[s3]trim=end_frame=100[s4];")
GRAPH_720 = (f"{CUT}[s4]scale=1280:720:flags=bicubic[s5];[s5]setsar=1[s6];"
             "[s6]format=yuv420p[s7]")
X264_GRID = "-x264-params keyint=50:min-keyint=50:scenecut=0:open-gop=0:stitchable=1"
X265_GRID = "-x265-params keyint=50:min-keyint=50:scenecut=0:open-gop=0:log-level=error"
KEYS = "-force_key_frames expr:eq(mod(n,50),0) -frames:v 100"
KEYS_X265 = KEYS.replace(" -frames:v", " -forced-idr 1 -frames:v")
"""x265 makes a forced keyframe an IDR frame only with forced-idr."""
NVENC = "-forced-idr 1 -frames:v 100 -g 50"
NVENC_TAIL = "-pix_fmt yuv420p -preset p4 -rc vbr -strict_gop 1"
SVT = "-pix_fmt yuv420p -preset 8 -svtav1-params scd=0:enable-overlays=0"
TS = "-video_track_timescale 90000"

# (encoder, rendition, threads, the output's options between '-an' and its path)
OUTPUT_OPTIONS = [
    ("x264", CAPPED, 0, f"-bufsize 6000k -c:v libx264 -crf 21.5 {KEYS} -maxrate 3000k "
                        f"-pix_fmt yuv420p -preset fast -profile:v high {TS} {X264_GRID}"),
    ("x264", CAPPED, 3, f"-bufsize 6000k -c:v libx264 -crf 21.5 {KEYS} -maxrate 3000k "
                        f"-pix_fmt yuv420p -preset fast -profile:v high -threads 3 {TS} "
                        f"{X264_GRID}"),
    ("x264", FIXED, 0, f"-b:v 1000k -bufsize 3000k -c:v libx264 {KEYS} -maxrate 1500k "
                       f"-pix_fmt yuv420p -preset fast -profile:v high {TS} {X264_GRID}"),
    ("x264", PLAIN, 0, f"-c:v libx264 -crf 70 {KEYS} -pix_fmt yuv420p -preset fast "
                       f"-profile:v high {TS} {X264_GRID}"),
    ("x265", CAPPED, 0, f"-bufsize 6000k -c:v libx265 -crf 21.5 {KEYS_X265} -maxrate 3000k "
                        f"-pix_fmt yuv420p -preset medium -tag:v hvc1 {TS} {X265_GRID}"),
    ("x265", CAPPED, 3, f"-bufsize 6000k -c:v libx265 -crf 21.5 {KEYS_X265} -maxrate 3000k "
                        f"-pix_fmt yuv420p -preset medium -tag:v hvc1 -threads 3 {TS} "
                        f"{X265_GRID}"),
    ("x265", FIXED, 0, f"-b:v 1000k -bufsize 3000k -c:v libx265 {KEYS_X265} -maxrate 1500k "
                       f"-pix_fmt yuv420p -preset medium -tag:v hvc1 {TS} {X265_GRID}"),
    ("x265", PLAIN, 0, f"-c:v libx265 -crf 51 {KEYS_X265} -pix_fmt yuv420p -preset medium "
                       f"-tag:v hvc1 {TS} {X265_GRID}"),
    ("svtav1", CAPPED, 0, f"-bufsize 6000k -c:v libsvtav1 -crf 21.5 {KEYS} -g 50 "
                          f"-maxrate 3000k {SVT} {TS}"),
    ("svtav1", CAPPED, 3, f"-bufsize 6000k -c:v libsvtav1 -crf 21.5 {KEYS} -g 50 "
                          f"-maxrate 3000k {SVT} -threads 3 {TS}"),
    ("svtav1", FIXED, 0, f"-b:v 1000k -bufsize 3000k -c:v libsvtav1 {KEYS} -g 50 "
                         f"-maxrate 1500k {SVT} {TS}"),
    ("svtav1", PLAIN, 0, f"-c:v libsvtav1 -crf 63 {KEYS} -g 50 {SVT} {TS}"),
    ("nvenc-h264", CAPPED, 0, "-b:v 0 -bufsize 6000k -c:v h264_nvenc -cq 21.5 "
                              "-force_key_frames expr:eq(mod(n,50),0) "
                              f"{NVENC} -maxrate 3000k -no-scenecut 1 {NVENC_TAIL} -tune hq {TS}"),
    ("nvenc-h264", CAPPED, 3, "-b:v 0 -bufsize 6000k -c:v h264_nvenc -cq 21.5 "
                              "-force_key_frames expr:eq(mod(n,50),0) "
                              f"{NVENC} -maxrate 3000k -no-scenecut 1 {NVENC_TAIL} -tune hq {TS}"),
    ("nvenc-h264", FIXED, 0, "-b:v 1000k -bufsize 3000k -c:v h264_nvenc "
                             "-force_key_frames expr:eq(mod(n,50),0) "
                             f"{NVENC} -maxrate 1500k -no-scenecut 1 {NVENC_TAIL} -tune hq {TS}"),
    ("nvenc-h264", PLAIN, 0, "-b:v 0 -c:v h264_nvenc -cq 51 -force_key_frames expr:eq(mod(n,50),0) "
                             f"{NVENC} -no-scenecut 1 {NVENC_TAIL} -tune hq {TS}"),
    ("nvenc-hevc", CAPPED, 0, "-b:v 0 -bufsize 6000k -c:v hevc_nvenc -cq 21.5 "
                              "-force_key_frames expr:eq(mod(n,50),0) "
                              f"{NVENC} -maxrate 3000k -no-scenecut 1 {NVENC_TAIL} -tag:v hvc1 "
                              f"-tune hq {TS}"),
    ("nvenc-av1", CAPPED, 0, "-b:v 0 -bufsize 6000k -c:v av1_nvenc -cq 21.5 "
                             "-force_key_frames expr:eq(mod(n,50),0) "
                             f"{NVENC} -maxrate 3000k -no-scenecut 1 {NVENC_TAIL} -tune hq {TS}"),
]


@pytest.mark.parametrize("encoder, rendition, threads, expected", OUTPUT_OPTIONS)
def test_each_encoders_argv_is_pinned(encoder, rendition, threads, expected):
    settings = EncodeSettings(preset="fast", encoder=encoder, decoder="cpu", threads=threads)
    argv = encode_chunk_argv("/s.mkv", "/o.mp4", source(), CHUNK, rendition, settings, GRID)
    graph = (GRAPH_720 if rendition is CAPPED else GRAPH_720.replace("1280:720", "640:360"))
    assert argv[:8] == ["-copyts", "-noautorotate", "-i", "/s.mkv", "-filter_complex", graph,
                        "-map", "[s7]"]
    assert argv[8] == "-an" and argv[-1] == "/o.mp4"
    assert " ".join(argv[9:-1]) == expected


SHARED_GRAPH = (f"{CUT}[s4]split=2[s5][s6];[s5]scale=1280:720:flags=bicubic[s7];"
                "[s7]setsar=1[s8];[s8]format=yuv420p[s9];[s6]scale=640:360:flags=bicubic[s10];"
                "[s10]setsar=1[s11];[s11]format=yuv420p[s12];[s12]split=2[s13][s14]")


@pytest.mark.parametrize("encoder, small_threads", [("x264", "-threads 1 "), ("svtav1", "")])
def test_one_process_for_every_rendition_is_pinned(monkeypatch, encoder, small_threads):
    """x264's small encoders get one thread each in a shared process; the others do not."""
    monkeypatch.setattr("media.encode.commands.available_cores", lambda: 2)
    paths = ["/o/720.mp4", "/o/360a.mp4", "/o/360b.mp4"]
    settings = EncodeSettings(preset="fast", encoder=encoder, decoder="cpu")
    argv = encode_renditions_argv("/s.mkv", paths, source(), CHUNK, [CAPPED, FIXED, PLAIN],
                                  settings, GRID)
    assert argv[:5] == ["-copyts", "-noautorotate", "-i", "/s.mkv", "-filter_complex"]
    assert argv[5] == SHARED_GRAPH
    outputs = " ".join(argv[6:]).split(" -map ")
    alone = {rung: options for name, rung, threads, options in OUTPUT_OPTIONS
             if name == encoder and threads == 0}

    def shared(options: str) -> str:
        return options.replace(TS, f"{small_threads}{TS}")

    assert outputs == [
        f"-map [s9] -an {alone[CAPPED]} /o/720.mp4",
        f"[s13] -an {shared(alone[FIXED])} /o/360a.mp4",
        f"[s14] -an {shared(alone[PLAIN])} /o/360b.mp4",
    ]
