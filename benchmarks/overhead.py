"""Pipeline overhead against one plain FFmpeg command making the same renditions.

    python benchmarks/overhead.py [--duration 60] [--preset medium] [--work /tmp/bench]

Makes a 1080p25 source of `--duration` seconds with stereo audio, then, in this one run
on this machine:
  1. baseline: one FFmpeg process that decodes the source once, splits it to the fixed
     ladder's five scaled outputs and encodes each with the pipeline's exact x264 settings
     (capped CRF, closed GOP, IDR every segment), plus the AAC audio; x264 chooses
     its threads, as a plain command leaves it to;
  1b. the same command with each encoder's threads as the pipeline sets them in a
     chunk's process (one for the small renditions), which shows what that choice is
     worth outside the pipeline;
  2. the pipeline (DirectRunner) with --no_vmaf;
  3. the pipeline with VMAF scoring on.
It prints the wall-time ratios pipeline/baseline, the pipeline's peak memory, and the
encoders' utilisation: CPU seconds of every FFmpeg process encoding with libx264 over
(the seconds from the first to the last sample that saw one x cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import run_measured
from media.core import ffmpeg
from media.core.ffmpeg import available_cores
from media.core.types import EncodeSettings, SourceInfo
from media.encode.commands import shared_process_threads
from media.encode.encoders import ENCODERS, video_options
from media.plan.chunking import segment_grid
from media.plan.ladder import fixed_ladder
from pipeline.demo import demo_source_argv


def baseline_argv(source: str, out_dir: str, preset: str, crf: float,
                  frame_rate: Fraction, segment_s: float, pipeline_threads: bool = False,
                  width: int = 1920, height: int = 1080) -> list[str]:
    """One FFmpeg command: decode once, split, scale and encode every rung of the fixed
    ladder of a `width` x `height` source, plus audio.
    x264 chooses its threads, or, with `pipeline_threads`, each encoder gets those the
    pipeline gives it in a chunk's process (`media.encode.commands.shared_process_threads`)."""
    info = SourceInfo(source, "bench", "mp4", "h264", width, height, frame_rate, 0, 0.0,
                      "yuv420p")
    ladder = fixed_ladder(info, crf=crf)
    threads = (shared_process_threads(ladder, available_cores()) if pipeline_threads
               else [0] * len(ladder))
    grid = segment_grid(frame_rate, segment_s, 1)
    labels = [f"[v{i}]" for i in range(len(ladder))]
    graph = f"[0:v]split={len(ladder)}{''.join(labels)}"
    for i, rung in enumerate(ladder):
        graph += (f";{labels[i]}scale={rung.width}:{rung.height}:flags=bicubic,setsar=1,"
                  f"format=yuv420p[o{i}]")
    argv = ["-i", source, "-filter_complex", graph]
    for i, rung in enumerate(ladder):
        argv += ["-map", f"[o{i}]"]
        settings = EncodeSettings(preset=preset, threads=threads[i])
        for key, value in video_options(ENCODERS["x264"], rung, settings, grid).items():
            argv += [f"-{key}", str(value)]
        argv += ["-an", os.path.join(out_dir, f"{rung.rendition_id}.mp4")]
    argv += ["-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
             os.path.join(out_dir, "audio.mp4")]
    return ffmpeg.ffmpeg_argv(*argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--crf", type=float, default=23.0)
    parser.add_argument("--work", default="/tmp/ladderflow-bench-overhead")
    parser.add_argument("--skip_vmaf_run", action="store_true")
    args = parser.parse_args()

    os.makedirs(args.work, exist_ok=True)
    source = os.path.join(args.work, f"source-1080p25-{args.duration:g}s.mp4")
    if not os.path.exists(source):
        print(f"making the source: {source}", flush=True)
        ffmpeg.run(ffmpeg.ffmpeg_argv(*demo_source_argv(source, args.duration)))

    base_dir = os.path.join(args.work, "baseline")
    shutil.rmtree(base_dir, ignore_errors=True)
    os.makedirs(base_dir)
    print("baseline: one FFmpeg command ...", flush=True)
    base = run_measured(baseline_argv(source, base_dir, args.preset, args.crf, Fraction(25), 4.0),
                        os.path.join(args.work, "baseline.log"))
    if base.returncode:
        raise SystemExit(f"the baseline failed; see {args.work}/baseline.log")
    print("the same command, each encoder with the pipeline's threads ...", flush=True)
    shutil.rmtree(base_dir)
    os.makedirs(base_dir)
    same_threads = run_measured(
        baseline_argv(source, base_dir, args.preset, args.crf, Fraction(25), 4.0, True),
        os.path.join(args.work, "baseline-threads.log"))
    if same_threads.returncode:
        raise SystemExit(f"the baseline failed; see {args.work}/baseline-threads.log")

    runs = {"pipeline --no_vmaf": ["--no_vmaf"]}
    if not args.skip_vmaf_run:
        runs["pipeline with VMAF"] = []
    results = {}
    for name, extra in runs.items():
        out = os.path.join(args.work, "out-" + ("novmaf" if extra else "vmaf"))
        shutil.rmtree(out, ignore_errors=True)
        print(f"{name} ...", flush=True)
        argv = [sys.executable, "-m", "pipeline", "--input", source, "--output", out,
                "--preset", args.preset, "--crf", str(args.crf), "--ladder", "fixed", *extra]
        results[name] = run_measured(argv, out + ".log")
        if results[name].returncode:
            raise SystemExit(f"{name} failed; see {out}.log")

    print(f"\nsource: {args.duration:g} s 1080p25, fixed ladder (5 renditions), x264 preset "
          f"{args.preset}, CRF {args.crf:g}, {os.cpu_count()} cores")
    print(f"baseline (one FFmpeg command): {base.wall_s:8.1f} s")
    print(f"{'the same, pipeline threads':29s}: {same_threads.wall_s:8.1f} s   "
          f"ratio {same_threads.wall_s / base.wall_s:5.2f}x")
    for name, measured in results.items():
        print(f"{name:29s}: {measured.wall_s:8.1f} s   ratio {measured.wall_s / base.wall_s:5.2f}x"
              f"   (over the same, pipeline threads: "
              f"{measured.wall_s / same_threads.wall_s:5.2f}x)"
              f"   peak RSS: python {measured.peak_rss_mib:6.0f} MiB,"
              f" with FFmpeg children {measured.peak_tree_rss_mib:6.0f} MiB")
        print(f"{'':29s}  encoder utilisation {measured.encoder_utilisation():.2f} "
              f"({measured.encoder_cpu_s:.0f} encoder CPU s over {measured.encode_span_s:.0f} s "
              f"of encode stage x {os.cpu_count()} cores)")
    print(f"{'baseline':29s}  encoder utilisation {base.encoder_utilisation():.2f}"
          f" (pipeline threads: {same_threads.encoder_utilisation():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
