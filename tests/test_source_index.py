"""Tests for media.core.source_index.opened_source: a local source's index is read once
for all the reads of a title, not once per chunk, and a kept source is never one that
changed or one a read left broken."""

from __future__ import annotations

import os

import av
import pytest

from media.core.errors import UnreadableSource
from media.core.source_index import forget_kept_source, opened_source
from media.encode.staging import stage_span
from media.inspect.probe import SOURCE_OPEN_OPTIONS
from tests.media_factory import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("kept")
    return make_clip(str(folder / "gop25.mp4"), duration_s=6, width=160, height=90,
                     rate="25", audio=False, gop=25)


@pytest.fixture
def opens(monkeypatch) -> list[str]:
    """Every av.open of a source for reading, by name; nothing kept before or after."""
    forget_kept_source()
    found, real = [], av.open

    def counting(source, mode="r", **kwargs):
        if mode == "r":
            found.append(source if isinstance(source, str) else "<file object>")
        return real(source, mode, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    yield found
    forget_kept_source()


def staged_packets(path: str) -> list[tuple[int, int]]:
    with av.open(path) as container:
        return [(p.pts, p.size) for p in container.demux(video=0) if p.size]


def test_a_titles_chunks_read_its_index_once(clip, opens, tmp_path):
    spans = [(4.0, 5.0), (1.0, 2.0), (0.0, 1.0), (5.0, 6.0)]  # out of order, as workers take them
    kept = [stage_span(clip, s, e, str(tmp_path / f"kept-{s:g}.mkv"), clip) for s, e in spans]
    assert opens == [clip]
    forget_kept_source()
    for (s, e), staged in zip(spans, kept, strict=True):
        forget_kept_source()
        fresh = stage_span(clip, s, e, str(tmp_path / f"fresh-{s:g}.mkv"), clip)
        # The same packets as a read from a fresh open, wherever the last read left it.
        assert staged_packets(staged.path) == staged_packets(fresh.path)
        assert (staged.packets, staged.first_pts_s) == (fresh.packets, fresh.first_pts_s)
        assert staged.packets >= 25  # the GOP, and what B-frames need past its end


def test_a_source_that_changed_is_opened_again(clip, opens, tmp_path):
    copy = str(tmp_path / "copy.mp4")
    with open(clip, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    stage_span(copy, 1.0, 2.0, str(tmp_path / "a.mkv"), copy)
    stage_span(copy, 2.0, 3.0, str(tmp_path / "b.mkv"), copy)
    assert opens == [copy]
    stat = os.stat(copy)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten
    stage_span(copy, 2.0, 3.0, str(tmp_path / "c.mkv"), copy)
    assert opens == [copy, copy]
    stage_span(clip, 2.0, 3.0, str(tmp_path / "d.mkv"), clip)  # another source
    assert opens == [copy, copy, clip]


def test_a_source_gone_since_its_last_read_is_unreadable(clip, opens, tmp_path):
    copy = str(tmp_path / "gone.mp4")
    with open(clip, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    stage_span(copy, 1.0, 2.0, str(tmp_path / "a.mkv"), copy)
    os.remove(copy)
    with pytest.raises(UnreadableSource, match=r"cannot read 2\.000-3\.000 s of the source"):
        stage_span(copy, 2.0, 3.0, str(tmp_path / "b.mkv"), copy)


def test_a_fresh_read_a_failed_read_and_a_file_object_each_open_anew(clip, opens):
    with opened_source(clip, SOURCE_OPEN_OPTIONS) as first:
        pass
    with opened_source(clip, SOURCE_OPEN_OPTIONS, reuse=False) as fresh:
        assert fresh is not first  # read from where an open starts: a new open
    with pytest.raises(RuntimeError), opened_source(clip, SOURCE_OPEN_OPTIONS) as kept:
        assert kept is fresh
        raise RuntimeError("a read failed half way")
    with opened_source(clip, SOURCE_OPEN_OPTIONS) as after:
        assert after is not fresh  # what the failed read left is not handed on
    with open(clip, "rb") as handle, opened_source(handle, SOURCE_OPEN_OPTIONS) as own:
        assert own is not after
    with opened_source(clip, SOURCE_OPEN_OPTIONS) as still:
        assert still is after  # a file object's read leaves the kept source as it was
    assert opens == [clip, clip, clip, "<file object>"]


def test_a_stage_that_read_a_title_leaves_no_source_open(clip):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from media.core import source_index
    from media.core.types import IngestEvent
    from transforms.inspect import Inspect

    forget_kept_source()
    with beam.Pipeline(options=PipelineOptions(
            ["--runner", "pipeline.local_runner.LocalRunner"])) as pipeline:
        inspected = (pipeline | beam.Create([IngestEvent(clip, "kept")])
                     | Inspect(span_s=2.0))
        durations = inspected.main | beam.Map(lambda info: float(info.duration_s))
        assert_that(durations, equal_to([6.0]))
    # Three spans read the clip, through one kept source; the end of their bundle closed it.
    assert source_index._Kept.container is None
