"""An IMF title's composed timeline staged for the decode-based inspection over spans.

`media.inspect.spans` reads a span of one container by range; an IMF title is several
track files. So a span of an IMF title is first staged from its table
(`pipeline_source.TitleTable`): the picture frames it covers (from the last frame at or
before its start, as a span read keeps whole groups of pictures), after one frame more
(its pre-roll), to the first frame after it (which tells where it ends), copied from
their track files (`image_packets`, as `stage_image_span` copies them: intra-only
essence, every cut exact) straight into that file, and the
PCM of each audio track over the same time and the audio tail the span read takes
(`track_pcm`, as `stage_audio_span` reads it), muxed into one small local file on the
title's timeline, in packets on one grid from the title's start: audio
stream `k` is the CPL's `k`-th `MainAudioSequence`. The span's read and decode then run
on that file as on any source. `title_head` is the header step's summary of the
composed title, from its first frame and the CPL's durations. No Beam here.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import os
from fractions import Fraction

import av
import numpy as np

from media.core.errors import UnreadableSource
from media.ingest.imf.pipeline_source import (
    TitleTable,
    TrackPcm,
    frame_range,
    image_packets,
    image_staging_format,
    pcm_layout,
    track_pcm,
)
from media.ingest.imf.storage import Storage
from media.inspect.demux import head_summary
from media.inspect.results import StreamSummary

AUDIO_PACKET = 1024
"""Samples per staged audio packet, cut on the title's grid from its start."""
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
    audio = [pcm for k in range(len(table.audio))
             if (pcm := track_pcm(table, k, lo, min(table.duration_s,
                                                    hi + Fraction(AUDIO_TAIL_S)), storage))]
    reads = table.image_reads(first, end - first)
    try:
        path, count = _muxed(table, image_packets(table, reads, storage), audio, out_base)
    except av.FFmpegError as exc:
        raise UnreadableSource(f"{table.cpl_uri}: cannot read title frames {first}-{end}: "
                               f"{exc}") from exc
    if count != end - first:
        raise UnreadableSource(f"{table.cpl_uri}: {count} of the {end - first} frames "
                               f"{first}-{end} were found in their track files")
    return path


def _muxed(table: TitleTable, pictures, audio: list[TrackPcm], out_base: str
           ) -> tuple[str, int]:
    """The picture packets (`image_packets`) and the audio tracks' PCM as one file (the
    container the picture is staged in), every packet in time order; the audio in
    packets of `AUDIO_PACKET` samples on the title's grid (every span's packets meet the
    next span's exactly). Its path, and the picture packets in it."""
    first = next(pictures, None)
    if first is None:
        return "", 0
    fmt, suffix = image_staging_format(first[0], table.cpl_uri)
    path = out_base + suffix
    count = 0
    with av.open(path, mode="w", format=fmt) as out:
        outs = [out.add_stream_from_template(first[0], opaque=True)]
        for pcm in audio:
            outs.append(out.add_stream("pcm_f32le", rate=pcm.rate,
                                       layout=pcm_layout(pcm.samples.shape[0])))
        streams = [_timed_video(table, itertools.chain([first], pictures))] + [
            _timed_audio(pcm, outs[n]) for n, pcm in enumerate(audio, start=1)]
        for _, n, _, packet in heapq.merge(*(_keyed(n, packets)
                                             for n, packets in enumerate(streams))):
            packet.stream = outs[n]
            out.mux(packet)
            count += n == 0
    return path, count


def _timed_video(table: TitleTable, pictures):
    """(title time, packet) of each picture packet (its timestamp the title frame)."""
    for _, packet in pictures:
        yield packet.pts / table.edit_rate, packet


def _keyed(n: int, packets):
    """(time, input, order, packet): what the inputs are merged by (never the packet)."""
    for order, (t, packet) in enumerate(packets):
        yield t, n, order, packet


def _timed_audio(pcm: TrackPcm, stream):
    """(title time, packet) of the PCM cut at each multiple of `AUDIO_PACKET` samples
    from the title's start, encoded as float PCM."""
    rate = pcm.rate
    at = round(pcm.first_time_s * rate)  # title sample of the first
    samples = np.ascontiguousarray(pcm.samples, dtype=np.float32)
    layout = pcm_layout(samples.shape[0])
    done = 0
    while done < samples.shape[1]:
        cut = min(samples.shape[1], (at + done) // AUDIO_PACKET * AUDIO_PACKET
                  + AUDIO_PACKET - at)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, done:cut]),
                                           format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = at + done
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            yield Fraction(packet.pts, rate), packet
        done = cut
    for packet in stream.encode(None):
        yield Fraction(packet.pts, rate), packet


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
