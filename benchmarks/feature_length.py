"""Feature length: a long title against a short cut of it, and the goals at 2 hours.

    python benchmarks/feature_length.py [--minutes 120] [--cut_minutes 10] [--work DIR]

Makes (once, cached in `--work`) a `--minutes` source at 256x144 24 fps (a moving test
pattern under temporal noise, so encodes are not trivial; stereo audio; x264 ultrafast)
with an SRT track beside it in a title package, and the first `--cut_minutes` of it
(stream copy, same content), then runs, one after the other on this machine:
  1. the pipeline with its defaults (per-title ladder, VMAF) on the cut;
  2. the same on the long title;
  3. the same on the cut again: the two runs of the cut bracket the long run, and the cut's
     figures are their means (`bracketed`), so a machine that drifts steadily over the
     long run's minutes weighs on both sides of the ratio alike;
  4. the pipeline with `--ladder fixed --no_vmaf` on the long source (video and audio);
  5. one plain FFmpeg command making the same fixed-ladder renditions with the same x264
     settings, plus the audio (`benchmarks/overhead.py`'s baseline).
For the long run and the cut it prints: chunks, segments and chunk-renditions; the critical path by
stage, from the seconds at which the run logged each line (inspection: start to
"inspected"; planning: to "planned"; encode stage: to the last chunk encoded and scored;
tail: from there to "published"); the chunk encodes (with the gates' re-encodes) and the
encoders' CPU seconds per encode; the CPU seconds of the pipeline's own processes
(everything but FFmpeg and ffprobe) per chunk-rendition, and per chunk-rendition the
long run adds to the cut's (without the fixed costs: start-up, planning); peak RSS of
the Python process and of its process tree; the largest part and the largest key's
state in each gather (pickled bytes, from the `gathered_*_bytes` Beam distributions that
every gather updates as a key fires). Then the ratios, long over cut; the time ratio with
the long run's x264 CPU per encode brought to the cut's (the machine's drift between the
two runs taken out, a check beside the goal); and the goals with PASS/FAIL.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import Measured, run_measured
from benchmarks.overhead import baseline_argv
from media.core import ffmpeg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The tree whose pipeline the runs run (this benchmark's own)."""
WIDTH, HEIGHT, RATE = 256, 144, 24
PRESET, CRF, SEGMENT_S = "medium", 23.0, 4.0
"""The pipeline's defaults, which the fixed-ladder run and its baseline both use."""
NOISE = "noise=alls=12:allf=t+u"

TAIL_SHARE = 0.02
"""Goal: the tail (last chunk scored to title published) at most this share of the run."""
CPU_PER_CHUNK_S = 0.3
"""Goal: the pipeline's own CPU seconds per chunk-rendition, at most."""
RSS_GROWTH = 1.2
"""Goal: peak Python RSS of the long run over the cut's, at most."""
TIME_PER_LENGTH = (11.5 / 12, 12.5 / 12)
"""Goal: (time ratio) / (length ratio) within this range: 11.5x-12.5x for 12x the length."""
OVERHEAD = 1.10
"""Goal: the pipeline with --no_vmaf over one plain FFmpeg command, at most."""


# ---- the source ---------------------------------------------------------------------------

def srt_time(seconds: float) -> str:
    """SRT's HH:MM:SS,mmm."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(duration_s: float, every_s: float = 10.0, shown_s: float = 4.0) -> str:
    """A cue every `every_s` seconds, each shown `shown_s`, saying where it is."""
    cues = []
    start = 1.0
    while start + shown_s <= duration_s:
        cues.append(f"{len(cues) + 1}\n{srt_time(start)} --> {srt_time(start + shown_s)}\n"
                    f"Cue {len(cues) + 1} at {srt_time(start)[:8]}\n")
        start += every_s
    return "\n".join(cues)


def source_argv(path: str, duration_s: float) -> list[str]:
    """FFmpeg arguments for the benchmark's source: a noisy moving pattern, two tones."""
    video = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}:duration={duration_s},{NOISE}"
    tones = [f"sine=frequency={f}:sample_rate=48000:duration={duration_s}" for f in (440, 660)]
    return ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", tones[0], "-f", "lavfi", "-i",
            tones[1], "-filter_complex", "[1:a][2:a]join=inputs=2:channel_layout=stereo[a]",
            "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
            "-metadata:s:a:0", "language=eng", "-movflags", "+faststart", path]


