"""Tests for media.package.iframes: I-frame byte ranges of CMAF segments and their HLS playlists.

Real media comes from FFmpeg: a 3 s 320x180 25 fps clip with an IDR frame every 25
frames and two B-frames, written as a fragmented MP4 and cut by `split_fragmented_mp4`
into an init segment and three 1 s media segments (styp + moof + mdat). FFmpeg's
fragments carry per-sample sizes in the trun; the default-size paths (tfhd, trex) are
exercised with hand-built fragments.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import av
import m3u8
import pytest

from media.core import ffmpeg, naming
from media.core.errors import MediaError
from media.package.boxes import Box, find_all, find_box, iter_boxes
from media.package.cmaf import STYP, SplitTrack, split_fragmented_mp4
from media.package.iframes import (
    IFrame,
    IFrameError,
    iframe_bandwidth_bps,
    iframe_playlist,
    iframe_range,
    iframe_stream_inf,
)
from media.package.isobmff import read_fragment, read_init

SEGMENTS = 3
SEGMENT_FRAMES = 25


TEST_PATTERN = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
GOP = ["-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "2"]
"""An IDR frame every 25 frames (1 s), never elsewhere, and up to two B-frames."""
VIDEO_ARGS = [*TEST_PATTERN, *X264, *GOP]
SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.2"]
AUDIO_ARGS = [*SINE, "-c:a", "aac"]
FRAGMENTED = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof"]


def _encode(out, args: list[str]) -> SplitTrack:
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args, *FRAGMENTED, str(out)))
    return split_fragmented_mp4(out.read_bytes())


@pytest.fixture(scope="module")
def track(tmp_path_factory) -> SplitTrack:
    """A 3 s 320x180 H.264 track (IDR every 25 frames, 2 B-frames) cut into 3 segments."""
    return _encode(tmp_path_factory.mktemp("iframes") / "video.mp4", VIDEO_ARGS)


@pytest.fixture(scope="module")
def audio_init(tmp_path_factory) -> bytes:
    return _encode(tmp_path_factory.mktemp("iframes-audio") / "audio.mp4", AUDIO_ARGS).init


def top_box(data: bytes, kind: str) -> Box:
    return next(box for box in iter_boxes(data) if box.type == kind)


def decode(path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def first_packet_size(path) -> int:
    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(video=0) if p.size)
        assert packet.is_keyframe
        return packet.size


# --- ranges over real segments -------------------------------------------------------


def test_range_runs_from_the_moof_through_the_first_sample(track, tmp_path):
    assert len(track.segments) == SEGMENTS
    for number, segment in enumerate(track.segments, start=1):
        offset, length = iframe_range(segment, init=track.init)
        assert (offset, length) == iframe_range(segment)  # one track: init not needed
        moof, mdat = top_box(segment, "moof"), top_box(segment, "mdat")
        assert offset == moof.start == len(STYP)
        assert mdat.payload_start < offset + length <= mdat.end <= len(segment)
        # Independently: the demuxer's first packet is the IDR frame, and FFmpeg writes
        # the first sample at the start of the mdat payload.
        whole = tmp_path / f"whole-{number}.mp4"
        whole.write_bytes(track.init + segment)
        assert offset + length == mdat.payload_start + first_packet_size(whole)


def test_range_bytes_decode_to_exactly_the_segments_first_frame(track, tmp_path):
    for number, segment in enumerate(track.segments, start=1):
        offset, length = iframe_range(segment, init=track.init)
        iframe = tmp_path / f"iframe-{number}.mp4"
        iframe.write_bytes(track.init + segment[offset : offset + length])
        frames = decode(iframe)
        assert len(frames) == 1
        assert frames[0].key_frame
        assert (frames[0].width, frames[0].height) == (320, 180)
        whole = tmp_path / f"whole-{number}.mp4"
        whole.write_bytes(track.init + segment)
        full = decode(whole)
        assert len(full) == SEGMENT_FRAMES
        assert (frames[0].to_ndarray() == full[0].to_ndarray()).all()


def real_iframes(track: SplitTrack) -> list[IFrame]:
    info = read_init(track.init)
    frames = []
    for number, segment in enumerate(track.segments, start=1):
        offset, length = iframe_range(segment, init=track.init)
        ticks = read_fragment(segment, info).duration_ticks
        frames.append(
            IFrame(naming.segment_name(number), offset, length, Fraction(ticks, info.timescale))
        )
    return frames


def test_playlist_over_real_segments(track):
    frames = real_iframes(track)
    assert [f.duration for f in frames] == [1, 1, 1]
    text = iframe_playlist(naming.INIT_NAME, frames)
    lines = text.splitlines()
    assert lines[:8] == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:1",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-I-FRAMES-ONLY",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="init.mp4"',
    ]
    entries = [lines[i : i + 3] for i in range(8, 8 + 3 * SEGMENTS, 3)]
    for number, (entry, segment) in enumerate(zip(entries, track.segments, strict=True), 1):
        offset, length = iframe_range(segment)
        assert entry == [
            "#EXTINF:1.00000,",
            f"#EXT-X-BYTERANGE:{length}@{offset}",
            f"seg-{number:05d}.m4s",
        ]
    assert lines[8 + 3 * SEGMENTS :] == ["#EXT-X-ENDLIST"]
    assert text.endswith("#EXT-X-ENDLIST\n")
    parsed = m3u8.loads(text)
    assert parsed.is_i_frames_only and parsed.is_endlist
    assert [s.byterange for s in parsed.segments] == [f"{f.length}@{f.offset}" for f in frames]


def test_bandwidth_of_real_iframes_is_the_largest_iframe_rate(track):
    frames = real_iframes(track)
    bandwidth = iframe_bandwidth_bps(frames)
    assert bandwidth > 0
    assert bandwidth == math.ceil(max(Fraction(8 * f.length) / f.duration for f in frames))
    assert bandwidth == 8 * max(f.length for f in frames)  # 1 s each


# --- playlist text, bandwidth and STREAM-INF, exactly ------------------------------------


def test_playlist_text_exactly():
    frames = [
        IFrame("seg-00001.m4s", 28, 4123, Fraction(1, 3)),
        IFrame("seg-00002.m4s", 28, 3000, Fraction(2, 3)),
        IFrame("../other/seg-00003.m4s", 0, 17, Fraction(5, 2)),
    ]
    assert iframe_playlist("init.mp4", frames) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:3\n"  # ceil(2.5)
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-I-FRAMES-ONLY\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:0.33333,\n"
        "#EXT-X-BYTERANGE:4123@28\n"
        "seg-00001.m4s\n"
        "#EXTINF:0.66667,\n"  # half up
        "#EXT-X-BYTERANGE:3000@28\n"
        "seg-00002.m4s\n"
        "#EXTINF:2.50000,\n"
        "#EXT-X-BYTERANGE:17@0\n"
        "../other/seg-00003.m4s\n"
        "#EXT-X-ENDLIST\n"
    )


def test_target_duration_is_the_largest_duration_rounded_up():
    frames = [IFrame("a.m4s", 0, 1, Fraction(4)), IFrame("b.m4s", 0, 1, Fraction(4001, 1000))]
    assert "#EXT-X-TARGETDURATION:5\n" in iframe_playlist("init.mp4", frames)
    assert "#EXT-X-TARGETDURATION:4\n" in iframe_playlist("init.mp4", frames[:1])


def test_bandwidth_formula():
    # 1000 B in 1 s = 8000 b/s; 3000 B in 1.5 s = 16000 b/s.
    assert (
        iframe_bandwidth_bps(
            [IFrame("a", 0, 1000, Fraction(1)), IFrame("b", 0, 3000, Fraction(3, 2))]
        )
        == 16_000
    )
    assert iframe_bandwidth_bps([IFrame("a", 0, 1, Fraction(3))]) == 3  # 8/3 rounded up
    with pytest.raises(ValueError):
        iframe_bandwidth_bps([])


def test_stream_inf_line():
    assert iframe_stream_inf(123_456, "avc1.64000c", 320, 180, "video/180p-300k/iframes.m3u8") == (
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=123456,CODECS="avc1.64000c",'
        'RESOLUTION=320x180,URI="video/180p-300k/iframes.m3u8"'
    )
    assert iframe_stream_inf(8, "avc1.64000c", 0, 0, "i.m3u8") == (
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=8,CODECS="avc1.64000c",URI="i.m3u8"'
    )
    with pytest.raises(ValueError):
        iframe_stream_inf(0, "avc1.64000c", 320, 180, "i.m3u8")
    with pytest.raises(ValueError):
        iframe_stream_inf(8, "avc1.64000c", 320, 180, 'bad"uri.m3u8')


@pytest.mark.parametrize(
    "fields",
    [
        ("a", -1, 10, Fraction(1)),
        ("a", 0, 0, Fraction(1)),
        ("a", 0, 10, Fraction(0)),
    ],
)
def test_iframe_rejects_bad_values(fields):
    with pytest.raises(ValueError):
        IFrame(*fields)


def test_playlist_rejects_empty_and_unwritable_input():
    with pytest.raises(ValueError):
        iframe_playlist("init.mp4", [])
    with pytest.raises(ValueError):
        iframe_playlist("init.mp4", [IFrame("a\nb.m4s", 0, 1, Fraction(1))])
    with pytest.raises(ValueError):
        iframe_playlist('in"it.mp4', [IFrame("a.m4s", 0, 1, Fraction(1))])


# --- hand-built fragments: sample-size defaults and malformed input ----------------------

SYNC, NON_SYNC = 0x02000000, 0x01010000
"""Sample flags of an IDR frame (depends on nothing) and of a non-sync frame."""
BASE_IS_MOOF = 0x020000


def box(kind: str, *payloads: bytes) -> bytes:
    payload = b"".join(payloads)
    return struct.pack(">I4s", 8 + len(payload), kind.encode()) + payload


def full_box(kind: str, version: int, flags: int, *payloads: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *payloads)


def fragment(
    trun_flags: int,
    trun_fields: bytes,
    records: bytes,
    *,
    count: int = 3,
    tfhd_flags: int = BASE_IS_MOOF,
    tfhd_fields: bytes = b"",
    track_id: int = 1,
    sizes: tuple[int, ...] = (100, 60, 40),
    data_offset: int | None = None,
) -> bytes:
    """styp + moof + mdat; `trun_fields` follows the data_offset (which is filled in)."""

    def moof(offset: int) -> bytes:
        head = struct.pack(">i", offset) if trun_flags & 0x1 else b""
        return box(
            "moof",
            full_box("mfhd", 0, 0, struct.pack(">I", 1)),
            box(
                "traf",
                full_box("tfhd", 0, tfhd_flags, struct.pack(">I", track_id), tfhd_fields),
                full_box("tfdt", 1, 0, struct.pack(">Q", 0)),
                full_box(
                    "trun", 0, trun_flags, struct.pack(">I", count), head, trun_fields, records
                ),
            ),
        )

    if data_offset is None:
        data_offset = len(moof(0)) + 8  # the mdat payload
    samples = b"".join(bytes([n]) * size for n, size in enumerate(sizes, start=1))
    return STYP + moof(data_offset) + box("mdat", samples)


def expected_range(segment: bytes, size: int = 100) -> tuple[int, int]:
    mdat = top_box(segment, "mdat")
    return len(STYP), mdat.payload_start + size - len(STYP)


def with_trex(init: bytes, size: int, flags: int) -> bytes:
    patched = bytearray(init)
    trex = find_all(init, "moov/mvex/trex")[0]
    struct.pack_into(">II", patched, trex.payload_start + 16, size, flags)
    return bytes(patched)


DURATIONS = struct.pack(">3I", 512, 512, 512)
SIZES = struct.pack(">3I", 100, 60, 40)


def test_first_sample_size_from_the_trun():
    segment = fragment(0x1 | 0x4 | 0x200, struct.pack(">I", SYNC), SIZES)
    assert iframe_range(segment) == expected_range(segment)


def test_first_sample_size_from_the_tfhd_default():
    # tfhd: default size 100 and non-sync default flags; the trun's first_sample_flags win.
    segment = fragment(
        0x1 | 0x4 | 0x100,
        struct.pack(">I", SYNC),
        DURATIONS,
        tfhd_flags=BASE_IS_MOOF | 0x10 | 0x20,
        tfhd_fields=struct.pack(">II", 100, NON_SYNC),
        sizes=(100, 100, 100),
    )
    assert iframe_range(segment) == expected_range(segment)


def test_first_sample_size_and_flags_from_the_trex_default(track):
    segment = fragment(0x1 | 0x100, b"", DURATIONS, sizes=(100, 100, 100))
    assert iframe_range(segment, init=with_trex(track.init, 100, SYNC)) == expected_range(segment)
    with pytest.raises(IFrameError, match="pass the init"):
        iframe_range(segment)
    with pytest.raises(IFrameError, match="not a sync sample"):
        iframe_range(segment, init=with_trex(track.init, 100, NON_SYNC))


@pytest.mark.parametrize("flags, ok", [(SYNC, True), (NON_SYNC, False)])
def test_first_sample_flags_from_the_sample_record(flags, ok):
    records = struct.pack(">6I", 100, flags, 60, NON_SYNC, 40, NON_SYNC)
    segment = fragment(0x1 | 0x200 | 0x400, b"", records)
    if ok:
        assert iframe_range(segment) == expected_range(segment)
    else:
        with pytest.raises(IFrameError, match="not a sync sample"):
            iframe_range(segment)


def test_traf_of_the_init_track_is_chosen(track):
    segment = fragment(0x1 | 0x200, b"", SIZES, track_id=2)
    assert iframe_range(segment) == expected_range(segment)  # the one traf
    with pytest.raises(IFrameError, match="no track fragment for track 1"):
        iframe_range(segment, init=track.init)


def patched(segment: bytes, path: str, at: int, fmt: str, value: int) -> bytes:
    """`segment` with `value` packed at `at` bytes into the body of the box at `path`."""
    out = bytearray(segment)
    target = find_box(segment, path, top_box(segment, "moof"))
    struct.pack_into(fmt, out, target.payload_start + at, value)
    return bytes(out)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t.init, "no 'moof'"),
        (lambda t: STYP + box("moof", box("mfhd")), "no 'mdat'"),
        (lambda t: fragment(0x200, b"", SIZES), "no data_offset"),
        (lambda t: fragment(0x1 | 0x200, b"", SIZES, count=0), "no samples"),
        (lambda t: fragment(0x1 | 0x200, b"", SIZES, data_offset=8), "outside the 'mdat'"),
        (
            lambda t: fragment(0x1 | 0x200, b"", struct.pack(">3I", 201, 60, 40)),
            "outside the 'mdat'",
        ),
        (lambda t: fragment(0x1 | 0x200, b"", struct.pack(">3I", 0, 60, 40)), "empty"),
        (lambda t: fragment(0x1 | 0x200, b"", b""), "too short"),
        (
            lambda t: fragment(
                0x1 | 0x200, b"", SIZES, tfhd_flags=0x1, tfhd_fields=struct.pack(">Q", 0)
            ),
            "base_data_offset",
        ),
        # Real segments, damaged: first sample marked non-sync; data_offset into the moof.
        (lambda t: patched(t.segments[1], "traf/trun", 12, ">I", NON_SYNC), "not a sync sample"),
        (lambda t: patched(t.segments[1], "traf/trun", 8, ">i", 16), "outside the 'mdat'"),
        # Truncated inside the first sample: the mdat claims more than is there.
        (lambda t: t.segments[0][: top_box(t.segments[0], "mdat").payload_start + 10], "claims"),
        (lambda t: b"\x00\x00\x00\x07junk", "truncated box header|claims"),
    ],
    ids=[
        "init-segment",
        "no-mdat",
        "no-data-offset",
        "no-samples",
        "offset-before-mdat",
        "sample-past-mdat",
        "empty-sample",
        "short-trun",
        "base-data-offset",
        "non-sync",
        "offset-into-moof",
        "truncated",
        "junk",
    ],
)
def test_malformed_segments_raise_a_media_error(track, make, message):
    with pytest.raises(MediaError, match=message):
        iframe_range(make(track), init=track.init)


def test_audio_track_is_refused(track, audio_init):
    with pytest.raises(IFrameError, match="video tracks"):
        iframe_range(track.segments[0], init=audio_init)


def test_a_short_last_segment_does_not_inflate_the_bandwidth():
    from media.package.bandwidth import peak_bandwidth_bps

    frames = [IFrame(f"seg-{i}.m4s", 100, 4000, Fraction(d)) for i, d in enumerate((4, 4, 1))]
    # RFC 8216's peak: windows of 2 to 6 s; the 1 s tail alone is no window.
    assert iframe_bandwidth_bps(frames) == peak_bandwidth_bps([4000] * 3, [4, 4, 1], 4)
    assert iframe_bandwidth_bps(frames) < 8 * 4000 / 1
