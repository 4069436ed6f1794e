"""A title package end to end: a video with English audio inside, a French 5.1 WAV
beside it and English SRT subtitles become one title with two audio languages,
segmented WebVTT subtitles and I-frame playlists, in HLS and DASH."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from media.package.boxes import (
    TFHD_DURATION,
    TRUN_CTO,
    TRUN_DURATION,
    find_all,
    read_tfhd,
    read_trex,
    read_trun,
    trun_samples,
)
from media.package.isobmff import read_fragment, read_init
from pipeline.local_runner import LOCAL_RUNNER
from tests.media_factory import make_title_package


@pytest.fixture(scope="module")
def package_title(tmp_path_factory) -> Path:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    package = make_title_package(str(tmp_path_factory.mktemp("package")))
    out = tmp_path_factory.mktemp("package-out")
    # veryfast, not ultrafast: B-frames, so video samples have composition offsets.
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=2, chunk_segments=1,
                       encode=EncodeSettings(preset="veryfast"), score_vmaf=False).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        outputs = build_pipeline(p, [package], config)
        assert_that(outputs.published | beam.Map(lambda t: t.title_id), equal_to(["film"]))
    return out / "film"


def _dominant_hz(path: Path) -> tuple[float, int]:
    """(strongest frequency, channel count) of an audio track's decoded samples."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        rate = stream.codec_context.sample_rate
        mono = np.concatenate([
            f.to_ndarray()[0] if f.format.is_planar
            else f.to_ndarray().reshape(-1, channels)[:, 0]
            for f in container.decode(stream)])
    spectrum = np.abs(np.fft.rfft(mono[: rate * 2]))
    return float(np.argmax(spectrum) * rate / min(len(mono), rate * 2)), channels


def _track_file(title: Path, track_id: str, tmp_path: Path) -> Path:
    folder = title / "audio" / track_id
    joined = tmp_path / f"{track_id}.mp4"
    joined.write_bytes((folder / "init.mp4").read_bytes() + b"".join(
        p.read_bytes() for p in sorted(folder.glob("seg-*.m4s"))))
    return joined


def test_the_master_playlist_lists_both_languages_and_the_subtitles(package_title):
    master = (package_title / "master.m3u8").read_text()
    audio = re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO,.*LANGUAGE="(\w+)",NAME="([^"]+)"', master)
    assert audio == [("eng", "English"), ("fra", "Français")]
    assert re.search(r'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="eng",NAME="English",'
                     r'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subtitles/vtt-eng-0/', master)
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 2
    assert all('AUDIO="audio"' in v and 'SUBTITLES="subs"' in v for v in variants)
    assert master.count("#EXT-X-I-FRAME-STREAM-INF:") == 2


def test_the_french_track_is_the_package_wav_downmixed_to_stereo(package_title, tmp_path):
    english = _dominant_hz(_track_file(package_title, "aac-eng-0", tmp_path))
    french = _dominant_hz(_track_file(package_title, "aac-fra-1", tmp_path))
    assert english[0] == pytest.approx(440, abs=5) and english[1] == 2
    assert french[0] == pytest.approx(880, abs=5) and french[1] == 2


def test_subtitles_are_segmented_on_the_video_grid(package_title):
    folder = package_title / "subtitles" / "vtt-eng-0"
    segments = sorted(folder.glob("seg-*.vtt"))
    video = sorted((package_title / "video" / "360p-700k").glob("seg-*.m4s"))
    assert len(segments) == len(video) == 2  # 8 s on a 4 s grid
    first, second = (s.read_text() for s in segments)
    for text in (first, second):
        assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000")
    assert "Hello from the first segment." in first and "Hello" not in second
    # A cue over the 4 s boundary is in both segments, with its own times.
    assert "00:00:03.500 --> 00:00:04.500" in first and "00:00:03.500 --> 00:00:04.500" in second
    assert "<i>This one crosses</i>" in first
    playlist = (folder / "playlist.m3u8").read_text()
    assert "#EXTINF:4.000,\nseg-00001.vtt" in playlist and "#EXT-X-ENDLIST" in playlist
    whole = (folder / "subtitles.vtt").read_text()
    assert whole.count(" --> ") == 3


