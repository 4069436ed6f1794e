"""HLS playlists from media/package/hls.py, read back with the `m3u8` parser.

The ladder: three 25 fps renditions, three segments of 100 frames (51200 ticks of a
12800 timescale, 4 s) each, and one AAC track at 48 kHz whose segments are whole AAC
frames (4.032, 3.968, 4.010667 s). Expected rates are worked in the comments.
"""

from __future__ import annotations

import posixpath
from fractions import Fraction

import m3u8
import pytest

from media.core import naming
from media.core.types import PackagedTrack, Segment
from media.package.hls import media_playlist, multivariant_playlist


def make_track(kind: str, track_id: str, timescale: int, ticks: list[int], sizes: list[int],
               **fields) -> PackagedTrack:
    """A track whose segments follow each other from 0, named as media.core.naming names them."""
    starts = [sum(ticks[:i]) for i in range(len(ticks))]
    segments = tuple(
        Segment(n, naming.segment_uri(kind, track_id, n), start, duration, size)
        for n, (start, duration, size) in enumerate(zip(starts, ticks, sizes, strict=True), start=1)
    )
    return PackagedTrack(kind=kind, track_id=track_id, timescale=timescale,
                         init_uri=naming.init_uri(kind, track_id), segments=segments, **fields)


def video(track_id: str, size: tuple[int, int], codecs: str, sizes: list[int],
          frame_rate: Fraction = Fraction(25)) -> PackagedTrack:
    return make_track("video", track_id, 12_800, [51_200] * len(sizes), sizes, codecs=codecs,
                      width=size[0], height=size[1], frame_rate=frame_rate)


# 4 s segments, TD 4: each single qualifies and no pair does, so peak = largest single.
V540 = video("540p-2000k", (960, 540), "avc1.64001f", [1_000_000, 900_000, 800_000])
V360 = video("360p-1000k", (640, 360), "avc1.64001e", [500_000, 450_000, 400_000])
V234 = video("234p-500k", (416, 234), "avc1.640015", [250_000, 300_000, 200_000])
LADDER = [V540, V234, V360]  # deliberately unsorted
AUDIO_TICKS = [193_536, 190_464, 192_512]
ENG = make_track("audio", "aac-eng-0", 48_000, AUDIO_TICKS, [64_600, 63_100, 64_300],
                 codecs="mp4a.40.2", language="eng", name="English", channels=2,
                 sample_rate_hz=48_000)
# Audio: peak 514400*48000/192512 = 128257.98 -> 128258;
#        average 1536000*48000/576512 = 127886.34 -> 127887.
EXPECTED_VARIANTS = [
    # uri, BANDWIDTH, AVERAGE-BANDWIDTH, CODECS, RESOLUTION
    # 234p: peak 300000*8/4 = 600000, average 750000*8/12 = 500000.
    ("video/234p-500k/playlist.m3u8", 600_000 + 128_258, 500_000 + 127_887,
     "avc1.640015,mp4a.40.2", (416, 234)),
    # 360p: peak 1000000, average 1350000*8/12 = 900000.
    ("video/360p-1000k/playlist.m3u8", 1_000_000 + 128_258, 900_000 + 127_887,
     "avc1.64001e,mp4a.40.2", (640, 360)),
    # 540p: peak 2000000, average 2700000*8/12 = 1800000.
    ("video/540p-2000k/playlist.m3u8", 2_000_000 + 128_258, 1_800_000 + 127_887,
     "avc1.64001f,mp4a.40.2", (960, 540)),
]


@pytest.mark.parametrize(
    "track, extinfs",
    [
        (V540, ["4.000000"] * 3),
        (V234, ["4.000000"] * 3),
        (ENG, ["4.032000", "3.968000", "4.010667"]),
    ],
    ids=["540p", "234p", "audio"],
)
def test_media_playlist(track, extinfs):
    text = media_playlist(track)
    playlist = m3u8.loads(text)
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n")
    assert playlist.version == 7
    assert playlist.target_duration == 4
    assert playlist.media_sequence == 0
    assert playlist.playlist_type == "vod"
    assert playlist.is_independent_segments
    assert playlist.is_endlist
    assert [section.uri for section in playlist.segment_map] == ["init.mp4"]
    assert [s.uri for s in playlist.segments] == [
        "seg-00001.m4s", "seg-00002.m4s", "seg-00003.m4s"]
    assert [f"#EXTINF:{value}," for value in extinfs] == [
        line for line in text.splitlines() if line.startswith("#EXTINF")]
    assert [s.duration for s in playlist.segments] == pytest.approx(
        [float(Fraction(s.duration_ticks, track.timescale)) for s in track.segments], abs=1e-6)
    # Relative to the playlist's folder, the URIs name the written files.
    folder = posixpath.dirname(naming.playlist_uri(track.kind, track.track_id))
    assert [posixpath.join(folder, s.uri) for s in playlist.segments] == [
        s.uri for s in track.segments]
    assert posixpath.join(folder, "init.mp4") == track.init_uri