def title_package(folder: str, name: str, video: str, duration_s: float) -> str:
    """Write NAME.title.json (the video and English SRT subtitles beside it); its path."""
    srt = os.path.join(folder, f"{name}-en.srt")
    with open(srt, "w", encoding="utf-8") as handle:
        handle.write(srt_text(duration_s))
    package = os.path.join(folder, f"{name}.title.json")
    with open(package, "w", encoding="utf-8") as handle:
        json.dump({"video": os.path.basename(video),
                   "subtitles": [{"uri": os.path.basename(srt), "language": "eng",
                                  "name": "English"}]}, handle, indent=2)
    return package


def make_sources(work: str, minutes: float, cut_minutes: float) -> tuple[str, str, str]:
    """The long video, and the long and cut title packages (made once; reused)."""
    folder = os.path.join(work, "sources")
    os.makedirs(folder, exist_ok=True)
    long_name, cut_name = f"feature-{minutes:g}m", f"feature-{minutes:g}m-cut-{cut_minutes:g}m"
    long_video = os.path.join(folder, long_name + ".mp4")
    cut_video = os.path.join(folder, cut_name + ".mp4")
    if not os.path.exists(long_video):
        print(f"making the source: {long_video}", flush=True)
        ffmpeg.run(ffmpeg.ffmpeg_argv(*source_argv(long_video + ".partial.mp4", minutes * 60)),
                   timeout_s=6 * 3600)
        os.replace(long_video + ".partial.mp4", long_video)
    if not os.path.exists(cut_video):
        ffmpeg.run(ffmpeg.ffmpeg_argv("-i", long_video, "-t", f"{cut_minutes * 60:g}",
                                      "-map", "0", "-c", "copy", "-movflags", "+faststart",
                                      cut_video + ".partial.mp4"))
        os.replace(cut_video + ".partial.mp4", cut_video)
    return (long_video, title_package(folder, long_name, long_video, minutes * 60),
            title_package(folder, cut_name, cut_video, cut_minutes * 60))


# ---- reading a run ------------------------------------------------------------------------

_TIMED = re.compile(r"^\s*(\d+\.\d+) (.*)$")
_CHUNKS_DONE = re.compile(r": encode(?:\+score)? (\d+)/(\d+) chunks ")
_GATHERED = re.compile(r"metrics: largest gathered part / key, pickled bytes: (.*)$")
_ENCODED = re.compile(r"metrics: chunks encoded ([\d,]+), reused [\d,]+, retried ([\d,]+), "
                      r"re-encoded by the gate ([\d,]+)")


@dataclass
class Stages:
    """Seconds of each stage on the critical path; None where its line was not logged."""

    startup_s: float | None = None
    inspection_s: float | None = None
    planning_s: float | None = None
    encode_s: float | None = None
    tail_s: float | None = None
    published_at_s: float | None = None


def timed_lines(log_path: str) -> list[tuple[float, str]]:
    """The (seconds since the start, text) of each line `run_measured(timed_lines=True)`
    logged."""
    found = []
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _TIMED.match(line)
            if match:
                found.append((float(match.group(1)), match.group(2)))
    return found


def stages(lines: list[tuple[float, str]], title: str) -> Stages:
    """The critical path of `title` from its logged lines: start to "processing" (the
    process's start-up), to "inspected", to "planned", to the last chunk encoded (and
    scored), to "published"."""
    def first(text: str) -> float | None:
        return next((t for t, line in lines if f"{title}: {text}" in line), None)

    startup = next((t for t, line in lines if " processing " in line and " source(s) into "
                    in line), None)
    inspected, planned, published = first("inspected"), first("planned"), first("published")
    done = [t for t, line in lines if f"{title}: encode" in line and _CHUNKS_DONE.search(line)
            and int(_CHUNKS_DONE.search(line).group(1)) == int(_CHUNKS_DONE.search(line).group(2))]
    last_chunk = done[-1] if done else None
    return Stages(
        startup_s=startup,
        inspection_s=inspected - (startup or 0.0) if inspected is not None else None,
        planning_s=planned - inspected if planned is not None and inspected is not None else None,
        encode_s=(last_chunk - (planned if planned is not None else inspected)
                  if last_chunk is not None and (planned or inspected) is not None else None),
        tail_s=published - last_chunk if published is not None and last_chunk else None,
        published_at_s=published)


