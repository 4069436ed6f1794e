"""Audio encoded in spans: each span reads its own packets by range, and the spans join
into one continuous AAC stream on the title's timeline.

The title's AAC frame grid: output AAC frame j (1024 samples at 48 kHz) plays at
[1024 j, 1024 (j + 1)) samples of the video's clock, frame 0 being the encoder's priming
(`media.encode.audio`'s rules: source time t plays at output time t, the audio lasts as
long as the video). Segment k starts at the first frame at or after k x the grid's
segment duration; a last segment shorter than `MIN_TAIL_S` is merged into the one before.
A span is `AUDIO_SPAN_SEGMENTS` whole segments, so its boundaries are on the frame grid.

A span's encoder starts `PREROLL_FRAMES` frames before the span (span 0: at the stream's
start), on the same grid, and the span keeps exactly its own frames: the concatenation of
every span's packets is the stream a single pass would have written, within the
encoder's state at the joins (the MDCT overlap of the frame before a join is the same
audio in both spans). Only the span's audio packets are read from the source: a seek to
shortly before the span, then stream copy into a small local file (no decode).
"""

from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av

from media.core import ffmpeg
from media.core.errors import MediaError, UnreadableSource
from media.core.source_index import one_source_index
from media.ingest.imf.pipeline_source import is_imf_title, read_table, stage_audio_span
from media.inspect.probe import SOURCE_OPEN_OPTIONS
from media.package.boxes import (
    TFHD_DURATION,
    TRUN_DURATION,
    TRUN_SIZE,
    find_box,
    iter_boxes,
    read_tfhd,
    read_trun,
    trun_samples,
)
from media.package.isobmff import FragmentInfo, InitInfo, read_fragment, read_init

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 48000
AAC_FRAME = 1024
"""Samples per AAC-LC frame; also the encoder's priming."""
MIN_TAIL_S = 1.0
AUDIO_SPAN_SEGMENTS = 60
"""Segments per audio span: 4 minutes of 4 s segments (a 2-hour title: 30 spans)."""
PREROLL_FRAMES = 94
"""AAC frames (2 s) each span after the first encodes before its first kept frame: FFmpeg's
AAC encoder takes about a second to settle its rate control (measured on a sweep: with
8 frames a span's windows fell to 12 dB SNR against the source, with 94 the spans match a
one-pass encode's 33 dB)."""
READ_MARGIN_S = 0.5
"""Source read before and after what a span encodes (packets overlap its edges)."""
SEEK_BACKOFF_S = (0.0, 2.0, 10.0, 60.0)
"""How far before the read start to seek when a container's index lands late."""
_STAGING = "nut"
"""NUT keeps each stream's own time base and takes any codec by stream copy."""


@dataclass(frozen=True)
class AudioSpan:
    """Segments [first_segment, end_segment) of a track: AAC frames [start_frame, end_frame)."""

    index: int
    count: int
    first_segment: int
    end_segment: int
    start_frame: int
    end_frame: int
    segment_starts: tuple[int, ...] = ()
    """The first AAC frame of each of its segments where the video's grid is cut at shot
    changes; empty where they follow an even grid (`segment_start_frame`)."""

    @property
    def start_s(self) -> Fraction:
        return Fraction(self.start_frame * AAC_FRAME, SAMPLE_RATE_HZ)

    @property
    def end_s(self) -> Fraction:
        return Fraction(self.end_frame * AAC_FRAME, SAMPLE_RATE_HZ)


def total_samples(duration_s: Fraction | float) -> int:
    """Samples of the published track: the video's duration (priming included)."""
    return round(Fraction(duration_s) * SAMPLE_RATE_HZ)


def segment_start_frame(k: int, segment_s: Fraction | float) -> int:
    """The first AAC frame at or after k x `segment_s`."""
    return math.ceil(k * Fraction(segment_s) * SAMPLE_RATE_HZ / AAC_FRAME)


