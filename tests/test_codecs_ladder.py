"""Multi-codec ladders (`--codecs`): one ladder per codec, each rung with its encoder,
the manifests grouped by codec. Plain functions, no encode."""

from __future__ import annotations

from fractions import Fraction

import m3u8
import pytest
from lxml import etree

from media.core.config import JobConfig
from media.core.errors import ConfigurationError
from media.core.types import EncodeSettings, SourceInfo
from media.encode.commands import encode_renditions_argv, rendition_encoder
from media.encode.encoders import codec_crf, codec_encoder, resolve_encoder
from media.package.dash import DASH_NS, mpd
from media.package.hls import multivariant_playlist
from media.plan.chunking import segment_grid
from media.plan.ladder import codec_ladders, codec_of, fixed_ladder
from tests.test_dash import audio, video

SOURCE = SourceInfo(source_uri="in/film.mp4", title_id="film", container="mp4",
                    video_codec="h264", width=1920, height=1080, frame_rate=Fraction(25),
                    frame_count=250, video_start_s=0.0, pix_fmt="yuv420p")
AV1_RATE_RATIO = (0.6, 0.7)
"""The fixed AV1 rungs' caps against H.264's: about 0.65x."""


def test_default_codecs_keep_the_one_ladder_of_the_job():
    config = JobConfig(output_root="out").validate()
    assert config.codecs == ("h264",) and not config.multi_codec
    ladder = fixed_ladder(SOURCE)
    assert all(r.encoder == "" for r in ladder)  # the job's --encoder, as before


def test_fingerprint_of_a_default_job_is_unchanged_by_the_option():
    plain = JobConfig(output_root="out")
    assert plain.fingerprint() == JobConfig(output_root="out", codecs=("h264",)).fingerprint()
    assert plain.fingerprint() != JobConfig(output_root="out",
                                            codecs=("h264", "av1")).fingerprint()


@pytest.mark.parametrize("codecs", [(), ("h264", "h264"), ("vp9",), ("h264", "av1 ")])
def test_bad_codec_lists_are_refused(codecs):
    with pytest.raises(ConfigurationError, match="--codecs"):
        JobConfig(output_root="out", codecs=codecs).validate()


def test_fixed_ladder_per_codec_with_unique_ids_and_lower_av1_caps():
    h264 = fixed_ladder(SOURCE)
    both = codec_ladders(h264, ("h264", "av1"), "x264")
    assert len(both) == 2 * len(h264)
    ids = [r.rendition_id for r in both]
    assert len(set(ids)) == len(ids)
    by_codec = {c: [r for r in both if codec_of(r) == c] for c in ("h264", "av1")}
    assert [r.rendition_id for r in by_codec["h264"]] == [r.rendition_id for r in h264]
    assert all(r.rendition_id.startswith("av1-") for r in by_codec["av1"])
    assert {r.encoder for r in by_codec["h264"]} == {"x264"}
    assert {r.encoder for r in by_codec["av1"]} == {"svtav1"}
    for plain, av1 in zip(by_codec["h264"], by_codec["av1"], strict=True):
        assert (plain.width, plain.height) == (av1.width, av1.height)
        assert AV1_RATE_RATIO[0] <= av1.maxrate_kbps / plain.maxrate_kbps <= AV1_RATE_RATIO[1]
        assert av1.crf == codec_crf("av1", plain.crf) > plain.crf  # SVT-AV1's 0-63 scale


@pytest.mark.parametrize("codec, requested, expected", [
    ("h264", "x264", "x264"), ("av1", "x264", "svtav1"), ("hevc", "x264", "x265"),
    ("h264", "nvenc-h264", "nvenc-h264"), ("av1", "nvenc-h264", "auto-av1"),
    ("av1", "auto", "auto-av1"), ("h264", "auto", "auto"), ("hevc", "x265", "x265"),
    ("av1", "nvenc-av1", "nvenc-av1"), ("h264", "svtav1", "x264"),
])
def test_each_codec_gets_its_encoder_for_the_jobs_request(codec, requested, expected):
    assert codec_encoder(codec, requested) == expected


def test_auto_for_a_codec_falls_back_to_its_software_encoder_without_nvenc():
    encoder, why = resolve_encoder("auto-av1")
    assert encoder.family == "av1"
    assert encoder.name in ("svtav1", "nvenc-av1"), why
    if encoder.name == "svtav1":
        assert "NVENC unavailable" in why


def test_one_process_encodes_each_rendition_with_its_own_encoder():
    renditions = codec_ladders(fixed_ladder(SOURCE)[-2:], ("h264", "av1"), "x264")
    grid = segment_grid(SOURCE.frame_rate, 4.0, 1)
    settings = EncodeSettings(preset="veryfast")
    argv = encode_renditions_argv("span.mkv", [f"out{i}.mp4" for i in range(4)], SOURCE,
                                  fixed_chunk(), renditions, settings, grid)
    encoders = [argv[i + 1] for i, a in enumerate(argv) if a == "-c:v"]
    assert encoders == ["libx264", "libx264", "libsvtav1", "libsvtav1"]
    assert [rendition_encoder(r, settings).name for r in renditions] == [
        "x264", "x264", "svtav1", "svtav1"]
    # every encode keeps the grid: an IDR frame at each segment start
    assert argv.count(f"expr:eq(mod(n,{grid.segment_frames}),0)") == 4


