"""Dead letters: many rejects of one title all kept, and an error no stage expected is
that title's dead letter, not the job's end (design invariant 5).

The record tests write through the dead-letter DoFn itself, from many threads at once;
the pipeline test runs two 2 s 160x90 titles, one of whose encodes meets a ValueError.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from media.core.types import DeadLetter
from pipeline.local_runner import LOCAL_RUNNER
from tests.media_factory import make_clip
from transforms.dead_letter import (
    STORAGE_HINT,
    UNEXPECTED_HINT,
    _WriteDeadLetterFn,
    dead_letter_for,
)

REJECTS = 24
"""Rejects of one title written at once: more than the renditions x chunks of a short title."""


def _letter(stage: str, generation: str = "") -> DeadLetter:
    return DeadLetter(title_id="film", source_uri="/in/film.mov", stage=stage,
                      error=f"BadChunk: {stage} failed", hint="Re-export it.",
                      generation=generation)


def _write_at_once(out: Path, letters: list[DeadLetter]) -> list[BaseException]:
    """Each letter through the DoFn on a thread of its own, all started together."""
    start = threading.Barrier(len(letters))
    failures: list[BaseException] = []

    def write(letter: DeadLetter) -> None:
        start.wait()
        try:
            assert list(_WriteDeadLetterFn(str(out)).process(letter)) == [letter]
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(letter,)) for letter in letters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def _records(out: Path) -> tuple[dict, list[dict]]:
    """The title's record, and every reject record beside it (each must parse)."""
    summary = json.loads((out / "_errors" / "film.json").read_text())
    kept = [json.loads(p.read_text()) for p in sorted((out / "_errors" / "film").glob("*.json"))]
    return summary, kept


def test_many_rejects_of_one_title_at_once_each_keep_their_record(tmp_path, caplog):
    stages = [f"encode ({rung}, chunk {i})" for i in range(REJECTS // 3)
              for rung in ("234p-250k", "360p-700k", "540p-1600k")]
    # Every rendition of a chunk, and the same reject twice over (a retried bundle).
    letters = [_letter(s) for s in stages] + [_letter(stages[0]), _letter(stages[1])]
    assert _write_at_once(tmp_path, letters) == []

    summary, kept = _records(tmp_path)
    assert sorted(r["stage"] for r in kept) == sorted(stages)
    assert sorted(r["stage"] for r in summary["rejects"]) == sorted(stages)
    assert summary["stage"] == min(stages)  # the first reject on top, as one record reads
    assert summary["error"] and summary["hint"] == "Re-export it."
    assert not list(tmp_path.rglob("*.partial"))
    assert not [r for r in caplog.records if "could not be written" in r.getMessage()]


def test_rejects_days_apart_are_kept_beside_each_other(tmp_path):
    fn = _WriteDeadLetterFn(str(tmp_path))
    list(fn.process(_letter("inspect", generation="1")))
    list(fn.process(_letter("encode (360p-700k, chunk 2)", generation="2")))
    list(fn.process(_letter("inspect", generation="1")))  # the same reject again: one record
    summary, kept = _records(tmp_path)
    assert [(r["stage"], r["generation"]) for r in summary["rejects"]] == [
        (r["stage"], r["generation"]) for r in kept]
    assert sorted((r["stage"], r["generation"]) for r in kept) == [
        ("encode (360p-700k, chunk 2)", "2"), ("inspect", "1")]


def test_rejects_of_one_title_at_once_in_object_storage(gcs_emulator, caplog):
    from tests.emulators import GCS_BUCKET
    from transforms import _storage

    out = f"gs://{GCS_BUCKET}/rejects"
    stages = [f"encode (360p-700k, chunk {i})" for i in range(6)]
    letters = [_letter(stage) for stage in stages]
    start = threading.Barrier(len(letters))

    def write(letter: DeadLetter) -> None:
        start.wait()
        list(_WriteDeadLetterFn(out).process(letter))

    threads = [threading.Thread(target=write, args=(letter,)) for letter in letters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = _storage.read_json(f"{out}/_errors/film.json")
    assert sorted(r["stage"] for r in summary["rejects"]) == sorted(stages)
    names = [b.name for b in gcs_emulator.list_blobs(GCS_BUCKET, prefix="rejects/")]
    assert len([n for n in names if n.startswith("rejects/_errors/film/")]) == len(stages)
    assert not [n for n in names if n.endswith(".partial")], names
    assert not [r for r in caplog.records if "could not be written" in r.getMessage()]


def test_a_storage_error_says_what_to_do_about_storage(tmp_path):
    missing = tmp_path / "gone" / "chunk.mp4"
    try:
        missing.read_bytes()
    except OSError as exc:
        letter = dead_letter_for("film", "/in/film.mov", "encode (360p-700k, chunk 0)", exc)
    assert letter.hint == STORAGE_HINT and "chunk.mp4" in letter.error


@pytest.fixture(scope="module")
def unexpected_run(tmp_path_factory):
    """Two titles in one run; staging the chunk of one of them raises a ValueError."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    import transforms.encode
    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    sources = tmp_path_factory.mktemp("unexpected-sources")
    uris = [make_clip(str(sources / f"{name}.mp4"), duration_s=2, width=160, height=90,
                      gop=25) for name in ("steady", "broken")]
    out = tmp_path_factory.mktemp("unexpected-out")
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=1,
                       encode=EncodeSettings(preset="ultrafast"), score_vmaf=False).validate()
    real = transforms.encode.stage_chunk

    def stage_chunk(task, source, scratch):
        if task.title_id == "broken":
            raise ValueError("a bug met while staging")
        return real(task, source, scratch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transforms.encode, "stage_chunk", stage_chunk)
        with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                          blocking=True) as p:
            build_pipeline(p, uris, config)
    return out


def test_an_unexpected_error_is_its_titles_dead_letter_only(unexpected_run):
    out = unexpected_run
    record = json.loads((out / "_errors" / "broken.json").read_text())
    assert record["stage"] == "encode (chunk 0)"
    assert record["error"] == "ValueError: a bug met while staging"
    assert record["hint"] == UNEXPECTED_HINT
    assert "test_dead_letters.py:" in record["traceback"]
    assert "in stage_chunk: raise ValueError" in record["traceback"]
    assert not (out / "broken" / "master.m3u8").exists()  # nothing of it published
    assert not (out / "broken" / "manifest.mpd").exists()
    assert not (out / "broken" / "video").exists()
    assert (out / "steady" / "master.m3u8").is_file()
    assert not (out / "_errors" / "steady.json").exists()
