"""AV1 (and HEVC) ladders against the H.264 ladder, on benchmarks/per_title.py's sources.

    python benchmarks/codecs.py [--duration 16] [--preset medium] [--codecs h264,av1]
        [--sources cartoon,detailed,grain,grainy,looped] [--scale 1] [--work DIR]

For each source it runs the per-title pipeline once per codec (`--codecs h264`, then
`--codecs av1`, ...: each its own ladder from its own trials, hull, calibration and
gates, the codec's software encoder at `--preset`, mapped onto SVT-AV1's and x265's
presets as `media.encode.encoders` maps it), one run at a time on this machine, and
prints per source and codec:

- BD-rate (VMAF, mean pooling; `media.quality.bdrate`) of the codec's ladder against the
  H.264 ladder (where either ladder has fewer than 4 rungs, over the rungs there are,
  marked "(n/m rungs)"): negative = fewer bits at equal VMAF (goals: AV1 at most -30 %, HEVC at
  most -20 %);
- the final encodes' CPU seconds over H.264's (goal for AV1: at most 3x), and the SVT-AV1
  and x265 presets that `--preset` maps to;
- planning cost: the codec's trial + calibration CPU seconds over its final encodes'.

Separate runs per codec measure each encoder's CPU seconds on its own (in a
`--codecs h264,av1` run one FFmpeg process encodes both ladders, and its seconds are
shared by pixels). `--scale` shrinks the sources (0.25: 480x270 from 1080p) to prove the
benchmark works in minutes.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.per_title import (
    DEFAULT_SOURCES,
    SOURCES,
    final_encode_s,
    ladder_points,
    make_looped_source,
    make_source,
    monotonic,
    run_pipeline,
)
from media.encode.encoders import _SVT_PRESETS, x265_preset
from media.quality.bdrate import MIN_POINTS, bd_rate

GOALS = {"av1": -30.0, "hevc": -20.0}
"""BD-rate goals against H.264 (%, VMAF)."""
AV1_CPU_GOAL = 3.0


def scaled(video: str, scale: float) -> str:
    """A per_title.py source filter at `scale` of its size (even dimensions)."""
    if scale == 1:
        return video
    head, _, rest = video.partition("size=")
    size, _, tail = rest.partition(":")
    width, height = (max(2, int(int(v) * scale) // 2 * 2) for v in size.split("x"))
    return f"{head}size={width}x{height}:{tail}"


def source_file(work: str, name: str, duration: float, scale: float) -> str:
    path = os.path.join(work, f"{name}-{duration:g}s-x{scale:g}.mp4")
    if not os.path.exists(path):
        print(f"making {name} ({duration:g} s, scale {scale:g}) ...", flush=True)
        make = make_looped_source if name == "looped" else make_source
        make(path, scaled(SOURCES[name], scale), duration)
    return path


def codec_figures(reports: dict[str, dict]) -> dict[str, dict]:
    """Per codec: BD-rate against H.264, encode CPU ratio to H.264, planning cost."""
    anchor = monotonic(ladder_points(reports["h264"]))
    h264_cpu, _ = final_encode_s(reports["h264"], "cpu_s")
    out = {}
    for codec, report in reports.items():
        encode_cpu, _ = final_encode_s(report, "cpu_s")
        figures = {"rungs": len(report["ladder"]), "encode_cpu_s": encode_cpu,
                   "cpu_ratio": encode_cpu / h264_cpu if h264_cpu else float("nan"),
                   "planning": report["plan"].get("trial_cost_cpu_s", 0.0) / encode_cpu
                   if encode_cpu else float("nan")}
        if codec != "h264":
            test = monotonic(ladder_points(report))
            figures["bd_points"] = (len(anchor), len(test))
            # A per-title ladder of two or three rungs is compared on its rungs (PCHIP,
            # a straight line in ln-rate between two): coarser, flagged in the table.
            figures["bd_coarse"] = min(len(anchor), len(test)) < MIN_POINTS
            try:
                figures["bd_rate"] = bd_rate(anchor, test, min_points=2)
            except ValueError as exc:
                figures["bd_rate_error"] = str(exc)
        out[codec] = figures
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=16.0)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--codecs", default="h264,av1",
                        help="codecs to compare; h264 (the anchor) is always run")
    parser.add_argument("--sources", default=",".join(DEFAULT_SOURCES))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", default="/tmp/ladderflow-bench-codecs")
    parser.add_argument("--extra", default="",
                        help="more pipeline flags for every run, space-separated")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    codecs = ["h264", *(c for c in args.codecs.split(",") if c and c != "h264")]
    rows = []
    for name in args.sources.split(","):
        source = source_file(args.work, name, args.duration, args.scale)
        reports = {}
        for codec in codecs:
            print(f"{name}: {codec} per-title ...", flush=True)
            out = os.path.join(args.work, f"{name}-{args.duration:g}s-x{args.scale:g}-{codec}")
            reports[codec] = run_pipeline(source, out, "per-title", args.preset,
                                          ["--codecs", codec, *args.extra.split()], args.reuse)
        rows.append((name, codec_figures(reports)))
    print(f"\ncodec ladders against H.264, per-title, --preset {args.preset} (SVT-AV1 preset "
          f"{_SVT_PRESETS.get(args.preset, 8)}, x265 {x265_preset(args.preset)}), "
          f"{args.duration:g} s at scale {args.scale:g}, "
          f"{os.cpu_count()} cores")
    print("source    codec  rungs  BD-rate (VMAF)               goal     encode CPU s  x H.264  "
          "planning/encode CPU")
    for name, figures in rows:
        for codec, f in figures.items():
            bd = (f"{f['bd_rate']:+8.1f} %" + (" ({}/{} rungs)".format(*f["bd_points"])
                                                  if f["bd_coarse"] else "")
                  if "bd_rate" in f else "  anchor" if codec == "h264" else "     n/a")
            goal = f"{GOALS[codec]:+.0f} %" if codec in GOALS else ""
            print(f"{name:9s} {codec:5s} {f['rungs']:6d}  {bd:27s}  {goal:7s} "
                  f"{f['encode_cpu_s']:12.1f} {f['cpu_ratio']:8.2f}  {f['planning']:8.2f}")
            if "bd_rate_error" in f:
                print(f"          ({f['bd_rate_error']})")
    failed = [(n, c) for n, fs in rows for c, f in fs.items()
              if c in GOALS and not f.get("bd_rate", 0.0) <= GOALS[c]]
    slow = [n for n, fs in rows if "av1" in fs and fs["av1"]["cpu_ratio"] > AV1_CPU_GOAL]
    print(f"\nBD-rate goals missed: {failed or 'none'}; AV1 encode CPU over "
          f"{AV1_CPU_GOAL:g}x H.264's: {slow or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
