"""Bounded state: gathers and dedup set timers on unbounded input, and do O(1) work
per arriving part.

Streaming with `TestStream` and processing-time advances (the DirectRunner's test
clock starts at 0, so the transforms get a clock that reads 0): a title version still
incomplete after its timeout is a dead letter naming its missing chunks, a complete one
is not; a deduplicated version is forgotten after its retention, and a repeat after
that goes through. Batch sets no timer. A gather of 600 parts reads its bag once.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from media.core.config import JobConfig
from media.core.errors import ConfigurationError
from media.core.types import IngestEvent
from pipeline.options import job_config
from tests.state_fakes import FakeValue as _Value
from transforms.events import DeduplicateEvents
from transforms.gather import TIMEOUT_HINT, GatherParts, Part, _GatherFn, index_ranges

TIMEOUT_S = 60.0
SOURCE = "gs://studio/in/movie.mov"


def test_clock() -> float:
    """Processing time as the DirectRunner's test clock starts it."""
    return 0.0


test_clock.__test__ = False  # a clock, not a test


def chunks(key: tuple, count: int, indexes: list[int]) -> list:
    """Chunk results of one rendition, each naming its source as a `ChunkResult` does."""
    source = SimpleNamespace(source_uri=SOURCE)
    return [(key, Part(i, count, SimpleNamespace(task=SimpleNamespace(source=source),
                                                 name=f"{key[2]}-{i}"))) for i in indexes]


def streaming() -> PipelineOptions:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return options


def test_an_incomplete_title_times_out_into_a_dead_letter_naming_its_missing_chunks():
    done, stuck = ("movie", "7", "720p"), ("movie", "7", "360p")
    stream = (
        BeamTestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(e, 1) for e in
                       chunks(done, 3, [2, 0, 0, 1]) + chunks(stuck, 8, [0, 3, 6, 3])])
        .advance_processing_time(TIMEOUT_S / 2)
        # Before the timeout: a late chunk of the stuck rendition, a repeat of a fired one.
        .add_elements([TimestampedValue(e, 2) for e in
                       chunks(stuck, 8, [7]) + chunks(done, 3, [1])])
        .advance_processing_time(TIMEOUT_S)
        .advance_watermark_to_infinity()
    )
    pipeline = BeamTestPipeline(options=streaming())
    gathered = pipeline | stream | GatherParts(TIMEOUT_S, "assemble (gather)", "chunk",
                                               clock=test_clock)
    # The complete rendition fires once, and its expiry (the same timer) adds nothing.
    assert_that(gathered.main | beam.MapTuple(lambda k, vs: (k, [v.name for v in vs])),
                equal_to([(done, ["720p-0", "720p-1", "720p-2"])]), label="Complete")
    assert_that(gathered.dead_letter | beam.Map(dataclasses.astuple), equal_to([(
        "movie", SOURCE, "assemble (gather)",
        "timed out after 60 s with 4 of 8 chunks: missing chunk 1-2, 4-5",
        TIMEOUT_HINT, "7", "")]), label="TimedOut")
    pipeline.run().wait_until_finish()


def event(generation: str, message: str) -> IngestEvent:
    return IngestEvent(SOURCE, "movie", generation, message)


def test_a_deduplicated_version_is_forgotten_after_its_retention():
    retention_s = 3600.0
    stream = (
        BeamTestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(event("1", "m1"), 1),
                       TimestampedValue(event("2", "m2"), 1)])
        .advance_processing_time(retention_s / 2)
        .add_elements([TimestampedValue(event("1", "m3"), 2)])  # within the retention
        .advance_processing_time(retention_s)
        .add_elements([TimestampedValue(event("1", "m4"), 3)])  # after it: runs again
        .advance_watermark_to_infinity()
    )
    with BeamTestPipeline(options=streaming()) as pipeline:
        unique = pipeline | stream | DeduplicateEvents(retention_s, clock=test_clock)
        assert_that(unique | beam.Map(lambda e: e.event_id), equal_to(["m1", "m2", "m4"]))


def test_batch_sets_no_timer_and_reports_no_timeout():
    """In batch the input ends: an incomplete key stays silent (its stage says why), and
    a repeated event is dropped however short the retention."""
    with BeamTestPipeline() as pipeline:
        gathered = (pipeline | "Chunks" >> beam.Create(chunks(("movie", "7", "360p"), 3, [0, 2]))
                    | GatherParts(1e-3, "assemble (gather)", "chunk"))
        unique = (pipeline | "Events" >> beam.Create([event("1", "m1"), event("1", "m2")])
                  | DeduplicateEvents(1e-3))
        assert_that(gathered.main, equal_to([]), label="NotFired")
        assert_that(gathered.dead_letter, equal_to([]), label="NoDeadLetter")
        assert_that(unique | beam.Map(lambda e: e.generation), equal_to(["1"]), label="Once")


class _CountingBag:
    def __init__(self):
        self.items: list = []
        self.reads = 0
        self.parts_read = 0

    def add(self, item):
        self.items.append(item)

    def read(self):
        self.reads += 1
        self.parts_read += len(self.items)
        return list(self.items)

    def clear(self):
        self.items = []


def test_a_gather_of_600_parts_reads_its_bag_once():
    """O(1) state work per arriving part, repeats included: the bag is read once (599
    parts, the last one is in hand); before, arrival k read all k parts (180,300 in all)."""
    count = 600
    arrivals = [Part(i, count, i) for i in range(count)]
    arrivals[100:100] = arrivals[:40]  # a retried bundle's repeats, before the last part
    bag, seen, arrived, fired = _CountingBag(), _Value(), _Value(), _Value()
    fn, outputs = _GatherFn(), []
    for part in arrivals:
        outputs += list(fn.process((("movie", "7", "720p"), part), parts=bag, seen=seen,
                                   arrived=arrived, fired=fired, expiry=None))
    assert outputs == [(("movie", "7", "720p"), list(range(count)))]
    assert (bag.reads, bag.parts_read) == (1, count - 1)
    # One read of the index bits and the "fired" mark per arrival; a repeat stops there.
    assert seen.reads == fired.reads == len(arrivals) and arrived.reads == count
    assert bag.items == [] and seen.value is None and arrived.value is None


def test_the_timeout_and_retention_options():
    config = job_config(PipelineOptions(["--output", "out", "--title_timeout_s", "7200",
                                         "--dedup_retention_s", "0"]))
    assert (config.title_timeout_s, config.dedup_retention_s) == (7200.0, 0.0)
    defaults = JobConfig("out")
    assert (defaults.title_timeout_s, defaults.dedup_retention_s) == (86400.0, 604800.0)
    # Neither decides a title's output: resuming under other values reuses its chunks.
    assert config.fingerprint() == defaults.fingerprint()
    with pytest.raises(ConfigurationError, match=r"--title_timeout_s 600: use 0 \(never\) or at "
                       r"least --tool_timeout_s \(3600 s\)"):
        JobConfig("out", title_timeout_s=600).validate()
    with pytest.raises(ConfigurationError, match="--dedup_retention_s must be 0"):
        JobConfig("out", dedup_retention_s=-1).validate()
    assert JobConfig("out", title_timeout_s=0).validate().title_timeout_s == 0


@pytest.mark.parametrize("indexes, text", [
    ([], ""), ([3], "3"), ([7, 0, 1, 2, 5], "0-2, 5, 7"), ([1, 1, 2], "1-2"),
    (list(range(3, 600)), "3-599"),
])
def test_missing_parts_are_named_as_runs(indexes, text):
    assert index_ranges(indexes) == text
