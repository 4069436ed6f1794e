"""Inspect: every source is examined before compute is spent on it.

Emits a `SourceInfo` per decodable source; an unreadable, non-video or undecodable
source becomes a `DeadLetter` on the `dead_letter` output and the others carry on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from fractions import Fraction

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.config import SourceLimits
from media.core.errors import MediaError
from media.core.types import IngestEvent, SourceInfo, SubtitleTrack
from media.core.versions import is_superseded, published_generation
from media.ingest.title_package import is_title_package, parse_title_package
from media.inspect import inspect_file
from media.inspect.frame_timing import on_timeline
from media.inspect.probe import constant_rate, inspect_audio_file, inspect_source
from media.plan.ladder import even
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters

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


def inspect_video(uri: str, title_id: str, timeout_s: float | None = None,
                  limits: SourceLimits = SourceLimits(), analyse: bool = False) -> SourceInfo:
    """Probe the video, then the inspection suite (`media.inspect`: a whole decode,
    black/frozen video, audio gaps and silence, A/V sync, colour, timing). A fatal
    finding raises; the others travel with the title into its report, and the facts
    (interlacing, rotation, pixel aspect, HDR) decide how it is conditioned.

    The job's source limits are checked as early as each can be: the file's size before
    it is opened, the frame size and duration after the probe, before the whole decode.
    With `analyse`, the decode also measures how hard each second is to encode
    (`media.inspect.complexity`, for per-title planning)."""
    size = _require(uri, "the video")
    limits.check_bytes(uri, size)
    with _storage.open_source(uri) as source:
        info = inspect_source(source, uri, title_id, size)
    limits.check_video(uri, info.width, info.height, float(info.duration_s))
    with _local_copy(uri) as path:
        findings, facts = inspect_file(path, timeout_s=timeout_s, analyse=analyse)
        if facts.variable_frame_rate:
            rate = constant_rate(path, uri)
            info = dataclasses.replace(info, frame_rate=rate,
                                       frame_count=max(1, round(info.duration_s * rate)))
        else:  # the nominal rate on the source's timeline, gaps held (frame_timing)
            info = on_timeline(info, facts.frame_rate, facts.video_end_s)
    fatal = [f for f in findings if f.severity == "fatal"]
    if fatal:
        raise MediaError(f"{uri}: {fatal[0].message}", hint=fatal[0].hint)
    for finding in findings:
        if finding.severity == "warning":
            log.warning("%s: inspection: %s", title_id, finding.message)
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
        complexity_bin_frames=facts.complexity_bin_frames)


@contextlib.contextmanager
def _local_copy(uri: str):
    """A local path of the source: itself, or a download (the whole file is decoded)."""
    if _storage.is_local(uri):
        yield _storage.local_path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="ladderflow-inspect-") as scratch:
        path = os.path.join(scratch, "source")
        _storage.download(uri, path)
        yield path


def inspect_package(package_uri: str, title_id: str,
                    limits: SourceLimits = SourceLimits(), analyse: bool = False) -> SourceInfo:
    """A title package: its video inspected, its audio files probed and its subtitle
    files parsed, so that a broken track stops the title before any encode."""
    from media.package.subtitles import read_subtitles

    _require(package_uri, "the title package")
    package = parse_title_package(_storage.read_bytes(package_uri), package_uri)
    info = inspect_video(package.video, title_id, limits=limits, analyse=analyse)
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
    return dataclasses.replace(info, audio=tuple(audio), subtitles=tuple(subtitles),
                               package_uri=package_uri, metadata_json=package.metadata_json)


class _InspectFn(beam.DoFn):
    def __init__(self, output_root: str = "", fingerprint: str = "",
                 limits: SourceLimits = SourceLimits(), analyse: bool = False):
        self._output_root = output_root
        self._fingerprint = fingerprint
        self._limits = limits
        self._analyse = analyse

    @dead_letters("inspect")
    def process(self, event: IngestEvent):
        try:
            if is_title_package(event.source_uri):
                info = inspect_package(event.source_uri, event.title_id, self._limits,
                                       analyse=self._analyse)
            else:
                info = inspect_video(event.source_uri, event.title_id, limits=self._limits,
                                     analyse=self._analyse)
            info = dataclasses.replace(info, generation=event.generation)
        except MediaError as exc:
            yield pvalue.TaggedOutput(
                DEAD_LETTER, dead_letter_for(event.title_id, event.source_uri, "inspect", exc))
            return
        log.info("%s: inspected: %dx%d %s fps, %.1f s, %s, %d audio track(s), %d subtitle "
                 "track(s)", info.title_id, info.width, info.height, _fps(info),
                 float(info.duration_s), info.video_codec, len(info.audio), len(info.subtitles))
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

    With an output root and the job's settings fingerprint, a title already published
    from the same source with the same settings is skipped: re-running is a no-op.
    A source over the job's `limits` (duration, frame size, file size) is a dead letter.
    With `analyse` (per-title ladders), each source's complexity is measured on the way
    (`media.inspect.complexity`).
    """

    def __init__(self, output_root: str = "", fingerprint: str = "",
                 limits: SourceLimits = SourceLimits(), analyse: bool = False):
        super().__init__()
        self._output_root = output_root
        self._fingerprint = fingerprint
        self._limits = limits
        self._analyse = analyse

    def expand(self, events):
        return events | "Inspect" >> beam.ParDo(
            _InspectFn(self._output_root, self._fingerprint, self._limits,
                       self._analyse)).with_outputs(
            DEAD_LETTER, main="main")
