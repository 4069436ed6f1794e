"""Build the FFmpeg command lines that encode one chunk of one rendition, or of every
rendition at once (one decode), with any encoder of `media.encode.encoders`.

The chunk is cut exactly from a staged span of the source (timestamps kept, see
`media.encode.staging`), scaled, and encoded with capped constant quality (CRF or CQ +
VBV maxrate/bufsize), closed GOPs and an IDR frame at every segment boundary, 8-bit
yuv420p. Built with `ffmpeg-python`, returned as a plain argv list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from fractions import Fraction

import ffmpeg as ffmpeg_python

from media.core.ffmpeg import available_cores
from media.core.types import ChunkSpan, EncodeSettings, Rendition, SegmentGrid, SourceInfo
from media.encode.conditioning import condition, tone_mapped
from media.encode.encoders import (
    Encoder,
    encoder_named,
    resolve_encoder,
    video_options,
    with_hdr_metadata,
)
from media.encode.hwaccel import decode_input_options
from media.package.cmaf import FRAGMENTED_FLAGS

HALF_FRAME = Fraction(1, 2)


def chunk_window_s(source: SourceInfo, chunk: ChunkSpan) -> tuple[float, float]:
    """Source timeline [start, end) that selects exactly the chunk's frames.

    The cut points sit half a frame before each frame's nominal time, so rounding of
    stored timestamps (Matroska keeps milliseconds) never moves a frame across a cut.
    """
    frame_s = 1 / source.frame_rate
    start = source.video_start_s + float((chunk.start_frame - HALF_FRAME) * frame_s)
    end = source.video_start_s + float((chunk.end_frame - HALF_FRAME) * frame_s)
    return max(0.0, start), end


def select_chunk(stream, source: SourceInfo, chunk: ChunkSpan):
    """The chunk's `frame_count` frames, one per slot of the title's constant-rate grid.

    Slot k shows the last source frame at or before the chunk's k-th nominal time (to the
    nearest, half a frame either way), on the source's own timeline: where the timestamps
    have a gap, the frame before it is held (the audio keeps that timeline, so it stays in
    sync); where two frames fall in one slot, the later is kept. The count is exact
    whatever the timestamps: the last frame is held to the end of the chunk.
    """
    _, end_s = chunk_window_s(source, chunk)
    origin_s = source.video_start_s + float(chunk.start_frame / source.frame_rate)
    # No cut at the start: frames before the chunk reach `fps`, which drops them but the
    # one it needs for slot 0 when the chunk starts in a gap. `eof_action=pass` keeps the
    # last frame where the input ends before slot 0 is reached: a one-frame last chunk
    # whose frame lies half a frame early (a source shifted at a join) had none.
    stream = stream.filter("trim", end=f"{end_s:.6f}")
    stream = stream.filter("setpts", f"PTS-{origin_s:.6f}/TB")
    stream = stream.filter("fps", fps=_rate(source.frame_rate), start_time=0,
                           eof_action="pass")
    stream = stream.filter("tpad", stop_mode="clone", stop=chunk.frame_count)
    return stream.filter("trim", end_frame=chunk.frame_count)


def source_frames(staged_path: str, source: SourceInfo, chunk: ChunkSpan,
                  decoder: str = "cpu", keep_hdr: bool = False):
    """The chunk's frames from a staged span, on the title's grid and conditioned
    (`media.encode.conditioning`: deinterlaced, rotated, tone-mapped), as an ffmpeg-python
    stream. FFmpeg's auto-rotation is off: `condition` turns the picture itself.
    `decoder` 'auto' or 'nvdec' decodes on a CUDA device where one works
    (`media.encode.hwaccel`); the frames come back to system memory either way.
    `keep_hdr`: an HDR source's frames are not tone-mapped (for HDR rungs)."""
    options = decode_input_options(decoder)
    if keep_hdr:
        options |= hdr_side_data(source)
    video = ffmpeg_python.input(staged_path, copyts=None, noautorotate=None, **options).video
    return condition(select_chunk(video, source, chunk), source, keep_hdr)


def hdr_side_data(source: SourceInfo) -> dict[str, str]:
    """Input options that give the decoded frames the source's HDR10 metadata as side data
    (`SourceInfo.mastering_display`, `content_light`): a staged span need not hold the
    SEI that carried them. From the frames the encoders (x265, SVT-AV1) write them into
    the bitstream and the MP4 muxer into the init segment (`mdcv`, `clli`)."""
    options = {}
    if source.mastering_display:
        options["mastering_display"] = source.mastering_display
    if source.content_light:
        options["content_light"] = source.content_light
    return options


def shared_process_threads(renditions: Sequence[Rendition], cores: int) -> list[int]:
    """x264 threads for each rendition of one shared encode process, where the user left
    them to x264 (0): one thread for an encoder whose share of the process's pixels is
    less than one core's, x264's own choice (0) for the others.

    Left to itself every x264 encoder starts frame threads for all the cores (three on
    2 cores) and a lookahead thread. The small renditions' encoders then spend more on
    starting, syncing and waiting for their threads than they gain, while the process's
    encoders together already keep every core busy; the encoder that holds more than a
    core's share of the work still needs its threads, or it alone would set the pace.
    On a 12 s 1080p chunk of the fixed ladder (1080p with its threads, the four smaller
    renditions one thread each; 2 cores) the process took 12.5-12.9 s against 13.1-13.7 s,
    with 3-6 % fewer CPU seconds and the same bytes within 0.1 %.
    """
    pixels = [r.width * r.height for r in renditions]
    total = sum(pixels)
    if len(renditions) < 2 or not total:
        return [0] * len(renditions)
    return [0 if count * cores >= total else 1 for count in pixels]


