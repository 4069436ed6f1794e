"""IMF packages in: one title per Composition Playlist, hashed in parallel, inspected.

`ImfTitles` takes the ingest events and passes on every event that is not an IMF
package (a folder or prefix holding ASSETMAP.xml, an ASSETMAP, or a CPL file) untouched.
For a package: the header step opens it through FileSystems (`load_titles`: presence,
sizes, resources against their track files; no essence read), writes each title's slim
table beside its work files (`media.ingest.imf.pipeline_source`), probes its picture
and audio track files, converts its IMSC1 timed text to WebVTT, and lists one hash task
per file; behind a Reshuffle each file is hashed (SHA-1 against its PKL, streamed) on a
worker of its own; a gather per title version then lets the title on, as a `SourceInfo`,
or makes it a dead letter naming every file that failed. Then the decode-based
inspection over spans (`transforms.inspect`): each span of the composed timeline is
staged from the track file ranges it covers (`media.ingest.imf.inspection`) and checked
on a worker of its own, and the spans' merged verdict gives the title its findings (and,
for per-title ladders, its complexity), or makes a fatal finding its dead letter.
Nothing is encoded before that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import BooleanCoder, PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from media.core import naming
from media.core.config import DEFAULT_IMF_SETTLE_S, DEFAULT_TITLE_TIMEOUT_S, SourceLimits
from media.core.errors import MediaError
from media.core.types import IngestEvent, SourceInfo, SubtitleTrack
from media.ingest.imf.assetmap import ASSETMAP_NAMES
from media.ingest.imf.composition import Composition
from media.ingest.imf.errors import ImfError, ImfHashMismatch, ImfMissingAsset
from media.ingest.imf.inspection import title_head
from media.ingest.imf.package import ImfPackage, open_package
from media.ingest.imf.pipeline_source import (
    TABLE_SUFFIX,
    check_first_frames,
    is_imf_source,
    marker_rows,
    read_table,
    table_json,
    table_of,
)
from media.ingest.imf.source import source_info
from media.ingest.imf.storage import parent
from media.ingest.imf.timed_text import track_cues, track_language
from media.ingest.imf.validate import HashTask, check_hash, hash_tasks, missing_assets
from media.inspect.probe import inspect_audio_file, inspect_source
from media.inspect.spans import SPAN_S, SpanResult, merge_spans, span_plan
from media.package.subtitles import to_webvtt
from transforms import _storage
from transforms._storage import FileSystemsStorage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters
from transforms.gather import GatherParts, Part
from transforms.imf_settle import _SettleFn, awaits_assetmap, is_assetmap
from transforms.inspect import (
    InspectedHead,
    SpanTask,
    _InspectFn,
    already_published,
    inspect_one_span,
    published_report,
)

__all__ = ["NOT_IMF", "ImfTitles", "imf_title_head", "source_title_ids"]

log = logging.getLogger(__name__)

NOT_IMF = "not_imf"
"""The output of `ImfTitles` with the events that are not IMF packages."""
STAGE = "inspect (IMF)"


@dataclass(frozen=True)
class HashJob:
    """One file of a title to hash, with the title as inspected (a few hundred bytes)."""

    source: SourceInfo
    task: HashTask


@dataclass(frozen=True)
class Hashed:
    source: SourceInfo
    error: str = ""
    """'' when the file matches its PKL, else what is wrong with it."""


def table_uri(output_root: str, title_id: str, generation: str) -> str:
    """Where a title's table lives: with its work files (removed once it is published)."""
    return naming.join(naming.work_root(output_root, title_id), "imf",
                       f"{generation or 'title'}{TABLE_SUFFIX}")


