"""The FFmpeg argv of every encoder, pinned word for word: the command builder may be
rearranged, but what it hands FFmpeg stays the same (no FFmpeg run)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from media.core.types import ChunkSpan, EncodeSettings, Rendition, SegmentGrid, SourceInfo
from media.encode.commands import encode_chunk_argv, encode_renditions_argv

SOURCE = SourceInfo(source_uri="/in/t.mp4", title_id="t", container="mov", video_codec="h264",
                    width=1920, height=1080, frame_rate=Fraction(25), frame_count=1000,
                    video_start_s=0.0, pix_fmt="yuv420p")
CHUNK = ChunkSpan(index=2, start_frame=200, frame_count=100)
GRID = SegmentGrid(50, Fraction(25))
CAPPED = Rendition("720p-3000k", 1280, 720, crf=21.5, maxrate_kbps=3000, bufsize_kbit=6000)
FIXED = Rendition("360p-1000k", 640, 360, 23.0, 1500, 3000, target_kbps=1000)
PLAIN = Rendition("trial", 640, 360, 70.0, 0, 0)
"""Plain constant quality (a trial encode), with a quality value past every encoder's range."""

GRAPH_720 = ("[0:v]trim=end=11.980000:start=7.980000[s0];[s0]setpts=PTS-STARTPTS[s1];"
             "[s1]fps=fps=25/1[s2];[s2]scale=1280:720:flags=bicubic[s3];[s3]setsar=1[s4];"
             "[s4]format=yuv420p[s5]")
X264_GRID = "-x264-params keyint=50:min-keyint=50:scenecut=0:open-gop=0"
X265_GRID = "-x265-params keyint=50:min-keyint=50:scenecut=0:open-gop=0:log-level=error"
KEYS = "-force_key_frames expr:eq(mod(n,50),0) -frames:v 100"
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
    ("x265", CAPPED, 0, f"-bufsize 6000k -c:v libx265 -crf 21.5 {KEYS} -maxrate 3000k "
                        f"-pix_fmt yuv420p -preset fast -tag:v hvc1 {TS} {X265_GRID}"),
    ("x265", CAPPED, 3, f"-bufsize 6000k -c:v libx265 -crf 21.5 {KEYS} -maxrate 3000k "
                        f"-pix_fmt yuv420p -preset fast -tag:v hvc1 -threads 3 {TS} "
                        f"{X265_GRID}"),
    ("x265", FIXED, 0, f"-b:v 1000k -bufsize 3000k -c:v libx265 {KEYS} -maxrate 1500k "
                       f"-pix_fmt yuv420p -preset fast -tag:v hvc1 {TS} {X265_GRID}"),
    ("x265", PLAIN, 0, f"-c:v libx265 -crf 51 {KEYS} -pix_fmt yuv420p -preset fast "
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
    argv = encode_chunk_argv("/s.mkv", "/o.mp4", SOURCE, CHUNK, rendition, settings,
                             GRID)
    graph = (GRAPH_720 if rendition is CAPPED else GRAPH_720.replace("1280:720", "640:360"))
    assert argv[:8] == ["-copyts", "-noautorotate", "-i", "/s.mkv", "-filter_complex", graph,
                        "-map", "[s5]"]
    assert argv[8] == "-an" and argv[-1] == "/o.mp4"
    assert " ".join(argv[9:-1]) == expected


SHARED_GRAPH = ("[0:v]trim=end=11.980000:start=7.980000[s0];[s0]setpts=PTS-STARTPTS[s1];"
                "[s1]fps=fps=25/1[s2];[s2]split=2[s3][s4];[s3]scale=1280:720:flags=bicubic[s5];"
                "[s5]setsar=1[s6];[s6]format=yuv420p[s7];[s4]scale=640:360:flags=bicubic[s8];"
                "[s8]setsar=1[s9];[s9]format=yuv420p[s10];[s10]split=2[s11][s12]")


@pytest.mark.parametrize("encoder, small_threads", [("x264", "-threads 1 "), ("svtav1", "")])
def test_one_process_for_every_rendition_is_pinned(monkeypatch, encoder, small_threads):
    """x264's small encoders get one thread each in a shared process; the others do not."""
    monkeypatch.setattr("media.encode.commands.available_cores", lambda: 2)
    paths = ["/o/720.mp4", "/o/360a.mp4", "/o/360b.mp4"]
    settings = EncodeSettings(preset="fast", encoder=encoder, decoder="cpu")
    argv = encode_renditions_argv("/s.mkv", paths, SOURCE, CHUNK, [CAPPED, FIXED, PLAIN],
                                  settings, GRID)
    assert argv[:5] == ["-copyts", "-noautorotate", "-i", "/s.mkv", "-filter_complex"]
    assert argv[5] == SHARED_GRAPH
    outputs = " ".join(argv[6:]).split(" -map ")
    alone = {rung: options for name, rung, threads, options in OUTPUT_OPTIONS
             if name == encoder and threads == 0}

    def shared(options: str) -> str:
        return options.replace(TS, f"{small_threads}{TS}")

    assert outputs == [
        f"-map [s7] -an {alone[CAPPED]} /o/720.mp4",
        f"[s11] -an {shared(alone[FIXED])} /o/360a.mp4",
        f"[s12] -an {shared(alone[PLAIN])} /o/360b.mp4",
    ]