def gathered_bytes(lines: list[tuple[float, str]]) -> dict[str, tuple[int, int]]:
    """{gather stage: (largest part, largest key's parts together)}, pickled bytes, from
    the run's metrics summary."""
    for _, line in lines:
        match = _GATHERED.search(line)
        if match:
            found = {}
            for item in match.group(1).split("; "):
                stage, sizes = item.rsplit(" ", 3)[0], item.rsplit(" ", 3)[1:]
                found[stage] = (int(sizes[0].replace(",", "")), int(sizes[2].replace(",", "")))
            return found
    return {}


def chunk_encodes(lines: list[tuple[float, str]]) -> int | None:
    """The chunk encodes the run made (first encodes, retries and the gates' re-encodes),
    from its metrics summary; None where it was not logged."""
    for _, line in lines:
        match = _ENCODED.search(line)
        if match:
            return sum(int(group.replace(",", "")) for group in match.groups())
    return None


def at_equal_encoder_speed(long: Run, cut: Run) -> float | None:
    """The long run's wall time over the cut's, with the long run's x264 CPU seconds per
    chunk encode brought to the cut's: what the ratio would be had the machine (and the
    CRFs each run's planning chose) made every encode cost the same in both runs. The two
    runs are minutes apart on a shared machine whose x264 speed drifts by 10-15 %; this
    separates that drift from what the pipeline scales. A check, not a goal."""
    long_per = _per(long.measured.encoder_cpu_s, long.encodes)
    cut_per = _per(cut.measured.encoder_cpu_s, cut.encodes)
    if not (long_per and cut_per):
        return None
    return long.measured.wall_s / cut.measured.wall_s / (long_per / cut_per)


def bracketed(before: Run, after: Run) -> Run:
    """The cut's run as the mean of its two runs, one before the long run and one after:
    each timed figure (wall, CPU, RSS, stage seconds) averaged, the counts and gathered
    sizes of the first (the same title makes the same chunks; the encodes, should the two
    differ, the mean rounded)."""
    def mean(a, b):
        return None if a is None or b is None else (a + b) / 2

    measured = dataclasses.replace(before.measured, **{
        name: mean(getattr(before.measured, name), getattr(after.measured, name))
        for name in ("wall_s", "peak_rss_mib", "peak_tree_rss_mib", "encoder_cpu_s",
                     "encode_span_s", "own_cpu_s")})
    timed = Stages(**{f.name: mean(getattr(before.stages, f.name), getattr(after.stages, f.name))
                      for f in dataclasses.fields(Stages)})
    encodes = (None if before.encodes is None or after.encodes is None
               else round((before.encodes + after.encodes) / 2))
    return dataclasses.replace(before, measured=measured, stages=timed, encodes=encodes)


def read_report(output: str, title: str) -> dict:
    """The published title's report.json."""
    found = sorted(glob.glob(os.path.join(output, title, "**", "report.json"), recursive=True),
                   key=len)
    if not found:
        raise SystemExit(f"{title}: no report.json under {output}")
    with open(found[0], encoding="utf-8") as handle:
        return json.load(handle)


@dataclass
class Run:
    """What one pipeline run shows."""

    title: str
    measured: Measured
    chunks: int = 0
    segments: int = 0
    renditions: int = 0
    chunk_renditions: int = 0
    encodes: int | None = None
    """Chunk encodes made: first encodes, retries and the gates' re-encodes."""
    stages: Stages = field(default_factory=Stages)
    gathered: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def cpu_per_chunk_s(self) -> float:
        return self.measured.own_cpu_s / self.chunk_renditions if self.chunk_renditions else 0.0


def read_run(title: str, output: str, measured: Measured, log_path: str) -> Run:
    report = read_report(output, title)
    video = [t for t in report["tracks"] if t["kind"] == "video"]
    lines = timed_lines(log_path)
    return Run(title, measured, chunks=len(video[0]["chunks"]) if video else 0,
               segments=video[0]["segments"] if video else 0, renditions=len(video),
               chunk_renditions=sum(len(t["chunks"]) for t in video),
               encodes=chunk_encodes(lines), stages=stages(lines, title),
               gathered=gathered_bytes(lines))


# ---- goals --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Goal:
    name: str
    value: str
    passed: bool | None
    """None where the figure is missing."""