def imf_title_head(package: ImfPackage, composition: Composition, output_root: str,
                   generation: str = "", limits: SourceLimits = SourceLimits()) -> SourceInfo:
    """A title's `SourceInfo` from its package, before hashing: its table written, its
    picture and audio track files probed (header and index; each image track file's
    first frame in the title decoded), its timed text as WebVTT files beside the table,
    its markers."""
    storage = package.storage
    size = sum(t.size for t in hash_tasks(package, composition))
    limits.check_bytes(composition.cpl.path, size)
    picture = composition.image.spans[0].path
    with _storage.open_source(picture) as source:
        image = inspect_source(source, picture, composition.title_id)
    limits.check_video(composition.cpl.path, image.width, image.height,
                       float(composition.duration_s))
    table = table_of(composition)
    check_first_frames(table, storage)
    audio = []
    for track in composition.audio:
        path = track.spans[0].path
        with _storage.open_source(path) as source:
            audio.append(inspect_audio_file(source, path))
    info = source_info(composition, image, audio)
    uri = table_uri(output_root, composition.title_id, generation)
    _storage.write_bytes(uri, table_json(table))
    subtitles = []
    folder = naming.join(naming.work_root(output_root, composition.title_id), "imf")
    for number, track in enumerate(composition.timed_text):
        vtt_uri = naming.join(folder, f"{generation or 'title'}-text{number}.vtt")
        _storage.write_bytes(vtt_uri, to_webvtt(track_cues(track, storage)).encode("utf-8"))
        subtitles.append(SubtitleTrack(vtt_uri, track_language(track, storage),
                                       forced=track.forced))
    return dataclasses.replace(
        info, source_uri=uri, generation=generation, size_bytes=size,
        coded_width=info.width, coded_height=info.height,
        audio=tuple(dataclasses.replace(a, uri=uri) for a in info.audio),
        subtitles=tuple(subtitles), markers=marker_rows(composition.markers))


class _HeadFn(beam.DoFn):
    """Open the package: a hash job per file of each of its titles (or dead letters)."""

    def __init__(self, output_root: str, other_assetmaps: tuple[str, ...], cpl_id: str,
                 limits: SourceLimits):
        self._output_root = output_root
        self._other = other_assetmaps
        self._cpl_id = cpl_id
        self._limits = limits

    @dead_letters(STAGE)
    def process(self, event: IngestEvent):
        from media.ingest.imf.source import load_titles

        storage = FileSystemsStorage()
        try:
            package, titles = load_titles(event.source_uri, self._other, self._cpl_id, storage)
        except (MediaError, OSError) as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                event.title_id, event.source_uri, STAGE, exc))
            return
        for composition in titles:
            try:
                info = imf_title_head(package, composition, self._output_root,
                                      event.generation, self._limits)
                tasks = hash_tasks(package, composition)
            except (MediaError, OSError) as exc:
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                    composition.title_id, composition.cpl.path, STAGE, exc))
                continue
            log.info("%s: IMF CPL %s: %d frames at %s fps, %d audio track(s), %d timed text "
                     "track(s), %d marker(s); hashing %d file(s)", composition.title_id,
                     composition.cpl.id, composition.frame_count, composition.edit_rate,
                     len(composition.audio), len(composition.timed_text),
                     len(composition.markers), len(tasks))
            key = (composition.title_id, event.generation)
            for index, task in enumerate(tasks):
                yield key, Part(index, len(tasks), HashJob(info, task))


class _HashFn(beam.DoFn):
    """One file's SHA-1 against its PKL, streamed: its verdict as a part of its title."""

    def __init__(self):
        self._bytes = Metrics.counter("ladderflow", "imf_bytes_hashed")

    @dead_letters(STAGE)
    def process(self, element):
        key, part = element
        job = part.value
        try:
            check_hash(job.task, FileSystemsStorage())
            self._bytes.inc(job.task.size)
            error = ""
        except (ImfError, OSError) as exc:
            error = str(exc)
        yield key, Part(part.index, part.count, Hashed(job.source, error))