def segment_frames(duration_s: Fraction | float,
                   segment_s: Fraction | float | Sequence[Fraction]) -> list[int]:
    """First AAC frame of each audio segment, then the frame count: segment k starts at
    the first frame at or after the video's segment k, which starts at k x `segment_s`
    or, on a grid cut at shot changes, at `segment_s[k]` (seconds); a short last segment
    is merged."""
    frames = -(-total_samples(duration_s) // AAC_FRAME)
    starts: list[int] = []
    if isinstance(segment_s, Sequence):
        for start_s in segment_s:
            start = math.ceil(Fraction(start_s) * SAMPLE_RATE_HZ / AAC_FRAME)
            if start >= frames:
                break
            if not starts or start > starts[-1]:
                starts.append(start)
    else:
        while (start := segment_start_frame(len(starts), segment_s)) < frames:
            starts.append(start)
    if len(starts) > 1 and (frames - starts[-1]) * AAC_FRAME < MIN_TAIL_S * SAMPLE_RATE_HZ:
        starts.pop()
    return [*starts, frames]


def audio_spans(duration_s: Fraction | float, segment_s: Fraction | float | Sequence[Fraction],
                span_segments: int = AUDIO_SPAN_SEGMENTS) -> list[AudioSpan]:
    """The track cut into spans of `span_segments` whole segments (a short title: one);
    on a grid cut at shot changes (`segment_s`: the video segments' starts), each span
    carries its segments' first frames."""
    bounds = segment_frames(duration_s, segment_s)
    segments = len(bounds) - 1
    firsts = list(range(0, segments, max(1, span_segments)))
    own = isinstance(segment_s, Sequence)
    return [AudioSpan(i, len(firsts), first, min(first + span_segments, segments),
                      bounds[first], bounds[min(first + span_segments, segments)],
                      tuple(bounds[first:min(first + span_segments, segments)]) if own else ())
            for i, first in enumerate(firsts)]


@dataclass(frozen=True)
class StagedAudio:
    path: str
    first_time_s: Fraction
    """Source time (container timeline, FFmpeg's: its start is 0) of the first packet."""
    packets: int
    bytes_copied: int


def stage_audio(source: str | BinaryIO, stream_index: int, start_s: float, end_s: float,
                out_path: str, source_uri: str = "") -> StagedAudio:
    """Copy the audio packets that cover [start_s, end_s] of the container's timeline
    (which starts at 0, as FFmpeg shifts it) into a small local file, by stream copy.
    Packets are rewritten to start at 0; `first_time_s` says where they were. No packet
    (the audio ended before the span, or starts after it): `packets` is 0.
    An IMF title (`source` is its table): audio track `stream_index` (from 1) of the
    composition, decoded from the track file ranges the span covers."""
    if is_imf_title(source_uri):
        pcm = stage_audio_span(read_table(source, source_uri), stream_index - 1,
                               start_s, end_s, out_path)
        return StagedAudio(pcm.path, pcm.first_time_s, pcm.packets, pcm.bytes_copied)
    with one_source_index():
        return _stage_audio(source, stream_index, start_s, end_s, out_path, source_uri)


def _stage_audio(source, stream_index, start_s, end_s, out_path, source_uri) -> StagedAudio:
    container = None
    try:
        container = av.open(source, mode="r", options=SOURCE_OPEN_OPTIONS)
        stream = container.streams[stream_index]
        origin = Fraction(container.start_time or 0, av.time_base)
        for attempt, backoff in enumerate(SEEK_BACKOFF_S):
            seek_s = start_s - backoff
            # The last try takes the first packet where it lands: audio starting late.
            final = attempt == len(SEEK_BACKOFF_S) - 1 or seek_s <= 0
            if seek_s > 0 or attempt > 0:  # a file just opened is at its start already
                try:
                    target = origin + Fraction(seek_s) if seek_s > 0 else origin - 1
                    container.seek(math.floor(target / stream.time_base), stream=stream,
                                   backward=True, any_frame=False)
                except av.FFmpegError as exc:
                    # A container that cannot seek (an AVI without index): from the start.
                    log.warning("%s: cannot seek audio stream %d (%s): reading it from the "
                                "start", source_uri, stream_index, exc)
                    container.close()
                    if hasattr(source, "seek"):
                        source.seek(0)
                    container = av.open(source, mode="r", options=SOURCE_OPEN_OPTIONS)
                    stream = container.streams[stream_index]
                    final = True
            staged = _copy_packets(container, stream, origin, start_s, end_s, out_path, final)
            if staged is not None:
                return staged
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise UnreadableSource(f"{source_uri}: cannot read {start_s:.3f}-{end_s:.3f} s of "
                               f"audio stream {stream_index}: {exc}") from exc
    finally:
        if container is not None:
            container.close()
    raise AssertionError("the last seek takes what it finds")


def _copy_packets(container, stream, origin, start_s, end_s, out_path,
                  final) -> StagedAudio | None:
    tb = stream.time_base
    end_pts = math.ceil((origin + Fraction(end_s)) / tb)
    first = None
    count = nbytes = 0
    with av.open(out_path, mode="w", format=_STAGING) as out:
        ostream = out.add_stream_from_template(stream, opaque=True)
        last_pts = None
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            if last_pts is not None and packet.pts <= last_pts:
                # Streams joined by stream copy (MPEG-TS files concatenated) repeat a
                # time at the join: the audio that overlaps is dropped, so the packets
                # after it keep their own times (and the sync a whole-file decode had).
                continue
            last_pts = packet.pts
            if first is None:
                first = packet.pts
                if not final and (first - origin / tb) * tb > start_s + 1e-6:
                    return None  # the index landed late: seek further back
            if packet.pts >= end_pts:
                break
            packet.pts -= first
            packet.dts = packet.pts
            packet.stream = ostream
            out.mux(packet)
            count += 1
            nbytes += packet.size
    if count == 0:  # the audio ended before the span or starts after it: silence
        return StagedAudio(out_path, Fraction(0), 0, 0)
    return StagedAudio(out_path, first * tb - origin, count, nbytes)


@dataclass(frozen=True)
class SpanSegments:
    """A span's CMAF segments, numbered and timed on the whole track."""

    init: bytes
    init_info: InitInfo
    segments: list[bytes]
    timing: list[FragmentInfo]
    packet_bytes: int
    """Bytes of the source's audio packets the span copied."""


def encode_span(source: str | BinaryIO, stream_index: int, span: AudioSpan,
                duration_s: Fraction | float, video_offset_s: float,
                segment_s: Fraction | float, bitrate_kbps: int, scratch: str,
                timeout_s: float | None = None, source_uri: str = "") -> SpanSegments:
    """Encode one span of an audio stream: read its packets, encode with pre-roll, keep
    its frames, cut them into the track's segments [span.first_segment, span.end_segment).

    `video_offset_s` is where the video starts on the container's timeline (0 for a title
    package's audio file)."""
    offset = round(Fraction(max(0.0, video_offset_s)) * SAMPLE_RATE_HZ)
    preroll = 0 if span.index == 0 else min(PREROLL_FRAMES, span.start_frame)
    last = span.index == span.count - 1
    # Encoder input sample 0 is container sample `in_start`: its packet k plays as
    # frame start_frame - preroll + k of the track (packet 0 is the priming).
    in_start = offset + AAC_FRAME * (span.start_frame - preroll + 1)
    in_end = offset + total_samples(duration_s)
    if not last:  # frames of look-ahead past the span, for the MDCT of its last frame
        in_end = min(in_end, offset + AAC_FRAME * (span.end_frame + 3))
    work = os.path.join(scratch, f"audio-span{span.index}")
    os.makedirs(work, exist_ok=True)
    staged = stage_audio(source, stream_index, in_start / SAMPLE_RATE_HZ - READ_MARGIN_S,
                         in_end / SAMPLE_RATE_HZ + READ_MARGIN_S,
                         os.path.join(work, "packets.nut"), source_uri)
    packets, durations, init = _encode(staged, in_start, in_end, bitrate_kbps, work,
                                       timeout_s)
    keep = slice(preroll, None if last else preroll + span.end_frame - span.start_frame)
    packets, durations = packets[keep], durations[keep]
    if len(packets) != span.end_frame - span.start_frame:
        raise MediaError(f"the audio encoder wrote {len(packets)} frames for span "
                         f"{span.index}, expected {span.end_frame - span.start_frame}")
    info = read_init(init)
    # The span's own segment starts (its end already has a short last segment merged).
    bounds = [*(span.segment_starts or (segment_start_frame(k, segment_s)
                                        for k in range(span.first_segment, span.end_segment))),
              span.end_frame]
    segments = []
    for number, start, end in zip(range(span.first_segment, span.end_segment), bounds,
                                  bounds[1:], strict=False):
        a, b = start - span.start_frame, end - span.start_frame
        segments.append(fragment(number + 1, info.track_id, start * AAC_FRAME,
                                 packets[a:b], durations[a:b]))
    if not segments:
        raise MediaError("the audio encoder wrote no segments")
    return SpanSegments(init, info, segments, [read_fragment(s, info) for s in segments],
                        staged.bytes_copied)


def _encode(staged: StagedAudio, in_start: int, in_end: int, bitrate_kbps: int,
            scratch: str, timeout_s: float | None) -> tuple[list[bytes], list[int], bytes]:
    """AAC packets (priming first), their durations and the init segment for input
    samples [in_start, in_end) of the container's timeline."""
    out_dir = os.path.join(scratch, "aac")
    os.makedirs(out_dir, exist_ok=True)
    # The staged packets start at 0, which is container time `first_time_s`: the output
    # starts at in_start, trimming the samples before it or padding silence where the audio
    # starts later (exactly: min_comp under half a sample), and is padded to in_end.
    first_pts = in_start - round(staged.first_time_s * SAMPLE_RATE_HZ) if staged.packets else 0
    length = in_end - in_start
    audio_filter = (
        f"aresample={SAMPLE_RATE_HZ}:async=1:min_comp=0.00001:first_pts={first_pts},"
        f"apad=whole_len={length},atrim=end_sample={length},asetpts=PTS-STARTPTS"
    )
    # No packet in the span's reach: silence.
    source = (["-i", staged.path] if staged.packets else
              ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE_HZ}:cl=stereo"])
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        *source, "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-af", audio_filter, "-c:a", "aac", "-b:a", f"{bitrate_kbps}k", "-ac", "2",
        "-ar", str(SAMPLE_RATE_HZ),
        "-f", "hls", "-hls_time", "1000000", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", os.path.join(out_dir, "seg_%05d.m4s"),
        os.path.join(out_dir, "ffmpeg.m3u8")), timeout_s=timeout_s)
    with open(os.path.join(out_dir, "init.mp4"), "rb") as handle:
        init = handle.read()
    packets: list[bytes] = []
    durations: list[int] = []
    for name in sorted(os.listdir(out_dir)):
        if name.startswith("seg_"):
            with open(os.path.join(out_dir, name), "rb") as handle:
                _samples(handle.read(), packets, durations)
    return packets, durations, init


