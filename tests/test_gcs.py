"""Sources and outputs on gs:// through Beam's FileSystems, against a real GCS emulator."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.media_factory import make_clip

BUCKET = "ladderflow-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gcs_emulator():
    """gcp-storage-emulator (PyPI) on loopback; Beam and google-cloud-storage both use it."""
    exe = shutil.which("gcp-storage-emulator")
    if not exe:
        pytest.skip("gcp-storage-emulator is not installed (pip install '.[test]')")
    port = _free_port()
    proc = subprocess.Popen([exe, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"http://127.0.0.1:{port}"
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = host
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.3)
    # The emulator needs no credentials; skip Beam's search for them (retries for ~20 s).
    from apache_beam.internal.gcp import auth

    auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
    yield client
    proc.kill()
    proc.wait()
    if old is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = old


def test_a_title_from_gs_to_gs(gcs_emulator, tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.config import JobConfig
    from media.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from transforms.ingest import expand_sources

    clip = make_clip(str(tmp_path / "remote.mp4"), duration_s=6, width=640, height=360, gop=25)
    bucket = gcs_emulator.bucket(BUCKET)
    bucket.blob("in/remote.mp4").upload_from_filename(clip)
    sources = expand_sources(f"gs://{BUCKET}/in/*.mp4")
    assert sources == [f"gs://{BUCKET}/in/remote.mp4"]

    config = JobConfig(output_root=f"gs://{BUCKET}/out", chunk_segments=1, max_renditions=2,
                       encode=EncodeSettings(preset="ultrafast"), ladder="fixed").validate()
    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"]), blocking=True) as p:
        outputs = build_pipeline(p, sources, config)
        assert_that(outputs.published | beam.Map(lambda t: t.master_uri),
                    equal_to([f"gs://{BUCKET}/out/remote/master.m3u8"]))

    names = sorted(b.name for b in gcs_emulator.list_blobs(BUCKET, prefix="out/"))
    assert "out/remote/master.m3u8" in names and "out/remote/manifest.mpd" in names
    for rendition in ("360p-700k", "234p-250k"):
        segments = [n for n in names if n.startswith(f"out/remote/video/{rendition}/seg-")]
        assert len(segments) == 2, names  # 6 s on a 4 s grid
    assert any(n.startswith("out/remote/vmaf/") for n in names)
    assert not [n for n in names if n.endswith(".partial") or "/_work/" in n], names
    master = bucket.blob("out/remote/master.m3u8").download_as_text()
    assert master.count("#EXT-X-STREAM-INF") == 2
