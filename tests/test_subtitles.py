"""Subtitles from media/package/subtitles.py: SRT and WebVTT in, WebVTT and HLS segments out.

Times are checked as exact Fractions; the FFmpeg test reads our WebVTT with FFmpeg's own
demuxer, so a document we write is one a third-party parser accepts.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from media.core.errors import MediaError
from media.core.ffmpeg import ffmpeg_argv, run
from media.package.subtitles import (
    Cue,
    SubtitleError,
    format_srt_time,
    format_webvtt_time,
    read_subtitles,
    segment_webvtt,
    subtitle_media_playlist,
    to_webvtt,
)

F = Fraction

SRT = """1
00:00:01,000 --> 00:00:02,500
Hello there.
Second line.

2
00:00:03,250 --> 00:00:04,000
<i>Tom</i> & Jerry
"""


def srt(*blocks: str) -> bytes:
    return "\n\n".join(blocks).encode()


def cues_of(text: str | bytes) -> list[tuple[Fraction, Fraction, str]]:
    data = text.encode() if isinstance(text, str) else text
    return [(cue.start, cue.end, cue.text) for cue in read_subtitles(data, "test.srt")]


# --- reading SRT --------------------------------------------------------------------------


def test_srt_times_are_exact_and_text_lines_joined():
    cues = read_subtitles(SRT.encode(), "film.srt")
    assert cues == [
        Cue(F(1), F(5, 2), "Hello there.\nSecond line."),
        Cue(F(13, 4), F(4), "<i>Tom</i> &amp; Jerry"),
    ]
    assert all(isinstance(cue.start, Fraction) and cue.settings == "" for cue in cues)


@pytest.mark.parametrize(
    "data",
    [
        SRT.encode("utf-8-sig"),
        SRT.encode("utf-16"),  # with its BOM, native order
        b"\xff\xfe" + SRT.encode("utf-16-le"),
        b"\xfe\xff" + SRT.encode("utf-16-be"),
        SRT.replace("\n", "\r\n").encode(),
        SRT.replace("\n", "\r").encode(),
    ],
    ids=["utf8-bom", "utf16", "utf16le-bom", "utf16be-bom", "crlf", "cr"],
)
def test_encodings_and_line_endings_read_the_same(data):
    assert cues_of(data) == cues_of(SRT)


def test_cp1252_without_bom_falls_back_from_utf8():
    data = "1\n00:00:01,000 --> 00:00:02,000\nCafé \u2019s\n".encode("cp1252")
    assert cues_of(data) == [(F(1), F(2), "Café \u2019s")]


def test_latin1_fallback_for_bytes_cp1252_leaves_undefined():
    data = b"1\n00:00:01,000 --> 00:00:02,000\nA\x81B\n"
    assert cues_of(data) == [(F(1), F(2), "A\x81B")]


def test_missing_indexes_extra_blank_lines_and_dots():
    data = (
        "\n\n00:00:01.000 --> 00:00:02.000\nno index\n\n\n\n"
        "7\n00:00:03,5 --> 00:00:04,25\nshort fractions\n\n"
        "00:00:05,000-->00:00:06,000 X1:100 X2:200 Y1:10 Y2:20\nno spaces, coordinates\n\n\n"
    )
    assert cues_of(data) == [
        (F(1), F(2), "no index"),
        (F(7, 2), F(17, 4), "short fractions"),
        (F(5), F(6), "no spaces, coordinates"),
    ]


def test_blank_line_inside_srt_text_is_dropped_and_number_in_text_kept():
    data = srt(
        "1\n00:00:01,000 --> 00:00:02,000\nfirst", "1984", "2\n00:00:03,000 --> 00:00:04,000\nx"
    )
    assert cues_of(data) == [(F(1), F(2), "first\n1984"), (F(3), F(4), "x")]


def test_srt_tags_kept_dropped_and_escaped():
    data = srt(
        "1\n00:00:01,000 --> 00:00:02,000\n"
        '{\\an8}<font color="#ffff00"><I>Top</I></font> <b>bold</b> <u>u</u>',
        "2\n00:00:03,000 --> 00:00:04,000\nI <3 R&D &amp; a > b <br/>",
    )
    assert cues_of(data) == [
        (F(1), F(2), "<i>Top</i> <b>bold</b> <u>u</u>"),
        (F(3), F(4), "I &lt;3 R&amp;D &amp; a &gt; b"),
    ]


def test_empty_and_zero_length_cues_are_dropped():
    data = srt(
        "1\n00:00:01,000 --> 00:00:02,000\n",
        "2\n00:00:02,000 --> 00:00:03,000\n{\\an8}<i></i>",
        "3\n00:00:04,000 --> 00:00:04,000\nnever shown",
        "4\n00:00:05,000 --> 00:00:06,000\nkept",
    )
    assert cues_of(data) == [(F(5), F(6), "kept")]


def test_cues_come_back_sorted_by_start():
    data = srt(
        "1\n00:00:05,000 --> 00:00:06,000\nlate",
        "2\n00:00:01,000 --> 00:00:09,000\nearly",
        "3\n00:00:05,000 --> 00:00:05,500\nlate too",
    )
    assert [text for _, _, text in cues_of(data)] == ["early", "late", "late too"]


# --- reading WebVTT -----------------------------------------------------------------------

VTT = """WEBVTT - a title
Kind: captions