def _samples(data: bytes, packets: list[bytes], durations: list[int]) -> None:
    """Append each sample (bytes, duration) of every moof+mdat of a segment."""
    for moof in (box for box in iter_boxes(data) if box.type == "moof"):
        trun = read_trun(data, find_box(data, "traf/trun", moof))
        tfhd = read_tfhd(data, find_box(data, "traf/tfhd", moof))
        default = tfhd.fields.get(TFHD_DURATION, AAC_FRAME)
        offset = moof.start + (trun.data_offset or 0)
        for sample in trun_samples(data, trun):
            size = sample[TRUN_SIZE]
            packets.append(bytes(data[offset:offset + size]))
            durations.append(sample.get(TRUN_DURATION, default))
            offset += size


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags) + payload)


def fragment(sequence: int, track_id: int, base_ticks: int, packets: list[bytes],
             durations: list[int]) -> bytes:
    """One CMAF media segment: styp, one moof (sequence number, tfdt, a trun listing each
    sample's duration and size) and its mdat."""
    styp = _box(b"styp", b"msdh" + struct.pack(">I", 0) + b"msdhmsix")
    mfhd = _full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    # default-base-is-moof; every AAC frame is a sync sample (sample_depends_on = 2).
    tfhd = _full_box(b"tfhd", 0, 0x020020, struct.pack(">II", track_id, 0x02000000))
    tfdt = _full_box(b"tfdt", 1, 0, struct.pack(">Q", base_ticks))
    records = b"".join(struct.pack(">II", d, len(p)) for p, d in zip(packets, durations,
                                                                     strict=True))
    trun_size = 8 + 4 + 4 + 4 + len(records)
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    trun = _full_box(b"trun", 0, 0x000301,
                     struct.pack(">Ii", len(packets), moof_size + 8) + records)
    moof = _box(b"moof", mfhd + _box(b"traf", tfhd + tfdt + trun))
    return styp + moof + _box(b"mdat", b"".join(packets))
