"""An IMF title's composed timeline staged for the decode-based inspection over spans.

`media.inspect.spans` reads a span of one container by range; an IMF title is several
track files. So a span of an IMF title is first staged from its table
(`pipeline_source.TitleTable`): the picture frames it covers (from the last frame at or
before its start, as a span read keeps whole groups of pictures), after one frame more
(its pre-roll), to the first frame after it (which tells where it ends), copied from
their track files (`stage_image_span`: intra-only essence, every cut exact), and the
PCM of each audio track over the same time and the audio tail the span read takes
(`stage_audio_span`), muxed into one small local file on the title's timeline: audio
stream `k` is the CPL's `k`-th `MainAudioSequence`. The span's read and decode then run
on that file as on any source. `title_head` is the header step's summary of the
composed title, from its first frame and the CPL's durations. No Beam here.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
from fractions import Fraction

import av

from media.core.errors import UnreadableSource
from media.ingest.imf.pipeline_source import (
    TitleTable,
    frame_range,
    stage_audio_span,
    stage_image_span,
)
from media.ingest.imf.storage import Storage
from media.inspect.demux import head_summary
from media.inspect.results import StreamSummary

AUDIO_TAIL_S = 1.5
"""Audio staged past a span's last frame: the span read takes audio a second past its
end (`media.inspect.spans.AUDIO_TAIL_S`), and a silence running on needs it."""


def stage_title_span(table: TitleTable, start_s: float | None, end_s: float | None,
                     out_base: str, storage: Storage | None = None) -> str:
    """The title's span [start_s, end_s) (None: open) as one small local file (its path):
    the picture from the span's pre-roll to the frame after it, and every audio
    track over that time (plus `AUDIO_TAIL_S`), each at its title time."""
    rate = table.edit_rate
    first, end = frame_range(table, 0 if start_s is None else start_s,
                             float(table.duration_s) if end_s is None else end_s)
    # A span's frames run from the last frame at or before its start (every frame is a
    # keyframe), after one more: its pre-roll.
    first = max(0, first - 2)
    end = min(table.frame_count, end + 1)  # the next span's first frame
    if end <= first:
        raise UnreadableSource(f"{table.cpl_uri}: no frame of the title in the span "
                               f"{start_s}-{end_s}")
    lo, hi = Fraction(first) / rate, Fraction(end) / rate
    # Bounds half a frame inside each frame's time, so no rounding moves one.
    half = Fraction(1, 2) / rate
    image = stage_image_span(table, float(lo - half), float(hi - half),
                             f"{out_base}-image", storage)
    audio = []
    for k in range(len(table.audio)):
        pcm = stage_audio_span(table, k, lo, min(table.duration_s, hi + Fraction(AUDIO_TAIL_S)),
                               f"{out_base}-audio{k}", storage)
        if pcm.packets:
            audio.append((pcm.path, pcm.first_time_s))
    path = _muxed(image.path, audio, f"{out_base}-title")
    for staged in [image.path, *(p for p, _ in audio)]:
        os.remove(staged)
    return path


def _muxed(image_path: str, audio: list[tuple[str, Fraction]], out_base: str) -> str:
    """The staged picture and audio files as one file (the picture's container), every
    packet in time order, the audio moved to where its first sample plays."""
    inputs = [av.open(image_path)]
    try:
        inputs += [av.open(path) for path, _ in audio]
        fmt = inputs[0].format.name.split(",")[0]
        path = out_base + os.path.splitext(image_path)[1]
        with av.open(path, mode="w", format=fmt) as out:
            outs = [out.add_stream_from_template(c.streams[0], opaque=True) for c in inputs]
            offsets = [0] + [round(first / _tb(c.streams[0]))
                             for c, (_, first) in zip(inputs[1:], audio, strict=True)]
            streams = [_timed(c, n, offsets[n]) for n, c in enumerate(inputs)]
            for _, _, n, packet in heapq.merge(*streams):
                packet.stream = outs[n]
                out.mux(packet)
        return path
    finally:
        for container in inputs:
            container.close()


def _tb(stream) -> Fraction:
    return Fraction(stream.time_base.numerator, stream.time_base.denominator)


def _timed(container, n: int, offset: int):
    """(time, order, input, packet) of each packet of a staged file, shifted by `offset`
    ticks: the key the inputs are merged by."""
    stream = container.streams[0]
    tb = _tb(stream)
    for order, packet in enumerate(container.demux(stream)):
        if not packet.size or packet.pts is None:
            continue
        packet.pts += offset
        packet.dts = packet.pts if packet.dts is None else packet.dts + offset
        yield packet.pts * tb, order, n, packet


def title_head(table: TitleTable, uri: str, storage: Storage | None = None,
               scratch: str = "") -> StreamSummary:
    """The header step's summary of the composed title (`head_summary` of its first
    frame staged with its audio), with the CPL's durations, frame count and edit rate:
    what its timeline is cut into spans by, and what the spans are merged onto."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="imf-head-", dir=scratch or None) as folder:
        rate = table.edit_rate
        path = stage_title_span(table, None, float(Fraction(1, 2) / rate),
                                os.path.join(folder, "head"), storage)
        head = head_summary(path, uri)
    end = float(table.duration_s)
    audio = tuple(dataclasses.replace(a, declared_end_s=end) for a in head.audio)
    return dataclasses.replace(head, path=uri, start_s=0.0, declared_end_s=end,
                               video_declared_end_s=end,
                               video_declared_frames=table.frame_count,
                               nominal_rate=table.edit_rate, audio=audio)
