"""Beam Metrics of a run, and the runner a run gets with no --runner.

A 4 s 320x180 clip and a file that is no video go through the launcher twice into one
output root (the work area kept): the first run encodes every chunk-rendition, the
second reuses them all; both count the bad file's dead letter at inspection and log the
summary. Neither run tries Prism: `PrismRunner.run_pipeline` is replaced by a stand-in
that counts tries and downloads nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.portability import prism_runner

from pipeline import launcher
from pipeline.local_runner import LOCAL_RUNNER
from tests.media_factory import make_clip, make_random_bytes
from transforms import metrics

CHUNKS = 2  # 4 s in 2 s chunks


class _PrismTries:
    """Stands in for `PrismRunner.run_pipeline`: counts the tries, downloads nothing."""

    def __init__(self):
        self.count = 0

    def __call__(self, pipeline, options):  # set on the class: not bound, no `self`
        self.count += 1
        raise RuntimeError("Prism is not available in this test")


@dataclass(frozen=True)
class Run:
    status: int
    counters: dict[str, int]
    distributions: dict[str, object]
    logged: list[str]


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _run(argv: list[str]) -> Run:
    """`launcher.run(argv)`, with the metrics its result holds and what it logged."""
    seen = []
    real = launcher.log_metrics

    def spy(result):
        seen.append(result)
        real(result)

    lines, logger = _Lines(), logging.getLogger("ladderflow")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(launcher, "log_metrics", spy)
            status = launcher.run(argv)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    (result,) = seen
    counters, distributions = metrics.totals(result.metrics().query())
    return Run(status, counters, distributions, lines.lines)


@pytest.fixture(scope="module")
def prism():
    tries = _PrismTries()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prism_runner.PrismRunner, "run_pipeline", tries)
        yield tries


@pytest.fixture(scope="module")
def runs(tmp_path_factory, prism):
    """(first run, second run, output root), neither with --runner. Between them the
    title's master playlist is removed, as a run stopped before its manifests leaves it:
    the second run resumes from the chunks the first one finished."""
    sources = tmp_path_factory.mktemp("metrics-sources")
    good = make_clip(str(sources / "small.mp4"), duration_s=4, width=320, height=180)
    bad = make_random_bytes(str(sources / "broken.mp4"))
    out = tmp_path_factory.mktemp("metrics-out")
    argv = ["--input", f"{good},{bad}", "--output", str(out), "--ladder", "fixed",
            "--segment_seconds", "2", "--chunk_segments", "1", "--preset", "ultrafast",
            "--keep_work"]
    first = _run(argv)
    (out / "small" / "master.m3u8").unlink()
    second = _run(argv)
    return first, second, out


def _renditions(out: Path) -> list[Path]:
    return sorted((out / "small" / "video").iterdir())


def test_chunks_encoded_are_chunks_times_renditions(runs):
    first, _, out = runs
    renditions = _renditions(out)
    assert [len(list(r.glob("seg-*.m4s"))) for r in renditions] == [CHUNKS] * len(renditions)
    assert len(renditions) >= 2
    assert first.counters["chunks_encoded"] == CHUNKS * len(renditions)
    assert first.counters.get("chunks_reused", 0) == 0
    assert first.counters["titles_published"] == 1


def test_gate_re_encodes_and_retries_are_those_the_report_lists(runs):
    first, _, out = runs
    report = json.loads((out / "small" / "report.json").read_text())
    chunks = [c for track in report["tracks"] for c in track.get("chunks", ())]
    assert len(chunks) == first.counters["chunks_encoded"]
    assert first.counters.get("chunks_reencoded_by_gate", 0) == sum(
        len(c["attempts"]) > 1 for c in chunks)
    assert first.counters.get("chunks_retried", 0) == sum(bool(c.get("retries")) for c in chunks)


def test_distributions_hold_one_value_per_encoded_chunk(runs):
    first, _, out = runs
    n = first.counters["chunks_encoded"]
    assert {name: first.distributions[name].count for name in ("encode_ms", "vmaf_x100", "kbps")
            } == {"encode_ms": n, "vmaf_x100": n, "kbps": n}
    vmaf = first.distributions["vmaf_x100"]
    assert 0 < vmaf.min <= vmaf.max <= 100 * 100
    segments = [p for r in _renditions(out) for p in r.glob("seg-*.m4s")]
    assert first.distributions["kbps"].min > 0
    # Every segment (and every chunk, record and manifest) was written by this run.
    assert first.counters["bytes_written"] > sum(p.stat().st_size for p in segments)


def test_a_rerun_reuses_every_chunk_and_encodes_none(runs):
    first, second, _ = runs
    assert second.counters.get("chunks_encoded", 0) == 0
    assert second.counters["chunks_reused"] == first.counters["chunks_encoded"]
    assert second.counters["titles_published"] == 1
    assert "encode_ms" not in second.distributions


def test_a_bad_input_counts_a_dead_letter_at_inspection(runs):
    for run in runs[:2]:
        assert run.status == 1  # one of the two titles failed
        dead = {k: v for k, v in run.counters.items() if k.startswith("dead_letters: ")}
        assert dead == {"dead_letters: inspect": 1}


def test_the_summary_is_logged_at_the_end_of_the_run(runs):
    first, second, _ = runs
    n = first.counters["chunks_encoded"]
    summary = [line for line in first.logged if line.startswith("metrics: ")]
    assert summary[:3] == [
        f"metrics: chunks encoded {n}, reused 0, retried "
        f"{first.counters.get('chunks_retried', 0)}, re-encoded by the gate "
        f"{first.counters.get('chunks_reencoded_by_gate', 0)}",
        "metrics: titles published 1; dead letters inspect 1",
        f"metrics: bytes written {first.counters['bytes_written']:,}",
    ]
    assert summary[3].startswith("metrics: per chunk (min/mean/max): encode s ")
    assert " VMAF " in summary[3] and " kb/s " in summary[3]
    assert f"metrics: chunks encoded 0, reused {n}, retried 0, re-encoded by the gate 0" in (
        second.logged)


def test_a_chunk_made_after_a_failed_write_counts_as_retried(runs, tmp_path, monkeypatch):
    """A storage write of one chunk fails once (an OSError, a transient fault): the chunk is
    made again, counted once as encoded and once as retried, and the report lists why."""
    from media.core import faults

    first, _, _ = runs
    source = make_clip(str(tmp_path / "small.mp4"), duration_s=4, width=320, height=180)
    monkeypatch.setenv(faults.ENV, "storage-write:chunk:1")
    faults.reset()
    out = tmp_path / "out"
    run = _run(["--input", source, "--output", str(out), "--ladder", "fixed",
                "--segment_seconds", "2", "--chunk_segments", "1", "--preset", "ultrafast"])
    assert run.status == 0
    assert run.counters["chunks_encoded"] == first.counters["chunks_encoded"]
    assert run.counters["chunks_retried"] == 1
    report = json.loads((out / "small" / "report.json").read_text())
    retried = [c for t in report["tracks"] for c in t.get("chunks", ()) if c.get("retries")]
    assert len(retried) == 1


def test_with_no_runner_the_local_runner_runs_batch_on_the_fn_api_runner(runs, prism):
    for run in runs[:2]:
        assert "runner: LocalRunner on Beam's FnApiRunner (Prism is not tried)" in run.logged
    assert prism.count == 0


def test_the_launcher_names_the_local_runner_only_when_none_is_given():
    for argv, expected in (([], LOCAL_RUNNER), (["--runner=DirectRunner"], "DirectRunner"),
                           (["--runner=PrismRunner"], "PrismRunner")):
        options = PipelineOptions(argv)
        assert launcher.choose_runner(options) == expected
        assert options.view_as(StandardOptions).runner == expected


def _tiny(options: PipelineOptions) -> beam.Pipeline:
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2)
    return pipeline


def test_beams_direct_runner_tries_prism_and_the_local_runner_does_not(prism):
    """The stand-in sees the try Beam's DirectRunner makes, so its silence above is real."""
    before = prism.count
    _tiny(PipelineOptions(["--runner=DirectRunner"])).run().wait_until_finish()
    assert prism.count == before + 1
    options = PipelineOptions([])
    launcher.choose_runner(options)
    _tiny(options).run().wait_until_finish()
    assert prism.count == before + 1