def test_the_mpd_has_an_adaptation_set_per_language_and_the_text_track(package_title):
    from mpegdash.parser import MPEGDASHParser

    manifest = MPEGDASHParser.parse(str(package_title / "manifest.mpd"))
    sets = manifest.periods[0].adaptation_sets
    assert [(s.content_type, s.lang) for s in sets] == [
        ("video", None), ("audio", "eng"), ("audio", "fra"), ("text", "eng")]
    text = sets[3]
    assert text.mime_type == "text/vtt"
    assert text.representations[0].base_urls[0].base_url_value == (
        "subtitles/vtt-eng-0/subtitles.vtt")


def _earliest_presentation_ticks(init: bytes, segment: bytes) -> int:
    """The earliest presentation time of a CMAF segment's samples: its decode time plus
    the smallest of (decode offset + composition offset) over its samples."""
    info = read_init(init)
    [tfhd] = find_all(segment, "moof/traf/tfhd")
    trex = read_trex(init, info.track_id)
    default = read_tfhd(segment, tfhd).fields.get(TFHD_DURATION, trex.duration if trex else 0)
    decode, earliest = 0, None
    for trun in find_all(segment, "moof/traf/trun"):
        for sample in trun_samples(segment, read_trun(segment, trun)):
            presented = decode + sample.get(TRUN_CTO, 0)
            earliest = presented if earliest is None else min(earliest, presented)
            decode += sample.get(TRUN_DURATION, default)
    return read_fragment(segment, info).base_decode_ticks + earliest


def test_every_track_presents_from_zero_at_its_mpd_times(package_title):
    # A track whose first sample is presented after 0 (a composition offset, an audio
    # priming delay) leaves a gap at the start that a player must jump; the MPD's S@t
    # is a segment's earliest presentation time.
    from mpegdash.parser import MPEGDASHParser

    manifest = MPEGDASHParser.parse(str(package_title / "manifest.mpd"))
    for adaptation_set in manifest.periods[0].adaptation_sets:
        for representation in adaptation_set.representations:
            template = representation.segment_templates[0] if (
                representation.segment_templates) else None
            if template is None:
                continue  # the text track: one WebVTT file
            folder = package_title / adaptation_set.content_type / representation.id
            init = (folder / "init.mp4").read_bytes()
            times, start = [], 0
            for entry in template.segment_timelines[0].Ss:
                start = entry.t if entry.t is not None else start
                for _ in range((entry.r or 0) + 1):
                    times.append(start)
                    start += entry.d
            segments = sorted(folder.glob("seg-*.m4s"))
            presented = [_earliest_presentation_ticks(init, p.read_bytes()) for p in segments]
            assert presented == times, representation.id
            assert presented[0] == 0, representation.id


def test_iframe_playlists_point_at_each_segments_idr(package_title):
    playlist = (package_title / "video" / "360p-700k" / "iframes.m3u8").read_text()
    assert "#EXT-X-I-FRAMES-ONLY" in playlist and '#EXT-X-MAP:URI="init.mp4"' in playlist
    ranges = re.findall(r"#EXT-X-BYTERANGE:(\d+)@(\d+)\n(seg-\d+\.m4s)", playlist)
    assert len(ranges) == 2
    for length, offset, name in ranges:
        size = (package_title / "video" / "360p-700k" / name).stat().st_size
        assert int(offset) > 0 and int(offset) + int(length) <= size


def test_the_report_names_every_track_and_keeps_the_package_metadata(package_title):
    report = json.loads((package_title / "report.json").read_text())
    tracks = {(t["kind"], t["id"]): t for t in report["tracks"]}
    assert tracks[("audio", "aac-fra-1")]["name"] == "Français"
    assert tracks[("subtitles", "vtt-eng-0")]["language"] == "eng"
    assert report["source"]["package_uri"].endswith("film.title.json")
    assert json.loads(report["source"]["metadata_json"]) == {"studio": "ladderflow tests"}


def test_the_title_meets_the_hls_authoring_rules(package_title):
    from tests.hls_authoring import check_hls_title

    assert check_hls_title(package_title) == []
