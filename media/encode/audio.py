"""Encode an audio stream to AAC-LC stereo CMAF segments on the title's segment grid.

Audio segments start at the first AAC frame at or after each multiple of the segment
duration, so audio boundaries stay within one AAC frame (21 ms) of the video grid for
the whole title, without drift. The encoder's priming (1024 samples at the start of every
AAC stream) is compensated by dropping the source's first 1024 samples, so that source
time t plays at output time t, in sync with the video, which starts at 0. Audio that
starts before the video is cut, audio that starts after it or ends before it is padded
with silence: output time 0 is the source's first video frame, and the audio lasts as
long as the video. A last segment shorter than `MIN_TAIL_S` is merged into the one
before it.

The track is encoded in spans of whole segments (`media.encode.audio_spans`), each
reading only its own packets of the source; `encode_audio` encodes them all in turn (the
pipeline encodes each span as a task of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

from media.encode.audio_spans import (
    AAC_FRAME,
    AUDIO_SPAN_SEGMENTS,
    MIN_TAIL_S,
    SAMPLE_RATE_HZ,
    audio_spans,
    encode_span,
)
from media.package.isobmff import FragmentInfo, InitInfo

__all__ = ["AAC_FRAME", "AAC_PRIMING_SAMPLES", "MIN_TAIL_S", "SAMPLE_RATE_HZ", "AudioSegments",
           "encode_audio"]

AAC_PRIMING_SAMPLES = AAC_FRAME


@dataclass(frozen=True)
class AudioSegments:
    init: bytes
    init_info: InitInfo
    segments: list[bytes]
    timing: list[FragmentInfo]
    packet_bytes: int = 0
    """Bytes of source packets the spans copied (each span its own range)."""


def encode_audio(source: str | BinaryIO, stream_index: int, duration_s: float,
                 video_offset_s: float, segment_s: Fraction | float, bitrate_kbps: int,
                 scratch: str, timeout_s: float | None = None,
                 span_segments: int = AUDIO_SPAN_SEGMENTS) -> AudioSegments:
    """The whole track, span after span (`video_offset_s`: where the video starts on the
    container's timeline, which FFmpeg starts at 0)."""
    init, info, segments, timing, read = b"", None, [], [], 0
    for span in audio_spans(duration_s, segment_s, span_segments):
        encoded = encode_span(source, stream_index, span, duration_s, video_offset_s,
                              segment_s, bitrate_kbps, scratch, timeout_s)
        if info is None:
            init, info = encoded.init, encoded.init_info
        segments += encoded.segments
        timing += encoded.timing
        read += encoded.packet_bytes
    return AudioSegments(init, info, segments, timing, read)
