"""The critical path of one title by stage, for this tree or another checkout of it.

    python benchmarks/critical_path.py [--minutes 20] [--size 320x180] [--tree DIR]
                                       [--work DIR] [-- extra pipeline flags]

Makes (once, cached in `--work`) a `--minutes` source at `--size` 24 fps with the
feature-length benchmark's recipe (a moving test pattern under temporal noise, stereo
audio), runs `python -m pipeline` from `--tree` (default: this checkout; give an older
checkout to measure "before") with the defaults, and prints the stages as
`benchmarks/feature_length.py` reads them: start-up, inspection, planning, encode stage
(to the last chunk encoded and scored), tail (to published), with when the audio spans
ran, the wall time, the pipeline's own CPU and the encoders' CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import feature_length as fl
from benchmarks._measure import run_measured
from media.core import ffmpeg, naming

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_source(work: str, minutes: float, size: str) -> str:
    """The source video (made once)."""
    path = os.path.join(work, f"critical-{minutes:g}m-{size}.mp4")
    if not os.path.exists(path):
        width, height = size.split("x")
        argv = fl.source_argv(path + ".partial.mp4", minutes * 60)
        argv[3] = argv[3].replace(f"size={fl.WIDTH}x{fl.HEIGHT}", f"size={width}x{height}")
        print(f"making the source: {path}", flush=True)
        ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=6 * 3600)
        os.replace(path + ".partial.mp4", path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--tree", default=ROOT, help="the checkout whose pipeline runs")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-critical")
    parser.add_argument("extra", nargs="*", help="flags for the pipeline (after --)")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    source = make_source(args.work, args.minutes, args.size)
    title = naming.title_id_for(source)
    tree = os.path.abspath(args.tree)
    out = os.path.join(args.work, "out-" + os.path.basename(tree.rstrip("/")))
    shutil.rmtree(out, ignore_errors=True)
    measured = run_measured([sys.executable, "-m", "pipeline", "--input", source, "--output",
                             out, *args.extra], out + ".log", env={"PYTHONPATH": tree},
                            timed_lines=True)
    if measured.returncode:
        raise SystemExit(f"the pipeline failed; see {out}.log")
    lines = fl.timed_lines(out + ".log")
    stages = fl.stages(lines, title)
    audio = [t for t, line in lines if ": audio " in line and " span " in line]
    print(f"{title} from {tree}: wall {measured.wall_s:.1f} s; own CPU "
          f"{measured.own_cpu_s:.1f} s; encoders' CPU {measured.encoder_cpu_s:.1f} s; peak "
          f"RSS {measured.peak_rss_mib:.0f} MiB (tree {measured.peak_tree_rss_mib:.0f})")
    for name in ("startup_s", "inspection_s", "planning_s", "encode_s", "tail_s"):
        value = getattr(stages, name)
        print(f"  {name[:-2]:<10} {'n/a' if value is None else f'{value:.1f} s'}")
    if audio:
        print(f"  audio spans: {len(audio)}, logged from {audio[0]:.1f} s to {audio[-1]:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