STYLE
::cue { color: yellow }

NOTE this is a comment
that spans lines

REGION
id:top width:40%

intro
00:01.000 --> 00:02.500 line:0 align:start
<v Narrator>Hello</v>
again

NOTE another

01:00:00.000 --> 01:00:01.001   position:10%
Late

12:34.567 --> 12:35.000
Middle
"""


def test_webvtt_blocks_settings_and_short_times():
    assert read_subtitles(VTT.encode(), "film.vtt") == [
        Cue(F(1), F(5, 2), "<v Narrator>Hello</v>\nagain", "line:0 align:start"),
        Cue(F(754567, 1000), F(755), "Middle"),
        Cue(F(3600), F(3600) + F(1001, 1000), "Late", "position:10%"),
    ]


def test_webvtt_text_is_kept_verbatim_and_orphan_blocks_ignored():
    data = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nR&amp;D &lt;3\n"
        "00:00:03.000 --> 00:00:04.000\nno blank line before me\n\n"
        "orphan text\nwithout timing\n"
    )
    assert cues_of(data) == [
        (F(1), F(2), "R&amp;D &lt;3"),
        (F(3), F(4), "no blank line before me"),
    ]


def test_webvtt_with_bom_and_crlf():
    data = ("WEBVTT\r\n\r\n00:00:01.000 --> 00:00:02.000\r\nhi\r\n").encode("utf-8-sig")
    assert cues_of(data) == [(F(1), F(2), "hi")]


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "test.srt: the file is empty"),
        (b"WEBVTT\n\nNOTE nothing here\n", "test.srt: no cue with text"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\n", "test.srt: no cue with text"),
        (b"just some words\n", "neither WebVTT"),
        (
            b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:05,000 --> 00:00:04,000\nx\n",
            "test.srt: line 6: the cue ends (00:00:04,000) before it starts (00:00:05,000)",
        ),
        (
            b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:61.000 --> 01:02.000\nx\n",
            "test.srt: line 6: '00:61.000' has minutes or seconds over 59",
        ),
        (b"1\n00:00:01,000 --> soon\nx\n", "test.srt: line 2: bad timing line"),
        (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000line:0\nx\n", "line 3: bad timing line"),
        (b"1\n00:00:01,000 --> 00:00:02,000 --> 00:00:03,000\nx\n", "line 2: bad timing line"),
        (b"\xff\xfe\x00\xd8", "cannot decode the text"),  # UTF-16 LE: a lone high surrogate
        ("1\n00:00:01,000 --> 00:00:02,000\nx\n".encode("utf-16-le"), "NUL characters"),
    ],
    ids=[
        "empty",
        "vtt-no-cues",
        "srt-only-empty-cues",
        "unknown",
        "end-before-start",
        "minutes-over-59",
        "bad-timing",
        "settings-not-separated",
        "two-arrows",
        "bad-utf16",
        "utf16-without-bom",
    ],
)
def test_errors_name_the_problem_and_hint(data, message):
    with pytest.raises(SubtitleError) as raised:
        read_subtitles(data, "test.srt")
    assert message in str(raised.value)
    assert isinstance(raised.value, MediaError)
    assert "subtitle file" in raised.value.hint


def test_cue_rejects_what_webvtt_cannot_hold():
    with pytest.raises(ValueError, match="0 <= start < end"):
        Cue(F(2), F(2), "x")
    with pytest.raises(ValueError, match="blank lines"):
        Cue(F(1), F(2), "a\n\nb")
    with pytest.raises(ValueError, match="-->"):
        Cue(F(1), F(2), "a --> b")
    assert Cue(1, 2, "x").start == F(1) and isinstance(Cue(1, 2, "x").end, Fraction)


# --- writing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "webvtt", "srt_time"),
    [
        (F(0), "00:00:00.000", "00:00:00,000"),
        (F(1, 3), "00:00:00.333", "00:00:00,333"),
        (F(2001, 2000), "00:00:01.001", "00:00:01,001"),  # 1.0005: half up
        (F(1001, 30), "00:00:33.367", "00:00:33,367"),
        (F(3599_9995, 10000), "01:00:00.000", "01:00:00,000"),  # carries into the hour
        (F(360_000), "100:00:00.000", "100:00:00,000"),
    ],
)
def test_time_formatting_rounds_to_the_millisecond(seconds, webvtt, srt_time):
    assert format_webvtt_time(seconds) == webvtt
    assert format_srt_time(seconds) == srt_time


def test_negative_time_is_refused():
    with pytest.raises(ValueError, match="negative"):
        format_webvtt_time(F(-1, 1000))


def test_to_webvtt_document():
    cues = [
        Cue(F(3), F(4), "second", "align:end"),
        Cue(F(1), F(5, 2), "first\nline two"),
        Cue(F(5), F(5) + F(1, 10_000), "shorter than a millisecond"),
    ]
    assert to_webvtt(cues) == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.500\nfirst\nline two\n\n"
        "00:00:03.000 --> 00:00:04.000 align:end\nsecond\n\n"
        "00:00:05.000 --> 00:00:05.001\nshorter than a millisecond\n"
    )
    assert to_webvtt([]) == "WEBVTT\n"


def test_round_trip_srt_to_webvtt_and_back():
    data = srt(
        "1\n00:00:01,000 --> 00:00:02,500\n{\\an8}<font face=Arial><i>Top</i></font>",
        "2\n00:00:03,250 --> 00:00:04,000\nTom & Jerry <3\nline two",
        "3\n01:02:03,004 --> 01:02:05,000\n<b>Bold</b>",
    )
    cues = read_subtitles(data, "film.srt")
    again = read_subtitles(to_webvtt(cues).encode(), "film.vtt")
    assert again == cues
    assert read_subtitles(to_webvtt(again).encode()) == cues


def test_webvtt_round_trip_keeps_settings():
    cues = read_subtitles(VTT.encode())
    assert read_subtitles(to_webvtt(cues).encode()) == cues


def test_ffmpeg_reads_our_webvtt(tmp_path):
    cues = read_subtitles(
        srt(
            "1\n00:00:01,000 --> 00:00:02,500\n<i>Hello</i> Tom & Jerry <3",
            "2\n00:00:03,000 --> 00:00:04,000\nsecond <b>line</b>\nand <u>third</u>",
            "3\n01:00:03,333 --> 01:00:04,000\nlate",
        ),
        "film.srt",
    )
    vtt, out = tmp_path / "in.vtt", tmp_path / "out.srt"
    vtt.write_text(to_webvtt(cues), encoding="utf-8")
    run(ffmpeg_argv("-i", str(vtt), str(out)), timeout_s=30)
    back = read_subtitles(out.read_bytes(), "out.srt")
    assert [(c.start, c.end, c.text) for c in back] == [(c.start, c.end, c.text) for c in cues]


# --- HLS segments -------------------------------------------------------------------------

SEGMENT = F(4004, 1000)  # 4.004 s: 120 frames at 30000/1001
STARTS = [SEGMENT * i for i in range(3)]
DURATIONS = [SEGMENT, SEGMENT, F(2)]
HEADER = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n"


def test_segments_repeat_a_cue_that_spans_a_boundary():
    spanning = Cue(F(3), F(5), "across the boundary")
    at_boundary = Cue(SEGMENT * 2, F(9), "starts exactly at segment 3")
    ends_at_boundary = Cue(F(1), SEGMENT, "ends exactly at segment 2")
    outside = Cue(F(20), F(21), "after the grid")
    docs = segment_webvtt([at_boundary, spanning, ends_at_boundary, outside], STARTS, DURATIONS)
    assert docs == [
        HEADER + "\n00:00:01.000 --> 00:00:04.004\nends exactly at segment 2\n\n"
        "00:00:03.000 --> 00:00:05.000\nacross the boundary\n",
        HEADER + "\n00:00:03.000 --> 00:00:05.000\nacross the boundary\n",
        HEADER + "\n00:00:08.008 --> 00:00:09.000\nstarts exactly at segment 3\n",
    ]
    for doc in docs:
        assert read_subtitles(doc.encode())  # each segment is a WebVTT document


def test_segment_without_cues_is_a_header_only_document():
    docs = segment_webvtt([Cue(F(9), F(10), "last")], STARTS, DURATIONS, mpegts_zero=900_000)
    header = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n"
    assert docs[:2] == [header, header]
    assert docs[2].startswith(header + "\n00:00:09.000 --> 00:00:10.000\nlast")


def test_segment_grid_is_checked():
    with pytest.raises(ValueError, match="3 segment starts but 2 durations"):
        segment_webvtt([], STARTS, DURATIONS[:2])
    with pytest.raises(ValueError, match="positive"):
        segment_webvtt([], [F(0)], [F(0)])
    with pytest.raises(ValueError, match="segment 1 starts at 3 s, before the one before it"):
        segment_webvtt([], [F(0), F(3)], [F(4), F(4)])
    with pytest.raises(ValueError, match="33-bit"):
        segment_webvtt([], STARTS, DURATIONS, mpegts_zero=2**33)


def test_subtitle_media_playlist_lines():
    uris = [f"seg-{n:05d}.vtt" for n in range(1, 4)]
    playlist = subtitle_media_playlist(uris, [SEGMENT, SEGMENT, F(20005, 10000)], 4)
    assert playlist.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:4",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXTINF:4.004,",
        "seg-00001.vtt",
        "#EXTINF:4.004,",
        "seg-00002.vtt",
        "#EXTINF:2.001,",  # 2.0005 rounds half up
        "seg-00003.vtt",
        "#EXT-X-ENDLIST",
    ]
    assert playlist.endswith("#EXT-X-ENDLIST\n")


def test_subtitle_media_playlist_refuses_bad_input():
    with pytest.raises(ValueError, match="rounds above the target duration"):
        subtitle_media_playlist(["a.vtt"], [F(9, 2)], 4)  # 4.5 rounds to 5
    with pytest.raises(ValueError, match="2 segment URIs but 1 durations"):
        subtitle_media_playlist(["a.vtt", "b.vtt"], [F(4)], 4)
    with pytest.raises(ValueError, match="playlist URI"):
        subtitle_media_playlist(["a\nb.vtt"], [F(4)], 4)
    with pytest.raises(ValueError, match="at least one segment"):
        subtitle_media_playlist([], [], 4)
