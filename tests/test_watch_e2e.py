"""`--watch`: the CLI in streaming mode polls a local folder (the ingest for runners
without a Python Pub/Sub source) and publishes each source that lands there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.media_factory import make_clip

WAIT_S = 300


def _wait_for(path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the pipeline exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {WAIT_S} s:\n{log.read_text()[-4000:]}")
        time.sleep(1)


def test_a_file_dropped_into_a_watched_folder_is_published(tmp_path):
    drop, out, log = tmp_path / "drop", tmp_path / "out", tmp_path / "pipeline.log"
    drop.mkdir()
    argv = [sys.executable, "-m", "pipeline", "--watch", str(drop), "--watch_interval_s", "1",
            "--output", str(out), "--ladder", "fixed", "--max_renditions", "2",
            "--chunk_segments", "1", "--preset", "ultrafast", "--no_vmaf"]
    with open(log, "w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    try:
        # Copy tools write under a temporary name, then rename: only the final name counts.
        partial = make_clip(str(tmp_path / "four.mp4"), duration_s=4, width=320, height=180,
                            gop=25)
        os.replace(partial, drop / "four.mp4.part")
        clip = make_clip(str(tmp_path / "three.mp4"), duration_s=4, width=320, height=180,
                         gop=25)
        os.replace(clip, drop / "three.mp4")
        _wait_for(out / "three" / "master.m3u8", proc, log)
        report = json.loads((out / "three" / "report.json").read_text())
        mtime_us = round(os.stat(drop / "three.mp4").st_mtime * 1_000_000)
        assert abs(int(report["source"]["generation"]) - mtime_us) <= 1
        master = (out / "three" / "master.m3u8").read_text()
        assert f"g{report['source']['generation']}/video/" in master
        assert proc.poll() is None  # still watching
        from tests.hls_authoring import check_hls_title

        assert check_hls_title(out / "three") == []
        assert not (out / "four").exists()
        assert "ignored event (partial or hidden)" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_watcher_stops_cleanly_even_started_with_ctrl_c_ignored(tmp_path, stop):
    """A script's background job inherits SIGINT ignored (`trap "" INT` here): the watcher
    still stops on Ctrl-C, and on a service manager's SIGTERM, between batches, saying so,
    with exit status 0."""
    drop, out, log = tmp_path / "drop", tmp_path / "out", tmp_path / "watch.log"
    drop.mkdir()
    command = (f'trap "" INT; exec "{sys.executable}" -m pipeline --watch "{drop}" '
               f'--watch_interval_s 1 --output "{out}" --no_vmaf')
    with open(log, "w") as sink:
        proc = subprocess.Popen(["bash", "-c", command], stdout=sink, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "watching" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        time.sleep(1.5)  # into the polling loop
        os.killpg(proc.pid, stop)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "stopped watching" in log.read_text()


def test_a_stop_asked_during_a_batch_lets_the_batch_publish_first(tmp_path):
    """Ctrl-C while a batch runs: the watcher says it stops once the batch is done, the
    title is published, and the process exits 0 (raising inside the runner used to leave
    its threads waiting and the process hung)."""
    drop, out, log = tmp_path / "drop", tmp_path / "out", tmp_path / "watch.log"
    drop.mkdir()
    argv = [sys.executable, "-m", "pipeline", "--watch", str(drop), "--watch_interval_s", "1",
            "--output", str(out), "--ladder", "fixed", "--max_renditions", "1",
            "--preset", "ultrafast", "--no_vmaf"]
    with open(log, "w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    try:
        clip = make_clip(str(tmp_path / "mid.mp4"), duration_s=4, width=320, height=180, gop=25)
        os.replace(clip, drop / "mid.mp4")
        deadline = time.monotonic() + WAIT_S
        while "mid: inspected" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # mid-batch
        proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "SIGINT: stopping once this batch is done" in text
    assert (out / "mid" / "master.m3u8").exists(), text[-3000:]
    assert text.index("batch of 1 source(s) done") < text.index("stopped watching")