def goals(long: Run, cut: Run, length_ratio: float, no_vmaf_s: float | None,
          baseline_s: float | None) -> list[Goal]:
    """The goals at feature length, each with its figure."""
    found = []
    tail = long.stages.tail_s
    found.append(Goal(f"tail <= {TAIL_SHARE:.0%} of the long run",
                      f"{tail:.1f} s = {tail / long.measured.wall_s:.1%}" if tail is not None
                      else "n/a",
                      None if tail is None else tail <= TAIL_SHARE * long.measured.wall_s))
    found.append(Goal(f"pipeline's own CPU <= {CPU_PER_CHUNK_S} s per chunk-rendition",
                      f"{long.cpu_per_chunk_s:.3f} s",
                      long.cpu_per_chunk_s <= CPU_PER_CHUNK_S if long.chunk_renditions else None))
    growth = long.measured.peak_rss_mib / cut.measured.peak_rss_mib
    found.append(Goal(f"peak Python RSS, long over cut <= {RSS_GROWTH}x", f"{growth:.2f}x",
                      growth <= RSS_GROWTH))
    time_ratio = long.measured.wall_s / cut.measured.wall_s
    low, high = (length_ratio * r for r in TIME_PER_LENGTH)
    found.append(Goal(f"{length_ratio:g}x the length costs {low:.2f}x-{high:.2f}x the time",
                      f"{time_ratio:.2f}x", low <= time_ratio <= high))
    if no_vmaf_s and baseline_s:
        ratio = no_vmaf_s / baseline_s
        found.append(Goal(f"--no_vmaf over one FFmpeg command <= {OVERHEAD:.2f}x",
                          f"{ratio:.2f}x", ratio <= OVERHEAD))
    else:
        found.append(Goal(f"--no_vmaf over one FFmpeg command <= {OVERHEAD:.2f}x", "not run",
                          None))
    return found


def verdict(goal: Goal) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a "}[goal.passed]


# ---- printing -----------------------------------------------------------------------------

def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:7.2f}x" if a is not None and b else f"{'':>8s}"


def report_lines(long: Run, cut: Run, minutes: float, cut_minutes: float) -> list[str]:
    """The table of both runs and their ratios."""
    rows = [
        ("chunks", long.chunks, cut.chunks),
        ("segments per rendition", long.segments, cut.segments),
        ("video renditions", long.renditions, cut.renditions),
        ("chunk-renditions", long.chunk_renditions, cut.chunk_renditions),
        ("wall s", long.measured.wall_s, cut.measured.wall_s),
        ("  start-up s (to the first log line)", long.stages.startup_s, cut.stages.startup_s),
        ("  inspection s", long.stages.inspection_s, cut.stages.inspection_s),
        ("  planning s", long.stages.planning_s, cut.stages.planning_s),
        ("  encode stage s", long.stages.encode_s, cut.stages.encode_s),
        ("  tail s (last chunk scored to published)", long.stages.tail_s, cut.stages.tail_s),
        ("pipeline's own CPU s", long.measured.own_cpu_s, cut.measured.own_cpu_s),
        ("  per chunk-rendition", long.cpu_per_chunk_s, cut.cpu_per_chunk_s),
        ("  per chunk-rendition the long run adds", _added_cpu_per_chunk(long, cut), None),
        ("chunk encodes (with retries, gates' re-encodes)", long.encodes, cut.encodes),
        ("encoders' CPU s (libx264 FFmpeg)", long.measured.encoder_cpu_s,
         cut.measured.encoder_cpu_s),
        ("  per chunk encode", _per(long.measured.encoder_cpu_s, long.encodes),
         _per(cut.measured.encoder_cpu_s, cut.encodes)),
        ("peak RSS python MiB", long.measured.peak_rss_mib, cut.measured.peak_rss_mib),
        ("peak RSS process tree MiB", long.measured.peak_tree_rss_mib,
         cut.measured.peak_tree_rss_mib),
    ]
    for stage in sorted(set(long.gathered) | set(cut.gathered)):
        a, b = long.gathered.get(stage, (None, None)), cut.gathered.get(stage, (None, None))
        rows.append((f"{stage}: largest part, bytes", a[0], b[0]))
        rows.append((f"{stage}: largest key's state, bytes", a[1], b[1]))
    lines = [f"{'':50s}{minutes:>9g}m {cut_minutes:>9g}m {'ratio':>8s}"]
    for name, a, b in rows:
        lines.append(f"{name:50s}{_cell(a)} {_cell(b)} {_ratio(a, b)}")
    return lines


def _added_cpu_per_chunk(long: Run, cut: Run) -> float | None:
    """The pipeline's own CPU seconds per chunk-rendition the long run has beyond the cut's:
    its cost per chunk without the fixed costs (start-up, planning, packaging)."""
    added = long.chunk_renditions - cut.chunk_renditions
    if added <= 0:
        return None
    return (long.measured.own_cpu_s - cut.measured.own_cpu_s) / added


