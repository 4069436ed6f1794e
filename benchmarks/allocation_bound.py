"""What a perfect allocation could save on a source: the bound for `--allocation optimal`.

Each chunk of a `benchmarks/per_title.py` source is encoded at a grid of CRFs at one
size and scored with VMAF. From those measured curves two allocations are worked out
exactly, with nothing predicted:

- constant: every chunk at the target VMAF (what the constant allocation's gates aim at);
- optimal: the fewest bits for the same duration-weighted mean VMAF (equal slope on each
  chunk's convex hull, filled greedily, which is exact on convex curves): free, with a
  floor on each chunk's mean (target less `--max_drop`), and with no chunk more than 2
  under constant's worst (the issue's rule on the worst stretch, on chunk means).

The saving it prints is the most any allocation can give on that source at that size
and preset: if it is under a goal, no model of the curves reaches the goal.

    python benchmarks/allocation_bound.py --source detailed --duration 32
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.per_title import SOURCES, source_file
from media.core import ffmpeg
from media.quality.bdrate import MIN_POINTS, bd_rate
from media.quality.vmaf import pool_log_file

WORST_DROP = 2.0
"""The issue's rule on the worst stretch: no chunk more than this under constant's worst
(here on chunk means; the pipeline holds 5th percentiles to it)."""
Point = tuple[float, float, float]
"""(CRF, kb/s, mean VMAF) of one chunk's encode."""


def encode_point(source: str, start: float, seconds: float, fps: float, height: int,
                 crf: float, preset: str, scratch: str) -> Point:
    """One chunk encoded at `crf` and scored against the source at `height`."""
    encoded = os.path.join(scratch, f"c{start:g}-{crf:g}.mp4")
    frames = round(seconds * fps)
    argv = ffmpeg.ffmpeg_argv(
        "-ss", f"{start:.3f}", "-i", source, "-frames:v", str(frames), "-an",
        "-vf", f"scale=-2:{height}:flags=bicubic", "-c:v", "libx264", "-preset", preset,
        "-crf", f"{crf:g}", "-g", str(frames), "-keyint_min", str(frames),
        "-sc_threshold", "0", encoded)
    ffmpeg.run(argv)
    kbps = os.path.getsize(encoded) * 8 / 1000 / seconds
    log = os.path.join(scratch, f"c{start:g}-{crf:g}.json")
    argv = ffmpeg.ffmpeg_argv(
        "-i", encoded, "-ss", f"{start:.3f}", "-i", source, "-frames:v", str(frames),
        "-lavfi", f"[0:v]setpts=PTS-STARTPTS[d];[1:v]scale=-2:{height}:flags=bicubic,"
        f"setpts=PTS-STARTPTS[r];[d][r]libvmaf=log_fmt=json:log_path={log}:n_threads=2",
        "-f", "null", "-")
    ffmpeg.run(argv)
    return crf, kbps, pool_log_file(log).mean


def hull(points: list[Point]) -> list[tuple[float, float]]:
    """(kb/s, VMAF) of the chunk's upper-left convex hull, cheapest first: the points no
    mix of two others beats."""
    pts = sorted({(k, v) for _, k, v in points})
    best: list[tuple[float, float]] = []
    for k, v in pts:
        if best and v <= best[-1][1]:
            continue  # more bits for no more VMAF
        while len(best) >= 2:
            (k0, v0), (k1, v1) = best[-2], best[-1]
            if (v1 - v0) * (k - k0) <= (v - v0) * (k1 - k0):  # best[-1] under the chord
                best.pop()
            else:
                break
        best.append((k, v))
    return best


def at_vmaf(curve: list[tuple[float, float]], vmaf: float) -> tuple[float, float]:
    """(kb/s, VMAF) on the hull at `vmaf`, held at its ends."""
    if vmaf <= curve[0][1]:
        return curve[0]
    for (k0, v0), (k1, v1) in itertools.pairwise(curve):
        if vmaf <= v1:
            return k0 + (k1 - k0) * (vmaf - v0) / (v1 - v0), vmaf
    return curve[-1]


