"""The MPD from media/package/dash.py, read back with `mpegdash` (and ElementTree for raw values).

Same ladder as tests/test_hls.py: three 25 fps renditions of three 4 s segments
(timescale 12800) and one 48 kHz AAC track of whole AAC frames. The checks expand each
SegmentTimeline back into start times and durations and resolve each SegmentTemplate
into file names, and compare both with the tracks the MPD was made from.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
from mpegdash.parser import MPEGDASHParser

from media.core import naming
from media.core.types import PackagedTrack, Segment
from media.package.dash import (
    DASH_NS,
    TimelineEntry,
    frame_rate_attr,
    iso8601_duration,
    mpd,
    segment_timeline,
)


def make_track(kind: str, track_id: str, timescale: int, ticks: list[int], sizes: list[int],
               starts: list[int] | None = None, **fields) -> PackagedTrack:
    """A track named as media.core.naming names it; contiguous from 0 unless `starts` is given."""
    starts = starts or [sum(ticks[:i]) for i in range(len(ticks))]
    segments = tuple(
        Segment(n, naming.segment_uri(kind, track_id, n), start, duration, size)
        for n, (start, duration, size) in enumerate(zip(starts, ticks, sizes, strict=True), start=1)
    )
    return PackagedTrack(kind=kind, track_id=track_id, timescale=timescale,
                         init_uri=naming.init_uri(kind, track_id), segments=segments, **fields)


def video(track_id: str, size: tuple[int, int], codecs: str, sizes: list[int]) -> PackagedTrack:
    return make_track("video", track_id, 12_800, [51_200] * 3, sizes, codecs=codecs,
                      width=size[0], height=size[1], frame_rate=Fraction(25))


def audio(track_id: str, language: str, channels: int = 2, **fields) -> PackagedTrack:
    fields.setdefault("ticks", [193_536, 190_464, 192_512])
    fields.setdefault("sizes", [64_600, 63_100, 64_300])
    return make_track("audio", track_id, 48_000, codecs="mp4a.40.2", language=language,
                      channels=channels, sample_rate_hz=48_000, **fields)


V540 = video("540p-2000k", (960, 540), "avc1.64001f", [1_000_000, 900_000, 800_000])
V360 = video("360p-1000k", (640, 360), "avc1.64001e", [500_000, 450_000, 400_000])
V234 = video("234p-500k", (416, 234), "avc1.640015", [250_000, 300_000, 200_000])
LADDER = [V540, V234, V360]
ENG = audio("aac-eng-0", "eng")
# Peaks (TD 4, largest single segment): 300000*8/4, 500000*8/4, 1000000*8/4, and for
# the audio 64300*8 / (192512/48000 s) = 128257.98 -> 128258.
EXPECTED_VIDEO = [  # id, bandwidth, codecs, width, height: bandwidth ascending
    ("234p-500k", 600_000, "avc1.640015", 416, 234),
    ("360p-1000k", 1_000_000, "avc1.64001e", 640, 360),
    ("540p-2000k", 2_000_000, "avc1.64001f", 960, 540),
]


def expand(timeline) -> list[tuple[int, int]]:
    """(start, duration) of every segment a parsed SegmentTimeline describes."""
    segments, t = [], 0
    for s in timeline.Ss:
        t = t if s.t is None else s.t
        for _ in range((s.r or 0) + 1):
            segments.append((t, s.d))
            t += s.d
    return segments


def resolve(template: str, representation_id: str, number: int | None = None) -> str:
    uri = template.replace("$RepresentationID$", representation_id)
    return uri if number is None else uri.replace("$Number%05d$", f"{number:05d}")


def assert_addresses(representation, track: PackagedTrack) -> None:
    """The timeline and template of a Representation name exactly the track's segments."""
    [template] = representation.segment_templates
    [timeline] = template.segment_timelines
    assert template.timescale == track.timescale
    assert template.start_number == 1
    assert expand(timeline) == [(s.start_ticks, s.duration_ticks) for s in track.segments]
    numbers = range(template.start_number, template.start_number + len(expand(timeline)))
    assert [resolve(template.media, representation.id, n) for n in numbers] == [
        s.uri for s in track.segments]
    assert resolve(template.initialization, representation.id) == track.init_uri


