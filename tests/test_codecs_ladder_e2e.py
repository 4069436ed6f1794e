"""The whole pipeline with `--codecs h264,av1`: one title offering an H.264 and an AV1
ladder over one segment grid (a fixed ladder, to keep it fast; and one per-title run)."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest
from lxml import etree

from media.package.dash import DASH_NS
from media.package.isobmff import read_fragment, read_init
from tests.media_factory import make_clip

DURATION_S = 6.0
SEGMENT_S = 2.0
FRAMES = 150  # 6 s at 25 fps
SEGMENTS = 3


def _run(out: Path, source: Path, **fields) -> Path:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    config = JobConfig(output_root=str(out), segment_s=SEGMENT_S, chunk_segments=3,
                       encode=EncodeSettings(preset="veryfast"), codecs=("h264", "av1"),
                       **fields).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                      blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [str(source)], config)
        assert_that(outputs.published | beam.Map(lambda t: t.title_id), equal_to(["clip"]))
    return out / "clip"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return Path(make_clip(str(tmp_path_factory.mktemp("src") / "clip.mp4"), DURATION_S,
                          640, 360))


@pytest.fixture(scope="module")
def fixed_title(tmp_path_factory, source) -> Path:
    return _run(tmp_path_factory.mktemp("out"), source, ladder="fixed", score_vmaf=False)


def _tracks(title: Path) -> list[Path]:
    return sorted(p for p in (title / "video").iterdir() if p.is_dir())


def _starts(track: Path) -> list[Fraction]:
    init = read_init((track / "init.mp4").read_bytes())
    timing = [read_fragment(s.read_bytes(), init) for s in sorted(track.glob("seg-*.m4s"))]
    assert all(t.first_sample_is_sync for t in timing), track.name
    return [Fraction(t.earliest_presentation_ticks, init.timescale) for t in timing]


def _decoded(track: Path) -> tuple[str, int]:
    data = b"".join(p.read_bytes() for p in [track / "init.mp4",
                                               *sorted(track.glob("seg-*.m4s"))])
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in container.decode(stream))


def check_title(title: Path) -> dict[str, list[str]]:
    """Every rendition of both codecs decodes to the source's frames, on one grid; the
    manifests group them by codec. Returns the rendition ids by codec."""
    tracks = _tracks(title)
    by_codec: dict[str, list[str]] = {"h264": [], "av1": []}
    expected = [Fraction(int(SEGMENT_S) * k) for k in range(SEGMENTS)]
    for track in tracks:
        codec, frames = _decoded(track)
        assert frames == FRAMES, (track.name, frames)
        assert _starts(track) == expected, track.name
        family = "av1" if "av1" in codec else codec
        by_codec[family].append(track.name)
    assert by_codec["h264"] and by_codec["av1"]
    assert all(name.startswith("av1-") for name in by_codec["av1"])
    assert not any(name.startswith("av1-") for name in by_codec["h264"])

    master = m3u8.load(str(title / "master.m3u8"))
    codecs = {p.uri.split("/")[-2]: p.stream_info.codecs for p in master.playlists}
    assert set(codecs) == {t.name for t in tracks}
    for name, text in codecs.items():
        assert text.startswith("av01." if name.startswith("av1-") else "avc1."), text
    iframes = {p.uri.split("/")[-2] for p in master.iframe_playlists}
    assert iframes == set(codecs)  # an I-frame playlist per rendition of every codec

    root = etree.parse(str(title / "manifest.mpd")).getroot()
    ns = {"d": DASH_NS}
    sets = root.findall(".//d:AdaptationSet[@contentType='video']", ns)
    assert len(sets) == 2
    in_sets = [sorted(r.get("id") for r in s.findall("d:Representation", ns)) for s in sets]
    assert in_sets == [sorted(by_codec["av1"]), sorted(by_codec["h264"])]
    for video_set, prefix in zip(sets, ("av01.", "avc1."), strict=True):
        assert all(r.get("codecs").startswith(prefix)
                   for r in video_set.findall("d:Representation", ns))
    return by_codec


def test_fixed_h264_av1_title_publishes_both_ladders_on_one_grid(fixed_title):
    by_codec = check_title(fixed_title)
    assert sorted(by_codec["h264"]) == ["234p-250k", "360p-700k"]
    assert sorted(by_codec["av1"]) == ["av1-234p-162k", "av1-360p-455k"]


def test_fixed_av1_rungs_spend_less_than_h264s(fixed_title):
    def rate(name: str) -> int:
        return sum(p.stat().st_size for p in (fixed_title / "video" / name).glob("seg-*.m4s"))
    assert rate("av1-360p-455k") < rate("360p-700k")
    report = json.loads((fixed_title / "report.json").read_text())
    assert report["codecs"]["av1"]["renditions"] == ["av1-360p-455k", "av1-234p-162k"]
    assert report["codecs"]["av1"]["encoders"] == ["svtav1"]
    assert report["codecs"]["h264"]["encoders"] == ["x264"]
    html = (fixed_title / "report.html").read_text()
    assert "data-codec='av1'" in html and "data-codec='h264'" in html


def test_per_title_h264_av1_title_plans_and_gates_each_codec(tmp_path_factory, source):
    title = _run(tmp_path_factory.mktemp("out-pt"), source, ladder="per-title",
                 trial_crfs=(22.0, 30.0), top_vmaf=90.0, max_attempts=2)
    by_codec = check_title(title)
    report = json.loads((title / "report.json").read_text())
    codecs = report.get("codecs")
    assert codecs and set(codecs) == {"h264", "av1"}
    for codec, ids in by_codec.items():
        assert sorted(codecs[codec]["renditions"]) == sorted(ids)
