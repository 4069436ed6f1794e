"""Tests for media.package.isobmff: hand-built boxes with known answers, then FFmpeg's CMAF
output."""

from __future__ import annotations

import itertools
import shlex
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from media.core.errors import MediaError
from media.package.boxes import SAMPLE_IS_NON_SYNC, Box, IsobmffError, find_box, iter_boxes
from media.package.codecs import codecs_string
from media.package.isobmff import InitInfo, read_fragment, read_init

SYNC = 0x02000000
"""Sample flags of an IDR frame: sample_depends_on = 2 (depends on no other sample)."""
NON_SYNC = 0x01000000 | SAMPLE_IS_NON_SYNC
"""Sample flags of a P/B frame: depends on others, sample_is_non_sync_sample set."""


# --- box builders ---------------------------------------------------------------------


def box(kind: str, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind.encode()) + body


def large_box(kind: str, *payload: bytes) -> bytes:
    """A box written with size 1 and a 64-bit largesize."""
    body = b"".join(payload)
    return struct.pack(">I4sQ", 1, kind.encode(), 16 + len(body)) + body


def full_box(kind: str, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *payload)


def tkhd(track_id: int, width: int = 0, height: int = 0, version: int = 0) -> bytes:
    times = (
        struct.pack(">QQIIQ", 0, 0, track_id, 0, 0)
        if version
        else struct.pack(">IIIII", 0, 0, track_id, 0, 0)
    )
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    rest = bytes(8) + struct.pack(">hhhH", 0, 0, 0, 0) + matrix
    return full_box("tkhd", version, 7, times, rest, struct.pack(">II", width << 16, height << 16))


def mdhd(timescale: int, version: int = 0) -> bytes:
    if version:
        times = struct.pack(">QQIQ", 0, 0, timescale, 0)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, 0)
    return full_box("mdhd", version, 0, times, struct.pack(">HH", 0x55C4, 0))


def hdlr(handler: str) -> bytes:
    return full_box("hdlr", 0, 0, bytes(4), handler.encode(), bytes(12), b"name\0")


def avc1(width: int, height: int, avcc: bytes, fourcc: str = "avc1") -> bytes:
    head = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", width, height)
    tail = struct.pack(">IIIH", 0x480000, 0x480000, 0, 1) + bytes(32) + struct.pack(">hh", 24, -1)
    return box(fourcc, head, tail, box("avcC", avcc))


def esds(audio_specific_config: bytes) -> bytes:
    dsi = bytes([0x05, len(audio_specific_config)]) + audio_specific_config
    dcd_body = bytes([0x40, 0x15]) + bytes(3) + struct.pack(">II", 128000, 128000) + dsi
    dcd = bytes([0x04, 0x80, 0x80, 0x80, len(dcd_body)]) + dcd_body  # 4-byte size form
    es_body = struct.pack(">HB", 1, 0) + dcd + bytes([0x06, 1, 2])
    return full_box("esds", 0, 0, bytes([0x03, len(es_body)]) + es_body)


def mp4a(channels: int, rate_hz: int, audio_specific_config: bytes) -> bytes:
    head = bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HHHH", channels, 16, 0, 0)
    return box("mp4a", head, struct.pack(">I", rate_hz << 16), esds(audio_specific_config))


def init_segment(
    entry: bytes,
    handler: str = "vide",
    timescale: int = 12800,
    mdhd_version: int = 0,
    tkhd_version: int = 0,
    trex_duration: int = 0,
    extra_traks: int = 0,
) -> bytes:
    stsd = full_box("stsd", 0, 0, struct.pack(">I", 1), entry)
    mdia = box("mdia", mdhd(timescale, mdhd_version), hdlr(handler), box("minf", box("stbl", stsd)))
    trak = box("trak", tkhd(1, 320, 180, tkhd_version), mdia)
    trex = full_box("trex", 0, 0, struct.pack(">5I", 1, 1, trex_duration, 0, NON_SYNC))
    mvhd = full_box("mvhd", 0, 0, bytes(96))
    moov = box("moov", mvhd, trak * (1 + extra_traks), box("mvex", trex))
    return box("ftyp", b"iso6", bytes(4), b"iso6cmfc") + moov