def test_mpd_top_level():
    text = mpd(LADDER, [ENG], title="Big Buck Bunny")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<MPD ')
    assert ET.fromstring(text).tag == f"{{{DASH_NS}}}MPD"
    manifest = MPEGDASHParser.parse(text)
    assert manifest.profiles == "urn:mpeg:dash:profile:isoff-live:2011"
    assert manifest.type == "static"
    assert manifest.min_buffer_time == "PT2S"
    # The audio is the longest track: 576512 / 48000 = 12.0106667 s, up to the ms.
    assert manifest.media_presentation_duration == "PT12.011S"
    assert manifest.program_informations[0].titles[0].text == "Big Buck Bunny"
    [period] = manifest.periods
    assert (period.id, period.start) == ("0", "PT0S")
    assert [a.content_type for a in period.adaptation_sets] == ["video", "audio"]


def test_video_adaptation_set():
    text = mpd(LADDER, [ENG])
    video_set = MPEGDASHParser.parse(text).periods[0].adaptation_sets[0]
    assert (video_set.content_type, video_set.mime_type) == ("video", "video/mp4")
    assert (video_set.max_width, video_set.max_height) == (960, 540)
    assert (video_set.max_frame_rate, video_set.par) == ("25", "16:9")
    assert video_set.start_with_sap == 1
    raw = ET.fromstring(text).find(f".//{{{DASH_NS}}}AdaptationSet")
    assert raw.get("segmentAlignment") == "true"  # mpegdash reads any string as True
    got = [(r.id, r.bandwidth, r.codecs, r.width, r.height) for r in video_set.representations]
    assert got == EXPECTED_VIDEO
    tracks = {track.track_id: track for track in LADDER}
    for representation in video_set.representations:
        assert representation.frame_rate == "25"
        assert_addresses(representation, tracks[representation.id])


def test_audio_adaptation_set():
    text = mpd(LADDER, [ENG])
    audio_set = MPEGDASHParser.parse(text).periods[0].adaptation_sets[1]
    assert (audio_set.content_type, audio_set.mime_type, audio_set.lang) == (
        "audio", "audio/mp4", "eng")
    assert audio_set.start_with_sap == 1
    raw = ET.fromstring(text).findall(f".//{{{DASH_NS}}}AdaptationSet")[1]
    assert raw.get("segmentAlignment") == "true"
    [channels] = audio_set.audio_channel_configurations
    assert channels.scheme_id_uri == "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
    assert channels.value == "2"
    [role] = audio_set.roles
    assert (role.scheme_id_uri, role.value) == ("urn:mpeg:dash:role:2011", "main")
    [representation] = audio_set.representations
    assert (representation.id, representation.codecs) == ("aac-eng-0", "mp4a.40.2")
    assert representation.bandwidth == 128_258
    assert representation.audio_sampling_rate == "48000"
    assert_addresses(representation, ENG)


def test_audio_set_per_language():
    fra = audio("aac-fra-1", "fra", channels=6)
    eng_mono = audio("aac-eng-2", "eng", channels=1, sizes=[32_000, 31_000, 32_000])
    manifest = MPEGDASHParser.parse(mpd([V540], [ENG, fra, eng_mono]))
    eng_set, fra_set = manifest.periods[0].adaptation_sets[1:]
    assert (eng_set.lang, fra_set.lang) == ("eng", "fra")
    assert [r.id for r in eng_set.representations] == ["aac-eng-2", "aac-eng-0"]
    # Channel counts differ within English: each Representation states its own.
    assert eng_set.audio_channel_configurations is None
    assert [r.audio_channel_configurations[0].value for r in eng_set.representations] == [
        "1", "2"]
    assert fra_set.audio_channel_configurations[0].value == "6"
    # The first language is the main one; the others are alternates.
    assert [role.value for role in eng_set.roles] == ["main"]
    assert [role.value for role in fra_set.roles] == ["alternate"]


