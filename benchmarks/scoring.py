"""The cost of scoring: VMAF time over encode time, and the error of scoring faster.

    python benchmarks/scoring.py [--duration 12] [--preset medium] [--sources ...]

For each generated 1080p25 source (the per-title benchmark's cartoon, detailed and grain)
it encodes every chunk of the fixed ladder as the pipeline does (`media.encode.chunk`: staged
span, every rendition in one FFmpeg process, x264 at the pipeline's settings), and scores
each encode at the display resolution with libvmaf on every frame, then with frame
subsampling at odd steps (`--vmaf_subsample`: every n-th frame; an odd step never locks
onto a GOP pattern), each time three ways: against the source decoded again; against the
chunk's reference frames as an encode process keeps them (`media.quality.vmaf.store_reference`),
one process per rendition; and as the pipeline scores a chunk's first encodes, every
rendition in one process that reads the kept reference once
(`media.encode.scoring.scored_together`).
It prints, in this one run on this machine:

- encode time, and what keeping the every-frame reference adds to it (the same encodes
  made once more without it);
- scoring time over encode time, each of the three ways, for every frame and each step;
- the error of each step's pooled (mean) chunk score against every-frame scoring: the
  mean and the largest absolute difference over all chunks; and the largest difference
  between scores from the kept reference and from the decoded source;
- the step the per-title plan would choose: the probe trial (the middle 1 s sample at
  every candidate resolution, as the planner runs it) measures how much frame scores
  vary (`media.plan.planning.frame_spread` at the ladder's resolutions), which sets the
  frames each chunk needs scored (`media.quality.vmaf.scored_frames_needed`), and so the step
  (`media.quality.vmaf.chunk_step`); that step's cost and error are measured with the others.

Each encode and each scoring (one process) has the cores to itself, one after the other,
so the times compare like for like. The pipeline keeps one reference, for its
own step, in its encode process; the references of the other steps are kept here by one
more process per chunk, which is not timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile

import ffmpeg as ffmpeg_python

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.per_title import SOURCES, make_source
from media.core import ffmpeg
from media.core.config import JobConfig
from media.core.types import ChunkTask, EncodeSettings
from media.encode.chunk import encode_renditions, stage_chunk
from media.encode.commands import chunk_window_s, source_frames
from media.encode.encoded import rendition_scratch
from media.encode.scoring import reference_file, score_encoded, scored_together, vmaf_size
from media.encode.staging import stage_span
from media.inspect.probe import inspect_source
from media.plan.chunking import grid_chunks, segment_grid
from media.plan.ladder import fixed_ladder, vmaf_height
from media.plan.planning import frame_spread
from media.plan.trials import probe_tasks, run_trials
from media.quality import vmaf
from media.quality.vmaf import chunk_step, scored_frames_needed

SEGMENT_S, CHUNK_SEGMENTS = 4.0, 3
WAYS = ("decoded", "stored")


def chunk_groups(path: str, preset: str) -> list[list[ChunkTask]]:
    """The fixed ladder's chunk tasks for `path`, as the pipeline's Split makes them,
    grouped by chunk (every rendition of a chunk is encoded in one process)."""
    source = inspect_source(path, path, os.path.splitext(os.path.basename(path))[0])
    grid = segment_grid(source.frame_rate, SEGMENT_S, CHUNK_SEGMENTS)
    settings = EncodeSettings(preset=preset, vmaf_backend="libvmaf")
    chunks = grid_chunks(source.frame_count, grid)
    return [[ChunkTask(source=source, rendition=rendition, chunk=chunk,
                       chunk_count=len(chunks), grid=grid, output_root="",
                       settings=settings, vmaf_height=vmaf_height(source))
             for rendition in fixed_ladder(source)] for chunk in chunks]


def keep_references(task: ChunkTask, staged_path: str, work: str, steps: list[int]) -> dict:
    """Keep the chunk's reference frames for each of `steps` in one process; {step: path}."""
    width, height = vmaf_size(task)
    frames = source_frames(staged_path, task.source, task.chunk, task.settings.decoder)
    copies = frames.filter_multi_output("split", len(steps))
    paths = {step: reference_file(work, task, step) for step in steps}
    outputs = [vmaf.store_reference(vmaf.reference_frames(
        copies[i], task.source, width, height, step), paths[step])
        for i, step in enumerate(steps)]
    ffmpeg.run(ffmpeg.ffmpeg_argv(*ffmpeg_python.merge_outputs(*outputs).get_args()))
    return paths


def planned_step(path: str, step: int) -> tuple[float | None, int, int]:
    """(frame score spread, frames needed, step) the per-title plan would give the
    source's first chunk, from its probe trial, for the configured `step`."""
    group = chunk_groups(path, "medium")[0]
    source = group[0].source
    config = JobConfig(output_root="")
    task = probe_tasks(source, config, group[0].grid)[0]
    with tempfile.TemporaryDirectory(prefix="ladderflow-bench-probe-") as scratch:
        staged = stage_span(path, *chunk_window_s(source, task.span), f"{scratch}/span.mkv",
                            path)
        encodes, _, _ = run_trials(task, staged, scratch)
    spread = frame_spread(encodes, [t.rendition.height for t in group])
    frames = scored_frames_needed(spread)
    return spread, frames, chunk_step(group[0].chunk.frame_count, step, frames)