@pytest.mark.parametrize(
    "ticks, timescale, target",
    [
        ([540_000, 540_000, 180_000], 90_000, 6),  # 6, 6, 2 s
        ([56_320, 56_320, 12_800], 12_800, 4),  # 4.4, 4.4, 1 s
        ([57_600, 51_200], 12_800, 5),  # 4.5 s rounds half up to 5
        ([56_320, 51_200], 12_800, 4),  # 4.4 s rounds to 4
    ],
    ids=["6-6-2", "4.4-4.4-1", "4.5", "4.4"],
)
def test_target_duration_in_playlist(ticks, timescale, target):
    track = make_track("video", "hd", timescale, ticks, [1000] * len(ticks),
                       codecs="avc1.640028", width=1280, height=720, frame_rate=Fraction(25))
    assert m3u8.loads(media_playlist(track)).target_duration == target


def test_multivariant_playlist():
    text = multivariant_playlist(LADDER, [ENG])
    playlist = m3u8.loads(text)
    assert playlist.is_variant
    assert playlist.version == 7
    assert playlist.is_independent_segments
    [media] = playlist.media
    assert (media.type, media.group_id, media.language, media.name) == (
        "AUDIO", "audio", "eng", "English")
    assert (media.default, media.autoselect, media.channels) == ("YES", "YES", "2")
    assert media.uri == "audio/aac-eng-0/playlist.m3u8"
    got = [
        (p.uri, p.stream_info.bandwidth, p.stream_info.average_bandwidth, p.stream_info.codecs,
         p.stream_info.resolution)
        for p in playlist.playlists
    ]
    assert got == EXPECTED_VARIANTS  # BANDWIDTH ascending
    assert {p.stream_info.frame_rate for p in playlist.playlists} == {25.0}
    assert {p.stream_info.audio for p in playlist.playlists} == {"audio"}
    assert text.count("FRAME-RATE=25.000,") == 3


def test_largest_audio_track_sets_the_variant_rate():
    # French: 4.0 s segments; peak 97000*8/4 = 194000, average 288000*8/12 = 192000.
    fra = make_track("audio", "aac-fra-1", 48_000, [192_000] * 3, [96_000, 97_000, 95_000],
                     codecs="mp4a.40.2", language="fra", name="Français", channels=2,
                     sample_rate_hz=48_000)
    playlist = m3u8.loads(multivariant_playlist([V540], [ENG, fra]))
    assert [(m.language, m.name, m.default, m.autoselect) for m in playlist.media] == [
        ("eng", "English", "YES", "YES"), ("fra", "Français", "NO", "YES")]
    [variant] = playlist.playlists
    assert variant.stream_info.bandwidth == 2_000_000 + 194_000
    assert variant.stream_info.average_bandwidth == 1_800_000 + 192_000
    assert variant.stream_info.codecs == "avc1.64001f,mp4a.40.2"


def test_no_audio_means_no_audio_group():
    # 29.97 fps, TD 6 with a short last segment: peak (900k+600k)*8/8 s = 1.5M (the
    # 2 s segment alone is under 3 s); average 1.95M*8/14 s = 1114285.7 -> 1114286.
    hd = make_track("video", "720p-3000k", 90_000, [540_000, 540_000, 180_000],
                    [450_000, 900_000, 600_000], codecs="avc1.64001f", width=1280,
                    height=720, frame_rate=Fraction(30_000, 1001))
    text = multivariant_playlist([hd], [])
    playlist = m3u8.loads(text)
    assert not playlist.media
    [variant] = playlist.playlists
    assert variant.stream_info.audio is None
    assert "AUDIO=" not in text and "EXT-X-MEDIA:" not in text
    assert variant.stream_info.codecs == "avc1.64001f"
    assert variant.stream_info.bandwidth == 1_500_000
    assert variant.stream_info.average_bandwidth == 1_114_286
    assert variant.stream_info.resolution == (1280, 720)
    assert "FRAME-RATE=29.970\n" in text
    assert variant.uri == "video/720p-3000k/playlist.m3u8"


@pytest.mark.parametrize(
    "video_tracks, audio_tracks",
    [
        ([], [ENG]),
        ([V540], [ENG, ENG]),  # two renditions named alike in one group
        ([V540], [make_track("audio", "a", 48_000, [192_000], [1], codecs="mp4a.40.2",
                             name='Say "hi"')]),
    ],
    ids=["no-video", "duplicate-name", "quote-in-name"],
)
def test_unwritable_inputs_fail_loudly(video_tracks, audio_tracks):
    with pytest.raises(ValueError):
        multivariant_playlist(video_tracks, audio_tracks)