class _VerdictFn(beam.DoFn):
    def __init__(self, output_root: str = "", fingerprint: str = ""):
        self._output_root = output_root
        self._fingerprint = fingerprint

    @dead_letters(STAGE)
    def process(self, element):
        _, hashed = element
        info = hashed[0].source
        errors = [h.error for h in hashed if h.error]
        if errors:
            error = ImfHashMismatch(
                f"{len(errors)} of the {len(hashed)} files of the title do not match the "
                f"PKL: {'; '.join(errors)}")
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                info.title_id, info.package_uri, STAGE, error))
            return
        log.info("%s: IMF: %d file(s) match their PKL hashes", info.title_id, len(hashed))
        if self._fingerprint:
            reason = already_published(info, published_report(info, self._output_root),
                                       self._fingerprint)
            if reason:
                log.info("%s: %s; skipped", info.title_id, reason)
                return
        yield info


_KEYED = tuple[tuple[str, str], Any]


def imf_inspected_head(info: SourceInfo, analyse: bool = False,
                       span_s: float = SPAN_S) -> InspectedHead:
    """The header step of the decode-based inspection of a hashed IMF title (its
    `source_uri` is its table): the composed title's summary (`title_head`: its first
    frame staged, the CPL's durations and edit rate) and its spans."""
    with _storage.open_source(info.source_uri) as source:
        table = read_table(source, info.source_uri)
    head = title_head(table, info.source_uri)
    return InspectedHead(info, info.source_uri, head, span_plan(head, span_s, analyse),
                         size=info.size_bytes, vfr_rate=table.edit_rate)


def imf_verdict(title: InspectedHead, results: list[SpanResult]) -> SourceInfo:
    """The IMF title with the findings (and complexity) of its spans, merged and judged
    as a whole decode's; a fatal finding raises. Its size, rate, frame count and colour
    stay the CPL's and track files' (`imf_title_head`)."""
    findings, facts = merge_spans(title.head, results, size=title.size,
                                  analysis_bin=title.plan.analysis_bin)
    info = title.source
    fatal = [f for f in findings if f.severity == "fatal"]
    if fatal:
        raise MediaError(f"{info.package_uri or info.source_uri}: {fatal[0].message}",
                         hint=fatal[0].hint)
    for finding in findings:
        if finding.severity == "warning":
            log.warning("%s: inspection: %s", info.title_id, finding.message)
    return dataclasses.replace(info, findings=tuple(findings),
                               complexity=facts.complexity_bins,
                               complexity_bin_frames=facts.complexity_bin_frames,
                               shot_cuts_s=facts.shot_cuts_s)


def inspect_imf_title(info: SourceInfo, analyse: bool = False, span_s: float = SPAN_S,
                      timeout_s: float | None = None) -> SourceInfo:
    """A hashed IMF title inspected span after span in this process (what `ImfTitles`
    runs with its spans in parallel)."""
    title = imf_inspected_head(info, analyse, span_s)
    results = [inspect_one_span(SpanTask(title, span), timeout_s) for span in title.plan.spans]
    return imf_verdict(title, results)


class _InspectHeadFn(beam.DoFn):
    """A hashed title's inspection spans (each a task, keyed by title version)."""

    def __init__(self, analyse: bool, span_s: float):
        self._analyse = analyse
        self._span_s = span_s

    @dead_letters(STAGE)
    def process(self, info: SourceInfo):
        try:
            title = imf_inspected_head(info, self._analyse, self._span_s)
        except (MediaError, OSError) as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                info.title_id, info.package_uri, STAGE, exc))
            return
        spans = title.plan.spans
        slim = dataclasses.replace(title, plan=dataclasses.replace(title.plan, spans=()))
        for span in spans:
            yield (info.title_id, info.generation), SpanTask(slim, span)


class _InspectedFn(beam.DoFn):
    """The title's verdict from its spans' results, or its dead letter."""

    @dead_letters(STAGE)
    def process(self, element):
        _, done = element
        title = done[0].title
        try:
            info = imf_verdict(title, [d.result for d in done])
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                title.source.title_id, title.source.package_uri, STAGE, exc))
            return
        log.info("%s: IMF title inspected: %d span(s), %d finding(s)", info.title_id,
                 len(done), len(info.findings))
        yield info


