"""Inspection over spans of the source: each span read by range and checked on its own,
the span results merged into the one verdict a whole-file inspection gives.

A feature-length master does not fit a worker's disk, and one decode of it takes hours.
So the title's timeline is cut into spans (`plan_spans`, `SPAN_S` each; a short clip is
one span), and for each span `inspect_span` reads only its part of the source through a
seekable handle (from the keyframe before it to its end: the packets' timestamps, and a
stream copy of the span's video and audio into a small local file, as
`media.encode.staging` stages an encode's chunk, after one group of pictures before its
own, which an open GOP's leading pictures refer to), then decodes that copy once through
the same detectors as a whole decode, counting none of that pre-roll. What it returns
(`SpanResult`) is slim and on the source's timeline: its packet timestamps summarised
(`media.inspect.timestamps`: a few numbers, however long the span), decoded frame
counts, every black, frozen or silent stretch (however short: one cut at a span join is
joined again), decode errors, complexity bytes and shot cuts (`media.inspect.shots`) of
its own frames.

`merge_spans` joins the spans (a stretch crossing a join is one stretch; a gap at a join
is found from the timestamps on both sides) into one demux summary and one decode pass,
and judges them with the very rules of a whole-file inspection
(`media.inspect.verdict`). `inspect_by_spans` does all of it in one process, span after
span; `transforms.inspect` runs the spans in parallel.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av

from media.core.containers import UnstageableCodec, staging_format
from media.core.errors import MediaError, ToolFailed, UnreadableSource
from media.core.source_index import opened_source
from media.ingest.imf.inspection import stage_title_span
from media.ingest.imf.pipeline_source import is_imf_title, read_table
from media.inspect import complexity
from media.inspect.decode_pass import (
    IDET_FRAMES,
    IdetCounts,
    Window,
    _Pass,
    less_errors,
    video_decode_errors,
)
from media.inspect.decoding import _open_failure, _raise_if_timed_out, _undecodable
from media.inspect.demux import audio_run, head_summary
from media.inspect.probe import SOURCE_OPEN_OPTIONS, _first_video_stream
from media.inspect.results import AudioSummary, Finding, SourceFacts, StreamSummary, _deltas
from media.inspect.stretches import _stretches
from media.inspect.thresholds import AUDIO_GAP_S, MAX_FIRST_ERRORS, MIN_STRETCH_S
from media.inspect.timestamps import Timestamps
from media.inspect.verdict import analysed_decode_pass, facts_of, verdict
from media.package.boxes import truncation

SPAN_S = 60.0
"""Seconds of the title per inspection span: a minute decodes in seconds on one worker,
and a 2-hour master is 120 spans."""
SEEK_BACKOFF_S = (2.0, 10.0, 60.0)
"""How far before a span to seek (then from the start): far enough that the audio
interleaved before the span's first video keyframe is read too, further where the
container's index lands late."""
AUDIO_TAIL_S = 1.0
"""Audio read past a span's end before its read stops (interleaving is that close)."""
JOIN_FRAMES = 1.5
"""Stretches of two spans that meet within this many frames are one stretch."""


@dataclass(frozen=True)
class Span:
    """Part `index` of `count` of a title's timeline: [start_s, end_s) on the source's
    timeline (seconds of its timestamps; None: open), each bound half a frame off a
    frame's time, so no rounding puts a frame in two spans."""

    index: int
    count: int
    start_s: float | None
    end_s: float | None


def plan_spans(head: StreamSummary, video_start_s: float, span_s: float = SPAN_S
               ) -> tuple[Span, ...]:
    """The title's spans from what its header says (duration, rate): one for a short
    clip or a source whose header declares no duration or rate."""
    rate = head.nominal_rate
    end = head.declared_end_s if head.declared_end_s is not None else head.video_declared_end_s
    if not rate or end is None or span_s <= 0:
        return (Span(0, 1, None, None),)
    count = max(1, math.ceil((end - video_start_s) / span_s - 1e-6))
    if count == 1:
        return (Span(0, 1, None, None),)
    frame_s = 1 / float(rate)
    bounds = [video_start_s + (round(k * span_s * float(rate)) - 0.5) * frame_s
              for k in range(1, count)]
    starts, ends = [None, *bounds], [*bounds, None]
    return tuple(Span(i, count, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True)))


