"""Per-title ladders against Apple's fixed H.264 ladder, on sources of different complexity.

    python benchmarks/per_title.py [--duration 16] [--preset medium] [--work DIR]
        [--sources cartoon,detailed,grain,grainy,looped] [--no_apple]
        [--cost_durations 60,120] [--cost_sources cartoon]
    python benchmarks/per_title.py --allocation optimal,constant [--sources scenes,...]
    python benchmarks/per_title.py --grids shots,even [--sources shots,...]

For each generated source (1080p25: flat and cartoon-like, detailed and moving, noisy
and grain-heavy, `scenes`, four scenes of those kinds back to back, and `shots`, shots
of those kinds cut off the 4 s grid; 320x180 at 24
fps under temporal grain throughout, the uniform title whose rungs came out
near-identical; a 640x360 clip with AAC audio looped by stream copy, as users'
concatenated masters are, with small timestamp gaps at the joins) it runs the pipeline
twice in this one process's run, on this machine, with the same x264 settings:
`--ladder per-title` (trial encodes, hull, gates) and `--ladder apple` (the HLS
Authoring Specification ladder, 416x234@145 to 1920x1080@7800 kb/s, at those
average bitrates; left out with `--no_apple`). It prints, per source:

- BD-rate of the per-title ladder against Apple's, VMAF as the quality axis (PCHIP over
  log-rate); negative = fewer bits at equal VMAF. The goal is on the mean VMAF; the
  BD-rates on the harmonic mean and on the worst chunk's mean follow in brackets
  (`POOLINGS`: a per-title rung holds every chunk at its target, Apple's rungs spend
  the same rate on easy and hard stretches alike). Rungs whose VMAF does not rise with
  rate (saturated at the top) are left out of a curve, as BD-rate needs monotonic curves;
  the table says how many points each curve kept.
- planning cost: trial encode + scoring seconds over the final encode seconds, and the
  trial encodes made (a probe sample at every resolution, the other samples at the
  resolutions its hull kept);
- gate accuracy: the share of chunks whose final VMAF is within [target - 1, target + 2],
  the share whose first encode landed there, and encodes per chunk;
- per rung, the rate planning predicted against the measured average rate, and the
  ladder invariant on what was measured (`media.plan.invariant`: rates falling by 1.3x
  at least from rung to rung, mean VMAF falling).

Planning is a per-title cost: a title's trials (three samples at least, a tenth of its
segments at most 40) grow far more slowly than its final encodes. `--cost_durations`
runs the per-title pipeline alone on longer versions of `--cost_sources` and prints the
planning cost at each length, so the table shows how it falls with the title's length.

`--grids shots,even` runs the per-title pipeline once per `--segment_grid` choice and
prints the BD-rate of the grid cut at shot changes against the even one, encodes per
chunk, the worst chunk's p5 per rung and what each grid did (segments, their shortest
and longest, chunk ends on cuts); `shots`, whose cuts fall off the 4 s grid, is the
source for it.

`--allocation optimal,constant` runs the per-title pipeline once per `--allocation` mode
instead (constant, the anchor, always; Apple's ladder beside them unless `--no_apple`)
and prints per source (`allocation_figures`): the BD-rate of optimal against constant and
of each against Apple's, on the mean and the harmonic mean (a ladder of two or three
rungs compared on its rungs, marked "(n/m rungs)"), with the average over sources; per
rung the worst chunk's 5th-percentile frame VMAF; encodes per chunk; planning CPU
seconds (trials, and the optimal allocation's probes) over the final encodes'; and the
ladder invariant. Optimal allocation moves bits along the title, so `scenes`, whose
complexity changes every quarter, is where it has most to gain.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import run_measured
from media.core import ffmpeg
from media.plan.invariant import LadderRung, ladder_invariant
from media.quality.bdrate import MIN_POINTS, bd_rate

SOURCES = {
    # Flat colours, hard edges, little motion: what animation looks like to an encoder.
    "cartoon": "testsrc=size=1920x1080:rate=25",
    # Fine detail everywhere, zooming: every frame changes.
    "detailed": "mandelbrot=size=1920x1080:rate=25",
    # Moving pattern under strong temporal grain: the hardest to compress.
    "grain": "testsrc2=size=1920x1080:rate=25,noise=alls=16:allf=t+u",
    # A small uniform title under temporal grain throughout (film grain is this at any
    # size): its rate falls steeply with the CRF while VMAF hardly moves.
    "grainy": "testsrc2=size=320x180:rate=24,noise=alls=16:allf=t+u",
    # Real-content-like clip with audio, looped by stream copy (`make_looped_source`).
    "looped": "testsrc2=size=640x360:rate=25,noise=alls=6:allf=t+u",
    # Four scenes of different complexity back to back, each a quarter of the title
    # (`lavfi_input`): where the bits a rung needs change along the title.
    "scenes": "scenes=size=1920x1080:rate=25",
    # Shots of those kinds, cut where an even grid would not cut (`SHOT_LENGTHS`): what
    # `--segment_grid shots` moves boundaries onto.
    "shots": "shots=size=1920x1080:rate=25",
}
DEFAULT_SOURCES = ("cartoon", "detailed", "grain", "grainy", "looped")
"""The sources compared with Apple's ladder unless `--sources` names others."""
SCENES = ("smptebars", "testsrc2", "mandelbrot", "testsrc2,noise=alls=14:allf=t+u")
"""The scenes of the `scenes` source, in order: bars, a moving pattern, a zoom into
fine detail, the moving pattern under temporal grain."""
SHOT_LENGTHS = (2.6, 5.3, 3.1, 6.7, 4.4, 1.9, 7.2, 3.8)
"""Seconds of each shot of the `shots` source, in turn (the kinds of SCENES in turn): a
cut at 2.6, 7.9, 11.0, 17.7 s ..., one on a 4 s grid only by chance."""
LOOP_CLIP_S = 4.0
"""Length of the clip `make_looped_source` loops (its audio runs 30 ms longer)."""
GATE_BELOW, GATE_ABOVE = 1.0, 2.0


