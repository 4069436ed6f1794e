"""Cost against title length: time should double with the title, memory stay flat.

    python benchmarks/scaling.py [--durations 30,60,120,240] [--height 1080] [--vmaf]

Runs the pipeline (DirectRunner, fixed ladder, preset medium; `--no_vmaf` unless
`--vmaf`) on generated sources of each length (the demo pattern with stereo audio, at
`--height` lines, 25 fps), one after the other in this run on this machine, and prints
per length: wall time, the ratio to the length before (each doubling should cost
1.9-2.1x), the peak resident memory of the pipeline's own process and of the process
with its FFmpeg children, and the largest peak over the smallest (goal: at most 1.2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import run_measured
from media.core import ffmpeg
from pipeline.demo import demo_source_argv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--durations", default="30,60,120,240")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--vmaf", action="store_true", help="score every chunk too")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-scaling")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    width = args.height * 16 // 9 // 2 * 2

    rows = []
    for duration in (float(d) for d in args.durations.split(",")):
        source = os.path.join(args.work, f"source-{args.height}p-{duration:g}s.mp4")
        if not os.path.exists(source):
            print(f"making {source}", flush=True)
            ffmpeg.run(ffmpeg.ffmpeg_argv(*demo_source_argv(source, duration, width,
                                                            args.height)))
        out = os.path.join(args.work, f"out-{duration:g}")
        shutil.rmtree(out, ignore_errors=True)
        print(f"{duration:g} s ...", flush=True)
        argv = [sys.executable, "-m", "pipeline", "--input", source, "--output", out,
                "--ladder", "fixed", "--preset", args.preset,
                *([] if args.vmaf else ["--no_vmaf"])]
        measured = run_measured(argv, out + ".log")
        if measured.returncode:
            raise SystemExit(f"the pipeline failed on {source}; see {out}.log")
        rows.append((duration, measured))

    print(f"\nscaling: fixed ladder, x264 preset {args.preset}, {width}x{args.height}p25 "
          f"sources, {'VMAF on' if args.vmaf else '--no_vmaf'}, {os.cpu_count()} cores")
    print("length   wall s   x previous   peak RSS python MiB   with FFmpeg MiB")
    previous = None
    for duration, m in rows:
        ratio = f"{m.wall_s / previous.wall_s:10.2f}" if previous else f"{'':>10s}"
        print(f"{duration:5.0f} s {m.wall_s:8.1f} {ratio}   {m.peak_rss_mib:19.0f}   "
              f"{m.peak_tree_rss_mib:15.0f}")
        previous = m
    smallest, largest = rows[0][1], rows[-1][1]
    own = largest.peak_rss_mib / smallest.peak_rss_mib
    tree = largest.peak_tree_rss_mib / smallest.peak_tree_rss_mib
    print(f"peak RSS, longest over shortest: python {own:.2f}, with FFmpeg {tree:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