# --- one span ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioPart:
    """One audio stream's packets and decode within a span (source timeline, bar
    `decoded_end_s` and `silences`: seconds from the start, as a decode reports)."""

    index: int
    packets: int = 0
    first_s: float | None = None
    end_s: float = 0.0
    gaps: tuple[tuple[float, float], ...] = ()
    frames: int = 0
    decoded_end_s: float | None = None
    silences: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class SpanResult:
    """What one span's read and decode found: slim, and mergeable with its neighbours'."""

    span: Span
    timestamps: Timestamps = dataclasses.field(default_factory=Timestamps)
    """The span's video packet timestamps (the source's time base), summarised: its size
    does not grow with the span's length."""
    last_duration: int = 0
    """Duration of the span's last video packet (ticks; 0: not given)."""
    hidden: int = 0
    """Video samples an edit list hides, in the span."""
    demux_error: str = ""
    audio: tuple[AudioPart, ...] = ()
    frames: int = 0
    """Video frames the decode gave of the span."""
    decoded_end_s: float | None = None
    error_count: int = 0
    first_errors: tuple[str, ...] = ()
    black: tuple[tuple[float, float], ...] = ()
    frozen: tuple[tuple[float, float], ...] = ()
    """Stretches (seconds from the start) inside the span: each at least `MIN_STRETCH_S`,
    or touching a span bound (it may go on in the neighbour)."""
    ran_video_filters: tuple[str, ...] = ()
    ran_audio_filters: tuple[str, ...] = ()
    analysis_bytes: tuple[int, ...] = ()
    cuts: tuple[float, ...] | None = None
    """The frames of the span scdet called a cut (seconds from the start; none of the
    pre-roll's, which gives the span's first frame the one before it); None: not run."""
    idet: str = ""
    """idet's class of each of the span's first frames (up to `IDET_FRAMES`), in order,
    run-length coded ("t12p3": 12 top-field-first, then 3 progressive; `_idet_runs`)."""
    idet_before: str = ""
    """idet's class of the frame just before the span (the last of its pre-roll), seen
    with its neighbours on both sides, where the span before saw it last and alone."""
    undecodable: str = ""
    """FFmpeg's last words where it could not decode the span at all."""
    staged_bytes: int = 0
    """Size of the span's local copy (what the span read of the source, near enough)."""


def inspect_span(source: str | BinaryIO, span: Span, head: StreamSummary, plan: SpanPlan,
                 *, timeout_s: float | None = None, source_uri: str = "") -> SpanResult:
    """Read the span by range from `source` (a local path or a seekable file object) and
    check it: its packets' timestamps, then one decode of its staged copy through the
    detectors (and, with the plan's `analysis_bin`, the complexity analysis on the whole
    decode's bins; interlace detection in the first span, on the first frames as a whole
    decode's). An IMF title (`source` is its table, `source_uri` ends `.imf.json`) has
    its span staged from the track files first (`media.ingest.imf.inspection`)."""
    uri = source_uri or head.path
    with tempfile.TemporaryDirectory(prefix="inspect-span-") as scratch:
        if is_imf_title(uri):  # a composed IMF title: its span staged from its track files
            source = stage_title_span(read_table(source, uri), span.start_s, span.end_s,
                                      os.path.join(scratch, "imf"))
        packets, staged, audio_map, pts, preroll = _read_span(
            source, span, os.path.join(scratch, "span"), uri)
        if staged is None:
            return packets
        packets = dataclasses.replace(packets, staged_bytes=os.path.getsize(staged))
        tb = head.time_base
        rate = head.nominal_rate or Fraction(25)
        if len(pts) < 2:
            pts = (0, max(1, round(1 / (rate * tb))))
        local = dataclasses.replace(
            head, path=staged, video_index=0, video_pts=pts,
            audio=tuple(dataclasses.replace(a, index=audio_map[a.index])
                        for a in head.audio if a.index in audio_map))
        bounds = packets.span
        # idet in every span (a span cannot tell whether the title's first `IDET_FRAMES`
        # frames end before it: a gap may hold none), from the pre-roll's last two frames.
        lead_s = bounds.start_s if preroll.lead_s is None \
            else preroll.lead_s - 0.25 / float(rate)
        window = Window(bounds.start_s, bounds.end_s, offset_s=head.start_s,
                        keyframe_start_s=plan.video_start_s,
                        keyframe_period_s=plan.analysis_bin / float(rate),
                        idet_from_s=lead_s)
        try:
            result = analysed_decode_pass(local, plan.analysis_bin, timeout_s, idet=True,
                                          window=window)
        except ToolFailed as exc:
            _raise_if_timed_out(exc, timeout_s)
            return dataclasses.replace(packets, undecodable=exc.stderr_tail)
        if preroll.packets and result.errors:
            result = less_errors(result, _preroll_errors(staged, preroll.packets, timeout_s))
    return _with_decode(packets, result, head)


