"""The command line: exit status, the per-title summary, and options checked up front."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from media.core.errors import ConfigurationError
from pipeline.options import known_flags, refuse_unknown_flags, unknown_flags
from tests.media_factory import make_clip, make_text

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def small_sources(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli-sources")
    make_clip(str(folder / "tiny.mp4"), duration_s=3, width=320, height=180, gop=25)
    make_text(str(folder / "notes.mp4"))
    return folder


def test_exit_1_with_a_line_per_title_when_some_fail(small_sources, tmp_path):
    proc = _run("--input", str(small_sources / "*.mp4"), "--output", str(tmp_path),
                "--preset", "ultrafast", "--no_vmaf", "--ladder", "fixed")
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = proc.stderr[proc.stderr.index("ladderflow: 1 of 2 title(s) published"):]
    assert "published tiny: " in summary
    assert "FAILED    notes: inspect:" in summary
    assert (tmp_path / "tiny" / "master.m3u8").is_file()
    assert (tmp_path / "_errors" / "notes.json").is_file()
    assert "encode 1/2 chunks" in proc.stderr  # progress, with the stage (two rates)


def test_exit_0_when_every_title_is_published_and_a_rerun_is_a_no_op(small_sources, tmp_path):
    args = ("--input", str(small_sources / "tiny.mp4"), "--output", str(tmp_path),
            "--preset", "ultrafast", "--no_vmaf", "--max_renditions", "1", "--ladder", "fixed")
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 of 1 title(s) published" in proc.stderr
    assert [p.name for p in (tmp_path / "tiny" / "video").iterdir()] == ["180p-250k"]
    master = tmp_path / "tiny" / "master.m3u8"
    written = master.stat().st_mtime_ns

    again = _run(*args)  # the same command again: nothing to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already published from this source with these settings" in again.stderr
    assert master.stat().st_mtime_ns == written


@pytest.mark.parametrize("args, message", [
    (["--segment_seconds", "0"], "--segment_seconds 0.0: use 0.5 to 20"),
    (["--crf", "60"], "--crf 60.0: x264 takes 0 to 51"),
    (["--input", "/nonexistent/*.mp4"], "matches no file"),
    (["--input", "/nonexistent/film.mp4"], "does not exist"),
    (["--notify_topic", "titles"], "--notify_topic 'titles': give the full path, "
                                   "projects/PROJECT/topics/NAME"),
    (["--dead_letter_topic", "projects/p/subscriptions/rejects"], "projects/PROJECT/topics/"),
    (["--subscription", "projects/p/subscriptions/in"], "--input names a fixed list of "
                                                        "sources; --subscription and --watch"),
])
def test_bad_options_fail_before_any_work(args, message, small_sources, tmp_path):
    base = {"--input": str(small_sources / "tiny.mp4"), "--output": str(tmp_path)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    proc = _run(*[x for kv in base.items() for x in kv], timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not any(tmp_path.iterdir())


def test_two_sources_with_one_title_id_are_refused(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        make_text(str(tmp_path / sub / "film.mp4"))
    proc = _run("--input", f"{tmp_path}/a/film.mp4,{tmp_path}/b/film.mp4",
                "--output", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 2
    assert "both make title 'film'" in proc.stderr


def test_a_subscription_must_be_a_full_path(tmp_path):
    proc = _run("--subscription", "in", "--output", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert "projects/PROJECT/subscriptions/NAME" in proc.stderr


def test_no_input_says_what_to_give(tmp_path):
    proc = _run("--output", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert "give --input" in proc.stderr and "--subscription or --watch" in proc.stderr


@pytest.mark.parametrize("args, nearest", [
    (["--top-vmaf", "80"], "--top_vmaf"),  # ours, a dash for an underscore
    (["--segment_second", "4"], "--segment_seconds"),  # ours, misspelt
    (["--runer", "DirectRunner"], "--runner"),  # Beam's
    (["--direct_num_worker", "2"], "--direct_num_workers"),  # Beam's, not a prefix match
])
def test_an_unknown_option_stops_the_run_with_the_nearest_name(args, nearest, small_sources,
                                                                tmp_path):
    proc = _run("--input", str(small_sources / "tiny.mp4"), "--output", str(tmp_path), *args,
                timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: unknown option: {args[0]} (did you mean {nearest}?)" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_demo_refuses_an_unknown_option_before_making_its_source(tmp_path):
    proc = _run("demo", "--output", str(tmp_path), "--top-vmaf=80", timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "unknown option: --top-vmaf (did you mean --top_vmaf?)" in proc.stderr
    assert not any(tmp_path.iterdir())


LEGITIMATE = {
    "flink": ["--runner=FlinkRunner", "--flink_master=HOST:8081", "--environment_type=DOCKER",
              "--environment_config=registry.example/ladderflow:1", "--parallelism", "4"],
    "dataflow": ["--runner", "DataflowRunner", "--project", "p", "--region", "europe-west1",
                 "--temp_location", "gs://b/tmp", "--sdk_container_image=registry/ladderflow:1",
                 "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;"
                 "install-nvidia-driver", "--dataflow_service_options", "enable_prime",
                 "--experiments=use_runner_v2", "--experiments", "disable_runner_v2_until_v2",
                 "--max_num_workers", "50", "--worker_machine_type=g2-standard-8"],
    "portable": ["--runner=PortableRunner", "--job_endpoint=embed",
                 "--environment_type=LOOPBACK"],
    "fn_api": ["--runner=FnApiRunner", "--direct_num_workers=2",
               "--direct_running_mode=multi_processing"],
    "ours": ["--streaming", "--no_vmaf", "--keep_work", "--min_kbps", "-5", "--top_vmaf=93",
             "--subscription", "projects/p/subscriptions/s"],
}


@pytest.mark.parametrize("runner", sorted(LEGITIMATE))
def test_flags_that_beam_or_ladderflow_knows_pass(runner, caplog):
    argv = LEGITIMATE[runner]
    refuse_unknown_flags(argv)
    PipelineOptions(argv).get_all_options()  # and Beam's own parser keeps every one
    assert "Discarding" not in caplog.text


def test_flags_are_read_as_argparse_reads_them():
    known = known_flags()
    assert unknown_flags(["--top-vmaf=80", "--crf", "20", "-runner", "x"], known) == [
        "--top-vmaf", "-runner"]
    assert unknown_flags(["--min_kbps", "-5", "--", "--anything"], known) == []
    with pytest.raises(ConfigurationError, match=r"--top-vmaf \(did you mean --top_vmaf\?\), "
                                                 r"--runer \(did you mean --runner\?\)"):
        refuse_unknown_flags(["--top-vmaf", "80", "--runer", "DirectRunner"])


@pytest.mark.parametrize("runner", ["FlinkRunner", "apache_beam.runners.portability."
                                    "flink_runner.FlinkRunner", "PortableRunner"])
def test_a_job_servers_own_options_go_on_to_it(runner):
    """Flink's `--checkpointing_interval` is the job server's option, not Beam Python's:
    with a job server's runner it is passed on (Beam sends every option to the job
    server), not refused; with any other runner it is refused as a typo would be."""
    argv = [f"--runner={runner}", "--checkpointing_interval=60000", "--top_vmaf=93"]
    assert refuse_unknown_flags(argv) == ["--checkpointing_interval"]
    passed = PipelineOptions(argv).get_all_options(retain_unknown_options=True)
    assert passed["checkpointing_interval"] == "60000"  # for the job server to read
    with pytest.raises(ConfigurationError, match="unknown option: --checkpointing_interval"):
        refuse_unknown_flags(["--runner=DataflowRunner", *argv[1:]])
    assert refuse_unknown_flags(["--runner", "FlinkRunner", "--top_vmaf=93"]) == []
