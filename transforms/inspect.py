"""Inspect: every source is examined before compute is spent on it.

Emits a `SourceInfo` per decodable source; an unreadable, non-video or undecodable
source becomes a `DeadLetter` on the `dead_letter` output and the others carry on.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam import pvalue

from media import naming
from media.errors import MediaError
from media.probe import inspect_source
from media.types import IngestEvent, SourceInfo
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for

__all__ = ["Inspect"]

log = logging.getLogger(__name__)


def already_published(info: SourceInfo, output_root: str, fingerprint: str) -> bool:
    """True when the title is published from this very source with these settings."""
    root = naming.title_root(output_root, info.title_id)
    report_uri = naming.join(root, naming.REPORT_JSON)
    if not (_storage.exists(naming.join(root, naming.MASTER_PLAYLIST))
            and _storage.exists(report_uri)):
        return False
    report = _storage.read_json(report_uri)
    source = report.get("source") or {}
    return (report.get("job_fingerprint") == fingerprint
            and source.get("source_uri") == info.source_uri
            and source.get("size_bytes") == info.size_bytes
            and source.get("frame_count") == info.frame_count)


class _InspectFn(beam.DoFn):
    def __init__(self, output_root: str = "", fingerprint: str = ""):
        self._output_root = output_root
        self._fingerprint = fingerprint

    def process(self, event: IngestEvent):
        try:
            size = _storage.size_of(event.source_uri)
            if size == 0:
                raise MediaError(f"{event.source_uri} is empty (0 bytes)",
                                 hint="Upload the file again; the copy is empty.")
            with _storage.open_source(event.source_uri) as source:
                info = inspect_source(source, event.source_uri, event.title_id, size)
        except MediaError as exc:
            yield pvalue.TaggedOutput(
                DEAD_LETTER, dead_letter_for(event.title_id, event.source_uri, "inspect", exc))
            return
        log.info("%s: inspected: %dx%d %s fps, %.1f s, %s, %d audio stream(s)",
                 info.title_id, info.width, info.height, _fps(info), float(info.duration_s),
                 info.video_codec, len(info.audio))
        if self._fingerprint and already_published(info, self._output_root, self._fingerprint):
            log.info("%s: already published from this source with these settings; skipped",
                     info.title_id)
            return
        yield info


def _fps(info: SourceInfo) -> str:
    return f"{float(info.frame_rate):.3f}".rstrip("0").rstrip(".")


class Inspect(beam.PTransform):
    """PCollection[IngestEvent] -> {'main': SourceInfo, 'dead_letter': DeadLetter}.

    With an output root and the job's settings fingerprint, a title already published
    from the same source with the same settings is skipped: re-running is a no-op.
    """

    def __init__(self, output_root: str = "", fingerprint: str = ""):
        super().__init__()
        self._output_root = output_root
        self._fingerprint = fingerprint

    def expand(self, events):
        return events | "Inspect" >> beam.ParDo(
            _InspectFn(self._output_root, self._fingerprint)).with_outputs(
            DEAD_LETTER, main="main")