def _preroll_errors(staged: str, packets: int, timeout_s: float | None) -> tuple[str, ...]:
    """What decoding the span's pre-roll (the first `packets` video packets of its staged
    copy: the group of pictures before its own) logs on its own: the same lines the
    span's decode logged before its first frame (a decoder starting at a keyframe that
    is no IDR, and that group's leading pictures, refer to pictures not there)."""
    base, suffix = os.path.splitext(staged)
    path = f"{base}-preroll{suffix}"
    try:
        with av.open(staged) as src, av.open(
                path, mode="w", format=src.format.name.split(",")[0]) as out:
            video = src.streams.video[0]
            vout = out.add_stream_from_template(video, opaque=True)
            for n, packet in enumerate(p for p in src.demux(video) if p.size):
                if n >= packets:
                    break
                packet.stream = vout
                out.mux(packet)
        return video_decode_errors(path, timeout_s)
    except (av.FFmpegError, OSError, ToolFailed):
        return ()


def _with_decode(packets: SpanResult, result: _Pass, head: StreamSummary) -> SpanResult:
    span = packets.span
    audio_map = {a.index: n for n, a in enumerate(head.audio, start=1)}
    lo = None if span.start_s is None else span.start_s - head.start_s
    hi = None if span.end_s is None else span.end_s - head.start_s
    end = result.video_end_s if result.video_end_s is not None else (hi or 0.0)

    near = JOIN_FRAMES / float(head.nominal_rate or 25)

    def inside(meta, start_key, end_key, stream_end, preroll=False):
        found = _stretches(meta, start_key, end_key, stream_end, min_s=0.0,
                           offset_s=head.start_s)
        if preroll:  # a stretch that runs into the span from its pre-roll keeps its start
            found = [(s, e) for s, e in found if lo is None or e > lo]
        return tuple(_kept(_clipped(found, None if preroll else lo, hi), lo, hi, near))

    audio = []
    for part in packets.audio:
        local = audio_map.get(part.index)
        a_end = result.audio_end_s.get(local, end)
        audio.append(dataclasses.replace(
            part, frames=result.audio_frames.get(local, 0),
            decoded_end_s=result.audio_end_s.get(local),
            silences=inside(result.audio_meta.get(local, ()), "lavfi.silence_start",
                            "lavfi.silence_end", a_end)))
    return dataclasses.replace(
        packets, audio=tuple(audio), frames=result.video_frames,
        decoded_end_s=result.video_end_s, error_count=result.errors,
        first_errors=result.error_lines[:MAX_FIRST_ERRORS],
        black=inside(result.video_meta, "lavfi.black_start", "lavfi.black_end", end, True),
        frozen=inside(result.video_meta, "lavfi.freezedetect.freeze_start",
                      "lavfi.freezedetect.freeze_end", end, True),
        ran_video_filters=result.ran_video_filters, ran_audio_filters=result.ran_audio_filters,
        analysis_bytes=result.analysis_bytes, cuts=result.scene_cuts,
        **_idet_classes(result, span.start_s))


def _idet_classes(result: _Pass, start_s: float | None) -> dict[str, str]:
    """The span's idet fields: its own frames' classes (from `start_s`, the span's
    first frame's time less a quarter frame), and the class of the frame before it where
    idet saw that frame's neighbours (a frame before it too)."""
    own = [c for t, c in result.idet_frames if start_s is None or t >= start_s]
    before = [c for t, c in result.idet_frames if start_s is not None and t < start_s]
    return {"idet": _idet_runs(own[:IDET_FRAMES]),
            "idet_before": before[-1][0] if len(before) > 1 else ""}


