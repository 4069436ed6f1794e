"""Shared fixtures: generated media, one real pipeline run, and honest logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser_support import (  # noqa: F401 (fixtures, found by name)
    browser_players,
    chromium,
    player_page,
    site_url,
    title_dir,
)
from tests.emulators import gcs_emulator, pubsub_emulator  # noqa: F401 (fixtures)
from tests.media_factory import make_clip, make_random_bytes

E2E_SEGMENT_S = 4.0


@pytest.fixture(autouse=True)
def fail_on_error_logs(caplog):
    """A test that makes the code log at ERROR fails: errors are never just logged."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR
              and r.name.split(".")[0] in ("media", "transforms", "pipeline", "ladderflow")]
    if errors:
        pytest.fail("logged at ERROR: " + "; ".join(r.getMessage() for r in errors))


@dataclass(frozen=True)
class E2ERun:
    output_root: Path
    good_source: Path
    bad_source: Path

    @property
    def title_dir(self) -> Path:
        return self.output_root / "good_clip"


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory) -> E2ERun:
    """The pipeline, run once through TestPipeline on a 12 s 960x540 clip and a bad file.

    The run itself asserts which titles were published and which were dead-lettered
    (at which stage); the tests read what it wrote.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    sources = tmp_path_factory.mktemp("sources")
    good = Path(make_clip(str(sources / "good clip.mp4")))
    bad = Path(make_random_bytes(str(sources / "bad.mp4")))
    out = tmp_path_factory.mktemp("out")
    config = JobConfig(output_root=str(out), segment_s=E2E_SEGMENT_S, chunk_segments=1,
                       encode=EncodeSettings(preset="veryfast"), ladder="fixed").validate()
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}"])  # the runner users get
    with TestPipeline(options=options, blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [str(good), str(bad)], config)
        assert_that(outputs.published | "PublishedIds" >> beam.Map(lambda t: t.title_id),
                    equal_to(["good_clip"]), label="OnlyGoodPublished")
        assert_that(outputs.dead_letters | "DeadIds" >> beam.Map(lambda d: (d.title_id, d.stage)),
                    equal_to([("bad", "inspect")]), label="BadDeadLettered")
    return E2ERun(out, good, bad)


@pytest.fixture(scope="session")
def published_title(e2e_run) -> Path:
    """The title folder of the good clip: master.m3u8, manifest.mpd and the segments."""
    return e2e_run.title_dir


@pytest.fixture
def argvs(monkeypatch) -> list[list[str]]:
    """Every FFmpeg argv run from now on (through `media.core.ffmpeg.run`)."""
    from media.core import ffmpeg

    seen: list[list[str]] = []
    real = ffmpeg.run

    def recording(argv, *args, **kwargs):
        seen.append([str(a) for a in argv])
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(ffmpeg, "run", recording)
    return seen
