"""Resume after a crash: the CLI killed (SIGKILL, its whole process group) mid-encode, then
run again, re-encodes no finished chunk and publishes the same bytes as a run that was
never interrupted."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.media_factory import make_clip

REPO = Path(__file__).resolve().parents[1]
CHUNKS = 6  # 12 s in 2 s chunks
RENDITIONS = 2  # the fixed ladder of a 320x240 source: 234p-250k, 116p-125k
KILL_AFTER = 3  # chunk records: kill once this many chunks are finished
REPORT_FILES = ("report.json", "report.html", "report/")  # timings and paths: not compared


def _argv(source: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline",
        "--input",
        str(source),
        "--output",
        str(out),
        "--ladder",
        "fixed",
        "--preset",
        "ultrafast",
        "--no_vmaf",
        "--chunk_segments",
        "1",
        "--segment_seconds",
        "2",
        "--encoder_threads",
        "1",
        "--keep_work",
    ]


def _run(source: Path, out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        _argv(source, out), cwd=REPO, text=True, capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _finished(out: Path) -> dict[Path, tuple[bytes, str, int]]:
    """Each chunk record under OUT/_work: its bytes, and its chunk's digest and size."""
    found = {}
    for record in sorted(out.glob("_work/*/chunks/*/chunk-*.json")):
        chunk = record.with_suffix(".mp4")
        data = chunk.read_bytes()
        found[record] = (record.read_bytes(), hashlib.sha256(data).hexdigest(), len(data))
    return found


def _published(title: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(title)): p.read_bytes()
        for p in sorted(title.rglob("*"))
        if p.is_file() and not str(p.relative_to(title)).startswith(REPORT_FILES)
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume-source")
    return Path(make_clip(str(folder / "clip.mp4"), duration_s=12, width=320, height=240, gop=25))


def test_a_killed_run_resumes_without_re_encoding_or_losing_finished_chunks(source, tmp_path):
    out = tmp_path / "resumed"
    log_path = tmp_path / "killed.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            _argv(source, out), cwd=REPO, stdout=log, stderr=log, start_new_session=True
        )  # its own group: FFmpeg dies with it
        try:
            deadline = time.monotonic() + 90
            while len(list(out.glob("_work/*/chunks/*/chunk-*.json"))) < KILL_AFTER:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no chunk was finished in 90 s"
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = _finished(out)
    assert KILL_AFTER <= len(before) < CHUNKS * RENDITIONS, "killed too late: all were finished"
    assert not (out / "clip" / "master.m3u8").exists()

    resumed = _run(source, out)
    reused = set(re.findall(r"clip: reusing finished chunk (\S+\.mp4)", resumed.stderr))
    after = _finished(out)
    assert len(after) == CHUNKS * RENDITIONS
    re_encoded = [
        r for r in before if str(r.with_suffix(".mp4")) not in reused or after[r][0] != before[r][0]
    ]  # a re-encode rewrites the record
    lost = sum(size for r, (_, digest, size) in before.items() if after[r][1] != digest)
    print(
        f"\nresume: {len(before)} of {CHUNKS * RENDITIONS} chunks finished before SIGKILL; "
        f"{len(reused)} reused, {len(re_encoded)} of the finished re-encoded, "
        f"{lost} bytes of finished output lost"
    )
    assert re_encoded == [], resumed.stderr[-3000:]
    assert lost == 0
    assert len(reused) == len(before)  # unfinished chunks (no record) were encoded anew
    assert resumed.stderr.count("(reused)") == len(before)

    clean = tmp_path / "clean"
    _run(source, clean)
    got, want = _published(out / "clip"), _published(clean / "clip")
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []
    assert sum(name.endswith(".m4s") for name in want) == CHUNKS * (RENDITIONS + 1)  # + audio