def _idet_runs(classes: Sequence[str]) -> str:
    """Classes ("tff", "bff", "progressive", "undetermined") run-length coded by their
    initials: ["tff", "tff", "progressive"] is "t2p1"."""
    return "".join(f"{c[0]}{len(list(run))}" for c, run in itertools.groupby(classes))


def _idet_letters(runs: str) -> list[str]:
    """`_idet_runs` decoded into initials."""
    return [c for c, n in re.findall(r"([a-z])(\d+)", runs) for _ in range(int(n))]


def _clipped(stretches, lo, hi):
    for start, end in stretches:
        s = max(start, lo) if lo is not None else start
        e = min(end, hi) if hi is not None else end
        if e > s:
            yield s, e


def _kept(stretches, lo, hi, near: float):
    """Stretches long enough to report, or that touch a bound (within `near` seconds:
    they may go on in the neighbour)."""
    for s, e in stretches:
        at_bound = (lo is not None and s <= lo + near) or (hi is not None and e >= hi - near)
        if at_bound or e - s >= MIN_STRETCH_S - 1e-6:
            yield s, e


class _BeforeZero(Exception):
    """Matroska would shift a span whose frames start before 0 (an edit list hides them)."""


def _read_span(source, span: Span, out_base: str, uri: str
               ) -> tuple[SpanResult, str | None, dict[int, int], tuple[int, ...], int]:
    """The span's packet timestamps, and a stream copy of what decoding it needs (its
    own groups of pictures, after the group before them: a pre-roll, which an open GOP's
    leading pictures refer to) in a local file: (result with the packets, the file or
    None when the span holds no video, source audio index -> local index, the span's
    video timestamps, which its decode reads and its result summarises, the pre-roll's
    video packets, first in the file)."""
    formats: list[tuple[str, str]] = []
    try:
        while True:
            if not isinstance(source, str):
                source.seek(0)  # a handle another read left elsewhere
            # A span with a start seeks to it; the first reads from where a fresh open
            # starts.
            with opened_source(source, SOURCE_OPEN_OPTIONS,
                               reuse=span.start_s is not None) as container:
                video = _first_video_stream(container, uri)
                if not formats:
                    codec = video.codec_context.codec.canonical_name
                    chosen = staging_format(codec)
                    if chosen is None:
                        raise UnstageableCodec(f"{uri}: the video codec {codec} cannot be "
                                               "staged")
                    formats = [(chosen[1], chosen[0]), (".mov", "mov")]
                suffix, fmt = formats.pop(0)
                try:
                    return _copy_span(container, video, span, out_base + suffix, fmt)
                except _BeforeZero:
                    # Matroska would shift the span to start at 0, moving every frame
                    # by the hidden ones' length; MOV keeps them hidden at their times.
                    continue
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise UnreadableSource(f"{uri}: cannot read the span {span.index} of the source: "
                               f"{exc}") from exc


def _copy_span(container, video, span: Span, out_path: str, fmt: str):
    seeks = [None] if span.start_s is None else [*SEEK_BACKOFF_S, math.inf]  # inf: from 0
    before: float | None = None  # the span's first keyframe, where a read began at it
    n = 0
    while seeks:
        if before is not None:  # once: seek to the keyframe before the span's first
            seek_s, before = max(0.0, before - _JUST_BEFORE_S), math.nan
        else:
            backoff = seeks.pop(0)
            seek_s = None if backoff is None else max(0.0, span.start_s - backoff)
        try:
            found = _copy_from(container, video, span, out_path, fmt, seek_s, fresh=n == 0)
        except _NoPreroll as missing:
            found = None
            if before is None and missing.first_keyframe_s is not None:
                before = missing.first_keyframe_s
        n += 1
        if found is not None:
            return found
    raise UnreadableSource(f"no keyframe found at or before {span.start_s:.3f} s")