def source_title_ids(uri: str, other_assetmaps: tuple[str, ...] = (),
                     cpl_id: str = "") -> list[str]:
    """The title ids a source publishes as: one per CPL of an IMF package (as the header
    step names them; the package of a watched object in its folder), else the one its
    name gives (also for a package that cannot be read: its dead letter goes by it)."""
    from media.ingest.imf.source import load_titles

    storage = FileSystemsStorage()
    package = uri if is_imf_source(uri, storage) else ""
    if not package and uri.lower().endswith((".xml", ".mxf")):  # a watched object of one?
        package = package_of(uri, storage)
    if package:  # a package, its CPL, or a watched object of it
        try:
            return [c.title_id for c in load_titles(package, other_assetmaps, cpl_id,
                                                    storage)[1]]
        except (MediaError, OSError):
            pass
    return [naming.title_id_for(uri)]


def package_of(uri: str, storage=None) -> str:
    """Streaming: the IMF package an uploaded object belongs to ('' when none): the
    package folder for any object in a folder holding an ASSETMAP (the ASSETMAP, a PKL,
    a CPL, a track file), a CPL file on its own for itself."""
    storage = storage or FileSystemsStorage()
    base = uri.rstrip("/")
    folder = parent(base)
    if folder and any(storage.size(f"{folder}/{name}") is not None for name in ASSETMAP_NAMES):
        return folder
    return base if is_imf_source(base, storage) else ""


OBJECTS = "objects"
"""The output of `_RouteFn` with announced objects of packages, keyed by package."""
HELD = "held"
"""The output of `_RouteFn` with announced objects that may await their package's
ASSETMAP, and the ASSETMAPs' own events, keyed by folder (`transforms.imf_settle`)."""


class _RouteFn(beam.DoFn):
    """A source named on the command line (no generation) that is an IMF package goes to
    the header step; an announced object (a notification or a watched file: it has a
    generation) of a package folder goes to `OBJECTS`, keyed by its package, to wait for
    the rest of it. With `settle_s`, an `.mxf` or `.xml` object in a folder with no
    ASSETMAP yet goes to `HELD` instead (`awaits_assetmap`), and an ASSETMAP to both.
    Anything else: `NOT_IMF`."""

    def __init__(self, settle_s: float = 0.0):
        self._settle_s = settle_s

    @dead_letters("ingest (IMF)")
    def process(self, event: IngestEvent):
        storage = FileSystemsStorage()
        if event.generation:
            package = package_of(event.source_uri, storage)
            uri = event.source_uri.rstrip("/")
            if self._settle_s > 0:
                if package == parent(uri) and is_assetmap(uri):  # settles what its folder held
                    yield pvalue.TaggedOutput(HELD, (package, event))
                elif package != parent(uri) and awaits_assetmap(uri, storage):
                    yield pvalue.TaggedOutput(HELD, (parent(uri), event))
                    return
            if package:
                yield pvalue.TaggedOutput(OBJECTS, (package, event))
                return
        elif is_imf_source(event.source_uri, storage):
            yield event
            return
        yield pvalue.TaggedOutput(NOT_IMF, event)


