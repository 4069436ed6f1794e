"""Sources and outputs on gs:// through Beam's FileSystems, against a real GCS emulator."""

from __future__ import annotations

from pipeline.local_runner import LOCAL_RUNNER
from tests.emulators import GCS_BUCKET as BUCKET
from tests.media_factory import make_clip


def test_a_title_from_gs_to_gs(gcs_emulator, tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from transforms.ingest import expand_sources

    clip = make_clip(str(tmp_path / "remote.mp4"), duration_s=6, width=640, height=360, gop=25)
    bucket = gcs_emulator.bucket(BUCKET)
    bucket.blob("in/remote.mp4").upload_from_filename(clip)
    sources = expand_sources(f"gs://{BUCKET}/in/*.mp4")
    assert sources == [f"gs://{BUCKET}/in/remote.mp4"]

    config = JobConfig(output_root=f"gs://{BUCKET}/out", chunk_segments=1, max_renditions=2,
                       encode=EncodeSettings(preset="ultrafast"), ladder="fixed").validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
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