def _copy_from(container, video, span: Span, out_path: str, fmt: str, seek_s: float | None,
               fresh: bool):
    """One try at the span's read from the keyframe before `seek_s` (None: from where a
    fresh container starts); None where the seek landed past the span's start.

    The span's own frames are those from the last keyframe at or before its start to the
    last keyframe at or before its end (the next span's first), so every frame is decoded
    by one span, and only it: whole groups of pictures are copied, each held back until
    the next keyframe says whether it is the span's, after the group before the span's
    first (the pre-roll; where the read began at the span's first keyframe, None: seek
    further back). A group starts at its earliest frame: an open GOP's leading pictures
    are the span's whose keyframe they follow."""
    audio_streams = [s for s in container.streams.audio if s.codec_context.sample_rate]
    vtb = video.time_base
    atb = {s.index: s.time_base for s in audio_streams}  # a packet's builds a new Fraction
    if seek_s is not None or not fresh:
        container.seek(max(0, math.floor((seek_s or 0.0) / vtb)), stream=video,
                       backward=True, any_frame=False)
    start, end = span.start_s, span.end_s
    seen_video: list[tuple[int, int, bool]] = []  # pts, duration, hidden
    preroll: list = []  # the group of pictures before the span's first
    seen_audio: dict[int, list[tuple[int, int, float]]] = {s.index: [] for s in audio_streams}
    early_audio: list = []  # audio read before the span's first keyframe is known
    pending: list = []  # the group of pictures read last, from its keyframe
    lo = hi = None
    flushed, stopped, demux_error = False, False, ""
    preroll_packets, lead_s = 0, None
    audio_until = {s.index: None for s in audio_streams}
    with av.open(out_path, mode="w", format=fmt) as out:
        vout = out.add_stream_from_template(video, opaque=True)
        aout = {s.index: out.add_stream_from_template(s, opaque=True) for s in audio_streams}

        def flush():
            nonlocal flushed, lo, preroll_packets, lead_s
            if not flushed:
                lo = None if start is None else _group_start(pending, vtb)
                if start is not None and not preroll and seek_s:
                    raise _NoPreroll(lo)  # seek further back, for the group before
                for packet in early_audio:
                    if lo is None or _time(packet, atb[packet.stream.index]) >= lo - AUDIO_TAIL_S:
                        packet.stream = aout[packet.stream.index]
                        out.mux(packet)
                early_audio.clear()
                shown = sorted(t for t in (_time(p, vtb) for p in preroll if not p.is_discard)
                               if t is not None)
                lead_s = shown[-2] if len(shown) > 1 else (shown[0] if shown else None)
                for packet in preroll:
                    packet.stream = vout
                    out.mux(packet)
                preroll_packets = len(preroll)
                preroll.clear()
                flushed = True
            for packet in pending:
                packet.stream = vout
                out.mux(packet)
            pending.clear()

        try:
            for packet in container.demux(video, *audio_streams):
                if not packet.size:
                    continue
                index = packet.stream.index
                pts = packet.pts if packet.pts is not None else packet.dts
                if index != video.index:
                    if pts is None:
                        continue
                    t = _seconds(pts, atb[index])
                    if not packet.is_discard:
                        seen_audio[index].append((pts, packet.duration or 0, t))
                    if fmt == "matroska" and t < 0:
                        continue  # Matroska would shift every stream to start at 0
                    if stopped:
                        audio_until[index] = t
                        if all(u is not None and u >= (hi or 0) + AUDIO_TAIL_S
                               for u in audio_until.values()):
                            break
                    elif flushed:
                        packet.stream = aout[index]
                        out.mux(packet)
                    else:
                        early_audio.append(packet)
                    continue
                if stopped:
                    continue
                t = _time(packet, vtb)
                if not seen_video and seek_s is not None and start is not None:
                    if not packet.is_keyframe:
                        continue  # a seek in MPEG-TS lands where it may: to a keyframe
                    if t is None or t > start + 1e-6:
                        return None  # landed late: seek further back
                if pts is not None:
                    seen_video.append((pts, packet.duration or 0, bool(packet.is_discard)))
                if fmt == "matroska" and t is not None and t < 0:
                    raise _BeforeZero
                if packet.is_keyframe and pending and t is not None:
                    if start is not None and t <= start:
                        preroll = pending[:]  # a group before the span's first
                        pending.clear()
                    elif end is None or t <= end:
                        flush()
                    else:  # the pending group starts the next span
                        hi = _group_start(pending, vtb)
                        stopped = True
                        if not audio_streams:
                            break
                        continue
                pending.append(packet)
        except (av.FFmpegError, ValueError) as exc:
            demux_error = str(exc)
        if not stopped:  # the end of the file
            if end is None or not pending:
                flush()
            else:
                hi = _group_start(pending, vtb)
        if not flushed and hi is not None and start is not None:
            lo = hi  # one group of pictures runs past both bounds: the next span's
    found = _packets_of(span, lo, hi, flushed, seen_video, seen_audio, audio_streams, vtb,
                        demux_error, out_path)
    return (*found, _Preroll(preroll_packets, lead_s))


