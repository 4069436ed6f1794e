"""Test media made by the tests, with FFmpeg's lavfi generators: seconds long, small."""

from __future__ import annotations

import os

from media import ffmpeg


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
