"""Where a chunk's time goes in the encode stage, step by step, per chunk-rendition.

    python benchmarks/chunk_overhead.py [--seconds 120] [--tree /tmp/old-checkout]

Makes `benchmarks/feature_length.py`'s 256x144 24 fps noisy source of `--seconds`, plans
the fixed ladder with `--no_vmaf` (as `--ladder fixed --no_vmaf` does), and runs the
encode stage's DoFn on every chunk group in this process, one after another, with each
step of it wrapped: its wall seconds, this process's CPU seconds and its FFmpeg
children's CPU seconds (`RUSAGE_CHILDREN`), each step's own (less the wrapped steps it
calls). `--tree` runs the code of another checkout (an older commit in a `git worktree`)
with this same script, so two code paths are measured alike. CPU seconds hold up when
other work shares the machine; wall seconds do not.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict

STEPS = [
    # (module, attribute, label): wrapped where the module has the attribute.
    ("transforms.encode", "stage_chunk", "stage the span (PyAV copy)"),
    ("transforms.encode", "encode_renditions", "encode process (all renditions)"),
    ("media.encode.chunk", "count_frames", "frame count of the encode"),
    ("media.encode.chunk", "fragmented_chunk", "split the encode into segments"),
    ("transforms.encode", "scored_together", "scoring (none with --no_vmaf)"),
    ("transforms.encode", "encode_to_target", "gate (one encode, no score)"),
    ("transforms.encode", "segment_chunk", "cut into CMAF segments"),
    ("media.package.assemble", "fragment_argv", "  (its remux process)"),
    ("transforms.encode", "write_segments", "write segments"),
    ("transforms.encode", "iframe_range", "I-frame ranges"),
    ("transforms.encode", "chunk_record", "record"),
    ("transforms._storage", "write_bytes", "write init and segments (bytes)"),
    ("transforms._storage", "write_json", "write record"),
    ("transforms.encode", "_segments_in_place", "reuse check"),
]


class Profiler:
    """Inclusive and own (less wrapped callees) wall, own-CPU and children-CPU seconds."""

    def __init__(self):
        self.own = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
        self._stack: list[list[float]] = []

    @staticmethod
    def _now() -> tuple[float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.perf_counter(), time.process_time(),
                children.ru_utime + children.ru_stime)

    def wrap(self, label: str, func):
        def wrapped(*args, **kwargs):
            start = self._now()
            self._stack.append([0.0, 0.0, 0.0])
            try:
                return func(*args, **kwargs)
            finally:
                inner = self._stack.pop()
                took = [b - a for a, b in zip(start, self._now(), strict=True)]
                mine = self.own[label]
                for i in range(3):
                    mine[i] += took[i] - inner[i]
                mine[3] += 1
                if self._stack:
                    for i in range(3):
                        self._stack[-1][i] += took[i]
        return wrapped


def install(profiler: Profiler) -> None:
    for module_name, attr, label in STEPS:
        module = importlib.import_module(module_name)
        if not hasattr(module, attr):
            continue
        if attr == "fragment_argv":  # the remux process: time the ffmpeg.run after it
            _wrap_remux(module, profiler, label)
            continue
        setattr(module, attr, profiler.wrap(label, getattr(module, attr)))


def _wrap_remux(assemble, profiler: Profiler, label: str) -> None:
    """Time the `ffmpeg.run` that `segment_chunk` makes (the remux process)."""
    import types

    real_run = assemble.ffmpeg.run
    timed = profiler.wrap(label, real_run)
    assemble.ffmpeg = types.SimpleNamespace(
        run=timed, ffmpeg_argv=assemble.ffmpeg.ffmpeg_argv)


def _baseline(source_path: str, source, args) -> tuple[float, float]:
    """CPU and wall seconds of `benchmarks/overhead.py`'s one FFmpeg command making the same
    renditions of the whole source (its audio output left out)."""
    from benchmarks.overhead import baseline_argv
    from media.core import ffmpeg

    folder = tempfile.mkdtemp(prefix="baseline-", dir=args.work)
    argv = baseline_argv(source_path, folder, args.preset, 23.0, source.frame_rate, 4.0,
                         width=source.width, height=source.height)
    argv = argv[:argv.index("0:a:0") - 1]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = ffmpeg.run(argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), run.wall_s


def _whole_pipeline(tree: str, source_path: str, args) -> dict:
    """The whole pipeline with `--ladder fixed --no_vmaf` on the source, run from `tree`:
    wall seconds, its x264 processes' CPU seconds and its own (non-FFmpeg) CPU seconds."""
    from benchmarks._measure import run_measured

    out = tempfile.mkdtemp(prefix="pipeline-", dir=args.work)
    argv = [sys.executable, "-m", "pipeline", "--input", source_path, "--output", out,
            "--ladder", "fixed", "--no_vmaf", "--preset", args.preset]
    measured = run_measured(argv, out + ".log", env={"PYTHONPATH": tree})
    if measured.returncode:
        raise SystemExit(f"the pipeline failed; see {out}.log")
    return {"wall_s": measured.wall_s, "encoder_cpu_s": measured.encoder_cpu_s,
            "own_cpu_s": measured.own_cpu_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--tree", default="", help="checkout whose code to run")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(),
                                                       "ladderflow-bench-chunk"))
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--json", default="", help="write the figures there too")
    parser.add_argument("--pipeline", action="store_true",
                        help="also run the whole pipeline (--ladder fixed --no_vmaf)")
    parser.add_argument("--baseline", action="store_true",
                        help="also measure one plain FFmpeg command making the renditions")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree or os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    sys.path.insert(0, tree)

    from benchmarks.feature_length import source_argv
    from media.core import ffmpeg
    from media.core.config import JobConfig
    from media.core.types import EncodeSettings, TitlePlan
    from media.inspect.probe import inspect_source
    from media.plan.chunking import segment_grid
    from media.plan.ladder import fixed_ladder
    from transforms.encode import _EncodeChunkFn
    from transforms.split import chunk_groups, plan_tasks

    os.makedirs(args.work, exist_ok=True)
    source_path = os.path.join(args.work, f"source-{args.seconds:g}s.mp4")
    if not os.path.isfile(source_path):
        ffmpeg.run(ffmpeg.ffmpeg_argv(*source_argv(source_path, args.seconds)))
    out = tempfile.mkdtemp(prefix="out-", dir=args.work)
    config = JobConfig(output_root=out, ladder="fixed", score_vmaf=False,
                       encode=EncodeSettings(preset=args.preset))
    source = inspect_source(source_path, source_path, "bench")
    grid = segment_grid(source.frame_rate, config.segment_s, config.chunk_segments)
    plan = TitlePlan(source, tuple(fixed_ladder(source, crf=config.crf)), "fixed", grid)
    tasks, _, _ = plan_tasks(plan, config)
    groups = chunk_groups(tasks)

    profiler = Profiler()
    install(profiler)
    dofn = _EncodeChunkFn(config.tool_timeout_s)
    whole = profiler.wrap("rest of the DoFn call", lambda group: list(dofn.process(group)))
    results = [r for group in groups for r in whole(group)]
    import transforms.encode
    print("code:", os.path.dirname(os.path.dirname(os.path.abspath(transforms.encode.__file__))))
    failed = [r for r in results if not hasattr(r, "segments")]
    if failed:
        print("failed:", failed, file=sys.stderr)
        return 1
    renditions = len(results)
    rows = {label: [v / renditions for v in values[:3]] + [values[3]]
            for label, values in profiler.own.items()}
    print(f"tree {tree}: {len(groups)} chunk groups, {renditions} chunk-renditions "
          f"({len(plan.renditions)} renditions)")
    print(f"{'step (own seconds per chunk-rendition)':42} {'wall':>8} {'py CPU':>8} "
          f"{'FFmpeg CPU':>10} {'calls':>6}")
    for label, (wall, cpu, child, calls) in sorted(rows.items(), key=lambda r: -r[1][1] - r[1][2]):
        print(f"{label:42} {wall:8.4f} {cpu:8.4f} {child:10.4f} {calls:6d}")
    baseline = None
    if args.baseline:
        cpu_s, wall_s = _baseline(source_path, source, args)
        baseline = cpu_s / renditions
        print(f"{'one plain FFmpeg command (no audio)':42} {wall_s / renditions:8.4f} "
              f"{'':8} {baseline:10.4f}   ({wall_s:.2f} s wall in all)")
    whole = _whole_pipeline(tree, source_path, args) if args.pipeline else None
    if whole is not None:
        print("whole pipeline, --ladder fixed --no_vmaf: " + ", ".join(
            f"{k} {v:.2f} ({v / renditions:.3f} per chunk-rendition)" for k, v in whole.items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"tree": tree, "chunk_renditions": renditions, "rows": rows,
                       "baseline_cpu_s": baseline, "pipeline": whole}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
