"""The cost of scoring: VMAF time over encode time, and the error of scoring faster.

    python benchmarks/scoring.py [--duration 12] [--preset medium] [--sources ...]

For each generated 1080p25 source (the per-title benchmark's cartoon, detailed and grain)
it encodes every chunk of the fixed ladder with the pipeline's own functions
(`media.encode`: staged span, x264 at the pipeline's settings) and scores each encode at
the display resolution with libvmaf on every frame, then again with frame subsampling at
odd steps (`--vmaf_subsample`: every n-th frame; an odd step never locks onto a GOP
pattern). It prints, in this one run on this machine:

- scoring time over encode time for every frame and for each step;
- the error of each step's pooled (mean) chunk score against every-frame scoring: the
  mean and the largest absolute difference over all chunks.

Each encode and each scoring is one FFmpeg process with the cores to itself, one after
the other, so the times compare like for like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.per_title import SOURCES, make_source
from media.chunking import plan_chunks, segment_frames
from media.encode import encode_staged, score_encoded, stage_chunk
from media.ladder import fixed_ladder, vmaf_height
from media.probe import inspect_source
from media.types import ChunkTask, EncodeSettings

SEGMENT_S, CHUNK_SEGMENTS = 4.0, 3


def chunk_tasks(path: str, preset: str) -> list[ChunkTask]:
    """The fixed ladder's chunk tasks for `path`, as the pipeline's Split makes them."""
    source = inspect_source(path, path, os.path.splitext(os.path.basename(path))[0])
    frames = segment_frames(source.frame_rate, SEGMENT_S)
    settings = EncodeSettings(preset=preset, vmaf_backend="libvmaf")
    chunks = plan_chunks(source.frame_count, frames, CHUNK_SEGMENTS)
    return [ChunkTask(source=source, rendition=rendition, chunk=chunk, chunk_count=len(chunks),
                      segment_frames=frames, output_root="", settings=settings,
                      vmaf_height=vmaf_height(source))
            for rendition in fixed_ladder(source) for chunk in chunks]


def measure(path: str, preset: str, steps: list[int]) -> dict:
    """Encode and score every chunk; {'encode_s', 'score_s': {step: s}, 'errors': {step: [..]}}."""
    encode_s, score_s = 0.0, dict.fromkeys([1, *steps], 0.0)
    errors: dict[int, list[float]] = {step: [] for step in steps}
    with tempfile.TemporaryDirectory(prefix="ladderflow-bench-scoring-") as scratch:
        for i, task in enumerate(chunk_tasks(path, preset)):
            work = os.path.join(scratch, str(i))
            os.makedirs(work)
            staged = stage_chunk(task, path, work)
            encoded = encode_staged(task, staged, work, 0, vmaf_subsample=1)
            encode_s += encoded.encode_s
            score_s[1] += encoded.score_s
            for step in steps:
                score, seconds = score_encoded(task, encoded.path, staged.path,
                                               os.path.join(work, f"vmaf-{step}.json"), step)
                score_s[step] += seconds
                errors[step].append(score.mean - encoded.vmaf.mean)
            print(f"  {task.rendition.rendition_id} chunk {task.chunk.index}: "
                  f"VMAF {encoded.vmaf.mean:.2f}; "
                  + ", ".join(f"step {s} {e[-1]:+.2f}" for s, e in errors.items()), flush=True)
            shutil.rmtree(work)
    return {"encode_s": encode_s, "score_s": score_s, "errors": errors}


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
    results = {}
    for name in args.sources.split(","):
        path = os.path.join(args.work, f"{name}-{args.duration:g}s.mp4")
        if not os.path.exists(path):
            make_source(path, SOURCES[name], args.duration)
        print(f"{name}: encoding and scoring the fixed ladder ...", flush=True)
        results[name] = measure(path, args.preset, steps)

    print(f"\nscoring cost, fixed ladder, x264 preset {args.preset}, {args.duration:g} s 1080p25 "
          f"sources, VMAF at 1080p, {os.cpu_count()} cores")
    print("source     encode s  " + "  ".join(f"{'step ' + str(s):>22s}" for s in [1, *steps]))
    print("                     " + "  ".join(f"{'score/encode  err mean/max':>22s}"
                                              for _ in [1, *steps]))
    for name, r in results.items():
        cells = [f"{r['score_s'][1] / r['encode_s']:13.2f}  {'(reference)':>8s}"]
        for step in steps:
            errs = [abs(e) for e in r["errors"][step]]
            cells.append(f"{r['score_s'][step] / r['encode_s']:13.2f}  "
                         f"{sum(errs) / len(errs):.2f}/{max(errs):.2f}")
        print(f"{name:9s} {r['encode_s']:9.1f}  " + "  ".join(f"{c:>22s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
