"""The demux pass (PyAV): every packet's timing, the streams' declared properties and
the first frame, with no decoding past it."""

from __future__ import annotations

import dataclasses
import logging
import statistics
from fractions import Fraction
from typing import BinaryIO

import av

from media.core.errors import UnreadableSource
from media.inspect.codepoints import (
    _FIELD_ORDER,
    UNKNOWN,
    code_point,
    colour_names,
)
from media.inspect.probe import SOURCE_OPEN_OPTIONS, _first_video_stream
from media.inspect.results import AudioSummary, StreamSummary, _deltas
from media.inspect.thresholds import AUDIO_GAP_S, FIRST_FRAME_PACKETS

log = logging.getLogger(__name__)


# --- the demux pass ---------------------------------------------------------------------


def summarize(path: str) -> StreamSummary:
    """Read every packet's timestamps (no decoding, bar the first video frame).

    Raises `UnreadableSource` when the file cannot be opened as media and `NoVideoStream`
    when it has no video stream.
    """
    try:
        container = av.open(path, mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UnreadableSource(f"cannot open {path} as media: {exc}") from exc
    with container:
        video = _first_video_stream(container, path)
        audio_streams = [s for s in container.streams.audio if s.codec_context.sample_rate]
        video_pts: list[int] = []
        video_durations: list[int] = []
        audio_packets: dict[int, list[tuple[int, int]]] = {s.index: [] for s in audio_streams}
        first_frame = None
        demux_error = ""
        hidden = 0  # video samples an edit list hides: indexed, never presented
        try:
            for packet in container.demux(video, *audio_streams):
                if packet.size and packet.is_discard and packet.stream.index == video.index:
                    hidden += 1
                if not packet.size or packet.is_discard:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is None:
                    continue
                if packet.stream.index == video.index:
                    video_pts.append(pts)
                    video_durations.append(packet.duration or 0)
                    if first_frame is None and len(video_pts) <= FIRST_FRAME_PACKETS:
                        first_frame = _decode_first(packet)
                else:
                    audio_packets[packet.stream.index].append((pts, packet.duration or 0))
        except (av.FFmpegError, ValueError, OSError) as exc:
            demux_error = str(exc)
            log.info("%s: demuxing stopped early: %s", path, exc)

        return _built(container, video, audio_streams, path, first_frame, video_pts,
                      video_durations, hidden, audio_packets, demux_error)


def head_summary(source: str | BinaryIO, path: str = "") -> StreamSummary:
    """What the container's header and index tell, and the first frame (colour tags,
    rotation): a `StreamSummary` whose only timestamp is the first frame's, read without
    a scan of the packets (a few of the first video packets are read for that frame). The base the
    span results of `media.inspect.spans` are merged onto; `video_declared_frames` is the
    index's count as it is (the hidden samples are counted by the spans).

    Raises as `summarize` does."""
    path = path or (source if isinstance(source, str) else "")
    try:
        if not isinstance(source, str):
            source.seek(0)  # a handle another read left elsewhere
        container = av.open(source, mode="r", options=SOURCE_OPEN_OPTIONS)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UnreadableSource(f"cannot open {path} as media: {exc}") from exc
    with container:
        video = _first_video_stream(container, path)
        audio_streams = [s for s in container.streams.audio if s.codec_context.sample_rate]
        first_frame = None
        try:
            for n, packet in enumerate(container.demux(video)):
                if n >= FIRST_FRAME_PACKETS:
                    break
                if packet.size and not packet.is_discard:
                    first_frame = _decode_first(packet)
                    if first_frame is not None:
                        break
        except (av.FFmpegError, ValueError, OSError) as exc:
            log.info("%s: reading the first frame failed: %s", path, exc)
        first = [] if first_frame is None or first_frame.pts is None else [first_frame.pts]
        summary = _built(container, video, audio_streams, path, first_frame, first,
                         [0] * len(first), 0, {s.index: [] for s in audio_streams}, "")
        return dataclasses.replace(summary, video_declared_frames=int(video.frames or 0),
                                   nominal_rate=_declared_rate(video))


def _declared_rate(video) -> Fraction | None:
    """The stream's base rate (its timestamps' step), else its average: gaps in a
    constant-rate stream lower the average, not the step."""
    for rate in (video.base_rate, video.average_rate, video.guessed_rate):
        if rate and 0 < rate <= 240:
            return Fraction(rate.numerator, rate.denominator).limit_denominator(1001)
    return None


def _built(container, video, audio_streams, path, first_frame, video_pts, video_durations,
           hidden, audio_packets, demux_error) -> StreamSummary:
    """The summary of what a pass over (some of) the packets read."""
    tb = Fraction(video.time_base.numerator, video.time_base.denominator)
    ctx = video.codec_context
    order = sorted(range(len(video_pts)), key=video_pts.__getitem__)
    pts_sorted = tuple(video_pts[i] for i in order)
    deltas = _deltas(pts_sorted)
    typical = statistics.median_low(deltas) if deltas else 0
    if pts_sorted:
        last = order[-1]
        video_end = float((pts_sorted[-1] + (video_durations[last] or typical)) * tb)
    else:
        video_end = 0.0

    start_s = container.start_time / av.time_base if container.start_time is not None else 0.0
    declared_end = start_s + container.duration / av.time_base if container.duration else None
    tags = colour_names(ctx)
    if first_frame is not None:  # the bitstream may say what the container does not
        tags = tuple(tag if tag != UNKNOWN else frame_tag
                     for tag, frame_tag in zip(tags, colour_names(first_frame), strict=True))
    primaries, transfer, matrix, rng = tags

    return StreamSummary(
        path=path,
        format_name=container.format.name,
        start_s=start_s,
        declared_end_s=declared_end,
        video_index=video.index,
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        pix_fmt=ctx.pix_fmt or UNKNOWN,
        sample_aspect_ratio=_sar(video),
        field_order=_FIELD_ORDER.get(code_point(ctx, "field_order"), UNKNOWN),
        rotation_deg=_rotation(video, first_frame),
        color_primaries=primaries,
        color_transfer=transfer,
        color_matrix=matrix,
        color_range=rng,
        time_base=tb,
        video_pts=pts_sorted,
        video_end_s=video_end,
        video_declared_end_s=_declared_end(video),
        video_declared_frames=max(0, int(video.frames or 0) - hidden) if video.frames else 0,
        audio=tuple(_audio_summary(s, audio_packets[s.index]) for s in audio_streams),
        demux_error=demux_error,
    )


def _decode_first(packet):
    """The first frame this packet yields, if any (decoding stops once one came out)."""
    try:
        for frame in packet.decode():
            return frame
    except (av.FFmpegError, ValueError):
        return None
    return None


def _sar(video) -> Fraction:
    for sar in (video.sample_aspect_ratio, video.codec_context.sample_aspect_ratio):
        if sar and sar.numerator > 0 and sar.denominator > 0:
            return Fraction(sar.numerator, sar.denominator)
    return Fraction(1)


def _rotation(video, first_frame) -> int:
    """Clockwise display rotation: the display matrix (counter-clockwise) negated, else the
    legacy `rotate` tag (clockwise), rounded to a multiple of 90."""
    ccw = None
    if first_frame is not None:
        try:
            ccw = first_frame.rotation
        except (AttributeError, ValueError):
            ccw = None
    if ccw:
        return round(-float(ccw) / 90.0) * 90 % 360
    tags = {k.lower(): v for k, v in video.metadata.items()}
    try:
        return round(float(tags.get("rotate", 0)) / 90.0) * 90 % 360
    except ValueError:
        return 0


def _declared_end(stream) -> float | None:
    if not stream.duration or stream.duration <= 0:
        return None
    start = stream.start_time if stream.start_time is not None else 0
    return float((start + stream.duration) * stream.time_base)


def audio_run(packets: list[tuple[int, int]], tb) -> tuple[int, tuple[tuple[float, float], ...]]:
    """Where a stream's (pts, duration) packets end (ticks of `tb`) and their gaps over
    AUDIO_GAP_S (seconds, from-to). A packet without a duration lasts the median one.
    Sorts `packets` in place; it must not be empty."""
    packets.sort()
    durations = [d for _, d in packets if d > 0]
    fallback = (
        statistics.median_low(durations)
        if durations
        else (statistics.median_low(_deltas([p for p, _ in packets])) if len(packets) > 1 else 0)
    )
    gaps = []
    end = packets[0][0] + (packets[0][1] or fallback)
    num, den = tb.numerator, tb.denominator  # int arithmetic: as exact, without Fractions
    for pts, dur in packets[1:]:
        if (pts - end) * num / den > AUDIO_GAP_S:
            gaps.append((end * num / den, pts * num / den))
        end = max(end, pts + (dur or fallback))
    return end, tuple(gaps)


def _audio_summary(stream, packets: list[tuple[int, int]]) -> AudioSummary:
    ctx = stream.codec_context
    tb = stream.time_base
    if not packets:
        return AudioSummary(
            stream.index, ctx.name, ctx.sample_rate, 0.0, 0.0, 0, _declared_end(stream)
        )
    end, gaps = audio_run(packets, tb)
    return AudioSummary(
        index=stream.index,
        codec=ctx.name,
        sample_rate_hz=ctx.sample_rate,
        start_s=float(packets[0][0] * tb),
        end_s=float(end * tb),
        packets=len(packets),
        declared_end_s=_declared_end(stream),
        gaps=gaps,
    )


def _summary(source: str | StreamSummary) -> StreamSummary:
    return source if isinstance(source, StreamSummary) else summarize(source)