def test_a_local_batch_run_skips_beams_runner_api_round_trip(monkeypatch):
    """On the FnApiRunner the graph goes through its protos anyway: Beam's rebuild of the
    whole graph from them before the run (its check for runners it does not know) is
    left out, as Beam's DirectRunner leaves it out on batch; elsewhere Beam decides."""
    from pipeline.local_runner import runner_api_round_trip

    rebuilt = []
    rebuild = beam.Pipeline.from_runner_api
    monkeypatch.setattr(beam.Pipeline, "from_runner_api", staticmethod(
        lambda *args, **kwargs: rebuilt.append(1) or rebuild(*args, **kwargs)))
    options = PipelineOptions([])
    launcher.choose_runner(options)
    pipeline = _tiny(options)
    assert runner_api_round_trip(pipeline, options) is False
    pipeline.run(test_runner_api=runner_api_round_trip(pipeline, options)).wait_until_finish()
    assert rebuilt == []
    _tiny(options).run().wait_until_finish()  # Beam's own choice for this runner
    assert rebuilt == [1]
    streaming = PipelineOptions(["--streaming"])
    launcher.choose_runner(streaming)
    assert runner_api_round_trip(_tiny(streaming), streaming) == "AUTO"
    direct = PipelineOptions(["--runner=DirectRunner"])
    assert runner_api_round_trip(_tiny(direct), direct) == "AUTO"


def test_streaming_runs_on_the_bundle_based_direct_runner():
    from apache_beam.testing.test_stream import TestStream

    from pipeline.local_runner import engine_for

    options = PipelineOptions([])
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | TestStream().add_elements([1]) | beam.Map(str)
    assert engine_for(pipeline, options) == "BundleBasedDirectRunner"
    assert engine_for(_tiny(options), options) == "FnApiRunner"
    streaming = PipelineOptions(["--streaming"])
    assert engine_for(_tiny(streaming), streaming) == "BundleBasedDirectRunner"