def test_no_audio_gives_only_a_video_set():
    [only] = MPEGDASHParser.parse(mpd(LADDER, [])).periods[0].adaptation_sets
    assert only.content_type == "video"


def test_timeline_with_gap_overlap_and_offset_start():
    track = make_track("audio", "aac-und-0", 48_000, [1024, 1024, 2048, 1024, 1024],
                       [1] * 5, starts=[960, 1984, 3008, 6000, 6900], codecs="mp4a.40.2")
    representation = MPEGDASHParser.parse(mpd([V234], [track])).periods[0] \
        .adaptation_sets[1].representations[0]
    assert_addresses(representation, track)


@pytest.mark.parametrize(
    "starts, durations, expected",
    [
        ([0, 100, 200], [100, 100, 100], [TimelineEntry(0, 100, 2)]),
        ([0, 100, 200], [100, 100, 50], [TimelineEntry(0, 100, 1), TimelineEntry(None, 50, 0)]),
        # a gap (250 -> 300) and an overlap (400 -> 390) each restate t
        ([0, 100, 200, 300, 390], [100, 100, 50, 100, 100],
         [TimelineEntry(0, 100, 1), TimelineEntry(None, 50, 0), TimelineEntry(300, 100, 0),
          TimelineEntry(390, 100, 0)]),
        ([1024], [512], [TimelineEntry(1024, 512, 0)]),
        ([], [], []),
    ],
    ids=["uniform", "short-last", "gap-and-overlap", "offset-start", "empty"],
)
def test_segment_timeline(starts, durations, expected):
    pairs = zip(starts, durations, strict=True)
    segments = [Segment(n, f"seg-{n}", t, d, 1) for n, (t, d) in enumerate(pairs, start=1)]
    assert segment_timeline(segments) == expected


@pytest.mark.parametrize(
    "seconds, expected",
    [
        (Fraction(12), "PT12.000S"),
        (Fraction(576_512, 48_000), "PT12.011S"),
        (Fraction(60), "PT1M0.000S"),
        (Fraction(36_000_000_001, 10**7), "PT1H0M0.001S"),  # 3600.0000001 s rounds up
        (Fraction(37_234_561, 10_000), "PT1H2M3.457S"),
    ],
)
def test_iso8601_duration(seconds, expected):
    assert iso8601_duration(seconds) == expected


@pytest.mark.parametrize(
    "rate, expected",
    [(Fraction(25), "25"), (Fraction(30_000, 1001), "30000/1001"), (Fraction(50, 2), "25")],
)
def test_frame_rate_attr(rate, expected):
    assert frame_rate_attr(rate) == expected


def test_segments_named_off_template_fail_loudly():
    renamed = Segment(1, "video/540p-2000k/segment-1.m4s", 0, 51_200, 1)
    track = make_track("video", "540p-2000k", 12_800, [51_200], [1], codecs="avc1.64001f")
    bad = PackagedTrack(**{**track.__dict__, "segments": (renamed,)})
    with pytest.raises(ValueError, match="SegmentTemplate"):
        mpd([bad], [])


@pytest.mark.parametrize(
    "video_tracks, audio_tracks",
    [([], [ENG]), ([V540, V540], []), ([ENG], []), ([V540], [V234])],
    ids=["no-video", "duplicate-id", "audio-as-video", "video-as-audio"],
)
def test_bad_track_lists_fail_loudly(video_tracks, audio_tracks):
    with pytest.raises(ValueError):
        mpd(video_tracks, audio_tracks)
