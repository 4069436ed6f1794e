"""The --watch fronts: `WatchPrefix` (fileio.MatchContinuously, for Flink and Dataflow),
bounded here so the DirectRunner finishes, and the DirectRunner's `Poller`."""

from __future__ import annotations

import os
import time

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipeline.watch import Poller
from transforms.events import WatchPrefix, watch_pattern


def _touch(path, data=b"x", mtime=None):
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_watch_pattern():
    assert watch_pattern("/drop") == "/drop/*" == watch_pattern("/drop/")
    assert watch_pattern("gs://b/in/") == "gs://b/in/*"
    assert watch_pattern("gs://b/in/*.mov") == "gs://b/in/*.mov"


def test_watch_prefix_emits_each_source_once_with_its_generation(tmp_path):
    _touch(tmp_path / "a.mp4", mtime=1_700_000_000.5)
    _touch(tmp_path / "b.mov", mtime=1_700_000_100.0)
    _touch(tmp_path / ".hidden.mp4")
    _touch(tmp_path / "c.mp4.part")
    with BeamTestPipeline() as pipeline:
        events = pipeline | WatchPrefix(str(tmp_path), interval_s=0.5,
                                        stop_timestamp=Timestamp.of(time.time() + 2))
        assert_that(events | beam.Map(lambda e: (e.title_id, e.generation)),
                    equal_to([("a", "1700000000500000"), ("b", "1700000100000000")]))


def test_the_poller_takes_a_file_once_it_has_settled_and_again_when_rewritten(tmp_path):
    poller = Poller(str(tmp_path), ignore_prefix=str(tmp_path / "out"))
    _touch(tmp_path / "a.mp4", b"half", mtime=1_000.0)
    assert poller.poll() == []  # first sighting: maybe still being written
    _touch(tmp_path / "a.mp4", b"whole", mtime=1_001.0)
    assert poller.poll() == []  # it changed since: still not settled
    [event] = poller.poll()
    assert (event.title_id, event.generation) == ("a", "1001000000")
    assert poller.poll() == []  # taken once
    _touch(tmp_path / "a.mp4", b"new cut", mtime=2_000.0)
    assert poller.poll() == []
    [again] = poller.poll()
    assert again.generation == "2000000000"
    (tmp_path / "out").mkdir()
    _touch(tmp_path / "b.mp4.part")
    assert poller.poll() == [] and poller.poll() == []