class _UploadedFn(beam.DoFn):
    """A package uploaded object by object starts once, when every asset its PKLs list
    is there at its listed size (`missing_assets`), not at its first object; its version
    (generation) is its PKLs' ids, whichever object completed it. In streaming, one still
    incomplete `timeout_s` after its first object is a dead letter naming what is
    missing, and a started package is remembered that long, so late objects start
    nothing (later, the published title's report makes a repeat a no-op)."""

    STARTED = ReadModifyWriteStateSpec("started", BooleanCoder())
    WAITING = ReadModifyWriteStateSpec("waiting", PickleCoder())
    EXPIRE = TimerSpec("expire", TimeDomain.REAL_TIME)

    def __init__(self, other_assetmaps: tuple[str, ...], timeout_s: float,
                 clock: Callable[[], float] = time.time):
        self._other = other_assetmaps
        self._timeout_s = timeout_s
        self._clock = clock

    @dead_letters("ingest (IMF)")
    def process(self, element, started=beam.DoFn.StateParam(STARTED),
                waiting=beam.DoFn.StateParam(WAITING), expire=beam.DoFn.TimerParam(EXPIRE)):
        package, event = element
        if started.read():
            log.info("%s: IMF package already started; %s ignored", package, event.source_uri)
            return
        missing, generation = upload_state(package, self._other)
        if not missing:
            started.write(True)
            waiting.clear()
            if self._timeout_s > 0:
                expire.set(Timestamp.of(self._clock() + self._timeout_s))
            log.info("%s: IMF package complete (%s arrived): started", package,
                     event.source_uri)
            yield package_event(package, event, generation)
            return
        if waiting.read() is None and self._timeout_s > 0:
            expire.set(Timestamp.of(self._clock() + self._timeout_s))
        waiting.write(event)
        log.info("%s: IMF package incomplete (%d asset(s) to come: %s)", package,
                 len(missing), ", ".join(missing[:5]))

    @on_timer(EXPIRE)
    def expired(self, key=beam.DoFn.KeyParam, started=beam.DoFn.StateParam(STARTED),
                waiting=beam.DoFn.StateParam(WAITING)):
        event = waiting.read()
        was_started = started.read()
        started.clear()
        waiting.clear()
        if was_started or event is None:
            return  # a started package is forgotten
        missing, generation = upload_state(key, self._other)
        if not missing:
            yield package_event(key, event, generation)
            return
        error = ImfMissingAsset(
            f"the IMF package {key} is still incomplete {self._timeout_s:g} s after its "
            f"first object: {len(missing)} asset(s) missing: {', '.join(missing)}")
        yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
            naming.title_id_for(key), key, "ingest (IMF upload)", error))


def upload_state(package_uri: str, other_assetmaps: tuple[str, ...] = ()
                 ) -> tuple[list[str], str]:
    """What an uploaded package still lacks ('relative path (why)'; none when complete or
    unreadable for another reason: the header step says why), and its version: 'pkl-'
    and a digest of its own PKLs' ids."""
    try:
        package = open_package(package_uri, other_assetmaps, FileSystemsStorage())
        ids = sorted(pkl.id for pkl in package.own_pkls())
        generation = "pkl-" + hashlib.sha1(" ".join(ids).encode()).hexdigest()[:12]
        return missing_assets(package), generation
    except ImfMissingAsset as exc:  # no ASSETMAP, PKL or CPL yet
        return [str(exc)], ""
    except (MediaError, OSError):
        return [], ""


def package_event(package_uri: str, event: IngestEvent, generation: str = "") -> IngestEvent:
    return dataclasses.replace(event, source_uri=package_uri,
                               title_id=naming.title_id_for(package_uri),
                               generation=generation or event.generation)