@dataclass(frozen=True)
class _Preroll:
    """The group of pictures a span's staged copy holds before its own: its video
    packets (first in the copy), and the time of its last frame but one (None: none)."""

    packets: int = 0
    lead_s: float | None = None


class _NoPreroll(Exception):
    """The read began at the span's first keyframe (`first_keyframe_s`): the group before
    it is needed too, so the next try seeks to just before that keyframe."""

    def __init__(self, first_keyframe_s: float | None = None):
        super().__init__(first_keyframe_s)
        self.first_keyframe_s = first_keyframe_s


_JUST_BEFORE_S = 0.001
"""How far before a span's first keyframe a second try seeks, to land on the one before."""


def _time(packet, time_base) -> float | None:
    pts = packet.pts if packet.pts is not None else packet.dts
    return None if pts is None else _seconds(pts, time_base)


def _seconds(ticks: int, time_base) -> float:
    """`float(ticks * time_base)` without building a Fraction: an int over an int is
    rounded once, as that is (a span reads tens of thousands of packets)."""
    return ticks * time_base.numerator / time_base.denominator


def _group_start(group: list, time_base) -> float | None:
    """Where a group of pictures starts on the timeline: its earliest frame, which in an
    open GOP is a leading picture, decoded after the keyframe but shown before it."""
    times = [t for t in (_time(p, time_base) for p in group) if t is not None]
    return min(times) if times else None


def _packets_of(span, lo, hi, flushed, seen_video, seen_audio, audio_streams, vtb,
                demux_error, out_path):
    """The span's packets (timestamps in [lo, hi), each bound a quarter frame early, so
    the decode's rounded times fall on the same side)."""
    typical = statistics.median_low(_deltas(sorted(p for p, _, _ in seen_video))) \
        if len(seen_video) > 1 else 0
    q = float(typical * vtb) / 4
    lo_s = None if lo is None else lo - q
    hi_s = None if hi is None else hi - q
    bounded = dataclasses.replace(span, start_s=lo_s, end_s=hi_s)

    def inside(t: float) -> bool:
        if lo_s is not None and hi_s is not None and lo_s >= hi_s:
            return False
        return (lo_s is None or t >= lo_s) and (hi_s is None or t < hi_s)

    mine = [(p, d, h) for p, d, h in seen_video if inside(_seconds(p, vtb))]
    shown = sorted((p, d) for p, d, h in mine if not h)
    pts = tuple(p for p, _ in shown)
    result = SpanResult(
        span=bounded, timestamps=Timestamps.of(pts),
        last_duration=shown[-1][1] if shown else 0, hidden=sum(1 for *_, h in mine if h),
        demux_error=demux_error,
        audio=tuple(_audio_part(s, [(p, d) for p, d, t in seen_audio[s.index] if inside(t)])
                    for s in audio_streams))
    local = {s.index: n for n, s in enumerate(audio_streams, start=1)}
    return result, (out_path if flushed and shown else None), local, pts


def _audio_part(stream, packets: list[tuple[int, int]]) -> AudioPart:
    """The span's audio packets as `media.inspect.demux` summarises a stream's."""
    if not packets:
        return AudioPart(stream.index)
    tb = stream.time_base
    end, gaps = audio_run(packets, tb)
    return AudioPart(stream.index, packets=len(packets), first_s=float(packets[0][0] * tb),
                     end_s=float(end * tb), gaps=gaps)


# --- the merge -----------------------------------------------------------------------------


def merge_spans(head: StreamSummary, results: Sequence[SpanResult], *, box_problem: str = "",
                size: int = 0, analysis_bin: int = 0) -> tuple[list[Finding], SourceFacts]:
    """The verdict on the whole source from its spans' results (in any order): what
    `media.inspect.inspect_file` finds, judged by the same rules."""
    results = sorted(results, key=lambda r: r.span.index)
    summary = merged_summary(head, results)
    failed = next((r.undecodable for r in results if r.undecodable), "")
    if failed:
        return [_undecodable(ToolFailed([], 1, failed))], facts_of(summary, None)
    result = merged_pass(summary, results)
    bin_frames = analysis_bin or complexity.bin_frames_for(
        float(summary.frame_interval_ticks * summary.time_base))
    return verdict(summary, result, box_problem, size, bin_frames)