def encode_chunk_argv(staged_path: str, out_path: str, source: SourceInfo, chunk: ChunkSpan,
                      rendition: Rendition, settings: EncodeSettings, grid: SegmentGrid,
                      source_output: Callable | None = None,
                      fragmented: bool = False) -> list[str]:
    """FFmpeg arguments (without the binary) that encode one chunk to an MP4 file
    (`fragmented`: see `encode_renditions_argv`)."""
    return encode_renditions_argv(staged_path, [out_path], source, chunk, [rendition],
                                  settings, grid, source_output, fragmented)


def encode_renditions_argv(staged_path: str, out_paths: Sequence[str], source: SourceInfo,
                           chunk: ChunkSpan, renditions: Sequence[Rendition],
                           settings: EncodeSettings, grid: SegmentGrid,
                           source_output: Callable | None = None,
                           fragmented: bool = False) -> list[str]:
    """One FFmpeg process for every rendition of one chunk: the source decoded once,
    scaled once per distinct size, each rendition encoded with the options
    `encode_chunk_argv` gives it alone, but for the threads of an encoder that shares them
    (x264) where the settings leave them to it: `shared_process_threads` gives the small
    renditions one each.

    `source_output`, if given, maps the decoded source frames (an ffmpeg-python stream)
    to one more output of the same process, such as the chunk's VMAF reference frames
    (`media.quality.vmaf.store_reference`): they are then decoded once for the encodes and it.
    The encodes are the same with or without it.

    `fragmented` writes each encode as a fragmented MP4 with a fragment at every IDR frame
    (`FRAGMENTED_FLAGS`), i.e. one per segment of the grid: its CMAF segments are then cut
    from it by `media.package.cmaf` without another FFmpeg process (the same samples as a
    stream copy of a plain MP4 into one).
    """
    sizes = list(dict.fromkeys(_frames_key(r) for r in renditions))
    copies = _source_copies(staged_path, source, chunk, settings.decoder, sizes,
                            source_output is not None)
    branches: dict[tuple[int, int, bool], list] = {}
    for (width, height, hdr), copy in zip(sizes, copies, strict=False):
        scaled = copy.filter("scale", width, height, flags="bicubic")
        scaled = scaled.filter("setsar", "1").filter(
            "format", "yuv420p10le" if hdr else "yuv420p")
        users = sum(1 for r in renditions if _frames_key(r) == (width, height, hdr))
        split = scaled.filter_multi_output("split", users) if users > 1 else None
        branches[(width, height, hdr)] = (
            [split[j] for j in range(users)] if split is not None else [scaled])
    encoders = [rendition_encoder(rendition, settings) for rendition in renditions]
    shared = ([0] * len(renditions) if settings.threads
              else shared_process_threads(renditions, available_cores()))
    threads = [count if encoder.threads_shared and not settings.threads else settings.threads
               for encoder, count in zip(encoders, shared, strict=True)]
    outputs = []
    for rendition, path, count, encoder in zip(renditions, out_paths, threads, encoders,
                                               strict=True):
        stream = branches[_frames_key(rendition)].pop(0)
        options = video_options(encoder, rendition,
                                dataclasses.replace(settings, threads=count), grid, chunk)
        if rendition.hdr:
            options = with_hdr_metadata(options, encoder, source.mastering_display,
                                        source.content_light)
        if fragmented:
            options |= {"f": "mp4", "movflags": FRAGMENTED_FLAGS}
        outputs.append(ffmpeg_python.output(stream, path, an=None,
                                            **{"frames:v": chunk.frame_count}, **options))
    if source_output is not None:
        outputs.append(source_output(copies[len(sizes)]))
    return ffmpeg_python.merge_outputs(*outputs).get_args()


def _frames_key(rendition: Rendition) -> tuple[int, int, bool]:
    """The frames a rendition is encoded from: its size, and HDR kept or tone-mapped."""
    return rendition.width, rendition.height, bool(rendition.hdr)


def _source_copies(staged_path: str, source: SourceInfo, chunk: ChunkSpan, decoder: str,
                   sizes: Sequence[tuple[int, int, bool]], reference: bool) -> list:
    """One stream of the chunk's conditioned frames per entry of `sizes` (HDR kept where
    its flag says, else tone-mapped as `condition` does), then one (tone-mapped) for the
    VMAF reference where `reference`: the source decoded once for all.

    Without HDR rungs the graph is one `split` of `source_frames`, as it always was. With
    them the frames are taken before the tone mapping and split into the HDR sizes' and
    the tone mapping's, which is split again for the SDR sizes and the reference."""
    # A split node yields as many outputs as are indexed (iterating it never ends).
    def split(stream, count: int) -> list:
        if count == 1:
            return [stream]
        copies = stream.filter_multi_output("split", count)
        return [copies[i] for i in range(count)]

    sdr_count = sum(1 for *_, hdr in sizes if not hdr) + reference
    if all(not hdr for *_, hdr in sizes):
        return split(source_frames(staged_path, source, chunk, decoder), sdr_count)
    kept = source_frames(staged_path, source, chunk, decoder, keep_hdr=True)
    hdr_copies = split(kept, len(sizes) - sdr_count + reference + (sdr_count > 0))
    sdr_copies = split(tone_mapped(hdr_copies.pop()), sdr_count) if sdr_count else []
    return [(hdr_copies if hdr else sdr_copies).pop(0) for *_, hdr in sizes] + sdr_copies


def rendition_encoder(rendition: Rendition, settings: EncodeSettings) -> Encoder:
    """The encoder of one rendition: its codec ladder's (`Rendition.encoder`, an `auto-`
    request resolved on this worker), else the job's (`settings.encoder`)."""
    if rendition.encoder:
        return resolve_encoder(rendition.encoder)[0]
    return encoder_named(settings.encoder)


def _rate(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"
