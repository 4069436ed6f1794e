"""Inspect: every source is examined before compute is spent on it.

Emits a `SourceInfo` per decodable source; an unreadable, non-video or undecodable
source becomes a `DeadLetter` on the `dead_letter` output and the others carry on.
No worker holds a whole source: a header step reads the container's header and index,
and each span of the title is read by range and checked on a worker of its own
(`media.inspect.spans`), its results gathered into one verdict per title version.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from media.core import naming
from media.core.config import DEFAULT_TITLE_TIMEOUT_S, SourceLimits
from media.core.errors import MediaError
from media.core.source_index import one_source_index
from media.core.types import IngestEvent, SourceInfo, SubtitleTrack
from media.core.versions import is_superseded, published_generation
from media.ingest.title_package import is_title_package, parse_title_package
from media.inspect.demux import head_summary
from media.inspect.frame_timing import on_timeline
from media.inspect.probe import constant_rate, inspect_audio_file, inspect_source
from media.inspect.results import StreamSummary
from media.inspect.spans import (
    SPAN_S,
    Span,
    SpanPlan,
    SpanResult,
    box_problem,
    inspect_span,
    merge_spans,
    span_plan,
)
from media.plan.ladder import even
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters
from transforms.gather import GatherParts, Part

__all__ = ["Inspect"]

log = logging.getLogger(__name__)


def published_report(info: SourceInfo, output_root: str) -> dict | None:
    """The report of the title as published now (None when it is not published)."""
    root = naming.title_root(output_root, info.title_id)
    report_uri = naming.join(root, naming.REPORT_JSON)
    if not (_storage.exists(naming.join(root, naming.MASTER_PLAYLIST))
            and _storage.exists(report_uri)):
        return None
    return _storage.read_json(report_uri)


def already_published(info: SourceInfo, report: dict | None, fingerprint: str) -> str:
    """Why the title needs no work ('' when it does): published from this very source
    version with these settings, or a newer version of it is published already."""
    if report is None:
        return ""
    if is_superseded(published_generation(report), info.generation):
        return (f"generation {published_generation(report)} is published, newer than "
                f"{info.generation}")
    source = report.get("source") or {}
    same = (report.get("job_fingerprint") == fingerprint
            and source.get("source_uri") == info.source_uri
            and source.get("size_bytes") == info.size_bytes
            and source.get("frame_count") == info.frame_count
            and str(source.get("generation") or "") == info.generation)
    return "already published from this source with these settings" if same else ""


def _require(uri: str, what: str) -> int:
    if not _storage.exists(uri):
        raise MediaError(f"{what} {uri} does not exist",
                         hint="Check the path (title package URIs are relative to the "
                              "package file) and that the file was uploaded.")
    size = _storage.size_of(uri)
    if size == 0:
        raise MediaError(f"{what} {uri} is empty (0 bytes)",
                         hint="Upload the file again; the copy is empty.")
    return size


@dataclass(frozen=True)
class InspectedHead:
    """A source after the header step: probed (`inspect_source`), its container's header
    and index read (`head_summary`), its title package's tracks checked, its timeline cut
    into inspection spans. Nothing of it grows with the title bar `plan.spans`, which the
    span tasks leave out."""

    source: SourceInfo
    """The title as probed (package tracks, generation included), before the verdict."""
    video_uri: str
    head: StreamSummary
    plan: SpanPlan
    box_problem: str = ""
    size: int = 0
    vfr_rate: Fraction = Fraction(25)
    """The rate a variable-rate source is delivered at (`constant_rate`)."""


@dataclass(frozen=True)
class SpanTask:
    """One span of a title to inspect (the title's head, without its list of spans)."""

    title: InspectedHead
    span: Span

    @property
    def source(self) -> SourceInfo:
        return self.title.source


@dataclass(frozen=True)
class SpanDone:
    """One span's result, with its title's head (the gather keeps no other state)."""

    title: InspectedHead
    result: SpanResult

    @property
    def source(self) -> SourceInfo:
        return self.title.source


def inspect_video(uri: str, title_id: str, timeout_s: float | None = None,
                  limits: SourceLimits = SourceLimits(), analyse: bool = False,
                  span_s: float = SPAN_S) -> SourceInfo:
    """Probe the video, then the inspection suite (`media.inspect`: decodability,
    black/frozen video, audio gaps and silence, A/V sync, colour, timing) span after
    span in this process, each span read by range; the `Inspect` transform runs the same
    steps with the spans in parallel. A fatal finding raises; the others travel with the
    title into its report, and the facts (interlacing, rotation, pixel aspect, HDR)
    decide how it is conditioned.

    The job's source limits are checked as early as each can be: the file's size before
    it is opened, the frame size and duration after the probe, before any decode.
    With `analyse`, the decode also measures how hard each second is to encode
    (`media.inspect.complexity`, for per-title planning)."""
    title = video_head(uri, title_id, limits, analyse, span_s)
    results = [inspect_one_span(SpanTask(title, span), timeout_s) for span in title.plan.spans]
    return title_verdict(title, results)


def video_head(uri: str, title_id: str, limits: SourceLimits = SourceLimits(),
               analyse: bool = False, span_s: float = SPAN_S) -> InspectedHead:
    """The header step of a video: probe, limits, header and index, spans. Reads only
    what the container's header and index need (by range where the source is remote)."""
    size = _require(uri, "the video")
    limits.check_bytes(uri, size)
    with one_source_index():  # each opening below reads the container's whole index
        with _storage.open_source(uri) as source:
            info = inspect_source(source, uri, title_id, size)
        limits.check_video(uri, info.width, info.height, float(info.duration_s))
        with _storage.open_source(uri) as source:
            problem = box_problem(source)
        with _storage.open_source(uri) as source:
            head = head_summary(source, uri)
        with _storage.open_source(uri) as source:
            rate = constant_rate(source, uri)
    return InspectedHead(info, uri, head, span_plan(head, span_s, analyse), problem,
                         size, rate)


def inspect_one_span(task: SpanTask, timeout_s: float | None = None) -> SpanResult:
    """One span of the title, read by range through a FileSystems handle."""
    title = task.title
    with _storage.open_source(title.video_uri) as source:
        return inspect_span(source, task.span, title.head, title.plan, timeout_s=timeout_s,
                            source_uri=title.video_uri)


def title_verdict(title: InspectedHead, results: list[SpanResult]) -> SourceInfo:
    """The title's verdict from every span's result: a fatal finding raises (the title
    is refused before any encode), else the title with its findings and facts."""
    findings, facts = merge_spans(title.head, results, box_problem=title.box_problem,
                                  size=title.size, analysis_bin=title.plan.analysis_bin)
    info = title.source
    if facts.variable_frame_rate:
        info = dataclasses.replace(info, frame_rate=title.vfr_rate,
                                   frame_count=max(1, round(info.duration_s * title.vfr_rate)))
    else:  # the nominal rate on the source's timeline, gaps held (frame_timing)
        info = on_timeline(info, facts.frame_rate, facts.video_end_s)
    fatal = [f for f in findings if f.severity == "fatal"]
    if fatal:
        raise MediaError(f"{title.video_uri}: {fatal[0].message}", hint=fatal[0].hint)
    for finding in findings:
        if finding.severity == "warning":
            log.warning("%s: inspection: %s", info.title_id, finding.message)
    return with_facts(info, facts, tuple(findings))


def with_facts(info: SourceInfo, facts, findings: tuple = ()) -> SourceInfo:
    """`info` with the inspection's facts: the displayed size (rotation and non-square
    pixels applied), and what conditioning needs."""
    width, height = info.width, info.height
    sar = facts.sample_aspect_ratio or Fraction(1)
    display_width = even(Fraction(width) * sar) if sar != 1 else width
    display_height = height
    if facts.rotation_deg in (90, 270):
        display_width, display_height = display_height, display_width
    return dataclasses.replace(
        info, width=display_width, height=display_height, coded_width=width,
        coded_height=height, interlaced=facts.interlaced, rotation_deg=facts.rotation_deg,
        sample_aspect_ratio=sar, hdr=facts.hdr,
        variable_frame_rate=facts.variable_frame_rate, findings=findings,
        complexity=facts.complexity_bins,
        complexity_bin_frames=facts.complexity_bin_frames, shot_cuts_s=facts.shot_cuts_s)


def inspect_package(package_uri: str, title_id: str,
                    limits: SourceLimits = SourceLimits(), analyse: bool = False,
                    span_s: float = SPAN_S) -> SourceInfo:
    """A title package, inspected in this process (see `inspect_video`)."""
    title = package_head(package_uri, title_id, limits, analyse, span_s)
    results = [inspect_one_span(SpanTask(title, span)) for span in title.plan.spans]
    return title_verdict(title, results)


def package_head(package_uri: str, title_id: str, limits: SourceLimits = SourceLimits(),
                 analyse: bool = False, span_s: float = SPAN_S) -> InspectedHead:
    """A title package's header step: its video's (`video_head`), its audio files probed
    and its subtitle files parsed, so that a broken track stops the title before any
    encode."""
    from media.package.subtitles import read_subtitles

    _require(package_uri, "the title package")
    package = parse_title_package(_storage.read_bytes(package_uri), package_uri)
    title = video_head(package.video, title_id, limits, analyse, span_s)
    info = title.source
    audio = list(info.audio)
    for item in package.audio:
        _require(item.uri, "the audio file")
        with _storage.open_source(item.uri) as source:
            stream = inspect_audio_file(source, item.uri)
        audio.append(dataclasses.replace(stream, language=item.language, name=item.name,
                                         uri=item.uri))
    subtitles = []
    for item in package.subtitles:
        _require(item.uri, "the subtitle file")
        read_subtitles(_storage.read_bytes(item.uri), item.uri)
        subtitles.append(SubtitleTrack(item.uri, item.language, item.name, item.forced))
    info = dataclasses.replace(info, audio=tuple(audio), subtitles=tuple(subtitles),
                               package_uri=package_uri, metadata_json=package.metadata_json)
    return dataclasses.replace(title, source=info)


_KEYED = tuple[tuple[str, str], Any]
"""(title id, generation) and a span task or result: spans gathered per title version."""


class _HeadFn(beam.DoFn):
    """The header step: a span task per span of each source, or its dead letter."""

    def __init__(self, limits: SourceLimits, analyse: bool, span_s: float):
        self._limits = limits
        self._analyse = analyse
        self._span_s = span_s

    @dead_letters("inspect")
    def process(self, event: IngestEvent):
        try:
            if is_title_package(event.source_uri):
                title = package_head(event.source_uri, event.title_id, self._limits,
                                     self._analyse, self._span_s)
            else:
                title = video_head(event.source_uri, event.title_id, self._limits,
                                   self._analyse, self._span_s)
        except MediaError as exc:
            yield pvalue.TaggedOutput(
                DEAD_LETTER, dead_letter_for(event.title_id, event.source_uri, "inspect", exc))
            return
        title = dataclasses.replace(
            title, source=dataclasses.replace(title.source, generation=event.generation))
        spans = title.plan.spans
        slim = dataclasses.replace(title, plan=dataclasses.replace(title.plan, spans=()))
        key = (event.title_id, event.generation)
        for span in spans:
            yield key, SpanTask(slim, span)


class _InspectFn(_storage.ReleasesKeptSource, beam.DoFn):
    """One span's checks, read by range: its result as a part of its title."""

    def __init__(self, timeout_s: float | None = None):
        self._timeout_s = timeout_s
        self._spans = Metrics.counter("ladderflow", "inspection_spans")
        self._staged = Metrics.counter("ladderflow", "inspection_span_bytes")

    @dead_letters("inspect")
    def process(self, element):
        key, task = element
        try:
            result = inspect_one_span(task, self._timeout_s)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.source.title_id, task.source.source_uri, "inspect", exc))
            return
        self._spans.inc()
        self._staged.inc(result.staged_bytes)
        yield key, Part(task.span.index, task.span.count, SpanDone(task.title, result))


