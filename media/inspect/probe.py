"""Inspect a source with PyAV before any compute is spent on it.

`inspect_source` opens the container, finds a decodable video stream, reads its size,
frame rate, duration, pixel format and colour tags and the audio streams, and decodes
the first frames to prove the video is decodable. It raises a `MediaError` subclass
(with a hint for the user) for anything that cannot become a title.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import BinaryIO

import av

from media.core.containers import STAGING_FORMATS, UnstageableCodec, staging_format
from media.core.errors import (
    FrameRateUnavailable,
    MediaError,
    NoVideoStream,
    UndecodableVideo,
    UnreadableSource,
)
from media.core.types import AudioStreamInfo, SourceInfo
from media.inspect.codepoints import colour_names
from media.package.boxes import truncation

log = logging.getLogger(__name__)

PROBE_DECODE_FRAMES = 3
"""Frames decoded at inspection to prove the stream decodes (a full check is separate)."""


SOURCE_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,mxf,avi,flv,mpeg,mpegvideo,"
                  "ogg,wav,w64,aiff,caf,flac,mp3,aac,ac3,eac3,h264,hevc,ivf,asf,dv,yuv4mpegpipe")
"""Demuxers a source may be read with (FFmpeg's format_whitelist). Playlists and scripts
that name other files (HLS, DASH, concat, image sequences, ...) are not sources: opened
as media they would read whatever files they name, `/etc/passwd` included."""
SOURCE_OPEN_OPTIONS = {"format_whitelist": SOURCE_FORMATS, "protocol_whitelist": "file"}
"""Options every opening of a source gets: the demuxers above, and only the local file
protocol (a source is a local path or a file object by then; nothing it names is
fetched over the network or through another protocol)."""
SOURCE_INPUT_OPTIONS = ("-format_whitelist", SOURCE_FORMATS, "-protocol_whitelist", "file")
"""The same, as FFmpeg command-line input options."""


def inspect_source(source: str | BinaryIO, source_uri: str, title_id: str,
                   size_bytes: int = 0) -> SourceInfo:
    """Describe a source (a local path or a seekable binary file object)."""
    try:
        container = av.open(source, mode="r", options=SOURCE_OPEN_OPTIONS)
    except (av.FFmpegError, ValueError, OSError) as exc:
        kind = _file_list_kind(source)
        if kind:
            raise UnreadableSource(
                f"{source_uri} is {kind}, not a media file",
                hint="Give the video file itself: playlists and scripts that name other "
                     "files are refused, as they could read any file they name.") from exc
        cut = _truncation(source)
        if cut:
            raise UnreadableSource(
                f"{source_uri} is truncated: {cut}",
                hint="Re-export the source from the editing or capture tool, or upload it "
                     "again: the file as received is incomplete.") from exc
        raise UnreadableSource(f"cannot open {source_uri} as media: {exc}") from exc
    with container:
        video = _first_video_stream(container, source_uri)
        _refuse_unstageable(video, container.format.name, source_uri)
        frame_rate = _frame_rate(video, source_uri)
        first_pts_s = _decode_first_frames(container, video, source_uri)
        try:
            frame_count = _frame_count(container, video, frame_rate)
        except av.FFmpegError as exc:
            raise UndecodableVideo(f"{source_uri}: the video stream cannot be read: {exc}") from exc
        if frame_count < 1:
            raise UndecodableVideo(f"{source_uri} has a video stream with no frames")
        ctx = video.codec_context
        primaries, transfer, matrix, colour_range = colour_names(ctx)
        return SourceInfo(
            source_uri=source_uri,
            title_id=title_id,
            container=container.format.name,
            video_codec=ctx.codec.canonical_name,  # 'av1', not its decoder's 'libdav1d'
            width=ctx.width,
            height=ctx.height,
            frame_rate=frame_rate,
            frame_count=frame_count,
            video_start_s=first_pts_s,
            pix_fmt=ctx.pix_fmt or "unknown",
            color_primaries=primaries,
            color_transfer=transfer,
            color_matrix=matrix,
            color_range=colour_range,
            audio=tuple(_audio_streams(container)),
            size_bytes=size_bytes,
            container_start_s=(container.start_time / av.time_base
                               if container.start_time is not None else 0.0),
        )


def _refuse_unstageable(video, container_format: str, source_uri: str) -> None:
    """Raise `UnstageableCodec` where no staging container takes the video codec: every
    encode would fail on it, so the title is refused before any is spent."""
    codec = video.codec_context.codec.canonical_name
    if staging_format(codec) is None:
        raise UnstageableCodec(
            f"{source_uri}: its video codec {codec} (in {container_format}) cannot be copied "
            f"into any container the encoders read ({', '.join(n for n, _ in STAGING_FORMATS)})")


_FILE_LISTS = ((b"#EXTM3U", "an HLS playlist"), (b"ffconcat", "an FFmpeg concat script"),
               (b"file ", "an FFmpeg concat script"), (b"<?xml", "an XML document (a DASH "
               "manifest?)"), (b"<MPD", "a DASH manifest"), (b"[playlist]", "a playlist"))


def _file_list_kind(source: str | BinaryIO) -> str:
    """What a file that names other files is ('' when it is not one of those)."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                head = handle.read(64)
        else:
            source.seek(0)
            head = source.read(64)
    except (OSError, ValueError, AttributeError):
        return ""
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return next((kind for magic, kind in _FILE_LISTS if head.startswith(magic)), "")


def _truncation(source: str | BinaryIO) -> str:
    """Why an MP4/MOV that FFmpeg cannot open looks cut short ('' when it does not): a
    copy cut before its index (`moov`) is written, or inside it, does not open at all."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                return truncation(handle)
        return truncation(source)
    except (OSError, ValueError, AttributeError):
        return ""


def _first_video_stream(container, source_uri: str):
    for stream in container.streams.video:
        # Attached pictures (cover art) are video streams with one frame; not a title.
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        if stream.codec_context.width and stream.codec_context.height:
            return stream
    raise NoVideoStream(f"{source_uri} has no video stream")


def _frame_rate(video, source_uri: str) -> Fraction:
    for rate in (video.average_rate, video.guessed_rate, video.base_rate):
        if rate and 0 < rate <= 240:
            return Fraction(rate.numerator, rate.denominator).limit_denominator(1001)
    raise FrameRateUnavailable(f"{source_uri}: the video stream declares no frame rate")


def _decode_first_frames(container, video, source_uri: str) -> float:
    """Decode a few frames; return the first frame's presentation time in seconds."""
    first_pts_s = None
    decoded = 0
    try:
        for frame in container.decode(video):
            if first_pts_s is None and frame.pts is not None:
                first_pts_s = float(frame.pts * video.time_base)
            decoded += 1
            if decoded >= PROBE_DECODE_FRAMES:
                break
    except (av.FFmpegError, ValueError) as exc:
        raise UndecodableVideo(f"{source_uri}: video does not decode: {exc}") from exc
    if decoded == 0:
        raise UndecodableVideo(f"{source_uri}: the video stream yields no decodable frame")
    if first_pts_s is None:
        first_pts_s = float(video.start_time * video.time_base) if video.start_time else 0.0
    return first_pts_s


def _frame_count(container, video, frame_rate: Fraction) -> int:
    """Frames of the video: from the index where the container keeps one (MP4), else
    counted from the packets (Matroska, MPEG-TS), which reads but does not decode them."""
    if video.frames:
        return int(video.frames)
    container.seek(0)
    return sum(1 for packet in container.demux(video) if packet.size)


def _audio_streams(container) -> list[AudioStreamInfo]:
    tracks = []
    for stream in container.streams.audio:
        ctx = stream.codec_context
        if not ctx.sample_rate:
            continue
        tracks.append(AudioStreamInfo(
            stream_index=stream.index,
            codec=ctx.name,
            channels=ctx.channels,
            sample_rate_hz=ctx.sample_rate,
            language=(stream.metadata.get("language") or "und").lower()[:8],
        ))
    return tracks


def inspect_audio_file(source: str | BinaryIO, source_uri: str) -> AudioStreamInfo:
    """The first audio stream of a separate audio file (a title package's track)."""
    try:
        container = av.open(source, mode="r", options=SOURCE_OPEN_OPTIONS)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableSource(f"{source_uri} cannot be opened as audio: {exc}") from exc
    with container:
        streams = _audio_streams(container)
        if not streams:
            raise MediaError(f"{source_uri} has no decodable audio stream",
                             hint="Name an audio file (WAV, FLAC, AAC, ...) in the title "
                                  "package's \"audio\" list.")
        return streams[0]


STANDARD_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001),
                  Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60))


def constant_rate(source: str | BinaryIO, source_uri: str) -> Fraction:
    """The constant frame rate a variable-frame-rate source is normalised to: the
    stream's base rate (the rate its timestamps are multiples of), snapped to the nearest
    standard rate within 1 %, and never above 60 fps."""
    try:
        with av.open(source, mode="r", options=SOURCE_OPEN_OPTIONS) as container:
            video = _first_video_stream(container, source_uri)
            rate = video.base_rate or video.guessed_rate or video.average_rate
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableSource(f"cannot open {source_uri} as media: {exc}") from exc
    rate = Fraction(rate) if rate else Fraction(25)
    nearest = min(STANDARD_RATES, key=lambda r: abs(r - rate))
    if abs(nearest - rate) <= nearest / 100:
        return nearest
    return min(rate, Fraction(60)).limit_denominator(1001)