def make_source(path: str, video: str, duration: float) -> None:
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", lavfi_input(video, duration), "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "10", "-pix_fmt", "yuv420p", "-g", "50", path))


def lavfi_input(video: str, duration: float) -> str:
    """The lavfi graph that makes `duration` seconds of a SOURCES filter. `scenes=OPTIONS`
    is SCENES back to back, each a quarter of the title, all with OPTIONS (size and rate:
    the concat filter joins frames of one size only).

    >>> lavfi_input("testsrc=size=64x36:rate=25", 2.0)
    'testsrc=size=64x36:rate=25,trim=duration=2.0'
    >>> print(*lavfi_input("scenes=size=64x36:rate=25", 8.0).split(";"), sep="\\n")
    smptebars=size=64x36:rate=25,trim=duration=2[s0]
    testsrc2=size=64x36:rate=25,trim=duration=2[s1]
    mandelbrot=size=64x36:rate=25,trim=duration=2[s2]
    testsrc2=size=64x36:rate=25,trim=duration=2,noise=alls=14:allf=t+u[s3]
    [s0][s1][s2][s3]concat=n=4:v=1:a=0,trim=duration=8.0
    """
    name, _, options = video.partition("=")
    if name == "scenes":
        parts = []
        for i, scene in enumerate(SCENES):
            source, _, filters = scene.partition(",")
            trimmed = f"{source}={options},trim=duration={duration / len(SCENES):g}"
            parts.append(",".join(filter(None, (trimmed, filters))) + f"[s{i}]")
        labels = "".join(f"[s{i}]" for i in range(len(SCENES)))
        video = ";".join(parts) + f";{labels}concat=n={len(SCENES)}:v=1:a=0"
    elif name == "shots":
        lengths, total = [], 0.0
        while total < duration:
            lengths.append(SHOT_LENGTHS[len(lengths) % len(SHOT_LENGTHS)])
            total += lengths[-1]
        parts = []
        for i, length in enumerate(lengths):
            source, _, filters = SCENES[i % len(SCENES)].partition(",")
            trimmed = f"{source}={options},trim=duration={length:g},setpts=PTS-STARTPTS"
            parts.append(",".join(filter(None, (trimmed, filters, "format=yuv420p")))
                         + f"[s{i}]")
        labels = "".join(f"[s{i}]" for i in range(len(lengths)))
        video = ";".join(parts) + f";{labels}concat=n={len(lengths)}:v=1:a=0"
    return f"{video},trim=duration={duration}"


