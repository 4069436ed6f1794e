"""Stage one chunk's part of a source locally, reading O(chunk) bytes of it.

An encode worker must not read the whole title (design invariant 3). `stage_span`
seeks the source to the keyframe at or before the span, copies the video packets up
to the span's end into a small local file (stream copy, no decode), and keeps the
source's own timestamps, so the encoder can cut the span exactly. The file is Matroska
where Matroska takes the codec, else the first container that does
(`media.core.containers.staging_format`: MOV for DNxHD/DNxHR).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import BinaryIO

import av

from media.core.containers import UnstageableCodec, staging_format
from media.core.errors import UndecodableVideo, UnreadableSource
from media.core.source_index import opened_source
from media.ingest.imf.pipeline_source import is_imf_title, read_table, stage_image_span
from media.inspect.probe import SOURCE_OPEN_OPTIONS

log = logging.getLogger(__name__)

SEEK_BACKOFF_S = (0.0, 2.0, 10.0, 60.0)
"""How far before the span start to seek when a container's index lands late."""


@dataclass(frozen=True)
class StagedSpan:
    path: str
    packets: int
    bytes_copied: int
    first_pts_s: float


def stage_span(source: str | BinaryIO, start_s: float, end_s: float, out_path: str,
               source_uri: str = "") -> StagedSpan:
    """Copy the video packets needed to decode [start_s, end_s) into a file named like
    `out_path` (its suffix is the staging container's: `StagedSpan.path` says).
    An IMF title (`source` is its table) is staged from the track files the span covers."""
    if is_imf_title(source_uri):
        staged = stage_image_span(read_table(source, source_uri), start_s, end_s, out_path)
        return StagedSpan(staged.path, staged.packets, staged.bytes_copied, staged.first_pts_s)
    try:
        # Every try below seeks first, so the source the last read left open will do.
        with opened_source(source, SOURCE_OPEN_OPTIONS) as container:
            video = container.streams.video[0]
            codec = video.codec_context.codec.canonical_name
            chosen = staging_format(codec)
            if chosen is None:
                raise UnstageableCodec(f"{source_uri}: the video codec {codec} cannot be "
                                       "staged for encoding")
            fmt, suffix = chosen
            try:
                staged = _staged(container, video, start_s, end_s,
                                 os.path.splitext(out_path)[0] + suffix, fmt)
            except _BeforeZero:
                # Matroska would shift the span to start at 0, moving every frame by the
                # hidden ones' length; MOV keeps them hidden at their own times.
                staged = _staged(container, video, start_s, end_s,
                                 os.path.splitext(out_path)[0] + ".mov", "mov")
            if staged is not None:
                return staged
    except (av.FFmpegError, IndexError) as exc:
        # The source changed or is damaged past what inspection read.
        raise UnreadableSource(
            f"{source_uri}: cannot read {start_s:.3f}-{end_s:.3f} s of the source: {exc}"
        ) from exc
    raise UndecodableVideo(
        f"{source_uri}: no keyframe found at or before {start_s:.3f} s; the source's index "
        "may be damaged", hint="Re-mux the source (for example `ffmpeg -i in -c copy out.mp4`)."
    )


class _BeforeZero(Exception):
    """The span starts with frames before time 0: an edit list hides them (an MP4 cut by
    stream copy keeps the frames from the keyframe before its cut)."""


def _staged(container, video, start_s, end_s, out_path, fmt) -> StagedSpan | None:
    """The span staged in `fmt`, seeking further back each time the index lands late
    (None: no keyframe at or before the span)."""
    for backoff in SEEK_BACKOFF_S:
        staged = _copy_packets(container, video, start_s - backoff, start_s, end_s,
                               out_path, fmt)
        if staged is not None:
            return staged
    return None


def _copy_packets(container, video, seek_s, start_s, end_s, out_path, fmt) -> StagedSpan | None:
    tb = video.time_base
    target = max(0, math.floor(seek_s / tb)) if seek_s > 0 else 0
    container.seek(target, stream=video, backward=True, any_frame=False)
    end_pts = math.ceil(end_s / tb)
    count = nbytes = 0
    first_pts_s = None
    with av.open(out_path, mode="w", format=fmt) as out:
        # Opaque: the codec parameters are copied as they are, with no encoder looked up
        # (none exists for AV1 here, whose decoder is libdav1d).
        ostream = out.add_stream_from_template(video, opaque=True)
        for packet in container.demux(video):
            if packet.size == 0:
                continue
            if count == 0:
                first_pts_s = float(packet.pts * tb) if packet.pts is not None else None
                # Landed after the span start, or not on a keyframe: back off and retry.
                late = first_pts_s is None or first_pts_s > start_s + 1e-6
                if (not packet.is_keyframe or late) and seek_s > 0:
                    return None
                if fmt == "matroska" and first_pts_s is not None and first_pts_s < 0:
                    raise _BeforeZero
            # Packets come in decode order and dts <= pts: once dts reaches the end, no
            # later packet can show a frame before it. Matroska stores no dts, and the
            # demuxer leaves it unset on the first packets of a stream with B-frames:
            # those are kept (the keyframe among them).
            if packet.dts is not None and packet.dts >= end_pts:
                break
            packet.stream = ostream
            out.mux(packet)
            count += 1
            nbytes += packet.size
    return StagedSpan(out_path, count, nbytes, first_pts_s or 0.0)