class _VerdictFn(beam.DoFn):
    def __init__(self, output_root: str = "", fingerprint: str = ""):
        self._output_root = output_root
        self._fingerprint = fingerprint

    @dead_letters("inspect")
    def process(self, element):
        _, done = element
        title = done[0].title
        try:
            info = title_verdict(title, [d.result for d in done])
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                title.source.title_id, title.source.source_uri, "inspect", exc))
            return
        log.info("%s: inspected: %dx%d %s fps, %.1f s, %s, %d audio track(s), %d subtitle "
                 "track(s), %d span(s)", info.title_id, info.width, info.height, _fps(info),
                 float(info.duration_s), info.video_codec, len(info.audio),
                 len(info.subtitles), len(done))
        if self._fingerprint:
            reason = already_published(
                info, published_report(info, self._output_root), self._fingerprint)
            if reason:
                log.info("%s: %s; skipped", info.title_id, reason)
                return
        yield info


def _fps(info: SourceInfo) -> str:
    return f"{float(info.frame_rate):.3f}".rstrip("0").rstrip(".")


class Inspect(beam.PTransform):
    """PCollection[IngestEvent] -> {'main': SourceInfo, 'dead_letter': DeadLetter}.

    A header step per source (probe, limits, the container's header and index, the
    title package's tracks) cuts its timeline into spans (`span_s` each); behind a
    Reshuffle each span is read by range and checked on its own worker; a gather per
    title version merges the span results into the title's one verdict
    (`media.inspect.spans`). A fatal finding is a dead letter before any encode.

    With an output root and the job's settings fingerprint, a title already published
    from the same source with the same settings is skipped: re-running is a no-op.
    A source over the job's `limits` (duration, frame size, file size) is a dead letter.
    With `analyse` (per-title ladders), each source's complexity is measured on the way
    (`media.inspect.complexity`). In streaming, a title whose spans do not all arrive
    within `title_timeout_s` is a dead letter naming the missing spans.
    """

    def __init__(self, output_root: str = "", fingerprint: str = "",
                 limits: SourceLimits = SourceLimits(), analyse: bool = False,
                 title_timeout_s: float = DEFAULT_TITLE_TIMEOUT_S, span_s: float = SPAN_S,
                 timeout_s: float | None = None):
        super().__init__()
        self._output_root = output_root
        self._fingerprint = fingerprint
        self._limits = limits
        self._analyse = analyse
        self._title_timeout_s = title_timeout_s
        self._span_s = span_s
        self._timeout_s = timeout_s

    def expand(self, events):
        heads = events | "InspectHeader" >> beam.ParDo(
            _HeadFn(self._limits, self._analyse, self._span_s)).with_outputs(
            DEAD_LETTER, main="main")
        spans = (
            heads.main
            | "SpreadSpans" >> beam.Reshuffle()
            | "InspectSpan" >> beam.ParDo(_InspectFn(self._timeout_s)).with_output_types(
                _KEYED).with_outputs(DEAD_LETTER, main="main")
        )
        gathered = (spans.main
                    | "GatherSpans" >> GatherParts(self._title_timeout_s, "inspect (gather spans)",
                                                   "span"))
        verdicts = gathered.main | "Verdict" >> beam.ParDo(
            _VerdictFn(self._output_root, self._fingerprint)).with_outputs(
            DEAD_LETTER, main="main")
        dead = ((heads[DEAD_LETTER], spans[DEAD_LETTER], gathered[DEAD_LETTER],
                 verdicts[DEAD_LETTER]) | "InspectRejects" >> beam.Flatten())
        return _Outputs({"main": verdicts.main, DEAD_LETTER: dead})


class _Outputs(dict):
    """The stage's outputs by name, also as attributes (`inspected.main`)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc
