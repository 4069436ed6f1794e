"""Encode an audio stream to AAC-LC stereo CMAF segments on the title's segment grid.

FFmpeg's HLS muxer cuts the audio at the first frame at or after each multiple of the
segment duration, so audio boundaries stay within one AAC frame (21 ms) of the video
grid for the whole title, without drift. The encoder's priming (1024 samples at the
start of every AAC stream) is compensated by dropping the source's first 1024 samples,
so that source time t plays at output time t, in sync with the video, which starts
at 0. Audio that starts before the video is cut, audio that starts after it or ends before
it is padded with silence: output time 0 is the source's first video frame, and the
audio lasts as long as the video. A last segment shorter than `MIN_TAIL_S` is merged
into the one before it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from fractions import Fraction

from media.core import ffmpeg
from media.core.errors import MediaError
from media.inspect.probe import SOURCE_INPUT_OPTIONS
from media.package.boxes import iter_boxes
from media.package.isobmff import FragmentInfo, InitInfo, read_fragment, read_init

SAMPLE_RATE_HZ = 48000
AAC_PRIMING_SAMPLES = 1024
MIN_TAIL_S = 1.0


@dataclass(frozen=True)
class AudioSegments:
    init: bytes
    init_info: InitInfo
    segments: list[bytes]
    timing: list[FragmentInfo]


def audio_argv(source_path: str, stream_index: int, duration_s: float, video_offset_s: float,
               segment_s: Fraction | float, bitrate_kbps: int, out_dir: str) -> list[str]:
    """FFmpeg arguments that write init.mp4 and seg_NNNNN.m4s into `out_dir`.

    `video_offset_s` is where the video starts on the container's timeline, which FFmpeg
    starts at 0 (the earliest stream start). `segment_s` is the video grid's segment
    (`SegmentGrid.segment_s`, exact); the muxer takes it to six significant digits.
    """
    skip = round(max(0.0, video_offset_s) * SAMPLE_RATE_HZ) + AAC_PRIMING_SAMPLES
    end_sample = round(max(0.0, video_offset_s) * SAMPLE_RATE_HZ + duration_s * SAMPLE_RATE_HZ)
    audio_filter = (
        # async=1 with first_pts=0 pads silence where the audio starts late.
        f"aresample={SAMPLE_RATE_HZ}:async=1:first_pts=0,"
        # Audio that ends before the video is padded with silence to the video's end.
        f"apad=whole_len={end_sample},"
        f"atrim=start_sample={skip}:end_sample={end_sample},"
        "asetpts=PTS-STARTPTS"
    )
    return [
        *SOURCE_INPUT_OPTIONS, "-i", source_path,
        "-map", f"0:{stream_index}", "-vn", "-sn", "-dn",
        "-af", audio_filter, "-c:a", "aac", "-b:a", f"{bitrate_kbps}k", "-ac", "2",
        "-ar", str(SAMPLE_RATE_HZ),
        "-f", "hls", "-hls_time", f"{float(segment_s):g}", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", os.path.join(out_dir, "seg_%05d.m4s"),
        os.path.join(out_dir, "ffmpeg.m3u8"),
    ]


def encode_audio(source_path: str, stream_index: int, duration_s: float, video_offset_s: float,
                 segment_s: Fraction | float, bitrate_kbps: int, scratch: str,
                 timeout_s: float | None = None) -> AudioSegments:
    out_dir = os.path.join(scratch, "audio")
    os.makedirs(out_dir, exist_ok=True)
    argv = audio_argv(source_path, stream_index, duration_s, video_offset_s, segment_s,
                      bitrate_kbps, out_dir)
    ffmpeg.run(ffmpeg.ffmpeg_argv(*argv), timeout_s=timeout_s)
    with open(os.path.join(out_dir, "init.mp4"), "rb") as handle:
        init = handle.read()
    info = read_init(init)
    segments = []
    for path in sorted(glob.glob(os.path.join(out_dir, "seg_*.m4s"))):
        with open(path, "rb") as handle:
            segments.append(handle.read())
    if not segments:
        raise MediaError("the audio encoder wrote no segments")
    segments = merge_short_tail(segments, info)
    return AudioSegments(init, info, segments, [read_fragment(s, info) for s in segments])


def merge_short_tail(segments: list[bytes], info: InitInfo) -> list[bytes]:
    """Append a last segment shorter than MIN_TAIL_S to the segment before it."""
    if len(segments) < 2:
        return segments
    tail = read_fragment(segments[-1], info)
    if tail.duration_ticks >= MIN_TAIL_S * info.timescale:
        return segments
    return [*segments[:-2], segments[-2] + _without_styp(segments[-1])]


def _without_styp(segment: bytes) -> bytes:
    first = next(iter_boxes(segment), None)
    return segment[first.end:] if first is not None and first.type == "styp" else segment
