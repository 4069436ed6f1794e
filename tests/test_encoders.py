"""Encoders: options that keep every encoder on the segment grid, and `auto`, which
probes NVENC with a real encode and falls back to x264 where it does not work."""

from __future__ import annotations

from fractions import Fraction

import pytest

from media.core.config import X264_PRESETS
from media.core.errors import MediaError
from media.core.types import EncodeSettings, Rendition, SegmentGrid
from media.encode.encoders import (
    ENCODER_NAMES,
    ENCODERS,
    encoder_named,
    probe_nvenc,
    resolve_encoder,
    video_options,
    x265_preset,
)
from pipeline.local_runner import LOCAL_RUNNER

RUNG = Rendition("720p-3000k", 1280, 720, 24.0, 3000, 6000)
GRID_100 = SegmentGrid(100, Fraction(25))
GRID_50 = SegmentGrid(50, Fraction(25))


@pytest.mark.parametrize("name", list(ENCODERS))
def test_every_encoder_keeps_the_grid_and_the_cap(name):
    options = video_options(ENCODERS[name], RUNG, EncodeSettings(preset="fast"), GRID_100)
    assert options["c:v"] == ENCODERS[name].codec
    assert options["force_key_frames"] == "expr:eq(mod(n,100),0)"
    assert options["video_track_timescale"] == str(GRID_100.timescale)
    assert (options["maxrate"], options["bufsize"]) == ("3000k", "6000k")
    assert options["pix_fmt"] == "yuv420p"
    params = options.get("x264-params", "") + options.get("x265-params", "")
    grid = params + options.get("g", "")
    assert "keyint=100:min-keyint=100:scenecut=0:open-gop=0" in grid or options["g"] == "100"


def test_hevc_is_tagged_hvc1_for_hls():
    for name in ("x265", "nvenc-hevc"):
        assert video_options(ENCODERS[name], RUNG, EncodeSettings(), GRID_100)["tag:v"] == "hvc1"


def test_x265_runs_one_preset_slower_than_the_x264_name_asked():
    # x265 at x264's own preset name gains little over x264 on grain and at small sizes
    # (media.encode.encoders._X265_PRESETS): the default medium is x265's slow.
    assert x265_preset("medium") == "slow"
    steps = [x265_preset(name) for name in X264_PRESETS]
    assert steps[:-1] == list(X264_PRESETS[1:]) and steps[-1] == "placebo"
    options = video_options(ENCODERS["x265"], RUNG, EncodeSettings(preset="medium"), GRID_100)
    assert options["preset"] == "slow"
    assert video_options(ENCODERS["x264"], RUNG, EncodeSettings(preset="medium"),
                         GRID_100)["preset"] == "medium"


def test_quality_values_are_clamped_to_each_encoders_range():
    steep = Rendition("x", 640, 360, 70.0, 0, 0)
    assert video_options(ENCODERS["svtav1"], steep, EncodeSettings(), GRID_50)["crf"] == "63"
    assert video_options(ENCODERS["x265"], steep, EncodeSettings(), GRID_50)["crf"] == "51"
    assert "maxrate" not in video_options(ENCODERS["x265"], steep, EncodeSettings(), GRID_50)


def test_a_fixed_bitrate_rung_uses_an_average_bitrate():
    rung = Rendition("x", 640, 360, 23.0, 1500, 3000, target_kbps=1000)
    options = video_options(ENCODERS["nvenc-h264"], rung, EncodeSettings(), GRID_50)
    assert options["b:v"] == "1000k" and "cq" not in options


def test_unknown_encoder_is_refused():
    with pytest.raises(MediaError, match="unknown encoder 'x266'"):
        encoder_named("x266")
    assert "auto" in ENCODER_NAMES


def test_auto_falls_back_to_x264_and_says_why_where_nvenc_does_not_work():
    probe = probe_nvenc("h264_nvenc")
    encoder, why = resolve_encoder("auto")
    if probe.works:  # a machine with NVENC
        assert encoder.name == "nvenc-h264" and "NVENC works" in why
    else:
        assert encoder.name == "x264"
        assert why.startswith("auto: NVENC unavailable (") and probe.detail in why
        assert probe.detail  # the reason FFmpeg gave, e.g. "Cannot load libcuda.so.1"
    assert resolve_encoder("x265")[0].codec == "libx265"


