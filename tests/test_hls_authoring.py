"""The HLS authoring checker (tests/hls_authoring.py): on synthetic titles, then on ours.

A small conforming title is written to tmp_path (two variants, one audio rendition, one
I-frame playlist, segment files of known sizes); the checker must find nothing in it, and
must report each rule when one file is broken to violate it, so it cannot pass vacuously.
Then it runs on the title the end-to-end TestPipeline run publishes. (The per-title run's
two titles are checked in tests/test_per_title_e2e.py: its fixture is module-scoped, and
importing it here would run that pipeline a second time.)
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from pathlib import Path

import pytest

from media.package.bandwidth import peak_bandwidth_bps
from tests.hls_authoring import _peak_bps, check_hls_title
from tests.test_bandwidth import PEAK_CASES

MASTER = "master.m3u8"
LOW = "video/low/playlist.m3u8"
HIGH = "video/high/playlist.m3u8"
AUDIO = "audio/en/playlist.m3u8"
IFRAMES = "video/high/iframes.m3u8"

DURATIONS = ["4.000000", "4.000000", "2.000000"]
# Segment sizes in bytes. With a 4 s target the peak window is 2 s to 6 s, so the peak is
# the largest single-segment rate (4 s + 4 s is too long; 4 s + 2 s never beats the 4 s
# one here). low: 100, 120, 80 kbit/s -> peak 120 000, average 1 040 000 / 10 = 104 000.
SIZES = {
    "video/low": [50_000, 60_000, 20_000],
    "video/high": [200_000, 240_000, 80_000],  # 400, 480, 320 -> peak 480 000, avg 416 000
    "audio/en": [8_000, 8_000, 4_000],  # 16 kbit/s throughout
}
# I-frames: 5 000 bytes at the start of each high segment: 10, 10, 20 kbit/s (the last
# lasts 2 s) -> peak 20 000; average 120 000 / 10 = 12 000.
MASTER_TEXT = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="en",NAME="English",DEFAULT=YES,\
AUTOSELECT=YES,CHANNELS="2",URI="audio/en/playlist.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=136000,AVERAGE-BANDWIDTH=120000,CODECS="avc1.64001e,mp4a.40.2",\
RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO="aud"
video/low/playlist.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=496000,AVERAGE-BANDWIDTH=432000,CODECS="avc1.64001f,mp4a.40.2",\
RESOLUTION=1280x720,FRAME-RATE=25.000,AUDIO="aud"
video/high/playlist.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=20000,AVERAGE-BANDWIDTH=12000,CODECS="avc1.64001f",\
RESOLUTION=1280x720,URI="video/high/iframes.m3u8"
"""
AVC_BYTES = {"video/low": "64001e", "video/high": "64001f"}


def _media_text(extra_header: str = "", entries: str | None = None) -> str:
    if entries is None:
        entries = "".join(
            f"#EXTINF:{d},\nseg-{n:05d}.m4s\n" for n, d in enumerate(DURATIONS, start=1)
        )
    return (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n{extra_header}"
        f'#EXT-X-MAP:URI="init.mp4"\n{entries}#EXT-X-ENDLIST\n'
    )


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _video_init(profile_compat_level: str) -> bytes:
    """ftyp + moov with one H.264 trak (tkhd, mdhd, hdlr, stsd/avc1/avcC): what
    media/package/isobmff.py's `read_init` needs to hand the checker the avcC."""
    avcc = _box(b"avcC", bytes([1]) + bytes.fromhex(profile_compat_level) + b"\xff\xe0\x00")
    avc1 = _box(b"avc1", bytes(24) + (640).to_bytes(2, "big") + (360).to_bytes(2, "big")
                + bytes(50) + avcc)  # fmt: skip
    stsd = _box(b"stsd", bytes(4) + (1).to_bytes(4, "big") + avc1)
    tkhd = _box(b"tkhd", bytes(12) + (1).to_bytes(4, "big") + bytes(68))  # track 1
    mdhd = _box(b"mdhd", bytes(12) + (12_800).to_bytes(4, "big") + bytes(8))  # timescale
    hdlr = _box(b"hdlr", bytes(8) + b"vide" + bytes(13))
    mdia = _box(b"mdia", mdhd + hdlr + _box(b"minf", _box(b"stbl", stsd)))
    moov = _box(b"moov", _box(b"trak", tkhd + mdia))
    return _box(b"ftyp", b"iso6\x00\x00\x00\x00iso6cmfc") + moov