def merged_summary(head: StreamSummary, results: Sequence[SpanResult]) -> StreamSummary:
    """One demux summary of the source: the header's, with every span's packets (their
    timestamps' summaries joined, `media.inspect.timestamps`: no list of them)."""
    stamps = Timestamps.joined([r.timestamps for r in results])
    tb = head.time_base
    last = next((r for r in reversed(results) if r.timestamps.count), None)
    video_end = float((stamps.last + (last.last_duration or stamps.typical)) * tb) \
        if last else 0.0
    hidden = sum(r.hidden for r in results)
    audio = tuple(_merged_audio(a, [p for r in results for p in r.audio if p.index == a.index])
                  for a in head.audio)
    return dataclasses.replace(
        head, video_pts=(), video_timestamps=stamps, video_end_s=video_end,
        video_declared_frames=max(0, head.video_declared_frames - hidden)
        if head.video_declared_frames else 0,
        audio=audio, demux_error=next((r.demux_error for r in results if r.demux_error), ""),
        nominal_rate=None)


def _merged_audio(head: AudioSummary, parts: Sequence[AudioPart]) -> AudioSummary:
    parts = [p for p in parts if p.packets]
    if not parts:
        return head
    gaps, end = list(parts[0].gaps), parts[0].end_s
    for part in parts[1:]:
        if part.first_s - end > AUDIO_GAP_S:  # a hole at the join
            gaps.append((end, part.first_s))
        gaps += part.gaps
        end = max(end, part.end_s)
    return dataclasses.replace(head, start_s=parts[0].first_s, end_s=end,
                               packets=sum(p.packets for p in parts), gaps=tuple(gaps))


def merged_pass(summary: StreamSummary, results: Sequence[SpanResult]) -> _Pass:
    """One decode pass of the source from its spans' decodes: counts summed, stretches
    cut at a join joined, the complexity bytes of every frame in order."""
    frame_s = float(summary.frame_interval_ticks * summary.time_base) or 0.04
    ends = [r.decoded_end_s for r in results if r.decoded_end_s is not None]
    video_end = max(ends) if ends else None
    first_errors = tuple(line for r in results for line in r.first_errors)[:MAX_FIRST_ERRORS]
    audio_frames, audio_end, audio_meta = {}, {}, {}
    for a in summary.audio:
        parts = [p for r in results for p in r.audio if p.index == a.index]
        audio_frames[a.index] = sum(p.frames for p in parts)
        a_ends = [p.decoded_end_s for p in parts if p.decoded_end_s is not None]
        if a_ends:
            audio_end[a.index] = max(a_ends)
        audio_meta[a.index] = _as_meta(_joined([s for p in parts for s in p.silences], frame_s),
                                       "lavfi.silence_start", "lavfi.silence_end")
    analysed = all(r.analysis_bytes or not r.frames for r in results)
    video_meta = (
        _as_meta(_joined([s for r in results for s in r.black], frame_s),
                 "lavfi.black_start", "lavfi.black_end")
        + _as_meta(_joined([s for r in results for s in r.frozen], frame_s),
                   "lavfi.freezedetect.freeze_start", "lavfi.freezedetect.freeze_end"))
    return _Pass(
        error_lines=first_errors,
        error_count=sum(r.error_count for r in results),
        video_frames=sum(r.frames for r in results),
        video_end_s=video_end,
        audio_frames=audio_frames,
        audio_end_s=audio_end,
        video_meta=tuple(sorted(video_meta, key=lambda m: m[0])),
        audio_meta=audio_meta,
        ran_video_filters=_common(r.ran_video_filters for r in results if r.frames),
        ran_audio_filters=_common(r.ran_audio_filters for r in results if r.frames),
        analysis_bytes=tuple(b for r in results for b in r.analysis_bytes) if analysed else (),
        idet=_first_idet(results),
        scene_cuts=_merged_cuts(results),
    )


