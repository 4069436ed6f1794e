"""The batch pipeline is portable: other runners, other processes, same title.

- The PortableRunner (an embedded job service, workers LOOPBACK) and the DirectRunner's
  engine with two worker *processes* publish byte-for-byte the title the DirectRunner
  publishes: the same files, manifests and segments.
- The job settings and every DoFn of the graph survive Beam's pickler, and unpickle in a
  fresh interpreter. No run here uses --save_main_session: nothing may rely on the
  state of the process that built the graph.

x264 with VBV (every ladder rung is capped) and more than one thread is *not*
deterministic: its frame threads predict the VBV buffer from frames still being
encoded, so the sizes move by a few hundred bytes from one run to the next even on one
runner. With one thread it is, so these runs encode with `threads=1` and compare exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import m3u8
import pytest

from tests.media_factory import make_clip

ROOT = Path(__file__).resolve().parents[1]
TITLE = "clip"
PORTABLE = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]
# The DirectRunner's batch engine, named outright: `--runner=DirectRunner` tries the
# Prism runner first where it can download it, and Prism ignores these two flags.
MULTI_PROCESS = [
    "--runner=FnApiRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]
PROJECT = "projects/ladderflow-test"
REPORT_TIMINGS = ("encode_s", "score_s", "encode_cpu_s", "score_cpu_s")
"""report.json fields that are wall-clock times, different on every run."""


def job_config(output_root: str):
    from media.core.config import JobConfig
    from media.core.types import EncodeSettings

    return JobConfig(
        output_root=output_root,
        ladder="fixed",
        max_renditions=2,
        chunk_segments=1,
        score_vmaf=False,
        encode=EncodeSettings(preset="ultrafast", threads=1),
    ).validate()


@pytest.fixture(scope="module")
def worker_env():
    """Workers started as new processes import the project as a remote worker would
    (there: the installed package): from the repository, whatever the working folder."""
    with pytest.MonkeyPatch.context() as patch:
        path = os.environ.get("PYTHONPATH")
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), path) if p))
        yield


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("portable-source")
    return make_clip(str(folder / f"{TITLE}.mp4"), duration_s=6, width=640, height=360, gop=25)


def run_job(source: str, output_root: Path, args: list[str], other_processes: bool = False):
    """Run the batch job on `source` with `args`; return the title folder."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.graph import build_pipeline

    options = PipelineOptions(args)
    assert not options.view_as(SetupOptions).save_main_session
    with TestPipeline(options=options, blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [source], job_config(str(output_root)))
        assert_that(
            outputs.published | "PublishedIds" >> beam.Map(lambda t: t.title_id),
            equal_to([TITLE]),
            label="Published",
        )
        assert_that(outputs.dead_letters, equal_to([]), label="NoDeadLetters")
        if other_processes:  # the work really ran outside this process
            here = os.getpid()
            pids = (
                pipeline
                | "Probe" >> beam.Create(range(4))
                | "WorkerPid" >> beam.Map(lambda _: os.getpid())
            )
            assert_that(pids, _all_differ_from(here), label="RanElsewhere")
    return output_root / TITLE


def _all_differ_from(pid: int):
    def check(actual):
        if not actual or pid in actual:
            raise AssertionError(f"the probe ran in the test process {pid}, or not: {actual}")

    return check


@pytest.fixture(scope="module")
def direct_title(clip, tmp_path_factory) -> Path:
    """The baseline: the same job on the DirectRunner."""
    return run_job(clip, tmp_path_factory.mktemp("direct"), ["--runner=DirectRunner"])


def media_playlists(title: Path) -> dict[str, list[str]]:
    """Every media playlist of the title (by path) and the segment URIs it lists."""
    playlists = {}
    for path in sorted(title.glob("*/*/playlist.m3u8")):
        segments = m3u8.loads(path.read_text()).segments
        playlists[str(path.relative_to(title))] = [segment.uri for segment in segments]
    return playlists


def master_structure(title: Path) -> list[str]:
    """master.m3u8 as tag names and URIs, attributes left out."""
    lines = (title / "master.m3u8").read_text().splitlines()
    return [x.split(":", 1)[0] if x.startswith("#") else x for x in lines]


def file_digests(title: Path) -> dict[str, tuple[int, str]]:
    """(size, sha256) of every published file but the report."""
    files = [
        p
        for p in sorted(title.rglob("*"))
        if p.is_file() and not p.name.startswith("report") and p.parent.name != "report"
    ]
    return {
        str(p.relative_to(title)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in files
    }


def report_without_timings(title: Path) -> dict:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in REPORT_TIMINGS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads((title / "report.json").read_text()))


def test_the_baseline_meets_the_hls_authoring_rules(direct_title):
    from tests.hls_authoring import check_hls_title

    assert check_hls_title(direct_title) == []