def measure(path: str, preset: str, steps: list[int]) -> dict:
    """Encode and score every chunk: {'encode_s', 'plain_s' (the encodes without a kept
    reference), 'score_s': {way: {step: s}}, 'errors': {step: [..]}, 'drift': {step: [..]}}."""
    all_steps = [1, *steps]
    encode_s = plain_s = 0.0
    score_s = {way: dict.fromkeys(all_steps, 0.0) for way in (*WAYS, "together")}
    errors: dict[int, list[float]] = {step: [] for step in steps}
    drift: dict[int, list[float]] = {step: [] for step in all_steps}
    with tempfile.TemporaryDirectory(prefix="ladderflow-bench-scoring-") as scratch:
        for group in chunk_groups(path, preset):
            work = os.path.join(scratch, str(group[0].chunk.index))
            os.makedirs(work)
            staged = stage_chunk(group[0], path, work)
            plain = encode_renditions([dataclasses.replace(t, score_vmaf=False) for t in group],
                                      staged, os.path.join(work, "plain"))
            plain_s += sum(_ok(e).encode_s for e in plain)
            firsts = [_ok(e) for e in encode_renditions(group, staged, work, vmaf_subsample=1)]
            encode_s += sum(e.encode_s for e in firsts)
            references = {1: firsts[0].reference_path,
                          **keep_references(group[0], staged.path, work, steps)}
            for step in all_steps:  # what the pipeline does: one process per chunk
                together = os.path.join(work, f"together-{step}")
                tasks = [dataclasses.replace(t, vmaf_subsample=step) for t in group]
                done = scored_together(tasks, [dataclasses.replace(
                    e, reference_path=references[step]) for e in firsts], together)
                score_s["together"][step] += sum(_ok(d).score_s for d in done)
            for task, encoded in zip(group, firsts, strict=True):
                out = rendition_scratch(work, task)
                means: dict[tuple[str, int], float] = {}
                for step in all_steps:
                    for way in WAYS:
                        score, seconds, _ = score_encoded(
                            task, encoded.path, staged.path,
                            os.path.join(out, f"vmaf-{way}-{step}.json"), step,
                            reference_path=references[step] if way == "stored" else "")
                        score_s[way][step] += seconds
                        means[way, step] = score.mean
                    drift[step].append(means["stored", step] - means["decoded", step])
                    if step != 1:
                        errors[step].append(means["decoded", step] - means["decoded", 1])
                print(f"  {task.rendition.rendition_id} chunk {task.chunk.index}: "
                      f"VMAF {means['decoded', 1]:.2f}; "
                      + ", ".join(f"step {s} {e[-1]:+.2f}" for s, e in errors.items())
                      + f"; stored-decoded max {max(abs(d[-1]) for d in drift.values()):.4f}",
                      flush=True)
            shutil.rmtree(work)
    return {"encode_s": encode_s, "plain_s": plain_s, "score_s": score_s, "errors": errors,
            "drift": drift}


def _ok(encoded):
    if isinstance(encoded, BaseException):
        raise encoded
    return encoded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--steps", default="3,5,9")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-scoring")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    steps = [int(s) for s in args.steps.split(",")]
    results, planned = {}, {}
    for name in args.sources.split(","):
        path = os.path.join(args.work, f"{name}-{args.duration:g}s.mp4")
        if not os.path.exists(path):
            make_source(path, SOURCES[name], args.duration)
        planned[name] = planned_step(path, JobConfig.vmaf_subsample)
        print(f"{name}: the plan's step: {planned[name]}; encoding and scoring the fixed "
              f"ladder ...", flush=True)
        results[name] = measure(path, args.preset, sorted({*steps, planned[name][2]}))

    all_steps = [1, *steps]
    print(f"\nscoring cost, fixed ladder, x264 preset {args.preset}, {args.duration:g} s 1080p25 "
          f"sources, VMAF at 1080p, {os.cpu_count()} cores")
    print("encode s: every rendition of a chunk in one process, keeping the every-frame "
          "reference (in brackets: what keeping it adds)")
    print("score/encode: decoding the source / reading the kept reference / reading it once "
          "for every rendition of the chunk, in one process (the pipeline)")
    print("source     encode s (keep)  " + "  ".join(f"{'step ' + str(s):>20s}"
                                                   for s in all_steps))
    for name, r in results.items():
        keep = r["encode_s"] - r["plain_s"]
        cells = [" / ".join(f"{r['score_s'][way][s] / r['encode_s']:.2f}"
                            for way in (*WAYS, "together")) for s in all_steps]
        print(f"{name:9s} {r['encode_s']:9.1f} ({keep:+5.1f})  "
              + "  ".join(f"{c:>20s}" for c in cells))
    print("\npooled (mean) error against every frame, mean/max; then the largest "
          "difference between stored and decoded scores at any step")
    print("source   " + "  ".join(f"{'step ' + str(s):>11s}" for s in steps)
          + "  stored-decoded")
    for name, r in results.items():
        cells = []
        for step in steps:
            errs = [abs(e) for e in r["errors"][step]]
            cells.append(f"{sum(errs) / len(errs):.2f}/{max(errs):.2f}")
        largest = max(abs(d) for ds in r["drift"].values() for d in ds)
        print(f"{name:9s}" + "  ".join(f"{c:>11s}" for c in cells) + f"  {largest:14.4f}")
    print(f"\nthe per-title plan's step (configured step {JobConfig.vmaf_subsample}): from the "
          "spread of the probe trial's frame scores, the frames a chunk needs scored; "
          "score/encode the pipeline's way (one process per chunk); error mean/max")
    print("source     spread  frames  first chunk's step  score/encode  error")
    for name, (spread, frames, step) in planned.items():
        r = results[name]
        errs = [abs(e) for e in r["errors"].get(step, [0.0])]
        print(f"{name:9s} {'-' if spread is None else f'{spread:6.2f}'} {frames:7d} "
              f"{step:19d} {r['score_s']['together'][step] / r['encode_s']:13.2f}  "
              f"{sum(errs) / len(errs):.2f}/{max(errs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
