"""`--hdr keep`, piece by piece: which ladders a title gets, the encoders' HDR options,
the encode graph (HDR rungs beside tone-mapped ones from one decode), VMAF's tone mapping
of HDR rungs, the manifests' HDR attributes and the init segment's colour boxes."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from lxml import etree

from media.core.config import JobConfig
from media.core.errors import ConfigurationError
from media.core.types import (
    ChunkSpan,
    EncodeSettings,
    PackagedTrack,
    Rendition,
    Segment,
    SegmentGrid,
    SourceInfo,
)
from media.encode.commands import encode_renditions_argv
from media.encode.encoders import ENCODERS, video_options, with_hdr_metadata
from media.package.dash import DASH_NS, mpd
from media.package.hls import multivariant_playlist
from media.package.iframes import iframe_stream_inf
from media.plan.ladder import codec_ladders, fixed_ladder
from media.quality.vmaf import score_chunk_argv, score_many_argv

GRID = SegmentGrid(50, Fraction(25), 1)
HDR10 = SourceInfo("hdr.mov", "hdr", "mov", "hevc", 640, 360, Fraction(25), 100, 0.0,
                   "yuv420p10le", "bt2020", "smpte2084", "bt2020nc", "tv", hdr="pq")
SDR = dataclasses.replace(HDR10, pix_fmt="yuv420p", color_primaries="bt709",
                          color_transfer="bt709", color_matrix="bt709", hdr="")
RUNG = Rendition("360p-700k", 640, 360, 23.0, 700, 1400)


def test_keep_adds_an_hevc_hdr_ladder_to_an_h264_job_for_hdr_sources_only():
    keep = JobConfig(output_root="out", hdr="keep").validate()
    assert keep.title_codecs("pq") == ("h264", "hevc")
    assert keep.title_codecs("hlg") == ("h264", "hevc")
    assert keep.title_codecs("") == ("h264",)
    assert keep.hdr_codec("hevc", "pq") == "pq" and keep.hdr_codec("h264", "pq") == ""
    both = JobConfig(output_root="out", hdr="keep", codecs=("h264", "av1")).validate()
    assert both.title_codecs("pq") == ("h264", "av1")  # the asked codecs, AV1 kept HDR
    assert both.hdr_codec("av1", "hlg") == "hlg"
    default = JobConfig(output_root="out").validate()
    assert default.title_codecs("pq") == ("h264",) and default.hdr_codec("hevc", "pq") == ""
    assert not default.multi_codec
    assert default.fingerprint() != keep.fingerprint()
    with pytest.raises(ConfigurationError, match="--hdr"):
        JobConfig(output_root="out", hdr="hdr10").validate()


def test_fixed_codec_ladders_keep_hdr_in_every_codec_but_h264():
    ladder = codec_ladders(fixed_ladder(HDR10), ("h264", "hevc", "av1"), "x264", "pq")
    assert {r.hdr for r in ladder if r.encoder == "x264"} == {""}
    assert {r.hdr for r in ladder if r.encoder in ("x265", "svtav1")} == {"pq"}
    assert {r.hdr for r in codec_ladders(fixed_ladder(HDR10), ("h264", "hevc"), "x264")} == {""}


def test_hdr_rungs_are_10_bit_bt2020_with_the_transfer_in_the_bitstream():
    hevc = video_options(ENCODERS["x265"], dataclasses.replace(RUNG, hdr="pq"),
                         EncodeSettings(), GRID)
    assert hevc["pix_fmt"] == "yuv420p10le" and hevc["profile:v"] == "main10"
    assert (hevc["color_primaries"], hevc["color_trc"], hevc["colorspace"]) == (
        "bt2020", "smpte2084", "bt2020nc")
    assert ":colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1" in hevc[
        "x265-params"]
    av1 = video_options(ENCODERS["svtav1"], dataclasses.replace(RUNG, hdr="hlg"),
                        EncodeSettings(), GRID)
    assert av1["color_trc"] == "arib-std-b67"
    assert av1["svtav1-params"].endswith(
        "color-primaries=9:transfer-characteristics=18:matrix-coefficients=9")
    sdr = video_options(ENCODERS["x265"], RUNG, EncodeSettings(), GRID)
    assert sdr["pix_fmt"] == "yuv420p" and "colorprim" not in sdr["x265-params"]
    assert "color_trc" not in sdr


def _graph(argv: list[str]) -> str:
    return argv[argv.index("-filter_complex") + 1]


def test_one_decode_feeds_hdr_rungs_and_the_tone_mapped_rungs_and_reference():
    sdr_rungs = [RUNG, dataclasses.replace(RUNG, rendition_id="234p", width=416, height=234)]
    hdr_rungs = [dataclasses.replace(r, rendition_id=f"hevc-{r.rendition_id}", hdr="pq",
                                     encoder="x265") for r in sdr_rungs]
    chunk = ChunkSpan(0, 0, 50)
    reference = lambda stream: __import__("ffmpeg").output(stream, "ref.nut")  # noqa: E731
    outs = [f"{i}.mp4" for i in range(4)]
    mixed = encode_renditions_argv("in.mkv", outs, HDR10, chunk, [*sdr_rungs, *hdr_rungs],
                                   EncodeSettings(), GRID, reference)
    graph = _graph(mixed)
    assert mixed.count("-i") == 1
    assert graph.count("tonemap=desat") == 1  # tone-mapped once, for the SDR rungs and VMAF
    assert graph.count("format=yuv420p10le") == 2 and graph.count("format=yuv420p[") >= 2
    assert mixed.count("yuv420p10le") == 2  # the two HDR encoders' -pix_fmt
    # without HDR rungs the graph is the tone-mapped one it always was
    plain = encode_renditions_argv("in.mkv", outs[:2], HDR10, chunk, sdr_rungs,
                                   EncodeSettings(), GRID, reference)
    assert _graph(plain).count("tonemap=desat") == 1 and "yuv420p10le" not in plain
    only_hdr = encode_renditions_argv("in.mkv", outs[:2], HDR10, chunk, hdr_rungs,
                                      EncodeSettings(), GRID)
    assert "tonemap" not in _graph(only_hdr)


def test_vmaf_tone_maps_hdr_encodes_as_the_reference_was():
    chunk = ChunkSpan(0, 0, 50)
    hdr = score_chunk_argv("hevc.mp4", "in.mkv", HDR10, chunk, 640, 360, "log.json", hdr=True)
    assert _graph(hdr).count("tonemap=desat") == 2  # the distorted side's and the reference's
    sdr = score_chunk_argv("avc.mp4", "in.mkv", HDR10, chunk, 640, 360, "log.json")
    assert _graph(sdr).count("tonemap=desat") == 1
    many = score_many_argv("ref.nut", ["a.mp4", "b.mp4"], ["a.json", "b.json"], 640, 360,
                           hdr=[False, True])
    assert _graph(many).count("tonemap=desat") == 1


def _track(track_id: str, codecs: str, kbps: int, hdr: str = "") -> PackagedTrack:
    segment = Segment(1, f"video/{track_id}/seg-00001.m4s", 0, 180000, kbps * 250)
    rendition = dataclasses.replace(RUNG, rendition_id=track_id, hdr=hdr)
    return PackagedTrack("video", track_id, codecs, 90000, f"video/{track_id}/init.mp4",
                         (segment,), 640, 360, Fraction(25), rendition=rendition)


def test_hls_video_range_only_where_the_title_has_hdr_variants():
    sdr = _track("360p-700k", "avc1.64001e", 700)
    pq = _track("hevc-360p-560k", "hvc1.2.4.L90.90", 560, "pq")
    hlg = _track("av1-360p-455k", "av01.0.04M.10", 455, "hlg")
    master = multivariant_playlist([sdr, pq, hlg], [])
    ranges = {line.split("VIDEO-RANGE=")[1].split(",")[0] for line in master.splitlines()
              if line.startswith("#EXT-X-STREAM-INF")}
    assert ranges == {"SDR", "PQ", "HLG"}
    iframe = iframe_stream_inf(1000, "hvc1.2.4.L90.90", 640, 360,
                               "video/hevc-360p-560k/iframes.m3u8")
    with_iframes = multivariant_playlist([sdr, pq], [], iframe_lines=[iframe])
    assert iframe.replace(",URI=", ",VIDEO-RANGE=PQ,URI=") in with_iframes
    assert "VIDEO-RANGE" not in multivariant_playlist([sdr], [])  # as before --hdr keep


def test_dash_hdr_set_carries_the_cicp_colour_properties():
    sdr = _track("360p-700k", "avc1.64001e", 700)
    pq = _track("hevc-360p-560k", "hvc1.2.4.L90.90", 560, "pq")
    root = etree.fromstring(mpd([sdr, pq], []).encode())
    ns = {"d": DASH_NS}
    props = {}
    for adaptation_set in root.findall(".//d:AdaptationSet[@contentType='video']", ns):
        codec = adaptation_set.find("d:Representation", ns).get("codecs")[:4]
        props[codec] = {(p.tag.split("}")[1], p.get("schemeIdUri").rsplit(":", 1)[1],
                         p.get("value")) for p in adaptation_set
                        if p.tag.endswith("Property")}
        # the properties come before the Representations (the schema's order)
        tags = [child.tag.split("}")[1] for child in adaptation_set]
        assert tags == sorted(tags, key=lambda t: t == "Representation")
    assert props["avc1"] == set()
    assert props["hvc1"] == {("EssentialProperty", "TransferCharacteristics", "16"),
                             ("SupplementalProperty", "ColourPrimaries", "9"),
                             ("SupplementalProperty", "MatrixCoefficients", "9")}


def test_hdr10_metadata_goes_to_both_hdr_encoders_in_their_own_units():
    mastering = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
    pq = dataclasses.replace(RUNG, hdr="pq")
    hevc = with_hdr_metadata(video_options(ENCODERS["x265"], pq, EncodeSettings(), GRID),
                             ENCODERS["x265"], mastering, "1000,400")
    assert hevc["x265-params"].endswith(f":master-display={mastering}:max-cll=1000,400")
    av1 = with_hdr_metadata(video_options(ENCODERS["svtav1"], pq, EncodeSettings(), GRID),
                            ENCODERS["svtav1"], mastering, "1000,400")
    assert av1["svtav1-params"].endswith(
        ":mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)"
        "WP(0.3127,0.3290)L(1000.0000,0.0050):content-light=1000,400")
    plain = video_options(ENCODERS["x265"], pq, EncodeSettings(), GRID)
    assert with_hdr_metadata(plain, ENCODERS["x265"], "", "") == plain  # HLG: none


def test_hdr_boxes_are_added_to_a_fragmented_mp4_that_lacks_them(tmp_path):
    import av

    from media.core import ffmpeg
    from media.package.isobmff import read_colour, with_hdr_boxes

    path = tmp_path / "chunk.mp4"
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=0.4",
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
        "-x265-params", "log-level=error", "-color_primaries", "bt2020",
        "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-tag:v", "hvc1",
        "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(path)))
    data = path.read_bytes()
    assert read_colour(data).max_cll is None
    mastering = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
    grown = with_hdr_boxes(data, mastering, "1000,400")
    colour = read_colour(grown)
    assert (colour.max_cll, colour.max_fall) == (1000, 400)
    assert colour.display_primaries == ((13250, 34500), (7500, 3000), (34000, 16000))
    assert colour.luminance == (10000000, 50) and colour.white_point == (15635, 16450)
    assert len(grown) == len(data) + 32 + 12  # mdcv and clli, nothing else
    assert with_hdr_boxes(grown, mastering, "1,1") is grown  # boxes there: kept as they are
    (tmp_path / "grown.mp4").write_bytes(grown)
    with av.open(str(tmp_path / "grown.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10