def _per(total: float | None, count: int | None) -> float | None:
    return total / count if total is not None and count else None


def _cell(value: float | int | None) -> str:
    if value is None:
        return f"{'n/a':>10s}"
    if isinstance(value, int):
        return f"{value:10,d}"
    return f"{value:10.2f}"


# ---- main ---------------------------------------------------------------------------------

def run_pipeline(name: str, source: str, out: str, extra: list[str]) -> Measured:
    shutil.rmtree(out, ignore_errors=True)
    print(f"{name} ...", flush=True)
    argv = [sys.executable, "-m", "pipeline", "--input", source, "--output", out, *extra]
    measured = run_measured(argv, out + ".log", env={"PYTHONPATH": ROOT}, timed_lines=True)
    if measured.returncode:
        raise SystemExit(f"{name} failed; see {out}.log")
    print(f"{name}: {measured.wall_s:.1f} s", flush=True)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--cut_minutes", type=float, default=10.0)
    parser.add_argument("--work", default="/tmp/ladderflow-bench-feature")
    parser.add_argument("--skip_overhead", action="store_true",
                        help="leave out the --no_vmaf run and its FFmpeg baseline")
    args = parser.parse_args()
    if not 0 < args.cut_minutes < args.minutes:
        parser.error("--cut_minutes must be above 0 and below --minutes")
    os.makedirs(args.work, exist_ok=True)
    long_video, long_package, cut_package = make_sources(args.work, args.minutes,
                                                         args.cut_minutes)

    runs = []
    for package, suffix in ((cut_package, ""), (long_package, ""), (cut_package, "-again")):
        title = os.path.basename(package).removesuffix(".title.json")
        out = os.path.join(args.work, "out-" + title + suffix)
        measured = run_pipeline(f"{title}{suffix}: defaults (per-title, VMAF)", package, out,
                                [])
        runs.append(read_run(title, out, measured, out + ".log"))
    cut_before, long, cut_after = runs
    cut = bracketed(cut_before, cut_after)

    no_vmaf_s = baseline_s = None
    if not args.skip_overhead:
        out = os.path.join(args.work, "out-novmaf")
        no_vmaf_s = run_pipeline(f"{long.title}: --ladder fixed --no_vmaf", long_video, out,
                                 ["--ladder", "fixed", "--no_vmaf"]).wall_s
        base_dir = os.path.join(args.work, "baseline")
        shutil.rmtree(base_dir, ignore_errors=True)
        os.makedirs(base_dir)
        print("baseline: one FFmpeg command ...", flush=True)
        base = run_measured(baseline_argv(long_video, base_dir, PRESET, CRF, Fraction(RATE),
                                          SEGMENT_S, width=WIDTH, height=HEIGHT),
                            os.path.join(args.work, "baseline.log"))
        if base.returncode:
            raise SystemExit(f"the baseline failed; see {args.work}/baseline.log")
        baseline_s = base.wall_s

    print(f"\nfeature length: {WIDTH}x{HEIGHT} {RATE} fps with noise, stereo audio, SRT; "
          f"{args.minutes:g} min against its first {args.cut_minutes:g} min; defaults "
          f"(per-title, VMAF, x264 {PRESET}); {os.cpu_count()} cores")
    per_encode = [_per(r.measured.encoder_cpu_s, r.encodes) for r in (cut_before, cut_after)]
    print(f"the cut's column: the mean of its runs before and after the long run (wall "
          f"{cut_before.measured.wall_s:.1f} and {cut_after.measured.wall_s:.1f} s; x264 CPU "
          f"per chunk encode {_cell(per_encode[0]).strip()} and {_cell(per_encode[1]).strip()} s)")
    for line in report_lines(long, cut, args.minutes, args.cut_minutes):
        print(line)
    equal = at_equal_encoder_speed(long, cut)
    if equal is not None:
        print(f"wall s ratio at equal x264 CPU per chunk encode (the machine's drift between "
              f"the runs taken out; a check, not a goal): {equal:.2f}x")
    if no_vmaf_s and baseline_s:
        print(f"{args.minutes:g} min, fixed ladder: pipeline --no_vmaf {no_vmaf_s:.1f} s, "
              f"one FFmpeg command {baseline_s:.1f} s")
    print("goals:")
    for goal in goals(long, cut, args.minutes / args.cut_minutes, no_vmaf_s, baseline_s):
        print(f"  {verdict(goal)}  {goal.name}: {goal.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
