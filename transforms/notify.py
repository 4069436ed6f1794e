"""Tell downstream systems: a "title ready" message per published title, and a
"rejected" message per dead letter, on Pub/Sub topics.

Messages are published with the Pub/Sub client (it honours PUBSUB_EMULATOR_HOST) and
each is confirmed (the publish future resolved) before the element moves on, so a
bundle that finishes has delivered its messages; a retried bundle may deliver one
again (at-least-once, as Pub/Sub itself): consumers key on title id and generation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import apache_beam as beam

from media.core.types import DeadLetter
from media.ingest.events import rejected_message, title_ready_message
from transforms import metrics

__all__ = ["NotifyTitleReady", "PublishDeadLetters"]

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 120.0


class _PublishFn(beam.DoFn):
    def __init__(self, topic: str, to_message: Callable):
        self._topic = topic
        self._to_message = to_message
        self._client = None

    def setup(self):
        from google.cloud import pubsub_v1

        self._client = pubsub_v1.PublisherClient()

    def process(self, element):
        data, attributes = self._to_message(element)
        message_id = self._client.publish(self._topic, data, **attributes).result(
            timeout=PUBLISH_TIMEOUT_S)
        log.info("%s: %s sent to %s (message %s)", attributes.get("titleId"),
                 attributes.get("eventType"), self._topic, message_id)
        yield element

    def teardown(self):
        if self._client is not None:
            self._client.stop()


def _title_ready(title) -> tuple[bytes, dict[str, str]]:
    return title_ready_message(dataclasses.asdict(title))


class NotifyTitleReady(beam.PTransform):
    """PCollection[PublishedTitle] -> the same, each announced on `topic` once its
    manifests exist."""

    def __init__(self, topic: str):
        super().__init__()
        self._topic = topic

    def expand(self, titles):
        return titles | "PublishTitleReady" >> beam.ParDo(_PublishFn(self._topic, _title_ready))


class PublishDeadLetters(beam.PTransform):
    """PCollection[DeadLetter] -> the same, each published on `topic`."""

    def __init__(self, topic: str):
        super().__init__()
        self._topic = topic

    def expand(self, letters):
        return letters | "PublishRejected" >> beam.ParDo(
            _PublishFn(self._topic, _rejected))


def _rejected(letter: DeadLetter) -> tuple[bytes, dict[str, str]]:
    log.warning("%s: rejected at %s: %s (%s)", letter.title_id, letter.stage, letter.error,
                letter.hint)
    metrics.count_dead_letter(letter.stage)
    return rejected_message(letter)