def _merged_cuts(results: Sequence[SpanResult]) -> tuple[float, ...] | None:
    """Every span's cuts, in order (None where a span that decoded frames ran no scdet)."""
    decoded = [r for r in results if r.frames]
    if not decoded or any(r.cuts is None for r in decoded):
        return None
    return tuple(sorted(t for r in decoded for t in r.cuts or ()))


def _first_idet(results: Sequence[SpanResult]) -> IdetCounts | None:
    """idet's counts over the title's first `IDET_FRAMES` frames, as a whole decode's: the
    spans' classes in order, a span's last frame classed as the next span saw it (with
    the frame after it), where the span saw all of its frames."""
    letters: list[str] = []
    looked = False
    for n, r in enumerate(results):
        own = _idet_letters(r.idet)
        looked = looked or bool(own)
        after = results[n + 1].idet_before if n + 1 < len(results) else ""
        if own and after and len(own) == r.frames:
            own[-1] = after
        letters += own
        if len(letters) >= IDET_FRAMES:
            break
    if not looked:
        return None
    first = letters[:IDET_FRAMES]
    return IdetCounts(*(first.count(c) for c in "tbpu"))


def _common(lists) -> tuple[str, ...]:
    lists = [tuple(x) for x in lists]
    if not lists:
        return ()
    return tuple(name for name in lists[0] if all(name in other for other in lists[1:]))


def _joined(stretches: list[tuple[float, float]], frame_s: float) -> list[tuple[float, float]]:
    """Stretches sorted, those that meet (within `JOIN_FRAMES` frames) joined, then only
    those at least `MIN_STRETCH_S` long."""
    joined: list[list[float]] = []
    for s, e in sorted(stretches):
        if joined and s <= joined[-1][1] + JOIN_FRAMES * frame_s:
            joined[-1][1] = max(joined[-1][1], e)
        else:
            joined.append([s, e])
    return [(s, e) for s, e in joined if e - s >= MIN_STRETCH_S - 1e-6]


def _as_meta(stretches, start_key: str, end_key: str) -> tuple:
    """Stretches as the metadata print a whole decode's detector writes."""
    meta = []
    for s, e in stretches:
        meta += [(s, {start_key: repr(s)}), (e, {end_key: repr(e)})]
    return tuple(meta)


# --- all of it, in one process -------------------------------------------------------------


def inspect_by_spans(source: str | BinaryIO, *, span_s: float = SPAN_S,
                     timeout_s: float | None = None, analyse: bool = False,
                     source_uri: str = "", size: int = 0) -> tuple[list[Finding], SourceFacts]:
    """`inspect_file`'s verdict, span after span: the header read, then every span read
    by range and checked, then merged. `source` is a local path or a seekable file object
    (a FileSystems handle); nothing holds the whole file."""
    uri = source_uri or (source if isinstance(source, str) else "")
    problem = box_problem(source)
    try:
        head = head_summary(source, uri)
    except MediaError as exc:
        return [_open_failure(exc, problem)], SourceFacts()
    plan = span_plan(head, span_s, analyse)
    results = [inspect_span(source, span, head, plan, timeout_s=timeout_s, source_uri=uri)
               for span in plan.spans]
    return merge_spans(head, results, box_problem=problem, size=size or _size(source),
                       analysis_bin=plan.analysis_bin)


@dataclass(frozen=True)
class SpanPlan:
    spans: tuple[Span, ...]
    video_start_s: float
    analysis_bin: int
    """Frames per complexity bin (0: no analysis)."""


def span_plan(head: StreamSummary, span_s: float = SPAN_S, analyse: bool = False) -> SpanPlan:
    """The spans of a source whose header `head_summary` read, and its analysis bins."""
    start = head.video_start_s
    rate = head.nominal_rate or Fraction(25)
    bin_frames = complexity.bin_frames_for(1 / float(rate)) if analyse else 0
    return SpanPlan(plan_spans(head, start, span_s), start, bin_frames)


def box_problem(source: str | BinaryIO) -> str:
    """`media.package.boxes.truncation` of a local path or a seekable file object."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                return truncation(handle)
        return truncation(source)
    except (OSError, ValueError):
        return ""


def _size(source: str | BinaryIO) -> int:
    try:
        if isinstance(source, str):
            return os.path.getsize(source)
        return source.seek(0, os.SEEK_END)
    except (OSError, ValueError):
        return 0
