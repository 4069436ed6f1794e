"""DeduplicateEvents: the first event of each (source, generation) goes on, in batch
and in streaming (TestStream: duplicates and generations out of order, across
watermark advances)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from media.core.types import IngestEvent
from transforms.events import DeduplicateEvents


def event(name: str, generation: str, message: str = "") -> IngestEvent:
    return IngestEvent(f"gs://b/in/{name}.mp4", name, generation, message)


def _versions(events):
    return events | beam.Map(lambda e: (e.title_id, e.generation))


def test_duplicates_are_dropped_in_batch():
    events = [event("a", "1", "m1"), event("a", "1", "m2"), event("b", "1"), event("a", "2"),
              event("a", "1", "m3")]
    with BeamTestPipeline() as pipeline:
        unique = pipeline | beam.Create(events) | DeduplicateEvents()
        assert_that(_versions(unique), equal_to([("a", "1"), ("b", "1"), ("a", "2")]))


def test_duplicates_and_out_of_order_generations_in_streaming():
    stream = (
        BeamTestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(e, 1) for e in
                       (event("a", "2", "m1"), event("b", "5", "m2"), event("a", "2", "m3"))])
        .advance_watermark_to(60)
        # A late redelivery, an older generation after a newer one, and a new object.
        .add_elements([TimestampedValue(e, 61) for e in
                       (event("a", "1", "m4"), event("b", "5", "m5"), event("c", "1", "m6"))])
        .advance_watermark_to(120)
        .add_elements([TimestampedValue(e, 121) for e in
                       (event("a", "2", "m7"), event("a", "1", "m8"))])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with BeamTestPipeline(options=options) as pipeline:
        unique = pipeline | stream | DeduplicateEvents()
        # Every version once (an older generation still goes on: publishing then finds
        # the newer one published and leaves it in place).
        assert_that(_versions(unique),
                    equal_to([("a", "2"), ("b", "5"), ("a", "1"), ("c", "1")]))
        assert_that(unique | "Messages" >> beam.Map(lambda e: e.event_id),
                    equal_to(["m1", "m2", "m4", "m6"]), label="FirstDeliveryWins")
