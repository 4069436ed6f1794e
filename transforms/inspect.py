"""Inspect: every source is examined before compute is spent on it.

Emits a `SourceInfo` per decodable source; an unreadable, non-video or undecodable
source becomes a `DeadLetter` on the `dead_letter` output and the others carry on.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam import pvalue

from media.errors import MediaError
from media.probe import inspect_source
from media.types import IngestEvent, SourceInfo
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for

__all__ = ["Inspect"]

log = logging.getLogger(__name__)


class _InspectFn(beam.DoFn):
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
        yield info


def _fps(info: SourceInfo) -> str:
    return f"{float(info.frame_rate):.3f}".rstrip("0").rstrip(".")


class Inspect(beam.PTransform):
    """PCollection[IngestEvent] -> {'main': SourceInfo, 'dead_letter': DeadLetter}."""

    def expand(self, events):
        return events | "Inspect" >> beam.ParDo(_InspectFn()).with_outputs(
            DEAD_LETTER, main="main")
