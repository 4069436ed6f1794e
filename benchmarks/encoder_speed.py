"""x264 speed at 1080p per preset, the figures behind docs/deploy.md's sizing.

    python benchmarks/encoder_speed.py [--seconds 5] [--presets veryfast,medium,slow]

Makes (once, in `--work`) a `--seconds` 1080p25 source of the demo's moving pattern with
stereo audio, clean and under temporal noise (`noise=alls=12:allf=t+u`), then, per
content and preset, times one FFmpeg process that decodes it and encodes (1) the
1080p rung alone and (2) the whole fixed ladder with its audio, both with the pipeline's
x264 settings (`benchmarks/overhead.py`'s baseline command, x264 choosing its threads).
Prints frames per second, the CPU seconds each source second costs (all FFmpeg CPU,
decode and scaling included: what a worker spends per second of title), and the ladder
process's peak resident memory (what one chunk's encode process needs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import run_measured
from benchmarks.overhead import baseline_argv
from media.core import ffmpeg
from media.core.types import EncodeSettings, SourceInfo
from media.encode.encoders import ENCODERS, video_options
from media.plan.chunking import segment_grid
from media.plan.ladder import fixed_ladder
from pipeline.demo import demo_source_argv

RATE = 25
SEGMENT_S = 4.0
CRF = 23.0


def noisy(argv: list[str]) -> list[str]:
    """The demo source's argv with temporal noise on its pattern."""
    video = argv.index("-i") + 1
    return [*argv[:video], argv[video] + ",noise=alls=12:allf=t+u", *argv[video + 1:]]


def top_rung_argv(source: str, out: str, preset: str) -> list[str]:
    """One FFmpeg process encoding the fixed ladder's 1080p rung alone."""
    info = SourceInfo(source, "bench", "mp4", "h264", 1920, 1080, Fraction(RATE), 0, 0.0,
                      "yuv420p")
    rung = fixed_ladder(info, crf=CRF)[0]
    argv = ["-i", source, "-an", "-vf", "format=yuv420p"]
    options = video_options(ENCODERS["x264"], rung, EncodeSettings(preset=preset),
                            segment_grid(Fraction(RATE), SEGMENT_S, 1))
    for key, value in options.items():
        argv += [f"-{key}", str(value)]
    return ffmpeg.ffmpeg_argv(*argv, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--presets", default="veryfast,medium,slow")
    parser.add_argument("--contents", default="clean,noisy")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-encoder-speed")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    frames = args.seconds * RATE
    print(f"x264 at 1080p{RATE}, {args.seconds:g} s clips, {os.cpu_count()} cores; CPU s per "
          f"source s = all FFmpeg CPU / clip seconds")
    print(f"{'content':8s} {'preset':9s} {'1080p alone: fps':>17s} {'CPU s/s':>8s}   "
          f"{'fixed ladder: fps':>18s} {'CPU s/s':>8s} {'peak RSS MiB':>13s}")
    for content in args.contents.split(","):
        source = os.path.join(args.work, f"{content}-{args.seconds:g}s.mp4")
        if not os.path.exists(source):
            argv = demo_source_argv(source, args.seconds)
            ffmpeg.run(ffmpeg.ffmpeg_argv(*(noisy(argv) if content == "noisy" else argv)))
        for preset in args.presets.split(","):
            with tempfile.TemporaryDirectory(dir=args.work) as out:
                alone = run_measured(top_rung_argv(source, os.path.join(out, "top.mp4"), preset),
                                     os.path.join(args.work, "top.log"))
                ladder = run_measured(baseline_argv(source, out, preset, CRF, Fraction(RATE),
                                                    SEGMENT_S), os.path.join(args.work,
                                                                             "ladder.log"))
            if alone.returncode or ladder.returncode:
                raise SystemExit(f"an encode failed; see {args.work}/*.log")
            print(f"{content:8s} {preset:9s} {frames / alone.wall_s:17.1f} "
                  f"{alone.encoder_cpu_s / args.seconds:8.2f}   "
                  f"{frames / ladder.wall_s:18.1f} {ladder.encoder_cpu_s / args.seconds:8.2f} "
                  f"{ladder.peak_rss_mib:13.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
