"""The whole pipeline with `--hdr keep`: an HDR10 source (HEVC Main10, PQ, BT.2020, with
mastering display and content light level) publishes an SDR H.264 ladder and an HDR10
HEVC ladder; an HLG source with `--codecs h264,av1` an HLG AV1 ladder. Checked by
parsing (master attributes, MPD properties, init boxes against the source's signalling)
and by decoding the published renditions back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import m3u8
import pytest
from lxml import etree

from media.core import ffmpeg
from media.package.dash import DASH_NS
from media.package.isobmff import read_colour, read_init

DURATION_S = 4.0
FRAMES = 100  # 4 s at 25 fps
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
MAX_CLL = (1000, 400)
VMAF_FLOOR = 60.0
"""Least pooled VMAF of any rung of these small ladders (the 234p rungs at 200-250 kb/s
score about 70-85), and ..."""
TOP_HDR_VMAF = 85.0
"""... of the HDR 360p rung (560 kb/s), tone-mapped on both sides: about 90-93. The HDR
encode scored against the tone-mapped reference without its own tone mapping: 46.6."""


def make_hdr_clip(path: str, transfer: str) -> str:
    """A 4 s 640x360 HEVC Main10 BT.2020 clip with `transfer` ('smpte2084' with HDR10's
    mastering display and content light level SEI, or 'arib-std-b67'), with AAC."""
    params = (f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
              + (f":hdr10=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL[0]},{MAX_CLL[1]}"
                 if transfer == "smpte2084" else ""))
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={DURATION_S}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={DURATION_S}",
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
        "-color_primaries", "bt2020", "-colorspace", "bt2020nc", "-color_trc", transfer,
        "-x265-params", params, "-tag:v", "hvc1", "-c:a", "aac", path))
    return path


def _run(out: Path, source: Path, **fields) -> Path:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    fields = {"ladder": "fixed", "max_renditions": 2, **fields}
    config = JobConfig(output_root=str(out), segment_s=2.0, chunk_segments=2,
                       encode=EncodeSettings(preset="veryfast"), hdr="keep",
                       **fields).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                      blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [str(source)], config)
        assert_that(outputs.published | beam.Map(lambda t: t.title_id),
                    equal_to([source.stem]))
    return out / source.stem


@pytest.fixture(scope="module")
def hdr10_title(tmp_path_factory) -> Path:
    source = Path(make_hdr_clip(str(tmp_path_factory.mktemp("src") / "hdr10.mp4"),
                                "smpte2084"))
    return _run(tmp_path_factory.mktemp("out"), source)


@pytest.fixture(scope="module")
def hlg_title(tmp_path_factory) -> Path:
    source = Path(make_hdr_clip(str(tmp_path_factory.mktemp("src") / "hlg.mp4"),
                                "arib-std-b67"))
    return _run(tmp_path_factory.mktemp("out"), source, codecs=("h264", "av1"),
                score_vmaf=False)


def _decoded(track: Path) -> dict:
    data = b"".join(p.read_bytes() for p in [track / "init.mp4",
                                               *sorted(track.glob("seg-*.m4s"))])
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        first = frames[0]
        return {"codec": stream.codec_context.name, "frames": len(frames),
                "format": first.format.name,
                "colour": (int(first.color_primaries), int(first.color_trc),
                           int(first.colorspace))}


def _ranges(title: Path) -> dict[str, tuple[str, str]]:
    master = m3u8.load(str(title / "master.m3u8"))
    return {p.uri.split("/")[-2]: (p.stream_info.video_range, p.stream_info.codecs)
            for p in master.playlists}


def _mpd_properties(title: Path) -> dict[str, set[tuple[str, str, str]]]:
    root = etree.parse(str(title / "manifest.mpd")).getroot()
    ns = {"d": DASH_NS}
    out = {}
    for video_set in root.findall(".//d:AdaptationSet[@contentType='video']", ns):
        codecs = video_set.find("d:Representation", ns).get("codecs")
        out[codecs[:4]] = {(p.tag.split("}")[1], p.get("schemeIdUri"), p.get("value"))
                           for p in video_set if p.tag.endswith("Property")}
    return out


def _cicp(transfer: int) -> set[tuple[str, str, str]]:
    prefix = "urn:mpeg:mpegB:cicp:"
    return {("EssentialProperty", f"{prefix}TransferCharacteristics", str(transfer)),
            ("SupplementalProperty", f"{prefix}ColourPrimaries", "9"),
            ("SupplementalProperty", f"{prefix}MatrixCoefficients", "9")}


def test_hdr10_title_has_an_sdr_h264_and_an_hdr10_hevc_ladder(hdr10_title):
    tracks = sorted(p for p in (hdr10_title / "video").iterdir() if p.is_dir())
    hevc = [t for t in tracks if t.name.startswith("hevc-")]
    h264 = [t for t in tracks if not t.name.startswith("hevc-")]
    assert len(hevc) == 2 and len(h264) == 2
    for track in h264:  # tone-mapped as before: 8-bit BT.709
        decoded = _decoded(track)
        assert decoded["frames"] == FRAMES
        assert (decoded["codec"], decoded["format"]) == ("h264", "yuv420p")
        sdr = read_colour((track / "init.mp4").read_bytes())
        assert sdr.transfer in (None, 1) and sdr.max_cll is None and sdr.luminance is None
    for track in hevc:
        decoded = _decoded(track)
        assert decoded["frames"] == FRAMES
        assert (decoded["codec"], decoded["format"]) == ("hevc", "yuv420p10le")
        assert decoded["colour"] == (9, 16, 9)  # BT.2020, PQ, BT.2020 NCL in the bitstream
        init = (track / "init.mp4").read_bytes()
        assert read_init(init).codec_fourcc == "hvc1"
        colour = read_colour(init)
        assert (colour.primaries, colour.transfer, colour.matrix, colour.full_range) == (
            9, 16, 9, False)
        # the source's mastering display and light levels, as x265 was given them
        assert colour.display_primaries == ((13250, 34500), (7500, 3000), (34000, 16000))
        assert colour.white_point == (15635, 16450)
        assert colour.luminance == (10000000, 50)
        assert (colour.max_cll, colour.max_fall) == MAX_CLL

    ranges = _ranges(hdr10_title)
    for name, (video_range, codecs) in ranges.items():
        if name.startswith("hevc-"):
            assert video_range == "PQ" and codecs.startswith("hvc1.2.")  # Main10
        else:
            assert video_range == "SDR" and codecs.startswith("avc1.")
    iframe_lines = [line for line in (hdr10_title / "master.m3u8").read_text().splitlines()
                    if line.startswith("#EXT-X-I-FRAME-STREAM-INF")]
    assert len(iframe_lines) == 4
    assert all(("VIDEO-RANGE=PQ" if "/hevc-" in line else "VIDEO-RANGE=SDR") in line
               for line in iframe_lines)
    props = _mpd_properties(hdr10_title)
    assert props == {"hvc1": _cicp(16), "avc1": set()}


def test_hdr10_rungs_are_scored_after_the_same_tone_mapping(hdr10_title):
    report = json.loads((hdr10_title / "report.json").read_text())
    scores = {r["id"]: r["vmaf"]["mean"] for r in report["ladder"]}
    assert len(scores) == 4 and all(s > VMAF_FLOOR for s in scores.values()), scores
    assert scores["hevc-360p-560k"] > TOP_HDR_VMAF, scores


def test_hlg_title_has_an_hlg_av1_ladder(hlg_title):
    tracks = sorted(p for p in (hlg_title / "video").iterdir() if p.is_dir())
    av1 = [t for t in tracks if t.name.startswith("av1-")]
    assert len(av1) == 2 and len(tracks) == 4
    for track in av1:
        decoded = _decoded(track)
        assert decoded["frames"] == FRAMES and decoded["format"] == "yuv420p10le"
        assert decoded["colour"] == (9, 18, 9)
        colour = read_colour((track / "init.mp4").read_bytes())
        assert (colour.primaries, colour.transfer, colour.matrix) == (9, 18, 9)
        assert colour.max_cll is None  # an HLG source has no light levels to carry
    ranges = _ranges(hlg_title)
    assert {v for n, (v, _) in ranges.items() if n.startswith("av1-")} == {"HLG"}
    assert {v for n, (v, _) in ranges.items() if not n.startswith("av1-")} == {"SDR"}
    av1_codecs = [c.split(",")[0] for n, (_, c) in ranges.items() if n.startswith("av1-")]
    # the long form, with the colour: a player tells HLG from SDR by the string alone
    assert all(c.startswith("av01.0.") and c.endswith(".10.0.110.09.18.09.0")
               for c in av1_codecs), av1_codecs
    assert _mpd_properties(hlg_title) == {"av01": _cicp(18), "avc1": set()}


def test_per_title_hdr10_title_plans_and_gates_its_hdr_ladder_on_tone_mapped_scores(
        tmp_path_factory):
    source = Path(make_hdr_clip(str(tmp_path_factory.mktemp("src") / "pt.mp4"), "smpte2084"))
    title = _run(tmp_path_factory.mktemp("out"), source, ladder="per-title",
                 trial_crfs=(22.0, 30.0), top_vmaf=90.0, max_attempts=2)
    report = json.loads((title / "report.json").read_text())
    assert set(report["codecs"]) == {"h264", "hevc"}
    hevc = [t for t in report["tracks"] if t["kind"] == "video" and t["id"].startswith("hevc-")]
    assert hevc
    for track in hevc:
        decoded = _decoded(title / "video" / track["id"])
        assert decoded["format"] == "yuv420p10le" and decoded["colour"] == (9, 16, 9)
        colour = read_colour((title / "video" / track["id"] / "init.mp4").read_bytes())
        assert (colour.max_cll, colour.max_fall) == MAX_CLL
        # planned and gated on tone-mapped scores: each near its target
        assert track["target_vmaf"] and abs(track["vmaf"]["mean"] - track["target_vmaf"]) < 4, (
            track["id"], track["vmaf"], track["target_vmaf"])
    assert report["plan"]["codecs"]["hevc"]["encoder"] == "x265"