@pytest.fixture(scope="module")
def encoded_titles(tmp_path_factory):
    """The same 4 s clip published with x265 and with SVT-AV1 (fixed ladder, 2 rungs)."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

    from media.core.config import JobConfig
    from pipeline.graph import build_pipeline
    from tests.media_factory import make_clip

    clip = make_clip(str(tmp_path_factory.mktemp("enc-src") / "clip.mp4"), duration_s=4,
                     width=320, height=180, gop=25)
    roots = {}
    for name in ("x265", "svtav1"):
        out = tmp_path_factory.mktemp(f"enc-{name}")
        config = JobConfig(output_root=str(out), ladder="fixed", chunk_segments=1,
                           score_vmaf=False,
                           encode=EncodeSettings(preset="ultrafast", encoder=name)).validate()
        with BeamTestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"])) as p:
            build_pipeline(p, [clip], config)
        roots[name] = out / "clip"
    return roots


@pytest.mark.parametrize("name, prefix", [("x265", "hvc1.1.6.L"), ("svtav1", "av01.0.")])
def test_hevc_and_av1_ladders_are_published_on_the_grid(encoded_titles, name, prefix):
    import json

    from tests.hls_authoring import check_hls_title

    title = encoded_titles[name]
    report = json.loads((title / "report.json").read_text())
    video = [t for t in report["tracks"] if t["kind"] == "video"]
    assert len(video) == 2 and all(t["codecs"].startswith(prefix) for t in video)
    assert all(t["segments"] == 1 and t["duration_s"] == pytest.approx(4.0) for t in video)
    # The assembler checked the grid (an IDR first in every segment) before writing.
    assert check_hls_title(title) == []


def test_nvdec_is_used_only_where_a_probe_decode_works():
    from media.encode.hwaccel import decode_input_options, probe_nvdec, use_nvdec

    probe = probe_nvdec()
    assert use_nvdec("auto") is probe.works and probe.detail
    assert use_nvdec("cpu") is False and decode_input_options("cpu") == {}
    assert decode_input_options("nvdec") == {"hwaccel": "cuda"}
    if not probe.works:  # this machine: the reason FFmpeg gave, and the CPU decodes
        assert decode_input_options("auto") == {}


def test_the_encode_command_decodes_on_the_gpu_only_when_asked():
    from fractions import Fraction

    from media.core.types import ChunkSpan, SegmentGrid, SourceInfo
    from media.encode.commands import encode_chunk_argv

    source = SourceInfo("s.mp4", "s", "mp4", "h264", 1280, 720, Fraction(25), 100, 0.0,
                        "yuv420p")
    chunk = ChunkSpan(0, 0, 100)
    gpu = encode_chunk_argv("in.mkv", "out.mp4", source, chunk, RUNG,
                            EncodeSettings(decoder="nvdec"), SegmentGrid(100, Fraction(25)))
    cpu = encode_chunk_argv("in.mkv", "out.mp4", source, chunk, RUNG,
                            EncodeSettings(decoder="cpu"), SegmentGrid(100, Fraction(25)))
    assert gpu[gpu.index("-hwaccel") + 1] == "cuda" and gpu.index("-hwaccel") < gpu.index("-i")
    assert "-hwaccel" not in cpu


def test_keyframes_are_forced_at_each_segment_of_the_chunk():
    from media.core.types import ChunkSpan
    from media.encode.encoders import keyframe_expr

    assert keyframe_expr(GRID_100) == "expr:eq(mod(n,100),0)"
    assert keyframe_expr(GRID_100, ChunkSpan(1, 100, 100)) == "expr:eq(mod(n,100),0)"
    # a grid cut at shot changes: the chunk's segments start at title frames 70 and 130
    chunk = ChunkSpan(1, 70, 160, segment_starts=(70, 130), first_segment=1)
    assert keyframe_expr(GRID_100, chunk) == "expr:eq(n,0)+eq(n,60)"
    options = video_options(ENCODERS["x264"], RUNG, EncodeSettings(), GRID_100, chunk)
    assert options["force_key_frames"] == "expr:eq(n,0)+eq(n,60)"
    assert "keyint=100:min-keyint=100" in options["x264-params"]  # the longest segment