HIGH_31 = bytes([1, 0x64, 0x00, 0x1F, 0xFF, 0xE0, 0x00])
"""avcC of H.264 High profile, level 3.1, with no parameter sets (enough for the reader)."""
AAC_LC_48K_STEREO = bytes([0x11, 0x90])
"""AudioSpecificConfig: object type 2 (AAC-LC), 48 kHz (index 3), 2 channels."""


def video_init(**kwargs: int) -> InitInfo:
    return read_init(init_segment(avc1(320, 180, HIGH_31), **kwargs))


def tfhd(track_id: int = 1, duration: int | None = None, flags: int | None = None) -> bytes:
    box_flags, fields = 0x20000, b""  # default-base-is-moof
    if duration is not None:
        box_flags, fields = box_flags | 0x8, fields + struct.pack(">I", duration)
    if flags is not None:
        box_flags, fields = box_flags | 0x20, fields + struct.pack(">I", flags)
    return full_box("tfhd", 0, box_flags, struct.pack(">I", track_id), fields)


def tfdt(decode_ticks: int, version: int = 1) -> bytes:
    return full_box("tfdt", version, 0, struct.pack(">Q" if version else ">I", decode_ticks))


def trun(
    count: int,
    durations: list[int] | None = None,
    sample_flags: list[int] | None = None,
    first_flags: int | None = None,
    cto: list[int] | None = None,
    version: int = 0,
) -> bytes:
    flags, head = 0x1, struct.pack(">i", 0)  # a data offset, as every muxer writes
    if first_flags is not None:
        flags, head = flags | 0x4, head + struct.pack(">I", first_flags)
    columns = []
    for bit, values, code in (
        (0x100, durations, "I"),
        (0x200, [100] * count, "I"),
        (0x400, sample_flags, "I"),
        (0x800, cto, "i" if version else "I"),
    ):
        if values is not None:
            flags |= bit
            columns.append((values, code))
    samples = b"".join(
        struct.pack(">" + "".join(code for _, code in columns), *(v[i] for v, _ in columns))
        for i in range(count)
    )
    return full_box("trun", version, flags, struct.pack(">I", count), head, samples)


def fragment(*trafs: bytes, sequence: int = 1) -> bytes:
    moof = box("moof", full_box("mfhd", 0, 0, struct.pack(">I", sequence)), *trafs)
    return moof + box("mdat", bytes(16))


def traf(*children: bytes) -> bytes:
    return box("traf", *children)


# --- boxes ----------------------------------------------------------------------------


def test_iter_boxes_reads_32_bit_64_bit_and_to_end_sizes():
    data = box("free", b"ab") + large_box("mdat", b"xyz") + struct.pack(">I4s", 0, b"skip") + b"12"
    assert list(iter_boxes(data)) == [
        Box("free", 0, 8, 10),
        Box("mdat", 10, 26, 29),
        Box("skip", 29, 37, 39),
    ]


def test_uuid_box_payload_starts_after_the_extended_type():
    data = box("uuid", bytes(range(16)), b"payload")
    (found,) = iter_boxes(data)
    assert data[found.payload_start : found.end] == b"payload"


def test_find_box_walks_nested_containers():
    data = box("moof", box("traf", tfdt(7, version=0)))
    found = find_box(data, "moof/traf/tfdt")
    assert found is not None and (found.start, found.end) == (16, 32)
    assert find_box(data, "moof/traf/trun") is None


@pytest.mark.parametrize(
    "data",
    [
        box("moov", b"x" * 10)[:-1],  # box claims more than is there
        b"\0\0\0\x10mo",  # header cut short
        large_box("mdat", b"xyz")[:12],  # largesize cut short
        struct.pack(">I4s", 4, b"free"),  # size smaller than its own header
    ],
    ids=["truncated-payload", "truncated-header", "truncated-largesize", "size-below-header"],
)
def test_malformed_boxes_raise_isobmff_error(data):
    with pytest.raises(IsobmffError):
        list(iter_boxes(data))