def make_looped_source(path: str, video: str, duration: float) -> None:
    """A LOOP_CLIP_S clip of H.264 and AAC (the audio 30 ms longer than the video, as in
    a real clip), looped by stream copy (`-stream_loop`) to about `duration`: each join
    leaves a gap in the video's timestamps, as users' concatenated masters have."""
    clip = path + ".clip.mp4"
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"{video},trim=duration={LOOP_CLIP_S}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={LOOP_CLIP_S + 0.03}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p",
        "-g", "50", "-c:a", "aac", "-b:a", "128k", clip))
    loops = max(1, round(duration / LOOP_CLIP_S))
    ffmpeg.run(ffmpeg.ffmpeg_argv("-stream_loop", str(loops - 1), "-i", clip, "-c", "copy",
                                  path))
    os.remove(clip)


def run_pipeline(source: str, out: str, ladder: str, preset: str, extra=(),
                 reuse: bool = False) -> dict:
    """Run the pipeline on `source` into `out` and return its report.json (with the run's
    wall seconds as `_wall_s`). With `reuse`, the report an earlier run left in `out` is
    returned instead, where there is one."""
    title = os.path.splitext(os.path.basename(source))[0]
    report_path = os.path.join(out, title, "report.json")
    wall_path = out + ".wall.json"
    if not (reuse and os.path.exists(report_path) and os.path.exists(wall_path)):
        shutil.rmtree(out, ignore_errors=True)
        argv = [sys.executable, "-m", "pipeline", "--input", source, "--output", out,
                "--ladder", ladder, "--preset", preset, *extra]
        measured = run_measured(argv, out + ".log")
        if measured.returncode:
            raise SystemExit(f"pipeline ({ladder}) failed on {source}; see {out}.log")
        with open(wall_path, "w", encoding="utf-8") as handle:
            json.dump({"wall_s": measured.wall_s}, handle)
    else:
        print(f"  reusing {report_path}", flush=True)
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    with open(wall_path, encoding="utf-8") as handle:
        report["_wall_s"] = json.load(handle)["wall_s"]
    return report


POOLINGS = ("mean", "harmonic", "worst chunk")
"""How a rendition's quality over the title is pooled for BD-rate. The goal is on the
mean (frame-weighted, as the field reports BD-rates); the others say how the two
ladders treat the hard stretches: the harmonic mean of the frame scores (from each
chunk's, frame-weighted) weighs a poor stretch more, and the worst chunk's mean is what
the rendition promises everywhere."""


def ladder_points(report: dict, pooling: str = "mean") -> list[tuple[float, float]]:
    """(kb/s, VMAF) per rendition: sizes over durations, the VMAF pooled over the title's
    chunks as `pooling` (one of POOLINGS) says."""
    points = []
    for track in report["tracks"]:
        if track["kind"] != "video":
            continue
        chunks = track["chunks"]
        seconds = sum(c["duration_s"] for c in chunks)
        kbps = sum(c["size_bytes"] for c in chunks) * 8 / seconds / 1000
        points.append((kbps, pooled_vmaf([c["vmaf"] for c in chunks], pooling)))
    return sorted(points)