def _write_title(root: Path) -> Path:
    root.mkdir()
    (root / MASTER).write_text(MASTER_TEXT)
    for track, sizes in SIZES.items():
        folder = root / track
        folder.mkdir(parents=True)
        for number, size in enumerate(sizes, start=1):
            (folder / f"seg-{number:05d}.m4s").write_bytes(bytes(size))
        init = _video_init(AVC_BYTES[track]) if track in AVC_BYTES else _box(b"ftyp", bytes(8))
        (folder / "init.mp4").write_bytes(init)
        (folder / "playlist.m3u8").write_text(_media_text())
    i_frames = "".join(
        f"#EXTINF:{d},\n#EXT-X-BYTERANGE:5000@0\nseg-{n:05d}.m4s\n"
        for n, d in enumerate(DURATIONS, start=1)
    )
    (root / IFRAMES).write_text(_media_text("#EXT-X-I-FRAMES-ONLY\n", i_frames))
    return root


@pytest.fixture
def title(tmp_path) -> Path:
    return _write_title(tmp_path / "title")


def _edit(root: Path, rel: str, old: str, new: str, line_prefix: str = "") -> None:
    """Replace the first `old` in `rel`, or in its first line starting with `line_prefix`."""
    text = (root / rel).read_text()
    if not line_prefix:
        assert old in text, f"{old!r} not in {rel}"
        (root / rel).write_text(text.replace(old, new, 1))
        return
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith(line_prefix) and old in line:
            lines[index] = line.replace(old, new, 1)
            break
    else:
        raise AssertionError(f"{old!r} not in a line of {rel} starting with {line_prefix!r}")
    (root / rel).write_text("".join(lines))


def _report(violations: list[str]) -> str:
    return "\n".join(["HLS authoring violations:", *violations])


def test_the_synthetic_title_conforms(title):
    violations = check_hls_title(title)
    assert violations == [], _report(violations)


def test_bandwidths_a_few_percent_off_are_within_the_10_percent(title):
    _edit(title, MASTER, "BANDWIDTH=136000,", "BANDWIDTH=142800,")  # +5 %
    _edit(title, MASTER, "AVERAGE-BANDWIDTH=432000,", "AVERAGE-BANDWIDTH=400000,")  # -7.4 %
    violations = check_hls_title(title)
    assert violations == [], _report(violations)


STREAM_INF = "#EXT-X-STREAM-INF"
I_FRAME_INF = "#EXT-X-I-FRAME-STREAM-INF"
MEDIA = "#EXT-X-MEDIA"
HIGH_VARIANT = MASTER_TEXT[
    MASTER_TEXT.index("#EXT-X-STREAM-INF:BANDWIDTH=496000") : MASTER_TEXT.index(I_FRAME_INF)
]