def optimal(curves: list[list[tuple[float, float]]], seconds: list[float], mean_vmaf: float,
            floor: float | None) -> float:
    """The fewest kbit for a duration-weighted mean of `mean_vmaf`: every chunk starts at
    its cheapest point (or its floor), then the cheapest VMAF increments across chunks are
    bought first (exact on convex curves). Returns kbit (inf where it cannot)."""
    start = [at_vmaf(c, floor) if floor is not None else c[0] for c in curves]
    kbit = sum(k * s for (k, _), s in zip(start, seconds, strict=True))
    have = sum(v * s for (_, v), s in zip(start, seconds, strict=True))
    need = mean_vmaf * sum(seconds)
    steps = []
    for c, s, (k_start, v_start) in zip(curves, seconds, start, strict=True):
        prev = (k_start, v_start)
        for k, v in c:
            if v <= prev[1] + 1e-9:
                continue
            steps.append(((k - prev[0]) / (v - prev[1]), (k - prev[0]) * s, (v - prev[1]) * s))
            prev = (k, v)
    for _, cost, gain in sorted(steps):
        if have >= need - 1e-9:
            break
        take = min(1.0, (need - have) / gain)
        kbit += take * cost
        have += take * gain
    return kbit if have >= need - 1e-6 else math.inf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="detailed", help=", ".join(SOURCES))
    parser.add_argument("--duration", type=float, default=32.0)
    parser.add_argument("--chunk_s", type=float, default=4.0)
    parser.add_argument("--starts", default="",
                        help="chunk starts (s), instead of chunks of --chunk_s")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--crfs", default="16,19,22,25,28,31,34,37,40,44")
    parser.add_argument("--targets", default="30,40,50,60,70,80,85,90,95")
    parser.add_argument("--max_drop", type=float, default=6.0)
    parser.add_argument("--work", default="/tmp/ladderflow-bench-per-title")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    source = source_file(args.work, args.source, args.duration)
    fps = 25.0 if "rate=25" in SOURCES[args.source] else 24.0
    crfs = [float(c) for c in args.crfs.split(",")]
    if args.starts:  # a grid of its own, e.g. a report's chunk starts on the shot grid
        starts = [float(s) for s in args.starts.split(",")]
    else:
        starts = [i * args.chunk_s for i in range(round(args.duration / args.chunk_s))]
    seconds = [b - a for a, b in itertools.pairwise([*starts, args.duration])]
    grid = "starts" if args.starts else f"{args.chunk_s:g}"
    cache = os.path.join(args.work, f"bound-{args.source}-{args.duration:g}s-{args.height}p-"
                                    f"{args.preset}-{grid}.json")
    measured = {}
    if os.path.exists(cache):
        with open(cache) as f:
            measured = json.load(f)
    with tempfile.TemporaryDirectory(prefix="ladderflow-bound-") as scratch:
        for start, secs in zip(starts, seconds, strict=True):
            for crf in crfs:
                key = f"{start:g}/{crf:g}"
                if key not in measured:
                    measured[key] = encode_point(source, start, secs, fps, args.height, crf,
                                                 args.preset, scratch)
                    with open(cache, "w") as f:
                        json.dump(measured, f)
            print(f"chunk at {start:g} s: " + ", ".join(
                f"{c:g}:{measured[f'{start:g}/{c:g}'][1]:.0f}k/{measured[f'{start:g}/{c:g}'][2]:.1f}"
                for c in crfs), flush=True)
    curves = [hull([tuple(measured[f"{s:g}/{c:g}"]) for c in crfs]) for s in starts]
    print(f"\n{args.source}, {args.duration:g} s in {len(starts)} chunks of "
          f"{min(seconds):.2f} to {max(seconds):.2f} s, "
          f"{args.height}p x264 {args.preset}, CRFs {args.crfs}; kb/s at equal mean VMAF")
    print(f"{'target':>6} {'constant':>9} {'optimal':>9} {'saving':>7} "
          f"{'with floor':>10} {'saving':>7} {'worst kept':>9} {'saving':>7}")
    anchor, test, held = [], [], []
    for target in [float(t) for t in args.targets.split(",")]:
        placed = [at_vmaf(c, target) for c in curves]
        total = sum(seconds)
        mean = sum(v * s for (_, v), s in zip(placed, seconds, strict=True)) / total
        constant = sum(k * s for (k, _), s in zip(placed, seconds, strict=True))
        free = optimal(curves, seconds, mean, None)
        floored = optimal(curves, seconds, mean, target - args.max_drop)
        # the worst-stretch rule: no chunk more than 2 under constant's worst
        worst = optimal(curves, seconds, mean, min(v for _, v in placed) - WORST_DROP)
        print(f"{target:6.0f} {constant / total:9.0f} {free / total:9.0f} "
              f"{free / constant - 1:+7.1%} {floored / total:10.0f} "
              f"{floored / constant - 1:+7.1%} {worst / total:9.0f} "
              f"{worst / constant - 1:+7.1%}   (mean VMAF {mean:.2f})")
        if math.isfinite(floored) and math.isfinite(worst):
            anchor.append((constant / total, mean))
            test.append((floored / total, mean))
            held.append((worst / total, mean))
    if len(anchor) >= MIN_POINTS:
        print(f"BD-rate (VMAF) against constant over these targets: with the floor "
              f"{bd_rate(anchor, test):+.1f} %, with the worst chunk kept "
              f"{bd_rate(anchor, held):+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