def pooled_vmaf(chunks: list[dict], pooling: str = "mean") -> float:
    """The title's VMAF from its chunks' scores (`vmaf` records of report.json).

    >>> chunks = [{"mean": 90.0, "harmonic_mean": 89.0, "frame_count": 20},
    ...           {"mean": 50.0, "harmonic_mean": 49.0, "frame_count": 60}]
    >>> pooled_vmaf(chunks), round(pooled_vmaf(chunks, "harmonic"), 2)
    (60.0, 55.25)
    >>> pooled_vmaf(chunks, "worst chunk")
    50.0
    """
    frames = [c["frame_count"] for c in chunks]
    if pooling == "mean":
        return sum(c["mean"] * n for c, n in zip(chunks, frames, strict=True)) / sum(frames)
    if pooling == "harmonic":  # of every frame, from each chunk's own: shifted by 1 as VMAF's
        return sum(frames) / sum(n / (1.0 + c["harmonic_mean"])
                                 for c, n in zip(chunks, frames, strict=True)) - 1.0
    if pooling == "worst chunk":
        return min(c["mean"] for c in chunks)
    raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")


def bd_rates(per_title: dict, apple: dict) -> dict[str, str]:
    """BD-rate of the per-title ladder against Apple's under each of POOLINGS."""
    rates = {}
    for pooling in POOLINGS:
        test = monotonic(ladder_points(per_title, pooling))
        anchor = monotonic(ladder_points(apple, pooling))
        try:
            rates[pooling] = f"{bd_rate(anchor, test):+.1f} %"
        except ValueError as exc:
            rates[pooling] = f"n/a ({exc})"
    return rates


