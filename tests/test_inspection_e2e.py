"""Sources broken or unusual in the ways studios send them, through the whole pipeline:
what inspection finds, and what the published title looks like because of it."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from pipeline.local_runner import LOCAL_RUNNER
from tests.test_inspection import Clips

NAMES = ("clean", "vfr", "interlaced", "hdr", "rotated", "offset", "truncated", "non_square",
         "odd", "full_range")


@pytest.fixture(scope="module")
def inspected_run(tmp_path_factory) -> Path:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    clips = Clips(str(tmp_path_factory.mktemp("inspection-sources")))
    sources = [getattr(clips, name) for name in NAMES]
    out = tmp_path_factory.mktemp("inspection-out")
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=2,
                       chunk_segments=1, encode=EncodeSettings(preset="ultrafast"),
                       score_vmaf=False).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        build_pipeline(p, sources, config)
    return out


def _report(root: Path, title: str) -> dict:
    return json.loads((root / title / "report.json").read_text())


def _codes(report: dict) -> set[str]:
    return {f["code"] for f in report["inspection"]}


def _video(root: Path, title: str) -> tuple[dict, av.VideoFrame, object]:
    """The video track's report entry, the first decoded frame of its first segment and
    the stream's sample aspect ratio."""
    report = _report(root, title)
    track = next(t for t in report["tracks"] if t["kind"] == "video")
    folder = root / title / "video" / track["id"]
    data = (folder / "init.mp4").read_bytes() + (folder / "seg-00001.m4s").read_bytes()
    joined = root / f"{title}-first.mp4"
    joined.write_bytes(data)
    with av.open(str(joined)) as container:
        frame = next(container.decode(video=0))
        sar = container.streams.video[0].codec_context.sample_aspect_ratio
    return track, frame, sar


def test_a_source_cut_short_is_rejected_before_any_encode(inspected_run):
    record = json.loads((inspected_run / "_errors" / "truncated.json").read_text())
    assert record["stage"] == "inspect"
    assert "truncated" in record["error"].lower() or "cut" in record["error"].lower()
    assert record["hint"]
    assert not (inspected_run / "truncated").exists()
    assert not (inspected_run / "_work" / "truncated").exists()


def test_a_clean_source_has_no_warnings(inspected_run):
    report = _report(inspected_run, "clean")
    assert not [f for f in report["inspection"] if f["severity"] != "info"]


def test_variable_frame_rate_is_published_at_a_constant_rate(inspected_run):
    report = _report(inspected_run, "vfr")
    assert "vfr" in _codes(report)
    assert report["source"]["frame_rate"] == "25"
    track, _, _ = _video(inspected_run, "vfr")
    assert track["frame_rate"] == "25"
    # 5.96 s of variable-rate video: 149 frames at 25 fps, on the 4 s grid.
    assert track["duration_s"] == pytest.approx(149 / 25, abs=1e-6)


def test_an_interlaced_source_is_deinterlaced(inspected_run):
    report = _report(inspected_run, "interlaced")
    assert "interlaced" in _codes(report) and report["source"]["interlaced"] is True
    _, frame, _ = _video(inspected_run, "interlaced")
    assert not frame.interlaced_frame


def test_hdr_is_tone_mapped_to_8_bit_sdr(inspected_run):
    report = _report(inspected_run, "hdr")
    assert "hdr" in _codes(report) and report["source"]["hdr"] == "pq"
    track, frame, _ = _video(inspected_run, "hdr")
    assert track["codecs"].startswith("avc1.")
    assert frame.format.name == "yuv420p"  # 8-bit; the source is 10-bit PQ


def _luma_span(frame) -> tuple[int, int]:
    """The 1st and 99th percentiles of a frame's luma (its extremes are the scaler's
    ringing at the test pattern's sharp edges)."""
    plane = frame.planes[0]
    rows = bytes(plane)
    values = sorted(v for y in range(frame.height)
                    for v in rows[y * plane.line_size:y * plane.line_size + frame.width])
    return values[len(values) // 100], values[len(values) * 99 // 100]


def test_full_range_yuv_is_published_in_limited_range(inspected_run):
    report = _report(inspected_run, "full_range")
    assert "full_range" in _codes(report) and report["source"]["color_range"] == "pc"
    with av.open(report["source"]["source_uri"]) as container:
        source_frame = next(container.decode(video=0))
    assert _luma_span(source_frame) == (0, 255)  # black and white at full range
    _, frame, _ = _video(inspected_run, "full_range")
    assert frame.format.name == "yuv420p"  # not yuvj420p
    low, high = _luma_span(frame)
    assert abs(low - 16) <= 2 and abs(high - 235) <= 2  # the same at limited range


def test_rotation_is_applied(inspected_run):
    report = _report(inspected_run, "rotated")
    assert "rotated" in _codes(report)
    assert (report["source"]["width"], report["source"]["height"]) == (240, 320)
    track, frame, _ = _video(inspected_run, "rotated")
    assert track["height"] > track["width"]  # portrait, as displayed
    assert (frame.width, frame.height) == (track["width"], track["height"])


def test_non_square_pixels_are_scaled_to_the_display_aspect(inspected_run):
    report = _report(inspected_run, "non_square")
    assert "non_square_pixels" in _codes(report)
    track, _, sar = _video(inspected_run, "non_square")
    assert track["width"] / track["height"] == pytest.approx(4 / 3 * 320 / 240, rel=0.02)
    assert sar in (None, 0, 1)  # square pixels


def test_odd_sizes_and_late_audio_still_publish(inspected_run):
    assert "odd_dimensions" in _codes(_report(inspected_run, "odd"))
    track, _, _ = _video(inspected_run, "odd")
    assert track["width"] % 2 == 0 and track["height"] % 2 == 0
    offset = _report(inspected_run, "offset")
    assert "av_offset" in _codes(offset)
    assert {t["kind"] for t in offset["tracks"]} == {"video", "audio"}


def test_every_published_title_meets_the_hls_authoring_rules(inspected_run):
    from tests.hls_authoring import check_hls_title

    published = [name for name in NAMES if (inspected_run / name / "master.m3u8").exists()]
    assert len(published) == len(NAMES) - 1  # all but the truncated one
    problems = {name: check_hls_title(inspected_run / name) for name in published}
    assert problems == {name: [] for name in published}