class ImfTitles(beam.PTransform):
    """PCollection[IngestEvent] -> {'main': SourceInfo of each IMF title, hashed and
    inspected; NOT_IMF: the other events, untouched; 'dead_letter': DeadLetter}.

    `other_assetmaps` are the ASSETMAPs (or folders) of packages a supplemental package
    draws track files from; `cpl_id` picks one CPL of a package (else one title per CPL).
    Events that announce objects (notifications, watched files) of a package folder
    start it once, when it is complete (`_UploadedFn`); in streaming, an `.mxf` or `.xml`
    object that comes before its folder's ASSETMAP waits up to `settle_s` for it
    (`transforms.imf_settle`). In streaming, a package still
    incomplete, or a title whose hashes do not all arrive, within `title_timeout_s` is a
    dead letter naming the missing assets or files. A hashed title then goes through
    the decode-based inspection over spans of `span_s` (`analyse`: with the complexity
    per-title ladders plan by); a fatal finding makes it a dead letter."""

    def __init__(self, output_root: str, fingerprint: str = "",
                 limits: SourceLimits = SourceLimits(), other_assetmaps: tuple[str, ...] = (),
                 cpl_id: str = "", title_timeout_s: float = DEFAULT_TITLE_TIMEOUT_S,
                 analyse: bool = False, span_s: float = SPAN_S,
                 timeout_s: float | None = None, settle_s: float = DEFAULT_IMF_SETTLE_S,
                 clock: Callable[[], float] = time.time):
        super().__init__()
        self._settle_s = settle_s
        self._clock = clock
        self._analyse = analyse
        self._span_s = span_s
        self._timeout_s = timeout_s
        self._output_root = output_root
        self._fingerprint = fingerprint
        self._limits = limits
        self._other = tuple(other_assetmaps)
        self._cpl_id = cpl_id
        self._title_timeout_s = title_timeout_s

    def expand(self, events):
        # Batch holds nothing back: its input is all there is (a watched poll's too).
        settle_s = 0.0 if events.is_bounded else self._settle_s
        routed = events | "ImfRoute" >> beam.ParDo(_RouteFn(settle_s)).with_outputs(
            DEAD_LETTER, NOT_IMF, OBJECTS, HELD, main="main")
        timeout_s = 0.0 if events.is_bounded else self._title_timeout_s
        settled = (
            routed[HELD]
            | "KeyHeld" >> beam.Map(lambda kv: kv).with_output_types(tuple[str, IngestEvent])
            | "ImfSettle" >> beam.ParDo(_SettleFn(settle_s, self._clock)).with_outputs(
                DEAD_LETTER, main="main")
        )
        uploaded = (
            routed[OBJECTS]
            | "KeyObjects" >> beam.Map(lambda kv: kv).with_output_types(
                tuple[str, IngestEvent])
            | "ImfUploaded" >> beam.ParDo(
                _UploadedFn(self._other, timeout_s, self._clock)).with_outputs(
                DEAD_LETTER, main="main")
        )
        packages = (routed.main, uploaded.main) | "ImfPackages" >> beam.Flatten()
        heads = packages | "ImfHeader" >> beam.ParDo(
            _HeadFn(self._output_root, self._other, self._cpl_id, self._limits)
        ).with_outputs(DEAD_LETTER, main="main")
        hashed = (
            heads.main
            | "SpreadHashes" >> beam.Reshuffle()
            | "HashFile" >> beam.ParDo(_HashFn()).with_output_types(_KEYED).with_outputs(
                DEAD_LETTER, main="main")
        )
        gathered = hashed.main | "GatherHashes" >> GatherParts(
            self._title_timeout_s, "inspect (IMF hashes)", "file")
        verdicts = gathered.main | "ImfVerdict" >> beam.ParDo(
            _VerdictFn(self._output_root, self._fingerprint)).with_outputs(
            DEAD_LETTER, main="main")
        spans = verdicts.main | "ImfInspectHeader" >> beam.ParDo(
            _InspectHeadFn(self._analyse, self._span_s)).with_outputs(DEAD_LETTER, main="main")
        inspected = (
            spans.main
            | "ImfSpreadSpans" >> beam.Reshuffle()
            | "ImfInspectSpan" >> beam.ParDo(_InspectFn(self._timeout_s)).with_output_types(
                _KEYED).with_outputs(DEAD_LETTER, main="main")
        )
        done = inspected.main | "ImfGatherSpans" >> GatherParts(
            self._title_timeout_s, "inspect (IMF gather spans)", "span")
        titles = done.main | "ImfInspected" >> beam.ParDo(_InspectedFn()).with_outputs(
            DEAD_LETTER, main="main")
        dead = ((routed[DEAD_LETTER], settled[DEAD_LETTER], uploaded[DEAD_LETTER],
                 heads[DEAD_LETTER],
                 hashed[DEAD_LETTER], gathered[DEAD_LETTER], verdicts[DEAD_LETTER],
                 spans[DEAD_LETTER], inspected[DEAD_LETTER], done[DEAD_LETTER],
                 titles[DEAD_LETTER])
                | "ImfRejects" >> beam.Flatten())
        not_imf = (routed[NOT_IMF], settled.main) | "NotImf" >> beam.Flatten()
        return {"main": titles.main, NOT_IMF: not_imf, DEAD_LETTER: dead}
