"""Ingest fronts for events: Cloud Storage notifications on Pub/Sub, a watched prefix,
and the dedup that makes each source version run once.

- `ReadStorageNotifications`: Pub/Sub messages in, `IngestEvent`s out; other event
  types are ignored and counted (Beam metrics `ladderflow.ingest/ignored: ...`), and a
  message that is not a notification becomes a dead letter: the pipeline reads on.
- `WatchPrefix`: `fileio.MatchContinuously` over a local folder or a gs:// prefix, for
  runners without a Python Pub/Sub source (Flink); a file rewritten later is a new
  generation. (Beam's Python DirectRunner runs a splittable source such as this one on
  its FnApiRunner, which never fires a GroupByKey below it while the source runs; on
  the DirectRunner, `--watch` is served by `pipeline.watch` instead.)
- `DeduplicateEvents`: a stateful DoFn keyed by (source, generation) lets the first
  event of a version through and drops the rest (Pub/Sub delivers at least once, and
  Cloud Storage may notify twice). On unbounded input a version is remembered for
  `retention_s` (processing time) after its first event, then forgotten, so the state
  of a job that runs for months stays bounded; a repeat after that runs the version
  again, which reuses its finished chunks and republishes the same title.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import BooleanCoder
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from media.core.types import IngestEvent
from media.ingest.events import (
    Ignored,
    MalformedEvent,
    rejected_event,
    storage_event,
    watched_file_event,
)
from transforms.dead_letter import DEAD_LETTER

__all__ = ["DeduplicateEvents", "ReadStorageNotifications", "WatchPrefix", "watch_pattern"]

log = logging.getLogger(__name__)
NAMESPACE = "ladderflow.ingest"


def count_ignored(ignored: Ignored) -> None:
    Metrics.counter(NAMESPACE, f"ignored: {ignored.reason}").inc()
    log.info("ignored event (%s): %s", ignored.reason, ignored.detail)


class _ParseNotificationFn(beam.DoFn):
    def __init__(self, ignore_prefix: str):
        self._ignore_prefix = ignore_prefix
        self._received = Metrics.counter(NAMESPACE, "notifications")
        self._malformed = Metrics.counter(NAMESPACE, "malformed")

    def process(self, message):
        self._received.inc()
        message_id = getattr(message, "message_id", "") or ""
        try:
            event = storage_event(message.data or b"", message.attributes, message_id,
                                  self._ignore_prefix)
        except MalformedEvent as exc:
            self._malformed.inc()
            yield pvalue.TaggedOutput(DEAD_LETTER,
                                      rejected_event(message_id, message.attributes, exc))
            return
        if isinstance(event, Ignored):
            count_ignored(event)
            return
        log.info("%s: notified: %s generation %s (message %s)", event.title_id,
                 event.source_uri, event.generation, message_id or "?")
        yield event


class ReadStorageNotifications(beam.PTransform):
    """PBegin -> {'main': IngestEvent, 'dead_letter': DeadLetter}, from a subscription to
    a Cloud Storage notification topic (payload format JSON_API_V1 or NONE)."""

    def __init__(self, subscription: str, ignore_prefix: str = ""):
        super().__init__()
        self._subscription = subscription
        self._ignore_prefix = ignore_prefix

    def expand(self, pbegin):
        return (
            pbegin
            | "ReadPubSub" >> beam.io.ReadFromPubSub(subscription=self._subscription,
                                                     with_attributes=True)
            | "ParseNotification" >> beam.ParDo(
                _ParseNotificationFn(self._ignore_prefix)).with_outputs(DEAD_LETTER, main="main")
        )


def watch_pattern(prefix: str) -> str:
    """The glob `MatchContinuously` polls for a watched folder or prefix."""
    if any(c in prefix for c in "*?["):
        return prefix
    return prefix.rstrip("/") + "/*"


class _WatchedFileFn(beam.DoFn):
    def __init__(self, ignore_prefix: str):
        self._ignore_prefix = ignore_prefix

    def process(self, metadata):
        event = watched_file_event(metadata.path, metadata.last_updated_in_seconds,
                                   self._ignore_prefix)
        if isinstance(event, Ignored):
            count_ignored(event)
            return
        log.info("%s: found %s (generation %s)", event.title_id, event.source_uri,
                 event.generation)
        yield event


class WatchPrefix(beam.PTransform):
    """PBegin -> PCollection[IngestEvent] of every file that appears (or changes) under
    `prefix`, polled every `interval_s` seconds."""

    def __init__(self, prefix: str, interval_s: float = 10.0, ignore_prefix: str = "",
                 stop_timestamp=MAX_TIMESTAMP):
        super().__init__()
        self._prefix = prefix
        self._interval_s = interval_s
        self._ignore_prefix = ignore_prefix
        self._stop_timestamp = stop_timestamp

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchContinuously" >> fileio.MatchContinuously(
                watch_pattern(self._prefix), interval=self._interval_s,
                match_updated_files=True, stop_timestamp=self._stop_timestamp)
            | "ToIngestEvent" >> beam.ParDo(_WatchedFileFn(self._ignore_prefix))
        )


class _FirstOfVersionFn(beam.DoFn):
    SEEN = ReadModifyWriteStateSpec("seen", BooleanCoder())
    FORGET = TimerSpec("forget", TimeDomain.REAL_TIME)

    def __init__(self, retention_s: float = 0.0, clock: Callable[[], float] = time.time):
        self._retention_s = retention_s
        self._clock = clock
        self._duplicates = Metrics.counter(NAMESPACE, "duplicates")
        self._forgotten = Metrics.counter(NAMESPACE, "versions forgotten")

    def process(self, element, seen=beam.DoFn.StateParam(SEEN),
                forget=beam.DoFn.TimerParam(FORGET)):
        _, event = element
        if seen.read():
            self._duplicates.inc()
            log.info("%s: duplicate event for %s generation %s dropped", event.title_id,
                     event.source_uri, event.generation or "-")
            return
        seen.write(True)
        if self._retention_s > 0:
            forget.set(Timestamp.of(self._clock() + self._retention_s))
        yield event

    @on_timer(FORGET)
    def forget(self, seen=beam.DoFn.StateParam(SEEN)):
        self._forgotten.inc()
        seen.clear()


class DeduplicateEvents(beam.PTransform):
    """PCollection[IngestEvent] -> the first event of each (source, generation); on
    unbounded input, each version is forgotten `retention_s` after its first event
    (0: never). `clock` gives processing time in seconds (a test stream's starts at 0)."""

    def __init__(self, retention_s: float = 0.0, clock: Callable[[], float] = time.time):
        super().__init__()
        self._retention_s = retention_s
        self._clock = clock

    def expand(self, events):
        retention_s = 0.0 if events.is_bounded else self._retention_s
        return (
            events
            | "KeyByVersion" >> beam.Map(lambda e: (e.dedup_key, e)).with_output_types(
                tuple[str, IngestEvent])
            | "FirstOfVersion" >> beam.ParDo(_FirstOfVersionFn(retention_s, self._clock))
        )