# (file, old, new, line prefix, fragments every one of which a violation must contain)
TEXT_CASES = {
    "master-first-line": (MASTER, "#EXTM3U", "# made by hand\n#EXTM3U", "", ["'#EXTM3U'"]),
    "media-first-line": (LOW, "#EXTM3U", "#EXT-X-VERSION:7\n#EXTM3U", "", ["'#EXTM3U'"]),
    "no-version": (LOW, "#EXT-X-VERSION:7\n", "", "", ["no EXT-X-VERSION"]),
    "version-too-low-for-map": (AUDIO, "VERSION:7", "VERSION:5", "", ["requires version 6"]),
    "version-twice": (
        MASTER,
        "VERSION:7\n",
        "VERSION:7\n#EXT-X-VERSION:7\n",
        "",
        ["2 EXT-X-VERSION tags"],
    ),
    "no-independent-segments": (
        MASTER,
        "#EXT-X-INDEPENDENT-SEGMENTS\n",
        "",
        "",
        ["no EXT-X-INDEPENDENT-SEGMENTS"],
    ),
    "variant-no-bandwidth": (
        MASTER,
        ":BANDWIDTH=136000,",
        ":",
        STREAM_INF,
        ["EXT-X-STREAM-INF has no BANDWIDTH"],
    ),
    "variant-no-average-bandwidth": (
        MASTER,
        "AVERAGE-BANDWIDTH=120000,",
        "",
        STREAM_INF,
        ["has no AVERAGE-BANDWIDTH", "9.14"],
    ),
    "variant-no-codecs": (
        MASTER,
        'CODECS="avc1.64001e,mp4a.40.2",',
        "",
        STREAM_INF,
        ["has no CODECS", "9.1"],
    ),
    "variant-no-resolution": (
        MASTER,
        "RESOLUTION=640x360,",
        "",
        STREAM_INF,
        ["has no RESOLUTION", "9.2"],
    ),
    "variant-no-frame-rate": (
        MASTER,
        "FRAME-RATE=25.000,",
        "",
        STREAM_INF,
        ["has no FRAME-RATE", "9.15"],
    ),
    "variant-not-followed-by-uri": (
        MASTER,
        "video/low/playlist.m3u8",
        "#EXT-X-PART-INF:PART-TARGET=1\nvideo/low/playlist.m3u8",
        "video/low",
        ["not followed by its URI"],
    ),
    "single-variant": (MASTER, HIGH_VARIANT, "", "", ["1 variant(s)", "9.9"]),
    "media-no-type": (MASTER, "TYPE=AUDIO,", "", MEDIA, ["EXT-X-MEDIA has no TYPE"]),
    "media-no-group-id": (MASTER, 'GROUP-ID="aud",', "", MEDIA, ["has no GROUP-ID"]),
    "media-no-name": (MASTER, 'NAME="English",', "", MEDIA, ["has no NAME"]),
    "media-no-language": (MASTER, 'LANGUAGE="en",', "", MEDIA, ["has no LANGUAGE", "8.10"]),
    "unknown-audio-group": (
        MASTER,
        'AUDIO="aud"',
        'AUDIO="main"',
        STREAM_INF,
        ['AUDIO="main" names no EXT-X-MEDIA group'],
    ),
    "i-frame-no-bandwidth": (
        MASTER,
        ":BANDWIDTH=20000,",
        ":",
        I_FRAME_INF,
        ["EXT-X-I-FRAME-STREAM-INF has no BANDWIDTH"],
    ),
    "i-frame-no-codecs": (
        MASTER,
        'CODECS="avc1.64001f",',
        "",
        I_FRAME_INF,
        ["EXT-X-I-FRAME-STREAM-INF has no CODECS", "9.3"],
    ),
    "i-frame-no-resolution": (
        MASTER,
        "RESOLUTION=1280x720,",
        "",
        I_FRAME_INF,
        ["EXT-X-I-FRAME-STREAM-INF has no RESOLUTION", "9.4"],
    ),
    "i-frame-no-uri": (
        MASTER,
        ',URI="video/high/iframes.m3u8"',
        "",
        I_FRAME_INF,
        ["EXT-X-I-FRAME-STREAM-INF has no quoted URI"],
    ),
    "i-frame-playlist-without-i-frames-only": (
        IFRAMES,
        "#EXT-X-I-FRAMES-ONLY\n",
        "",
        "",
        ["without EXT-X-I-FRAMES-ONLY (6.8)"],
    ),
    "no-playlist-type": (
        LOW,
        "#EXT-X-PLAYLIST-TYPE:VOD\n",
        "",
        "",
        ["EXT-X-PLAYLIST-TYPE is absent", "8.6"],
    ),
    "event-playlist-type": (AUDIO, "TYPE:VOD", "TYPE:EVENT", "", ["not one VOD"]),
    "no-endlist": (HIGH, "#EXT-X-ENDLIST\n", "", "", ["no EXT-X-ENDLIST"]),
    "no-map": (LOW, '#EXT-X-MAP:URI="init.mp4"\n', "", "", ["no EXT-X-MAP", "8.20"]),
    "target-duration-not-integer": (
        LOW,
        "TARGETDURATION:4",
        "TARGETDURATION:4.0",
        "",
        ["EXT-X-TARGETDURATION '4.0' is not a positive decimal"],
    ),
    "segment-over-target": (
        LOW,
        "#EXTINF:2.000000,",
        "#EXTINF:4.600000,",
        "",
        ["rounds to 5 > EXT-X-TARGETDURATION 4", "by more than 0.5 s (7.7"],
    ),
    "short-segment-before-the-last": (
        AUDIO,
        "#EXTINF:4.000000,",
        "#EXTINF:2.900000,",
        "",
        ["other than the last is more than 1 s", "7.6"],
    ),
    "uri-without-extinf": (LOW, "#EXTINF:4.000000,\n", "", "", ["without an EXTINF"]),
    "malformed-extinf": (LOW, "#EXTINF:4.000000,", "#EXTINF:four,", "", ["EXTINF 'four,' is not"]),
    "byterange-past-the-end": (
        IFRAMES,
        "5000@0",
        "5000@239000",
        "#EXT-X-BYTERANGE",
        ["runs past the end"],
    ),
    "bandwidth-20-percent-high": (
        MASTER,
        "BANDWIDTH=136000,",
        "BANDWIDTH=163200,",
        STREAM_INF,
        ["BANDWIDTH=163200 but the measured peak bit rate is 136000", "1.27"],
    ),
    "bandwidth-20-percent-low": (
        MASTER,
        "BANDWIDTH=496000,",
        "BANDWIDTH=396800,",
        STREAM_INF,
        ["BANDWIDTH=396800 but the measured peak", "+25.0 %"],
    ),
    "average-bandwidth-off": (
        MASTER,
        "AVERAGE-BANDWIDTH=120000,",
        "AVERAGE-BANDWIDTH=150000,",
        STREAM_INF,
        ["AVERAGE-BANDWIDTH=150000 but the measured average bit rate is 120000", "1.26"],
    ),
    "i-frame-bandwidth-off": (
        MASTER,
        ":BANDWIDTH=20000,",
        ":BANDWIDTH=40000,",
        I_FRAME_INF,
        ["BANDWIDTH=40000 but the measured peak bit rate is 20000"],
    ),
    "codecs-not-rfc6381": (
        MASTER,
        "avc1.64001e",
        "avc1.64001",
        STREAM_INF,
        ["'avc1.64001' is not an RFC 6381"],
    ),
    "codecs-free-text": (MASTER, "mp4a.40.2", "aac", STREAM_INF, ["'aac' is not an RFC 6381"]),
    "codecs-not-the-init-avcc": (
        MASTER,
        "avc1.64001e",
        "avc1.4d001e",
        STREAM_INF,
        ["avc1.4d001e does not match", "avcC"],
    ),
    "h264-above-high-profile": (
        MASTER,
        "avc1.64001f,",
        "avc1.6e001f,",
        STREAM_INF,
        ["profile_idc 110", "1.3b"],
    ),
    "no-audio-codec-with-audio-group": (
        MASTER,
        "avc1.64001e,mp4a.40.2",
        "avc1.64001e",
        STREAM_INF,
        ["lists no audio codec"],
    ),
    "audio-target-duration-differs": (
        AUDIO,
        "TARGETDURATION:4",
        "TARGETDURATION:5",
        "",
        ["different target durations", "8.2"],
    ),
    "audio-duration-differs": (
        AUDIO,
        "#EXTINF:2.000000,",
        "#EXTINF:2.100000,",
        "",
        ["cover different durations", "100.0 ms", "8.3"],
    ),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_each_rule_is_reported(title, case):
    rel, old, new, prefix, fragments = TEXT_CASES[case]
    _edit(title, rel, old, new, prefix)
    violations = check_hls_title(title)
    assert violations, f"{case}: nothing reported"
    for fragment in fragments:
        assert any(fragment in v for v in violations), (fragment, _report(violations))


FILE_CASES = {
    "segment-missing": ("video/low/seg-00002.m4s", "segment 'seg-00002.m4s' does not exist"),
    "init-missing": ("video/high/init.mp4", "init segment 'init.mp4' does not exist"),
    "rendition-playlist-missing": (AUDIO, "audio/en/playlist.m3u8 does not exist"),
    "variant-playlist-missing": (LOW, "video/low/playlist.m3u8 does not exist"),
    "master-missing": (MASTER, "master.m3u8: missing"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_missing_files_are_reported(title, case):
    rel, fragment = FILE_CASES[case]
    (title / rel).unlink()
    violations = check_hls_title(title)
    assert any(fragment in v for v in violations), (fragment, _report(violations))


def test_bandwidth_is_measured_from_the_segment_files(title):
    # The playlists are untouched; one segment on disk is 50 % larger than declared for.
    (title / "video/high/seg-00002.m4s").write_bytes(bytes(360_000))
    violations = check_hls_title(title)
    assert any(
        "BANDWIDTH=496000 but the measured peak bit rate is 736000" in v for v in violations
    ), _report(violations)


@pytest.mark.parametrize(
    "sizes, durations, target, expected", [case[1:] for case in PEAK_CASES],
    ids=[case[0] for case in PEAK_CASES],
)  # fmt: skip
def test_the_checkers_peak_gives_the_worked_answers(sizes, durations, target, expected):
    """The hand-worked RFC 8216 cases of tests/test_bandwidth.py, through the checker."""
    exact = [Fraction(d) for d in durations]
    assert math.ceil(_peak_bps(sizes, exact, target)) == expected


def test_the_checkers_peak_agrees_with_media_package_bandwidth():
    """Two roads to one number: the checker's brute force over every set of segments and
    media/package/bandwidth.py's scan agree on random titles (short and long segments,
    so that sets of one, two and more segments win in turn)."""
    rng = random.Random(8216)
    for _ in range(300):
        target = rng.choice([1, 2, 4, 6, 10])
        count = rng.randint(1, 12)
        durations = [
            Fraction(rng.randint(1, 1_000_000 * target + 500_000), 1_000_000) for _ in range(count)
        ]
        sizes = [rng.randint(1_000, 2_000_000) for _ in range(count)]
        expected = peak_bandwidth_bps(sizes, durations, target)
        assert math.ceil(_peak_bps(sizes, durations, target)) == expected, (
            sizes, durations, target,
        )  # fmt: skip


def test_the_published_title_meets_the_hls_authoring_rules(published_title):
    violations = check_hls_title(published_title)
    assert violations == [], _report(violations)


def _add_subtitles(root: Path, bandwidth: str, average: str) -> None:
    """A WebVTT rendition group on the low variant: 20 000 bytes per segment, so 40, 40
    and 80 kbit/s -> peak 80 000, average 48 000 (sizes far from real, to be visible)."""
    folder = root / "subs/en"
    folder.mkdir(parents=True)
    entries = ""
    for number, duration in enumerate(DURATIONS, start=1):
        (folder / f"seg-{number:05d}.vtt").write_bytes(bytes(20_000))
        entries += f"#EXTINF:{duration},\nseg-{number:05d}.vtt\n"
    (folder / "playlist.m3u8").write_text(
        _media_text(entries=entries).replace('#EXT-X-MAP:URI="init.mp4"\n', "")
    )
    _edit(
        root,
        MASTER,
        "#EXT-X-STREAM-INF",
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",'
        'LANGUAGE="en",NAME="English",URI="subs/en/playlist.m3u8"\n#EXT-X-STREAM-INF',
    )
    _edit(root, MASTER, 'AUDIO="aud"', 'AUDIO="aud",SUBTITLES="subs"', STREAM_INF)
    _edit(root, MASTER, "mp4a.40.2", "mp4a.40.2,wvtt", STREAM_INF)
    _edit(root, MASTER, "BANDWIDTH=136000,", f"BANDWIDTH={bandwidth},", STREAM_INF)
    _edit(root, MASTER, "AVERAGE-BANDWIDTH=120000,", f"AVERAGE-BANDWIDTH={average},", STREAM_INF)


def test_a_subtitles_group_adds_its_largest_rendition_to_the_variant(title):
    _add_subtitles(title, bandwidth="216000", average="168000")  # 136 000 + 80 000, ...
    violations = check_hls_title(title)
    assert violations == [], _report(violations)


def test_a_subtitles_group_left_out_of_the_bandwidths_is_reported(title):
    _add_subtitles(title, bandwidth="136000", average="120000")
    violations = check_hls_title(title)
    assert any(
        "BANDWIDTH=136000 but the measured peak bit rate is 216000" in v for v in violations
    ), _report(violations)
    assert any(
        "AVERAGE-BANDWIDTH=120000 but the measured average bit rate is 168000" in v
        for v in violations
    ), _report(violations)
