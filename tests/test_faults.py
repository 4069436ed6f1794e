"""Injected faults (`LADDERFLOW_FAULTS`, media/core/faults.py) against the encode stage.

A killed FFmpeg, a failed storage write and a corrupt chunk are retried inside the
encode DoFn and the title still publishes, each segment once; a fault that fires on
every try sends its title to the dead letter with the cause, and the other title
still publishes. The pipeline runs in this process (TestPipeline), so the fault
counts, which are per process, are the pipeline's.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from media.core import faults
from tests.media_factory import make_clip

SEGMENT_S = 1.0
CLIP_S = 6
RENDITIONS = ["116p-125k", "234p-250k"]  # the fixed ladder of a 320x240 source


@pytest.fixture(autouse=True)
def fresh_counts():
    faults.reset()
    yield
    faults.reset()


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fault-sources")
    make_clip(
        str(folder / "faulty.mp4"), duration_s=CLIP_S, width=320, height=240, gop=25, audio=False
    )
    make_clip(str(folder / "steady.mp4"), duration_s=3, width=320, height=240, gop=25, audio=False)
    make_clip(str(folder / "doomed.mp4"), duration_s=3, width=320, height=240, gop=25, audio=False)
    return folder


def _run(sources: list[Path], out: Path, published: list[str], dead: list[str]) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    config = JobConfig(
        output_root=str(out),
        segment_s=SEGMENT_S,
        chunk_segments=1,
        encode=EncodeSettings(preset="ultrafast", threads=1),
        score_vmaf=False,
        ladder="fixed",
    ).validate()
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}"])
    with TestPipeline(options=options, blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [str(s) for s in sources], config)
        assert_that(
            outputs.published | "Published" >> beam.Map(lambda t: t.title_id),
            equal_to(published),
            label="PublishedTitles",
        )
        assert_that(
            outputs.dead_letters
            | "Dead" >> beam.Map(lambda d: d.title_id)
            | "Once" >> beam.Distinct(),
            equal_to(dead),
            label="DeadTitles",
        )


# The hook itself -------------------------------------------------------------------


def test_the_syntax(monkeypatch):
    rules = faults.parse(
        "kill-ffmpeg:encode:2, storage-write:chunk:1,corrupt-chunk:3+,kill-ffmpeg@film/720p:*"
    )
    assert [r.text() for r in rules] == [
        "kill-ffmpeg:encode:2",
        "storage-write:chunk:1",
        "corrupt-chunk:chunk:3+",
        "kill-ffmpeg:encode@film/720p:*",
    ]
    for bad in ("kill:encode:1", "kill-ffmpeg:upload:1", "corrupt-chunk:0", "storage-write:x"):
        with pytest.raises(ValueError, match="LADDERFLOW_FAULTS"):
            faults.parse(bad)


def test_unset_it_changes_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(faults.ENV, raising=False)
    assert faults.ffmpeg_hook("encode", "t/r/0") is None
    assert not faults.fire("storage-write", "chunk", "t/r/0")
    faults.storage_write("chunk", "t/r/0", "uri")  # does not raise
    chunk = tmp_path / "chunk.mp4"
    chunk.write_bytes(b"x" * 100)
    faults.corrupt_chunk("t/r/0", str(chunk))
    assert chunk.stat().st_size == 100
    assert faults.fired() == {}


def test_the_nth_event_fires_once_counted_across_threads(monkeypatch):
    monkeypatch.setenv(faults.ENV, "storage-write:chunk:50,storage-write:chunk@t/b/:2+")
    hits = []

    def write(n):
        for i in range(25):
            label = f"t/{'ab'[i % 2]}/{n}"
            hits.append(faults.fire("storage-write", "chunk", label))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 100 writes, 48 of them of rendition b: the 50th of all (once), and every write of b
    # after its first (47).
    assert len(hits) == 100
    assert faults.fired() == {"storage-write:chunk:50": 1, "storage-write:chunk@t/b/:2+": 47}
    assert sum(hits) in (47, 48)  # the 50th may itself be one of b's


# Faults against the pipeline ---------------------------------------------------------


def test_a_killed_encode_a_failed_write_and_a_corrupt_chunk_are_survived(
    sources, tmp_path, monkeypatch
):
    # Events are counted in the order the (one-threaded) runner meets them: the 2nd encode
    # is killed, the 4th chunk written by FFmpeg is cut short, the 7th chunk upload fails;
    # spaced so that no chunk meets two of them (each chunk has 3 tries). The first
    # encodes of a chunk's renditions share one FFmpeg process, so the kill of the 2nd
    # encode (the first chunk's second rendition) costs every rendition of that chunk a try.
    spec = "kill-ffmpeg:encode:2,corrupt-chunk:4,storage-write:chunk:7"
    monkeypatch.setenv(faults.ENV, spec)
    out = tmp_path / "out"
    _run([sources / "faulty.mp4"], out, published=["faulty"], dead=[])
    assert faults.fired() == {
        "kill-ffmpeg:encode:2": 1,
        "corrupt-chunk:chunk:4": 1,
        "storage-write:chunk:7": 1,
    }

    title = out / "faulty"
    segments = CLIP_S / SEGMENT_S
    master = m3u8.load(str(title / "master.m3u8"))
    assert sorted(p.uri.split("/")[1] for p in master.playlists) == RENDITIONS
    for variant in master.playlists:
        playlist = m3u8.load(str(title / variant.uri))
        uris = [s.uri for s in playlist.segments]
        assert len(uris) == segments and len(set(uris)) == len(uris), uris
        assert sum(s.duration for s in playlist.segments) == pytest.approx(CLIP_S)
        folder = (title / variant.uri).parent
        assert sorted(p.name for p in folder.glob("*.m4s")) == sorted(uris)
        iframes = m3u8.load(str(folder / "iframes.m3u8"))
        assert len(iframes.segments) == segments
    mpd = MPEGDASHParser.parse(str(title / "manifest.mpd"))
    for rep in mpd.periods[0].adaptation_sets[0].representations:
        timeline = rep.segment_templates[0].segment_timelines[0].Ss
        assert sum(1 + (s.r or 0) for s in timeline) == segments

    report = json.loads((title / "report.json").read_text())
    video = [t for t in report["tracks"] if t["kind"] == "video"]
    for track in video:
        assert [c["index"] for c in track["chunks"]] == list(range(int(segments)))
    retries = [cause for t in video for c in t["chunks"] for cause in c["retries"]]
    assert len(retries) == len(RENDITIONS) + 2, retries
    assert Counter(cause.split(":")[0].split(" by ")[0] for cause in retries) == {
        "FFmpeg was killed": len(RENDITIONS),
        "BadChunk": 1,
        "OSError": 1,
    }, retries
    assert any("SIGKILL" in cause for cause in retries)
    assert not (out / "_errors").exists()


def test_a_fault_on_every_try_dead_letters_its_title_only(sources, tmp_path, monkeypatch):
    monkeypatch.setenv(faults.ENV, "kill-ffmpeg:encode@doomed/116p-125k/:*")
    out = tmp_path / "out"
    _run(
        [sources / "steady.mp4", sources / "doomed.mp4"], out, published=["steady"], dead=["doomed"]
    )
    chunks = 3  # 3 s in 1 s chunks, 3 tries each
    assert faults.fired() == {"kill-ffmpeg:encode@doomed/116p-125k/:*": chunks * 3}

    record = json.loads((out / "_errors" / "doomed.json").read_text())
    assert record["stage"].startswith("encode (116p-125k, chunk ")
    assert "failed 3 times: FFmpeg was killed by SIGKILL; " in record["error"], record
    assert "run again" in record["hint"]
    assert (out / "steady" / "master.m3u8").is_file()
    assert not (out / "doomed" / "master.m3u8").exists()
    assert not (out / "_errors" / "steady.json").exists()


def test_a_wrong_frame_count_is_not_tried_again(sources, tmp_path, monkeypatch):
    """A readable chunk with a frame too few is deterministic: its title is dead-lettered
    after the one try, not three, and the other title publishes. (The cut gives every
    chunk its grid's frames, so the shortfall is made by a counter that reads one frame
    less of the doomed title's chunks: no real source provokes it any more.)"""
    from media.encode import chunk as encode_chunk
    from media.encode.encoded import count_frames

    counted: Counter = Counter()
    labels: dict[str, str] = {}  # chunk path -> title/rendition/index, as the check names it

    def one_short(path: str) -> int:
        frames = count_frames(path)
        if not labels.get(path, "").startswith("doomed/"):
            return frames
        counted[path] += 1
        return frames - 1

    monkeypatch.setattr(faults, "corrupt_chunk", lambda label, path: labels.update({path: label}))
    monkeypatch.setattr(encode_chunk, "count_frames", one_short)
    out = tmp_path / "out"
    _run(
        [sources / "steady.mp4", sources / "doomed.mp4"], out, published=["steady"], dead=["doomed"]
    )
    assert counted and set(counted.values()) == {1}  # each encode of doomed checked once
    assert not any("chunk-1" in path for path in counted)  # no second try of any chunk
    record = json.loads((out / "_errors" / "doomed.json").read_text())
    assert record["stage"].startswith(("encode (234p-", "encode (116p-"))
    assert "frames; expected" in record["error"] and "failed 3 times" not in record["error"]
    assert "timestamps" in record["hint"]
    assert (out / "steady" / "master.m3u8").is_file()