def test_isobmff_error_is_a_value_error_and_a_media_error():
    with pytest.raises(ValueError) as caught:
        read_init(b"")
    assert isinstance(caught.value, MediaError) and "moov" in str(caught.value)


# --- init segments --------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1])
def test_read_init_video(version):
    info = video_init(
        timescale=90000, mdhd_version=version, tkhd_version=version, trex_duration=3600
    )
    assert info == InitInfo(
        track_id=1,
        timescale=90000,
        handler="vide",
        codec_fourcc="avc1",
        width=320,
        height=180,
        avc_config=HIGH_31,
        default_sample_duration=3600,
        default_sample_flags=NON_SYNC,
    )


def test_read_init_falls_back_to_tkhd_size_when_the_sample_entry_has_none():
    info = read_init(init_segment(avc1(0, 0, HIGH_31)))
    assert (info.width, info.height) == (320, 180)


@pytest.mark.parametrize(
    ("config", "object_type"),
    [
        (AAC_LC_48K_STEREO, 2),
        (bytes([0x2B, 0x92, 0x08, 0x00]), 5),  # HE-AAC (SBR), explicit
        (bytes([0xF9, 0x46, 0x40]), 42),  # escape 31 + 10: USAC (xHE-AAC)
    ],
)
def test_read_init_audio(config, object_type):
    info = read_init(init_segment(mp4a(2, 48000, config), handler="soun", timescale=48000))
    assert (info.handler, info.codec_fourcc, info.timescale) == ("soun", "mp4a", 48000)
    assert (info.channels, info.sample_rate_hz) == (2, 48000)
    assert info.audio_object_type == object_type
    assert (info.width, info.avc_config) == (0, None)


def test_read_init_rejects_more_than_one_track():
    with pytest.raises(IsobmffError, match="one track; found 2"):
        read_init(init_segment(avc1(320, 180, HIGH_31), extra_traks=1))


def test_read_init_rejects_a_media_segment():
    with pytest.raises(IsobmffError, match="no 'moov'"):
        read_init(fragment(traf(tfhd(), tfdt(0), trun(1, durations=[512]))))


# --- media segments -------------------------------------------------------------------


@pytest.mark.parametrize(("version", "decode_ticks"), [(0, 25600), (1, 2**33 + 5)])
def test_tfdt_version_0_and_1(version, decode_ticks):
    data = fragment(traf(tfhd(), tfdt(decode_ticks, version), trun(2, durations=[512, 512])))
    assert read_fragment(data, video_init()).base_decode_ticks == decode_ticks


def test_per_sample_durations_are_summed():
    data = fragment(traf(tfhd(duration=9999), tfdt(0), trun(3, durations=[1024, 1024, 256])))
    info = read_fragment(data, video_init())
    assert (info.duration_ticks, info.sample_count) == (2304, 3)


def test_tfhd_default_duration_when_trun_has_none():
    data = fragment(traf(tfhd(duration=512), tfdt(0), trun(50)))
    assert read_fragment(data, video_init(trex_duration=1)).duration_ticks == 50 * 512


def test_trex_default_duration_when_trun_and_tfhd_have_none():
    data = fragment(traf(tfhd(), tfdt(0), trun(25)))
    assert read_fragment(data, video_init(trex_duration=3600)).duration_ticks == 25 * 3600


def test_no_duration_anywhere_is_an_error():
    init = InitInfo(track_id=1, timescale=12800, handler="vide", codec_fourcc="avc1")
    with pytest.raises(IsobmffError, match="no sample duration"):
        read_fragment(fragment(traf(tfhd(), tfdt(0), trun(3))), init)