def fixed_chunk():
    from media.core.types import ChunkSpan
    return ChunkSpan(0, 0, 100)


def _two_codec_tracks():
    return [video("360p-700k", (640, 360), "avc1.64001e", [80_000, 90_000, 85_000]),
            video("540p-1600k", (960, 540), "avc1.64001f", [200_000, 210_000, 190_000]),
            video("av1-360p-455k", (640, 360), "av01.0.04M.08", [50_000, 52_000, 51_000]),
            video("av1-540p-1040k", (960, 540), "av01.0.05M.08", [120_000, 125_000, 119_000])]


def test_mpd_has_one_video_adaptation_set_per_codec_av1_preferred():
    text = mpd(_two_codec_tracks(), [audio("aac-eng-0", "eng")], title="film")
    root = etree.fromstring(text.encode())
    ns = {"d": DASH_NS}
    sets = root.findall(".//d:AdaptationSet[@contentType='video']", ns)
    assert len(sets) == 2
    codecs = [{r.get("codecs").split(".")[0] for r in s.findall("d:Representation", ns)}
              for s in sets]
    assert codecs == [{"av01"}, {"avc1"}]
    assert [int(s.get("selectionPriority")) for s in sets] == [2, 1]
    ids = [s.get("id") for s in root.findall(".//d:AdaptationSet", ns)]
    assert ids == ["0", "1", "2"]  # the audio set after the video sets


def test_one_codec_mpd_has_no_selection_priority_on_its_video_set():
    text = mpd(_two_codec_tracks()[:2], [audio("aac-eng-0", "eng")])
    root = etree.fromstring(text.encode())
    video_set = root.find(f".//{{{DASH_NS}}}AdaptationSet[@contentType='video']")
    assert video_set.get("selectionPriority") is None and video_set.get("id") == "0"


def test_master_lists_each_codecs_variants_with_their_codecs():
    text = multivariant_playlist(_two_codec_tracks(), [audio("aac-eng-0", "eng")])
    playlists = m3u8.loads(text).playlists
    assert len(playlists) == 4
    codecs = {p.uri.split("/")[1]: p.stream_info.codecs for p in playlists}
    assert codecs["av1-540p-1040k"].startswith("av01.") and "mp4a.40.2" in codecs[
        "av1-540p-1040k"]
    assert codecs["540p-1600k"].startswith("avc1.")


def test_each_codec_is_trialled_with_its_software_encoder_on_its_crf_scale():
    from media.plan.trials import _task_key, probe_tasks, trial_record_name

    config = JobConfig(output_root="out", codecs=("h264", "av1")).validate()
    grid = segment_grid(SOURCE.frame_rate, 4.0, 3)
    plain = probe_tasks(SOURCE, JobConfig(output_root="out"), grid)[0]
    h264 = probe_tasks(SOURCE, config, grid, codec="h264")[0]
    av1 = probe_tasks(SOURCE, config, grid, codec="av1")[0]
    assert (plain.codec, plain.settings.encoder, plain.crfs) == ("", "x264", (19.0, 26.0, 33.0))
    assert (h264.settings.encoder, h264.crfs) == ("x264", plain.crfs)
    assert av1.settings.encoder == "svtav1" and av1.codec == "av1"
    assert av1.crfs == tuple(codec_crf("av1", c) for c in plain.crfs)
    assert av1.sizes == plain.sizes and av1.span == plain.span  # the same samples
    # a codec's records are its own; the one ladder's keep their names and keys
    uri = "out/_work/film/trials/seg00002.json"
    assert trial_record_name(plain, uri) == uri
    assert trial_record_name(av1, uri) == "out/_work/film/trials/av1-seg00002.json"
    assert "encoder" not in _task_key(plain) and _task_key(av1)["encoder"] == "svtav1"


def test_split_gives_every_chunk_all_codecs_renditions_each_with_its_encoder():
    from media.core.types import TitlePlan
    from transforms.split import chunk_groups, plan_tasks

    config = JobConfig(output_root="out", codecs=("h264", "av1"), max_renditions=2).validate()
    renditions = codec_ladders(fixed_ladder(SOURCE, max_renditions=2), config.codecs, "auto")
    plan = TitlePlan(SOURCE, tuple(renditions), "fixed", segment_grid(SOURCE.frame_rate, 4.0, 1))
    tasks, _, _ = plan_tasks(plan, config)
    groups = chunk_groups(tasks)
    assert len(groups) == 3  # 250 frames: chunks of 100, 100, 50
    for group in groups:
        assert [t.rendition.encoder for t in group.tasks] == ["auto", "auto", "auto-av1",
                                                             "auto-av1"]
        assert len({t.track_position for t in group.tasks}) == 4
