"""The demo source: 30 seconds of 1080p25 video with stereo audio, made by FFmpeg."""

from __future__ import annotations

import logging
import os

from media.core import ffmpeg

log = logging.getLogger(__name__)

DEMO_NAME = "ladderflow-demo.mp4"


def demo_source_argv(path: str, duration_s: float = 30.0, width: int = 1920,
                     height: int = 1080, rate: int = 25) -> list[str]:
    """FFmpeg arguments for a moving test pattern with a two-tone stereo signal."""
    video = f"testsrc2=size={width}x{height}:rate={rate}:duration={duration_s}"
    left = f"sine=frequency=440:sample_rate=48000:duration={duration_s}"
    right = f"sine=frequency=660:sample_rate=48000:duration={duration_s}"
    return [
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", left, "-f", "lavfi", "-i", right,
        "-filter_complex", "[1:a][2:a]join=inputs=2:channel_layout=stereo[a]",
        "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "14", "-pix_fmt", "yuv420p",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
        "-c:a", "aac", "-b:a", "192k", "-metadata:s:a:0", "language=eng",
        "-movflags", "+faststart", path,
    ]


def make_demo_source(folder: str, duration_s: float = 30.0) -> str:
    """Write the demo source into `folder` (once; reused when present) and return its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, DEMO_NAME)
    if not os.path.exists(path):
        log.info("making the demo source: %s (%.0f s of 1080p25 with stereo audio)", path,
                 duration_s)
        tmp = path + ".partial.mp4"
        ffmpeg.run(ffmpeg.ffmpeg_argv(*demo_source_argv(tmp, duration_s)))
        os.replace(tmp, path)
    return path