def test_several_moofs_and_truns_add_up_from_the_first_tfdt():
    first = fragment(traf(tfhd(duration=512), tfdt(1000), trun(2), trun(3)), sequence=1)
    second = fragment(traf(tfhd(duration=512), tfdt(1000 + 5 * 512), trun(4)), sequence=2)
    styp = box("styp", b"msdh", bytes(4), b"msdhmsix")
    info = read_fragment(styp + box("sidx", bytes(24)) + first + second, video_init())
    assert (info.base_decode_ticks, info.duration_ticks, info.sample_count) == (1000, 4608, 9)


@pytest.mark.parametrize(
    ("run", "defaults", "sync"),
    [
        ({"first_flags": SYNC, "sample_flags": None}, NON_SYNC, True),
        ({"first_flags": NON_SYNC, "sample_flags": None}, SYNC, False),
        ({"sample_flags": [SYNC, NON_SYNC, NON_SYNC]}, NON_SYNC, True),
        ({"sample_flags": [NON_SYNC, SYNC, NON_SYNC]}, SYNC, False),
        ({}, SYNC, True),
        ({}, NON_SYNC, False),
    ],
    ids=["first-flags", "first-flags-non-sync", "per-sample", "per-sample-non-sync",
         "tfhd-default", "tfhd-default-non-sync"],
)  # fmt: skip
def test_first_sample_is_sync(run, defaults, sync):
    data = fragment(traf(tfhd(duration=512, flags=defaults), tfdt(0), trun(3, **run)))
    assert read_fragment(data, video_init()).first_sample_is_sync is sync


@pytest.mark.parametrize(
    ("version", "offsets", "earliest"),
    [(0, [1024, 2560, 512], 1000 + 1024), (1, [-512, 1024, 0], 1000 - 512)],
)
def test_earliest_presentation_is_the_smallest_decode_plus_composition_offset(
    version, offsets, earliest
):
    run = trun(3, durations=[512] * 3, cto=offsets, version=version)
    data = fragment(traf(tfhd(), tfdt(1000), run))
    assert read_fragment(data, video_init()).earliest_presentation_ticks == earliest


def test_trafs_of_other_tracks_are_skipped():
    other = traf(tfhd(track_id=2, duration=1), tfdt(0), trun(7))
    ours = traf(tfhd(track_id=1, duration=512), tfdt(512), trun(2))
    info = read_fragment(fragment(other, ours), video_init())
    assert (info.base_decode_ticks, info.sample_count) == (512, 2)
    with pytest.raises(IsobmffError, match="no 'traf' for track 1"):
        read_fragment(fragment(other), video_init())


@pytest.mark.parametrize(
    "data",
    [
        fragment(traf(tfhd(duration=512), tfdt(0), trun(10)))[:-30],  # cut inside moof
        box("moof", traf(tfhd(duration=512), tfdt(0), trun(4)[:-8])),  # trun cut short
        box("styp", b"msdh") + box("mdat", bytes(8)),  # no moof
        fragment(traf(tfhd(duration=512), trun(2))),  # no tfdt
    ],
    ids=["truncated", "trun-cut-short", "no-moof", "no-tfdt"],
)
def test_malformed_fragments_raise_isobmff_error(data):
    with pytest.raises(IsobmffError):
        read_fragment(data, video_init())


def test_short_trun_inside_a_complete_box_is_reported():
    short = trun(4, durations=[512] * 4)
    count_at = short.index(struct.pack(">I", 4))
    lying = short[:count_at] + struct.pack(">I", 6) + short[count_at + 4 :]  # claims 6
    data = fragment(traf(tfhd(), tfdt(0), lying)) + box("free", bytes(64))
    with pytest.raises(IsobmffError, match="too short"):
        read_fragment(data, video_init())


# --- FFmpeg's CMAF output -------------------------------------------------------------

FRAME_RATE = 25
DURATION_S = 6
SEGMENT_S = 2
AUDIO_RATE_HZ = 48000
AAC_FRAME = 1024
"""Samples per AAC-LC frame; also FFmpeg's encoder priming (one frame of delay)."""


