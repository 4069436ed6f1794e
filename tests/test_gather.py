"""Tests for transforms.gather: all N parts of a key, once, in index order.

Batch with `beam.Create` (parts out of order, retried duplicates, an incomplete key)
and streaming with `TestStream` on the DirectRunner (parts in two batches with a
watermark advance between them).
"""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from tests.state_fakes import FakeBag as _FakeBag
from tests.state_fakes import FakeValue as _FakeValue
from transforms.gather import GatherParts, Part, _GatherFn


def parts(key: str, count: int, indices: list[int], prefix: str = "") -> list:
    return [(key, Part(i, count, f"{prefix or key}{i}")) for i in indices]


BATCH_CASES = {
    "out-of-order-with-duplicates": (
        parts("a", 3, [2, 0, 2, 1, 0]) + parts("b", 2, [1, 1, 0]),
        [("a", ["a0", "a1", "a2"]), ("b", ["b0", "b1"])],
    ),
    "incomplete-keys-never-fire": (
        parts("done", 2, [1, 0]) + parts("missing", 3, [0, 2, 2, 0]) + parts("solo", 1, [0])
        + parts("x", 4, [3, 1, 0, 1]),
        [("done", ["done0", "done1"]), ("solo", ["solo0"])],
    ),
}


@pytest.mark.parametrize("elements, expected", BATCH_CASES.values(), ids=BATCH_CASES.keys())
def test_gather_in_batch(elements, expected):
    with BeamTestPipeline() as pipeline:
        gathered = (pipeline | beam.Create(elements) | GatherParts()).main
        assert_that(gathered, equal_to(expected))


def test_duplicates_arriving_after_the_key_fired_do_not_fire_it_again():
    elements = parts("a", 2, [0, 1, 1, 0, 1, 0])
    with BeamTestPipeline() as pipeline:
        gathered = (pipeline | beam.Create(elements) | GatherParts()).main
        assert_that(gathered | "Keys" >> beam.Keys(), equal_to(["a"]), label="FiresOnce")
        assert_that(gathered, equal_to([("a", ["a0", "a1"])]), label="InOrder")


def test_gather_fn_without_a_pipeline():
    fn, bag, seen, arrived, fired = (_GatherFn(), _FakeBag(), _FakeValue(), _FakeValue(),
                                     _FakeValue())
    outputs = []
    for element in parts("k", 3, [1, 1, 2, 0, 2]):
        outputs += list(fn.process(element, parts=bag, seen=seen, arrived=arrived, fired=fired,
                                   expiry=None))
    assert outputs == [("k", ["k0", "k1", "k2"])]
    assert fired.read() is True
    assert bag.read() == []  # parts are dropped once the key fired


def test_gather_in_streaming_with_a_watermark_between_batches():
    stream = (
        BeamTestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(e, 1) for e in
                       parts("a", 3, [2, 0]) + parts("b", 2, [1]) + parts("c", 2, [0])])
        .advance_watermark_to(100)
        .add_elements([TimestampedValue(e, 101) for e in
                       parts("b", 2, [1, 0]) + parts("a", 3, [0, 1]) + parts("d", 1, [0])])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with BeamTestPipeline(options=options) as pipeline:
        gathered = (pipeline | stream | GatherParts()).main
        # 'c' never gets its part 1, so it never fires.
        assert_that(gathered, equal_to([
            ("a", ["a0", "a1", "a2"]), ("b", ["b0", "b1"]), ("d", ["d0"]),
        ]))


def test_each_version_of_a_title_gathers_on_its_own_in_streaming():
    """Keys are (title, generation): a new generation fires again, and a version whose
    parts are still missing holds back neither the other title nor the next version."""
    v1, v2, other = ("movie", "1"), ("movie", "2"), ("trailer", "7")
    stream = (
        BeamTestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(e, 1) for e in
                       parts(v1, 2, [1], "v1-") + parts(other, 2, [1, 1], "t-")])
        .advance_watermark_to(50)
        .add_elements([TimestampedValue(e, 51) for e in
                       parts(v2, 3, [2, 0], "v2-") + parts(other, 2, [0], "t-")
                       + parts(v1, 2, [0, 1], "v1-")])
        .advance_watermark_to(100)
        .add_elements([TimestampedValue(e, 101) for e in parts(v1, 2, [0], "v1-")])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with BeamTestPipeline(options=options) as pipeline:
        gathered = (pipeline | stream | GatherParts()).main
        # v2 never gets its part 1: it never fires, and the others still do, once each.
        assert_that(gathered, equal_to([
            (v1, ["v1-0", "v1-1"]), (other, ["t-0", "t-1"]),
        ]))


@pytest.mark.parametrize("codecs", [("h264",), ("h264", "av1")])
def test_every_gather_of_the_job_has_a_deterministic_key_coder(codecs, caplog):
    """Beam warns, and may group wrongly on a cluster, where a stateful step's key has no
    fixed-shape type (a `tuple[str, ...]` key): every gather of the whole graph is typed
    with a key Beam can encode deterministically, whatever the codecs."""
    from media.core.config import JobConfig
    from pipeline.graph import build_pipeline

    pipeline = beam.Pipeline(runner="FnApiRunner")
    build_pipeline(pipeline, ["/in/a.mp4"], JobConfig(output_root="/out", codecs=codecs).validate())
    assert "may not be deterministic" not in caplog.text