def assert_same_title(title: Path, baseline: Path) -> None:
    playlists = media_playlists(title)
    assert playlists == media_playlists(baseline)
    # 2 video renditions and the audio track, each 2 segments: 6 s on the 4 s grid
    assert len(playlists) == 3 and all(len(s) == 2 for s in playlists.values()), playlists
    assert master_structure(title) == master_structure(baseline)
    assert master_structure(title).count("#EXT-X-STREAM-INF") == 2
    assert (title / "master.m3u8").read_text() == (baseline / "master.m3u8").read_text()
    assert (title / "manifest.mpd").read_text() == (baseline / "manifest.mpd").read_text()
    files, expected = file_digests(title), file_digests(baseline)
    assert sorted(files) == sorted(expected)
    assert {k: v[0] for k, v in files.items()} == {k: v[0] for k, v in expected.items()}
    assert files == expected  # byte for byte: one x264 thread is deterministic
    assert report_without_timings(title) == report_without_timings(baseline)


def test_portable_runner_publishes_what_the_direct_runner_does(clip, direct_title, tmp_path):
    title = run_job(clip, tmp_path, PORTABLE)
    assert_same_title(title, direct_title)


def test_worker_processes_publish_what_the_direct_runner_does(
    clip, direct_title, tmp_path, worker_env
):
    title = run_job(clip, tmp_path, MULTI_PROCESS, other_processes=True)
    assert_same_title(title, direct_title)


def graph_dofns(tmp_path) -> list:
    """Every DoFn of the batch graph (per-title ladder, "title ready" messages, dead letters
    written) and of the event graph (Pub/Sub and a watched prefix, dead letters published).
    A fixed ladder only leaves the trial encodes idle: the graph is the same."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.pipeline import PipelineVisitor

    from media.core.config import JobConfig
    from pipeline.graph import Delivery, build_event_pipeline, build_pipeline

    config = JobConfig(output_root=str(tmp_path / "out"), ladder="per-title").validate()
    batch = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    build_pipeline(batch, [str(tmp_path / "a.mp4")], config, Delivery(f"{PROJECT}/topics/ready"))
    streaming = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    build_event_pipeline(
        streaming,
        config,
        subscription=f"{PROJECT}/subscriptions/drops",
        watch=str(tmp_path),
        delivery=Delivery(dead_letter_topic=f"{PROJECT}/topics/rejected"),
    )

    found = []

    class Collect(PipelineVisitor):
        def visit_transform(self, applied):
            if isinstance(applied.transform, beam.ParDo):
                found.append(applied.transform.fn)

    for pipeline in (batch, streaming):
        pipeline.visit(Collect())
    return found


def user_code(fn):
    """What a DoFn runs: the callable that beam.Map/FlatMap/Filter wrap, or the DoFn."""
    inner = getattr(fn, "_fn", None)
    return fn if inner is None else getattr(inner, "_argspec_fn", inner)


def test_settings_and_every_dofn_pickle_for_a_fresh_worker(tmp_path, worker_env):
    import pickle

    from apache_beam.internal import pickler

    config = job_config(str(tmp_path / "out"))
    assert pickle.loads(pickle.dumps(config)) == config
    assert pickler.loads(pickler.dumps(config)) == config

    dofns = graph_dofns(tmp_path)
    ours = {
        type(fn).__name__
        for fn in dofns
        if type(fn).__module__.split(".")[0] in ("transforms", "pipeline", "media")
    }
    assert {
        "_FirstOfVersionFn",
        "_InspectFn",
        "_TrialTasksFn",
        "_RunTrialFn",
        "_RefineFn",
        "_ChooseLadderFn",
        "_SplitFn",
        "_EncodeChunkFn",
        "_GatherFn",
        "_LogFn",
        "_AssembleFn",
        "_ConvertFn",
        "_PackageFn",
        "_WriteDeadLetterFn",
        "_PublishFn",
        "_ParseNotificationFn",
        "_WatchedFileFn",
    } <= ours, sorted(ours)
    for fn in dofns:  # every DoFn, and every callable a Map wraps, is in a module a
        code = user_code(fn)  # worker imports (the package, or Beam)
        module = getattr(code, "__module__", None) or type(code).__module__
        assert module.split(".")[0] in ("transforms", "pipeline", "media", "apache_beam"), (
            fn,
            code,
            module,
        )
        assert type(pickler.loads(pickler.dumps(fn))) is type(fn)

    # A new interpreter, which never ran this module or built the graph, takes them all.
    blob = tmp_path / "dofns.pickle"
    blob.write_bytes(pickler.dumps((config, dofns)))
    script = (
        "import sys\nfrom apache_beam.internal import pickler\n"
        "config, fns = pickler.loads(open(sys.argv[1], 'rb').read())\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'tests']\n"
        "print(config.output_root, len(fns), sorted({type(f).__name__ for f in fns}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(blob)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"{config.output_root} {len(dofns)} "), done.stdout