def _ffmpeg() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def _hls_cmaf(out: Path, source: list[str], codec: list[str]) -> Path:
    out.mkdir()
    argv = [_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
            "-i", source[0], *source[1:], "-t", str(DURATION_S), *codec,
            "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
            "-hls_segment_filename", str(out / "seg_%05d.m4s"),
            str(out / "index.m3u8")]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = [f"testsrc2=size=320x180:rate={FRAME_RATE}"]
    codec = ["-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast",
             "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50",
             "-sc_threshold", "0"]
    return _hls_cmaf(tmp_path_factory.mktemp("cmaf") / "video", source, codec)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = [f"sine=frequency=440:sample_rate={AUDIO_RATE_HZ}", "-ac", "2"]
    return _hls_cmaf(
        tmp_path_factory.mktemp("cmaf") / "audio", source, ["-c:a", "aac", "-b:a", "128k"]
    )


def _read_track(folder: Path) -> tuple[InitInfo, list]:
    init = read_init((folder / "init.mp4").read_bytes())
    segments = sorted(folder.glob("seg_*.m4s"))
    assert segments, f"FFmpeg wrote no segments in {folder}"
    return init, [read_fragment(path.read_bytes(), init) for path in segments]


def _assert_contiguous(fragments: list) -> None:
    for before, after in itertools.pairwise(fragments):
        assert after.base_decode_ticks == before.base_decode_ticks + before.duration_ticks


def test_ffmpeg_video_segments(video_dir):
    av = pytest.importorskip("av")
    init, fragments = _read_track(video_dir)
    assert (init.handler, init.codec_fourcc, init.width, init.height) == ("vide", "avc1", 320, 180)
    # An independent reading of the same track: PyAV on init + segments.
    whole = video_dir / "whole.mp4"
    parts = [video_dir / "init.mp4", *sorted(video_dir.glob("seg_*.m4s"))]
    whole.write_bytes(b"".join(part.read_bytes() for part in parts))
    with av.open(str(whole)) as container:
        stream = container.streams.video[0]
        assert stream.time_base == Fraction(1, init.timescale)
        assert stream.codec_context.profile == "High"
    assert init.timescale % FRAME_RATE == 0, "frames must be whole ticks"
    frame_ticks = init.timescale // FRAME_RATE
    assert fragments[0].base_decode_ticks == 0
    _assert_contiguous(fragments)
    assert sum(f.duration_ticks for f in fragments) == DURATION_S * init.timescale
    assert sum(f.sample_count for f in fragments) == DURATION_S * FRAME_RATE
    assert [f.sample_count for f in fragments] == [SEGMENT_S * FRAME_RATE] * 3
    assert all(f.duration_ticks == f.sample_count * frame_ticks for f in fragments)
    assert all(f.first_sample_is_sync for f in fragments)
    # x264's B-frames delay presentation by whole frames past the decode time.
    for f in fragments:
        delay = f.earliest_presentation_ticks - f.base_decode_ticks
        assert delay >= 0 and delay % frame_ticks == 0
    codecs = codecs_string(init)
    sps = init.avc_config[8:] if init.avc_config else b""  # first SPS NAL after its length
    assert codecs.startswith("avc1.64") and codecs == f"avc1.{sps[1:4].hex()}"


def test_ffmpeg_audio_segments(audio_dir):
    init, fragments = _read_track(audio_dir)
    assert (init.handler, init.codec_fourcc, init.timescale) == ("soun", "mp4a", AUDIO_RATE_HZ)
    assert (init.channels, init.sample_rate_hz, init.audio_object_type) == (2, AUDIO_RATE_HZ, 2)
    assert codecs_string(init) == "mp4a.40.2"
    assert fragments[0].base_decode_ticks == 0
    _assert_contiguous(fragments)
    assert all(f.first_sample_is_sync for f in fragments)
    total = sum(f.duration_ticks for f in fragments)
    # The encoder adds one frame of priming, and the last frame may be partial.
    assert DURATION_S * AUDIO_RATE_HZ <= total <= DURATION_S * AUDIO_RATE_HZ + 2 * AAC_FRAME
