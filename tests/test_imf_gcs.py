"""An IMF package in Cloud Storage (the GCS emulator) published to Cloud Storage: every
read (XML, hashes, probes, each chunk's and audio span's ranges) goes through Beam's
FileSystems, with no local copy of the package."""

from __future__ import annotations

import io
import os

import av

from pipeline.local_runner import LOCAL_RUNNER
from tests.emulators import GCS_BUCKET as BUCKET
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg

FRAMES = 48


def test_an_imf_package_from_gs_to_gs(gcs_emulator, tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from transforms.ingest import expand_sources

    factory = ImfFactory(str(tmp_path))
    factory.image("v1", "pkg", FRAMES)
    factory.audio("en", "pkg", FRAMES, language="en")
    factory.imsc1("sub", "pkg", FRAMES, [(0.5, 1.5, "Hello from the bucket.")])
    folder = factory.package("pkg", [CplSpec("Remote", [
        Seg(image=[Res("v1", duration=24)], audio=[[Res("en", duration=24)]],
            subtitles=[Res("sub", duration=24)]),
        Seg(image=[Res("v1", entry=12, duration=12, repeat=2)],
            audio=[[Res("en", entry=12, duration=12, repeat=2)]],
            subtitles=[Res("sub", entry=24, duration=24)])], version="v1")])
    bucket = gcs_emulator.bucket(BUCKET)
    for name in os.listdir(folder):
        bucket.blob(f"imf/pkg/{name}").upload_from_filename(os.path.join(folder, name))
    sources = expand_sources(f"gs://{BUCKET}/imf/pkg")
    assert sources == [f"gs://{BUCKET}/imf/pkg"]

    config = JobConfig(output_root=f"gs://{BUCKET}/imf-out", chunk_segments=1, segment_s=1,
                       max_renditions=1, score_vmaf=False, ladder="fixed",
                       encode=EncodeSettings(preset="ultrafast")).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        outputs = build_pipeline(p, sources, config)
        assert_that(outputs.published | beam.Map(lambda t: t.master_uri),
                    equal_to([f"gs://{BUCKET}/imf-out/Remote-v1/master.m3u8"]))

    names = sorted(b.name for b in gcs_emulator.list_blobs(BUCKET, prefix="imf-out/"))
    video = [n for n in names if n.startswith("imf-out/Remote-v1/video/")]
    rendition = video[0].split("/")[3]
    segments = sorted(n for n in video if n.endswith(".m4s") and f"/{rendition}/" in n)
    data = b"".join(bucket.blob(n).download_as_bytes() for n in
                    [f"imf-out/Remote-v1/video/{rendition}/init.mp4", *segments])
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) == FRAMES
    assert any(n.startswith("imf-out/Remote-v1/audio/aac-en-0/seg-") for n in names)
    assert any(n.endswith(".vtt") and "/subtitles/" in n for n in names)
    assert not [n for n in names if "/_work/" in n or n.endswith(".partial")], names
