"""What IMF costs: JPEG 2000 decode speed, and a title through the pipeline as an IMF
package against the same picture as a ProRes .mov, in one run.

    python benchmarks/imf.py [--minutes 5] [--frames 96] [--loop_s 10] [--work DIR]
                             [--preset veryfast] [--max_renditions 0]

1. Decode: `--frames` 1080p24 frames of the demo's moving pattern, as JPEG 2000 (4:2:2
   10-bit, FFmpeg's encoder, in MXF: what tests/imf_factory.py writes) and as ProRes 422
   HQ, each decoded by the bundled FFmpeg on one thread (`-threads 1`, to null): frames
   per second per core.
2. Pipeline: a `--minutes` 1080p24 title, made from a `--loop_s` JPEG 2000 track file
   that the CPL repeats (RepeatCount: the decode work is the same per frame, and making
   the sources stays quick), with PCM audio the same way; and the same picture and audio
   as a ProRes .mov (the loop copied end to end). Each runs through the pipeline in this
   process (fixed ladder, no VMAF, x264 `--preset`), on this machine's cores; the wall
   seconds of each and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from media.core import ffmpeg
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg

RATE = 24
SIZE = "1920x1080"


def decode_fps(path: str, frames: int) -> float:
    """Frames per second of one FFmpeg decode thread over the file's first `frames`."""
    started = time.monotonic()
    ffmpeg.run(ffmpeg.ffmpeg_argv("-threads", "1", "-i", path, "-frames:v", str(frames),
                                  "-map", "0:v:0", "-f", "null", "-"))
    return frames / (time.monotonic() - started)


def make_sources(work: str, frames: int, loop_s: float, minutes: float
                 ) -> tuple[str, str, str, str]:
    """(J2K MXF of `frames`, ProRes MOV of `frames`, IMF package folder, ProRes .mov
    title): the decode samples and the two forms of one `minutes` title."""
    factory = ImfFactory(os.path.join(work, "imf"))
    loop = round(loop_s * RATE)
    repeats = max(1, round(minutes * 60 / loop_s))
    factory.image("sample", "decode", frames, size=SIZE)
    prores_sample = os.path.join(work, "sample-prores.mov")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={RATE}", "-frames:v", str(frames),
        "-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le", prores_sample))
    factory.image("picture", "title", loop, size=SIZE)
    factory.audio("audio", "title", loop, language="en")
    package = factory.package("title", [CplSpec("IMF Benchmark", [
        Seg(image=[Res("picture", repeat=repeats)], audio=[[Res("audio", repeat=repeats)]])],
        version="v1")])
    # The same picture and sound as a ProRes .mov: the loop made once, copied end to end.
    loop_mov = os.path.join(work, "loop.mov")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "imf", "-i", os.path.join(package, _cpl_name(package)), "-map", "0:v:0",
        "-map", "0:a:0", "-frames:v", str(loop), "-c:v", "prores_ks", "-profile:v", "3",
        "-pix_fmt", "yuv422p10le", "-c:a", "pcm_s24le", loop_mov))
    title_mov = os.path.join(work, "mov", "ProRes_Benchmark.mov")
    os.makedirs(os.path.dirname(title_mov), exist_ok=True)
    ffmpeg.run(ffmpeg.ffmpeg_argv("-stream_loop", str(repeats - 1), "-i", loop_mov,
                                  "-c", "copy", title_mov))
    return factory.files["sample"].path, prores_sample, package, title_mov


def _cpl_name(package: str) -> str:
    return next(n for n in sorted(os.listdir(package)) if n.startswith("CPL_"))


def pipeline_wall_s(source: str, out: str, preset: str, max_renditions: int) -> float:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.launcher import local_parallelism
    from pipeline.local_runner import LOCAL_RUNNER

    shutil.rmtree(out, ignore_errors=True)
    config = JobConfig(output_root=out, ladder="fixed", score_vmaf=False,
                       max_renditions=max_renditions,
                       encode=EncodeSettings(preset=preset)).validate()
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}"])
    local_parallelism([], options)
    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, [source], config)
    pipeline.run().wait_until_finish()
    wall = time.monotonic() - started
    published = [n for n in os.listdir(out) if not n.startswith("_")]
    if len(published) != 1:
        raise SystemExit(f"{source}: published {published}, not one title")
    return wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--loop_s", type=float, default=10.0)
    parser.add_argument("--work", default="")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--max_renditions", type=int, default=0)
    args = parser.parse_args(argv)
    work = args.work or os.path.join(os.getcwd(), "imf-benchmark")
    os.makedirs(work, exist_ok=True)
    print(f"sources in {work} ({args.minutes:g} min title, {os.cpu_count()} cores)")
    j2k, prores, package, mov = make_sources(work, args.frames, args.loop_s, args.minutes)
    j2k_fps, prores_fps = decode_fps(j2k, args.frames), decode_fps(prores, args.frames)
    print(f"decode, 1080p, one thread: JPEG 2000 {j2k_fps:.1f} fps, ProRes 422 HQ "
          f"{prores_fps:.1f} fps ({prores_fps / j2k_fps:.1f}x)")
    frames = round(args.minutes * 60 * RATE)
    print(f"  a {args.minutes:g} min title's JPEG 2000 decode: {frames / j2k_fps:.0f} "
          f"core-seconds (ProRes: {frames / prores_fps:.0f})")
    imf_s = pipeline_wall_s(package, os.path.join(work, "out-imf"), args.preset,
                            args.max_renditions)
    mov_s = pipeline_wall_s(mov, os.path.join(work, "out-mov"), args.preset,
                            args.max_renditions)
    print(f"pipeline wall time: IMF package {imf_s:.1f} s, ProRes .mov {mov_s:.1f} s "
          f"({imf_s / mov_s:.2f}x)")


if __name__ == "__main__":
    main()