def monotonic(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Keep the points whose VMAF rises above every cheaper point's."""
    kept: list[tuple[float, float]] = []
    for kbps, vmaf in sorted(points):
        if not kept or (vmaf > kept[-1][1] and kbps > kept[-1][0]):
            kept.append((kbps, vmaf))
    return kept


def top_saving(test: list[tuple[float, float]], anchor: list[tuple[float, float]]) -> str:
    """Bits the per-title top rung saves against Apple's ladder at the same VMAF
    (Apple's rate interpolated in log-rate between its two rungs around that VMAF)."""
    if not test or len(anchor) < 2:
        return "n/a"
    kbps, vmaf = test[-1]
    for (r0, v0), (r1, v1) in itertools.pairwise(anchor):
        if v0 <= vmaf <= v1:
            share = (vmaf - v0) / (v1 - v0)
            apple = math.exp(math.log(r0) + share * (math.log(r1) - math.log(r0)))
            return f"{_fewer(kbps, apple)} ({kbps:.0f} vs {apple:.0f} kb/s)"
    if vmaf < anchor[0][1]:
        return (f"{_fewer(kbps, anchor[0][0])} than Apple's lowest rung, "
                f"which scores higher ({anchor[0][1]:.1f})")
    return f"above every Apple rung's VMAF ({vmaf:.1f} vs {anchor[-1][1]:.1f})"


def _fewer(kbps: float, anchor_kbps: float) -> str:
    saved = 1 - kbps / anchor_kbps
    return f"{saved:.0%} fewer bits" if saved >= 0 else f"{-saved:.0%} more bits"


def _gated_chunks(report: dict):
    """(chunk, target VMAF) of every chunk of the report that a quality gate judged."""
    for track in report["tracks"]:
        for chunk in track.get("chunks", []):
            if chunk.get("target_vmaf"):
                yield chunk, chunk["target_vmaf"]


def gate_stats(report: dict) -> tuple[int, int, int, int]:
    """(chunks, chunks within [target-1, target+2], encodes, chunks the VBV cap held under
    the window) over the gated renditions."""
    chunks = within = encodes = capped = 0
    for chunk, target in _gated_chunks(report):
        chunks += 1
        encodes += max(1, len(chunk["attempts"]))
        within += target - GATE_BELOW <= chunk["vmaf"]["mean"] <= target + GATE_ABOVE
        capped += bool(chunk.get("held_by_cap"))
    return chunks, within, encodes, capped


def final_encode_s(report: dict, unit: str = "s") -> tuple[float, float]:
    """Seconds the final chunks' encodes and scorings took, summed: wall seconds of each
    process (`unit` 's') or CPU seconds ('cpu_s')."""
    encode = score = 0.0
    for track in report["tracks"]:
        for chunk in track.get("chunks", []):
            encode += chunk[f"encode_{unit}"]
            score += chunk[f"score_{unit}"]
    return encode, score


def planning_cost(report: dict) -> dict[str, float]:
    """Planning over final encode (and over encode+score), in summed wall seconds of the
    processes and in CPU seconds. The wall seconds of trial tasks that ran at the same
    time (the samples after the probe spread over workers; the final encodes of a title
    run one chunk at a time on the DirectRunner) count the seconds they shared twice, so
    CPU seconds, what a cluster pays for, are the cost; both are printed."""
    plan = report["plan"]
    encode_s, score_s = final_encode_s(report)
    encode_cpu, score_cpu = final_encode_s(report, "cpu_s")
    return {"wall": plan["trial_cost_s"] / encode_s,
            "wall_all": plan["trial_cost_s"] / (encode_s + score_s),
            "cpu": plan["trial_cost_cpu_s"] / encode_cpu,
            "cpu_all": plan["trial_cost_cpu_s"] / (encode_cpu + score_cpu),
            "score_wall": score_s / encode_s, "score_cpu": score_cpu / encode_cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=16.0)
    parser.add_argument("--preset", default="medium",
                        help="x264 preset of the final encodes (the pipeline's default)")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-per-title")
    parser.add_argument("--sources", default=",".join(DEFAULT_SOURCES),
                        help=f"sources compared ('' for none), of {', '.join(SOURCES)}")
    parser.add_argument("--cost_durations", default="",
                        help="title lengths (s) at which to measure planning cost alone")
    parser.add_argument("--cost_sources", default="cartoon")
    parser.add_argument("--no_apple", action="store_true",
                        help="run the per-title ladders alone, not Apple's beside them")
    parser.add_argument("--reuse", action="store_true",
                        help="take the reports an earlier run left in --work (same source, "
                             "ladder and length) instead of running the pipeline again")
    parser.add_argument("--extra", default="",
                        help="more pipeline options for every run of --allocation, e.g. "
                        "'--chunk_segments 1' (the allocation moves bits between chunks: a "
                        "16 s title has two of the default 12 s)")
    parser.add_argument("--allocation", default="",
                        help="compare these --allocation modes of the per-title ladder "
                             "(e.g. optimal,constant; constant, the anchor, always runs) "
                             "instead of per-title against Apple")
    parser.add_argument("--grids", default="",
                        help="compare these --segment_grid choices of the per-title ladder "
                             "(shots,even; even, the anchor, always runs)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.sources and args.grids:
        compare_grids(args)
    elif args.sources and args.allocation:
        compare_allocations(args)
    elif args.sources:
        compare_with_apple(args)
    if args.cost_durations:
        planning_cost_by_length(args)
    return 0


def source_file(work: str, name: str, duration: float) -> str:
    path = os.path.join(work, f"{name}.mp4" if duration == 16 else f"{name}-{duration:g}s.mp4")
    if not os.path.exists(path):
        print(f"making {name} ({duration:g} s) ...", flush=True)
        make = make_looped_source if name == "looped" else make_source
        make(path, SOURCES[name], duration)
    return path


def planning_cost_by_length(args) -> None:
    """Planning cost of the per-title pipeline alone on longer titles."""
    rows = []
    for name in args.cost_sources.split(","):
        for duration in (float(d) for d in args.cost_durations.split(",")):
            source = source_file(args.work, name, duration)
            print(f"{name} {duration:g} s: per-title ...", flush=True)
            report = run_pipeline(source, os.path.join(args.work, f"cost-{name}-{duration:g}"),
                                  "per-title", args.preset, ["--min_kbps", "145"], args.reuse)
            encode_s, _ = final_encode_s(report)
            rows.append((name, duration, report["plan"]["trial_cost_s"], encode_s,
                         planning_cost(report), report["plan"]["trial_encodes"],
                         len(report["ladder"]), report["_wall_s"]))
            chunks, within, encodes, capped = gate_stats(report)
            print(f"  planning seconds: {_split(report['plan'])}; gate: {within}/{chunks} "
                  f"within the window ({capped} held by the VBV cap), "
                  f"{encodes / max(1, chunks):.2f} encodes per chunk", flush=True)
    print(f"\nplanning cost by title length, final preset {args.preset}, "
          f"{os.cpu_count()} cores")
    print("cost/encode: planning over final encode, in CPU seconds (in summed wall seconds); "
          "cost/(encode+score) likewise")
    print("source    length  trials s  final encode s   cost/encode  cost/(encode+score)  "
          "trial encodes  rungs  wall s")
    for name, duration, trial_s, encode_s, cost, trials, rungs, wall in rows:
        print(f"{name:9s} {duration:5.0f} s {trial_s:8.1f} {encode_s:15.1f} "
              f"{cost['cpu']:6.2f} ({cost['wall']:.2f}) "
              f"{cost['cpu_all']:12.2f} ({cost['wall_all']:.2f}) "
              f"{trials:14d} {rungs:6d} {wall:7.0f}")


def compare_with_apple(args) -> None:

    rows, rates, totals = [], [], {"chunks": 0, "within": 0, "encodes": 0, "capped": 0}
    for name in args.sources.split(","):
        source = source_file(args.work, name, args.duration)
        print(f"{name}: per-title ...", flush=True)
        # The floor of Apple's ladder, so both ladders span the same low end.
        stem = _out_stem(args, name)
        per_title = run_pipeline(source, stem + "-per-title", "per-title", args.preset,
                                 ["--min_kbps", "145"], args.reuse)
        rates.append((name, per_title))
        chunks, within, encodes, capped = gate_stats(per_title)
        for key, value in (("chunks", chunks), ("within", within), ("encodes", encodes),
                           ("capped", capped)):
            totals[key] += value
        if args.no_apple:
            continue
        print(f"{name}: apple ...", flush=True)
        apple = run_pipeline(source, stem + "-apple", "apple", args.preset, (), args.reuse)
        test, anchor = monotonic(ladder_points(per_title)), monotonic(ladder_points(apple))
        pooled = bd_rates(per_title, apple)
        bd = pooled["mean"]
        if not bd.startswith("n/a"):
            bd += " (" + ", ".join(f"{pooling}: {rate}" for pooling, rate in pooled.items()
                                   if pooling != "mean") + ")"
        bd += f"; at the top rung's VMAF: {top_saving(test, anchor)}"
        rows.append((name, bd, len(test), len(ladder_points(per_title)), len(anchor),
                     planning_cost(per_title), within, chunks, encodes / max(1, chunks),
                     capped, per_title, apple))

    print_rung_rates(rates, args)
    if rows:
        print(f"\nper-title vs Apple HLS ladder, x264 preset {args.preset}, {args.duration:g} s "
              f"sources, {os.cpu_count()} cores (BD-rate needs {MIN_POINTS}+ points)")
    for (name, bd, n_test, n_all, n_anchor, cost, within, chunks, per_chunk, capped,
         per_title, apple) in rows:
        print(f"\n{name}: BD-rate {bd}  [points: per-title {n_test}/{n_all}, apple {n_anchor}/9]")
        plan = per_title["plan"]
        print(f"  planning cost: {cost['cpu']:.2f} of the final encode's CPU seconds "
              f"({cost['cpu_all']:.2f} of encode+score); in summed wall seconds "
              f"{cost['wall']:.2f} ({cost['wall_all']:.2f}); {plan['trial_encodes']} trial "
              f"encodes, probe kept "
              f"{', '.join(f'{h}p' for h in plan['probe']['kept_heights'])}")
        encode_s, score_s = final_encode_s(per_title)
        print(f"  planning seconds: {_split(plan)}; CPU seconds: "
              f"{_split(plan, 'trial_cpu_split_s')}; final encode {encode_s:.1f} s, "
              f"its scoring {score_s:.1f} s ({cost['score_wall']:.2f} of encode time; "
              f"{cost['score_cpu']:.2f} in CPU seconds)")
        print(f"  gate: {within}/{chunks} chunks within [target-1, target+2] ({capped} held "
              f"under it by the VBV cap), {per_chunk:.2f} encodes per chunk")
        for label, report in (("per-title", per_title), ("apple", apple)):
            ladder = ", ".join(f"{r['height']}p {kbps:.0f}k/{vmaf:.1f}" for r, (kbps, vmaf) in
                               zip(report["ladder"], _by_ladder(report), strict=True))
            print(f"  {label:9s} ({report['_wall_s']:.0f} s): {ladder}")
    share = totals["within"] / max(1, totals["chunks"])
    print(f"\ngate accuracy over all sources: {share:.1%} of {totals['chunks']} chunks "
          f"({totals['capped']} held under the window by the VBV cap), "
          f"{totals['encodes'] / max(1, totals['chunks']):.2f} encodes per chunk")


def _out_stem(args, name: str) -> str:
    """Where a source's runs write, less the ladder's suffix."""
    return os.path.join(args.work, f"out-{name}" if args.duration == 16
                        else f"out-{name}-{args.duration:g}s")


def per_title_runs(args, name: str, option: str, listed: str, anchor: str, label: str
                   ) -> tuple[str, dict[str, dict]]:
    """The per-title pipeline on source `name` once per choice of `--option` that
    `listed` names (comma-separated; `anchor` first, always), with `--extra`: the output
    stem and the reports by choice."""
    choices = [anchor, *(c for c in listed.split(",") if c and c != anchor)]
    source = source_file(args.work, name, args.duration)
    stem = _out_stem(args, name)
    reports = {}
    for choice in choices:
        print(f"{name}: per-title, {choice} {label} ...", flush=True)
        suffix = f"grid-{choice}" if option == "segment_grid" else choice
        reports[choice] = run_pipeline(source, f"{stem}-per-title-{suffix}", "per-title",
                                       args.preset, ["--min_kbps", "145", f"--{option}", choice,
                                                     *args.extra.split()], args.reuse)
    return stem, reports


def compare_allocations(args) -> None:
    """Per source: the per-title pipeline once per `--allocation` mode, Apple's ladder
    beside them unless `--no_apple`; prints `allocation_figures`."""
    from benchmarks.allocation_figures import allocation_figures, print_allocations

    rows = []
    for name in args.sources.split(","):
        stem, reports = per_title_runs(args, name, "allocation", args.allocation, "constant",
                                       "allocation")
        apple = None
        if not args.no_apple:
            print(f"{name}: apple ...", flush=True)
            apple = run_pipeline(source_file(args.work, name, args.duration), stem + "-apple",
                                 "apple", args.preset, args.extra.split(), args.reuse)
        rows.append((name, reports, apple, allocation_figures(reports, apple)))
    print_allocations(rows, args)


def compare_grids(args) -> None:
    """Per source: the per-title pipeline once per `--segment_grid` choice of `--grids`
    (even, the anchor, always), with `--extra`; prints `grid_figures`."""
    from benchmarks.allocation_figures import grid_figures, print_grids

    rows = [(name, reports, grid_figures(reports)) for name in args.sources.split(",")
            for _, reports in [per_title_runs(args, name, "segment_grid", args.grids, "even",
                                              "grid")]]
    print_grids(rows, args)


def rung_rates(report: dict) -> list[dict]:
    """Per rung of the published ladder, top first: the rate planning predicted (the
    plan's `predicted_kbps`, else the hull's `kbps` at the rung's trial CRF, as plans
    made before the prediction said), the measured average rate and mean VMAF."""
    planned = report["plan"].get("rungs", [])
    by_id = {r["id"]: r for r in planned if "id" in r}
    rows = []
    for i, (entry, (kbps, vmaf)) in enumerate(zip(report["ladder"], _by_ladder(report),
                                                  strict=True)):
        rung = by_id.get(entry["id"]) or (planned[i] if i < len(planned) else {})
        predicted = rung.get("predicted_kbps", rung.get("kbps"))
        rows.append({"id": entry["id"], "predicted_kbps": predicted, "kbps": kbps,
                     "vmaf": vmaf, "error": predicted / kbps - 1 if predicted else None})
    return rows


def first_encode_hits(report: dict) -> tuple[int, int]:
    """(gated chunks whose first encode landed in [target-1, target+2], gated chunks)."""
    hits = chunks = 0
    for chunk, target in _gated_chunks(report):
        chunks += 1
        first = chunk["attempts"][0]["vmaf"] if chunk["attempts"] else chunk["vmaf"]["mean"]
        hits += target - GATE_BELOW <= first <= target + GATE_ABOVE
    return hits, chunks


def print_rung_rates(rates: list[tuple[str, dict]], args) -> None:
    """Per source: predicted against measured rate per rung, the first encodes' hit rate,
    encodes per chunk, and the ladder invariant on the measured ladder."""
    print(f"\nrate prediction per rung, x264 preset {args.preset}, {args.duration:g} s sources")
    for name, report in rates:
        rows = rung_rates(report)
        verdict = ladder_invariant([LadderRung(r["id"], r["kbps"], r["vmaf"]) for r in rows])
        hits, chunks = first_encode_hits(report)
        chunks_all, _, encodes, _ = gate_stats(report)
        worst = max((abs(r["error"]) for r in rows if r["error"] is not None), default=0.0)
        print(f"\n{name}: first encode in the window {hits}/{chunks} "
              f"({hits / max(1, chunks):.0%}), {encodes / max(1, chunks_all):.2f} encodes per "
              f"chunk, worst prediction error {worst:.0%}; ladder invariant "
              f"{'holds' if verdict['holds'] else 'BROKEN: ' + '; '.join(verdict['violations'])}")
        dropped = report["plan"].get("dropped_rungs") or []
        for line in dropped:
            print(f"  planning {line}")
        for r in rows:
            error = "n/a" if r["error"] is None else f"{r['error']:+.0%}"
            predicted = "n/a" if r["predicted_kbps"] is None else f"{r['predicted_kbps']:.0f}"
            print(f"  {r['id']:14s} predicted {predicted:>6s} kb/s, measured {r['kbps']:6.0f} "
                  f"kb/s ({error}), VMAF {r['vmaf']:.2f}")


def _split(plan: dict, key: str = "trial_cost_split_s") -> str:
    """Where the planning seconds went: the probe, the other samples, the calibration."""
    split = plan.get(key) or {}
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in split.items()) or "n/a"


def _by_ladder(report: dict) -> list[tuple[float, float]]:
    """ladder_points in the ladder's own order (tracks and ladder list the same renditions)."""
    order = {t["id"]: i for i, t in enumerate(report["ladder"])}
    tracks = sorted((t for t in report["tracks"] if t["kind"] == "video"),
                    key=lambda t: order[t["id"]])
    return [ladder_points({"tracks": [t]})[0] for t in tracks]


if __name__ == "__main__":
    sys.exit(main())
