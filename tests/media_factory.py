"""Test media made by the tests, with FFmpeg's lavfi generators: seconds long, small."""

from __future__ import annotations

import json
import os

from media.core import ffmpeg
from media.core.types import ChunkTask, EncodeSettings, Rendition
from media.inspect.probe import inspect_source
from media.plan.chunking import grid_chunks, segment_grid


def make_clip(path: str, duration_s: float = 12.0, width: int = 960, height: int = 540,
              rate: str = "25", audio: bool = True, gop: int = 50,
              pattern: str = "testsrc2") -> str:
    """An H.264 (+ stereo AAC) clip: a moving test pattern with two sine tones."""
    video = f"{pattern}=size={width}x{height}:rate={rate}:duration={duration_s}"
    args = ["-f", "lavfi", "-i", video]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration_s}",
                 "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate=48000:duration={duration_s}",
                 "-filter_complex", "[1:a][2:a]join=inputs=2:channel_layout=stereo[a]",
                 "-map", "0:v", "-map", "[a]", "-c:a", "aac", "-b:a", "128k"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", str(gop),
             "-pix_fmt", "yuv420p", path]
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args))
    return path


def second_chunk_task(folder: str, rendition: Rendition, preset: str) -> ChunkTask:
    """A `ChunkTask` for the second 2 s chunk of a 4 s 320x180 clip made in `folder` (no
    audio, a keyframe every second), encoded at `preset` on one thread and scored with
    libvmaf at 180p: the small real chunk the encode and scoring tests share."""
    clip = make_clip(os.path.join(folder, "clip.mp4"), duration_s=4, width=320,
                     height=180, gop=25, audio=False)
    source = inspect_source(clip, clip, "clip")
    grid = segment_grid(source.frame_rate, 2.0, 1)
    return ChunkTask(source=source, rendition=rendition,
                     chunk=grid_chunks(source.frame_count, grid)[1], chunk_count=2,
                     grid=grid, output_root=os.path.join(folder, "out"),
                     settings=EncodeSettings(preset=preset, threads=1,
                                             vmaf_backend="libvmaf"),
                     vmaf_height=180)


def make_random_bytes(path: str, size: int = 64_000, seed: int = 7) -> str:
    import random

    rng = random.Random(seed)
    with open(path, "wb") as handle:
        handle.write(bytes(rng.getrandbits(8) for _ in range(size)))
    return path


def make_text(path: str) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("this is not a video\n" * 100)
    return path


def ensure_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


SRT_ENGLISH = """1
00:00:00,500 --> 00:00:02,000
Hello from the first segment.

2
00:00:03,500 --> 00:00:04,500
<i>This one crosses</i> into the second.

3
00:00:05,000 --> 00:00:07,500
And the <b>last</b> line.
"""


def make_title_package(folder: str, duration_s: float = 8.0, width: int = 640,
                       height: int = 360) -> str:
    """A title package (`film.title.json`): a video with English audio inside it (a 440 Hz
    tone), a French 5.1 WAV beside it (an 880 Hz tone, to be downmixed), and English SRT
    subtitles. Returns the package's path."""
    os.makedirs(folder, exist_ok=True)
    video = os.path.join(folder, "film.mp4")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={duration_s}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration_s}",
        "-map", "0:v", "-map", "1:a", "-ac", "2", "-c:a", "aac", "-b:a", "128k",
        "-metadata:s:a:0", "language=eng",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-g", "25",
        "-pix_fmt", "yuv420p", video))
    french = os.path.join(folder, "audio-fr.wav")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"sine=frequency=880:sample_rate=48000:duration={duration_s}",
        "-af", "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0", "-c:a", "pcm_s16le", french))
    with open(os.path.join(folder, "film-en.srt"), "w", encoding="utf-8") as handle:
        handle.write(SRT_ENGLISH)
    package = os.path.join(folder, "film.title.json")
    with open(package, "w", encoding="utf-8") as handle:
        json.dump({
            "video": "film.mp4",
            "audio": [{"uri": "audio-fr.wav", "language": "fra", "name": "Français"}],
            "subtitles": [{"uri": "film-en.srt", "language": "eng", "name": "English"}],
            "metadata": {"studio": "ladderflow tests"},
        }, handle, indent=2)
    return package
