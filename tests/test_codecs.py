"""Known answers for RFC 6381 codecs strings: hand-built records, then real encodes."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from media.core import ffmpeg
from media.core.errors import ToolFailed
from media.package.cmaf import split_fragmented_mp4
from media.package.codecs import (
    aac_codecs_string,
    av1_codecs_string,
    avc_codecs_string,
    codecs_string,
    hevc_codecs_string,
)
from media.package.isobmff import InitInfo, IsobmffError, read_init
from tests.test_isobmff import box, init_segment


def avcc(profile: int, compatibility: int, level: int) -> bytes:
    """An AVCDecoderConfigurationRecord head: version 1, profile, constraints, level, ..."""
    return bytes([1, profile, compatibility, level, 0xFF, 0xE0, 0x00])


@pytest.mark.parametrize(
    ("config", "fourcc", "expected"),
    [
        (avcc(0x64, 0x00, 31), "avc1", "avc1.64001f"),  # High, level 3.1
        (avcc(0x4D, 0x00, 40), "avc1", "avc1.4d0028"),  # Main, level 4.0
        (avcc(0x42, 0xE0, 30), "avc1", "avc1.42e01e"),  # Constrained Baseline, level 3.0
        (avcc(0x42, 0xC0, 13), "avc1", "avc1.42c00d"),  # Constrained Baseline, level 1.3
        (avcc(0x64, 0x00, 42), "avc3", "avc3.64002a"),  # High, level 4.2, in-band SPS/PPS
        (avcc(0x6E, 0x00, 51), "avc1", "avc1.6e0033"),  # High 10, level 5.1
    ],
)
def test_avc_codecs_string(config, fourcc, expected):
    assert avc_codecs_string(config, fourcc) == expected


@pytest.mark.parametrize(
    "config",
    [b"", bytes([1, 0x64, 0x00]), bytes([0, 0x64, 0x00, 0x1F])],
    ids=["empty", "short", "version-0"],
)
def test_avc_codecs_string_rejects_a_bad_record(config):
    with pytest.raises(IsobmffError, match="AVCDecoderConfigurationRecord"):
        avc_codecs_string(config)


def test_avc_codecs_string_rejects_a_non_avc_fourcc():
    with pytest.raises(ValueError, match="hvc1"):
        avc_codecs_string(avcc(0x64, 0, 31), "hvc1")


@pytest.mark.parametrize(
    ("object_type", "expected"),
    [(2, "mp4a.40.2"), (5, "mp4a.40.5"), (29, "mp4a.40.29"), (42, "mp4a.40.42")],
    ids=["AAC-LC", "HE-AAC", "HE-AACv2", "xHE-AAC"],
)
def test_aac_codecs_string(object_type, expected):
    assert aac_codecs_string(object_type) == expected


@pytest.mark.parametrize("object_type", [0, -1, 96])
def test_aac_codecs_string_rejects_impossible_object_types(object_type):
    with pytest.raises(ValueError, match="object type"):
        aac_codecs_string(object_type)


def _init(fourcc: str, **fields) -> InitInfo:
    handler = "soun" if fourcc == "mp4a" else "vide"
    return InitInfo(track_id=1, timescale=48000, handler=handler, codec_fourcc=fourcc, **fields)


@pytest.mark.parametrize(
    ("init", "expected"),
    [
        (_init("avc1", avc_config=avcc(0x64, 0x00, 31)), "avc1.64001f"),
        (_init("avc3", avc_config=avcc(0x4D, 0x40, 30)), "avc3.4d401e"),
        (_init("mp4a", audio_object_type=2), "mp4a.40.2"),
        (_init("mp4a", audio_object_type=5), "mp4a.40.5"),
    ],
)
def test_codecs_string_dispatches_on_the_sample_entry(init, expected):
    assert codecs_string(init) == expected


@pytest.mark.parametrize("fourcc", ["vp09", "Opus", "encv"])
def test_codecs_string_names_what_it_does_not_support(fourcc):
    supported = "avc1, avc3.*hvc1, hev1.*av01.*mp4a"
    with pytest.raises(NotImplementedError, match=f"'{fourcc}'.*{supported}"):
        codecs_string(_init(fourcc))


@pytest.mark.parametrize(
    ("init", "missing"),
    [
        (_init("avc1"), "'avc1' .*no avcC"),
        (_init("hvc1"), "'hvc1' .*no hvcC"),
        (_init("hev1"), "'hev1' .*no hvcC"),
        (_init("av01"), "'av01' .*no av1C"),
        (_init("mp4a"), "no esds"),
    ],
)
def test_codecs_string_needs_the_decoder_configuration(init, missing):
    with pytest.raises(IsobmffError, match=missing):
        codecs_string(init)


# --- HEVC (ISO/IEC 14496-15 Annex E.3) ------------------------------------------------


def hvcc(
    profile: int,
    level: int,
    compatible: tuple[int, ...] = (),
    constraints: bytes = b"",
    tier: int = 0,
    space: int = 0,
    bit_depth: int = 8,
) -> bytes:
    """An HEVCDecoderConfigurationRecord with no parameter set arrays.

    `compatible` lists the j of each general_profile_compatibility_flag[j] that is set
    (flag j is bit 31 - j of the 32-bit field); `constraints` is up to six bytes.
    """
    flags = sum(1 << (31 - j) for j in compatible)
    head = struct.pack(">BBI6sB", 1, space << 6 | tier << 5 | profile, flags, constraints, level)
    depth = 0xF8 | (bit_depth - 8)
    # min_spatial_segmentation, parallelismType, chroma 4:2:0, bit depths, frame rate,
    # lengthSizeMinusOne 3, numOfArrays 0.
    return head + bytes([0xF0, 0x00, 0xFC, 0xFD, depth, depth, 0, 0, 0x0F, 0])


@pytest.mark.parametrize(
    ("config", "fourcc", "expected"),
    [
        # Main, Main tier, level 3.1, compatible with Main and Main 10; progressive,
        # non-packed, frame-only: the standard's own example.
        (hvcc(1, 93, (1, 2), b"\xb0"), "hvc1", "hvc1.1.6.L93.B0"),
        (hvcc(1, 93, (1, 2), b"\xb0"), "hev1", "hev1.1.6.L93.B0"),
        # Main 10, level 4.1, as Apple's authoring examples have it.
        (hvcc(2, 123, (2,), b"\xb0", bit_depth=10), "hvc1", "hvc1.2.4.L123.B0"),
        # High tier, level 5.1.
        (hvcc(2, 153, (2,), b"\x90", tier=1, bit_depth=10), "hvc1", "hvc1.2.4.H153.90"),
        # Range extensions 4:4:4 as x265 writes it: compatibility flag 4 only, and
        # constraint flags in the second byte (lower case hex is never written).
        (hvcc(4, 60, (4,), b"\x9e\x08"), "hvc1", "hvc1.4.10.L60.9E.8"),
        # Profile space 1 and all six constraint bytes: the standard's other example.
        (
            hvcc(4, 120, (0, 6), bytes.fromhex("b01234567890"), tier=1, space=1),
            "hev1",
            "hev1.A4.41.H120.B0.12.34.56.78.90",
        ),
        (hvcc(1, 90, (1,), space=2), "hvc1", "hvc1.B1.2.L90"),
        (hvcc(1, 90, (1,), space=3), "hvc1", "hvc1.C1.2.L90"),
    ],
    ids=["main", "main-hev1", "main10", "high-tier", "rext-444", "space-A", "space-B",
         "space-C"],
)  # fmt: skip
def test_hevc_codecs_string(config, fourcc, expected):
    assert hevc_codecs_string(config, fourcc) == expected


@pytest.mark.parametrize(
    ("compatible", "constraints", "expected"),
    [
        ((), b"", "hvc1.1.0.L93"),  # no compatibility flags: '0'; zero constraints: none
        ((0,), b"\0" * 6, "hvc1.1.1.L93"),
        ((31,), b"\x90", "hvc1.1.80000000.L93.90"),  # flag 31 is the top bit once reversed
        ((1, 2), b"\x90\x00\x01", "hvc1.1.6.L93.90.0.1"),  # zeros before a non-zero stay
        ((1, 2), b"\x00\x00\x00\x00\x00\x01", "hvc1.1.6.L93.0.0.0.0.0.1"),
    ],
)
def test_hevc_compatibility_flags_and_constraint_bytes(compatible, constraints, expected):
    assert hevc_codecs_string(hvcc(1, 93, compatible, constraints)) == expected


@pytest.mark.parametrize(
    "config",
    [b"", hvcc(1, 93)[:12], bytes([0]) + hvcc(1, 93)[1:]],
    ids=["empty", "short", "version-0"],
)
def test_hevc_codecs_string_rejects_a_bad_record(config):
    with pytest.raises(IsobmffError, match="HEVCDecoderConfigurationRecord"):
        hevc_codecs_string(config)


@pytest.mark.parametrize("fourcc", ["avc1", "av01", "hvc2"])
def test_hevc_codecs_string_rejects_a_non_hevc_fourcc(fourcc):
    with pytest.raises(ValueError, match=fourcc):
        hevc_codecs_string(hvcc(1, 93), fourcc)


# --- AV1 (AV1 ISOBMFF binding, Codecs Parameter String) -------------------------------


def av1c(
    profile: int,
    level: int,
    tier: int = 0,
    bit_depth: int = 8,
    monochrome: int = 0,
    subsampling: tuple[int, int] = (1, 1),
) -> bytes:
    """An AV1CodecConfigurationRecord with no configOBUs."""
    high, twelve = int(bit_depth > 8), int(bit_depth == 12)
    colour = tier << 7 | high << 6 | twelve << 5 | monochrome << 4
    colour |= subsampling[0] << 3 | subsampling[1] << 2
    return bytes([0x81, profile << 5 | level, colour, 0])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (av1c(0, 4), "av01.0.04M.08"),  # Main, level 3.0, 8-bit
        (av1c(0, 0), "av01.0.00M.08"),  # level 2.0
        (av1c(0, 8, bit_depth=10), "av01.0.08M.10"),  # level 4.0, 10-bit
        (av1c(0, 13, tier=1, bit_depth=10), "av01.0.13H.10"),  # level 5.1, High tier
        (av1c(0, 9, monochrome=1), "av01.0.09M.08"),  # monochrome: short form says nothing
        (av1c(1, 5, subsampling=(0, 0)), "av01.1.05M.08"),  # High profile, 4:4:4
        (av1c(2, 12, bit_depth=12), "av01.2.12M.12"),  # Professional, 12-bit
        (av1c(0, 31), "av01.0.31M.08"),  # seq_level_idx 31: no level constraints
    ],
)
def test_av1_codecs_string(config, expected):
    assert av1_codecs_string(config) == expected


@pytest.mark.parametrize(
    "config",
    [b"", av1c(0, 4)[:3], bytes([0x01]) + av1c(0, 4)[1:], bytes([0x82]) + av1c(0, 4)[1:]],
    ids=["empty", "short", "no-marker", "version-2"],
)
def test_av1_codecs_string_rejects_a_bad_record(config):
    with pytest.raises(IsobmffError, match="AV1CodecConfigurationRecord"):
        av1_codecs_string(config)


@pytest.mark.parametrize(
    ("init", "expected"),
    [
        (_init("hvc1", hevc_config=hvcc(1, 93, (1, 2), b"\xb0")), "hvc1.1.6.L93.B0"),
        (_init("hev1", hevc_config=hvcc(2, 120, (2,), b"\x90")), "hev1.2.4.L120.90"),
        (_init("av01", av1_config=av1c(0, 4)), "av01.0.04M.08"),
        (_init("av01", av1_config=av1c(0, 8, bit_depth=10)), "av01.0.08M.10"),
    ],
)
def test_codecs_string_dispatches_hevc_and_av1(init, expected):
    assert codecs_string(init) == expected


def visual_entry(fourcc: str, *children: bytes) -> bytes:
    """A 320x240 VisualSampleEntry with the given child boxes."""
    head = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", 320, 240)
    tail = struct.pack(">IIIH", 0x480000, 0x480000, 0, 1) + bytes(32) + struct.pack(">hh", 24, -1)
    return box(fourcc, head, tail, *children)


@pytest.mark.parametrize(
    ("fourcc", "config_box", "field"),
    [("hvc1", "hvcC", "hevc_config"), ("hev1", "hvcC", "hevc_config"),
     ("av01", "av1C", "av1_config")],
)  # fmt: skip
def test_read_init_keeps_the_hvcc_and_av1c_payloads(fourcc, config_box, field):
    payload = hvcc(1, 93, (1, 2), b"\xb0") if field == "hevc_config" else av1c(0, 4)
    pasp = box("pasp", struct.pack(">II", 1, 1))
    info = read_init(init_segment(visual_entry(fourcc, box(config_box, payload), pasp)))
    assert (info.codec_fourcc, info.width, info.height) == (fourcc, 320, 240)
    assert getattr(info, field) == payload
    others = {"avc_config", "hevc_config", "av1_config"} - {field}
    assert all(getattr(info, other) is None for other in others)


# --- real encodes: libx265 and libsvtav1 ----------------------------------------------

SOURCE = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "1"]
X265 = ["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error"]
SVTAV1 = ["-c:v", "libsvtav1", "-preset", "12"]
FRAGMENTED = ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"]
HEVC_NAL_SPS = 33
"""nal_unit_type of an HEVC sequence parameter set."""
AV1_OBU_SEQUENCE_HEADER = 1


def _encode(out: Path, codec: list[str], pix_fmt: str) -> tuple[InitInfo, str, InitInfo]:
    """Encode the same second twice: as fragmented MP4 (the pipeline's way) and with
    FFmpeg's HLS muxer. Returns (init of the fragmented MP4 as `split_fragmented_mp4`
    cuts it, the CODECS FFmpeg wrote in its master playlist, init of the HLS rendition).

    Two encodes, not one stream copied twice: FFmpeg's HLS muxer only works the HEVC
    string out from Annex B parameter sets, i.e. from the encoder, never from an MP4's
    hvcC. The encoders are deterministic, so both runs carry the same parameter sets.
    """
    out.mkdir()
    source = [*SOURCE, "-pix_fmt", pix_fmt, *codec]
    hls = ["-f", "hls", "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod",
           "-hls_fmp4_init_filename", "init.mp4", "-master_pl_name", "master.m3u8",
           "-hls_segment_filename", str(out / "seg_%d.m4s")]  # fmt: skip
    try:
        ffmpeg.run(ffmpeg.ffmpeg_argv(*source, *FRAGMENTED, str(out / "v.mp4")), timeout_s=60)
    except ToolFailed as exc:
        if "Unknown encoder" in exc.stderr_tail or "Encoder not found" in exc.stderr_tail:
            pytest.skip(f"this FFmpeg has no {codec[1]}")
        raise
    ffmpeg.run(ffmpeg.ffmpeg_argv(*source, *hls, str(out / "index.m3u8")), timeout_s=60)
    init = read_init(split_fragmented_mp4((out / "v.mp4").read_bytes()).init)
    master = (out / "master.m3u8").read_text()
    found = re.search(r'CODECS="([^"]+)"', master)
    assert found, f"FFmpeg's master playlist has no CODECS:\n{master}"
    return init, found.group(1), read_init((out / "init.mp4").read_bytes())


def _rbsp(nal: bytes) -> bytes:
    """A NAL unit without its emulation prevention bytes (00 00 03 → 00 00)."""
    out, zeros = bytearray(), 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _hevc_sps(record: bytes) -> bytes:
    """The RBSP of the first SPS in an hvcC's parameter set arrays."""
    offset, arrays = 23, record[22]
    for _ in range(arrays):
        nal_type = record[offset] & 0x3F
        (count,) = struct.unpack_from(">H", record, offset + 1)
        offset += 3
        for _ in range(count):
            (size,) = struct.unpack_from(">H", record, offset)
            nal, offset = record[offset + 2 : offset + 2 + size], offset + 2 + size
            if nal_type == HEVC_NAL_SPS:
                return _rbsp(nal)
    raise AssertionError("no SPS in the hvcC")


@pytest.mark.parametrize(
    ("pix_fmt", "profile_idc", "bit_depth"),
    [("yuv420p", 1, 8), ("yuv420p10le", 2, 10)],
    ids=["main-8bit", "main10"],
)
def test_real_x265_encode(tmp_path, pix_fmt, profile_idc, bit_depth):
    init, ffmpeg_codecs, hls_init = _encode(tmp_path / "x265", X265, pix_fmt)
    assert (init.codec_fourcc, init.width, init.height) == ("hvc1", 320, 240)
    assert init.hevc_config and init.avc_config is None and init.av1_config is None
    assert init.hevc_config[17] & 7 == bit_depth - 8  # bitDepthLumaMinus8 of the hvcC
    # The stream's own word: profile_tier_level of the SPS (after the 2-byte NAL header
    # and the VPS id / sub-layer byte), not the hvcC's copy of it.
    sps = _hevc_sps(init.hevc_config)
    ptl_head, compatibility, constraints, level_idc = sps[3], sps[4:8], sps[8:14], sps[14]
    assert ptl_head == profile_idc, "profile space 0, Main tier, Main / Main 10"
    assert level_idc >= 60, "320x240 is 76,800 luma samples: over level 1's 36,864"

    codecs = codecs_string(init)
    fields = codecs.split(".")
    assert fields[:2] == ["hvc1", str(profile_idc)]
    reversed_flags = int(fields[2], 16)
    flags = int.from_bytes(compatibility, "big")
    assert reversed_flags == int(f"{flags:032b}"[::-1], 2)
    assert reversed_flags >> profile_idc & 1, "compatible with its own profile"
    assert fields[3] == f"L{level_idc}"
    assert fields[4:] == [f"{b:X}" for b in constraints.rstrip(b"\0")]
    assert codecs == ffmpeg_codecs  # FFmpeg's HLS muxer, from the encoder's SPS
    assert codecs_string(hls_init) == codecs


class _Bits:
    """Reads an AV1 OBU payload MSB first (the spec's f(n))."""

    def __init__(self, data: bytes):
        self.value, self.left = int.from_bytes(data, "big"), len(data) * 8

    def __call__(self, n: int) -> int:
        self.left -= n
        assert self.left >= 0, "sequence header cut short"
        return self.value >> self.left & ((1 << n) - 1)

    def uvlc(self) -> int:
        zeros = 0
        while not self(1):
            zeros += 1
        return self(zeros) + (1 << zeros) - 1


def _av1_sequence_header(record: bytes) -> dict[str, int]:
    """What the codecs string is made of, read from the sequence header OBU in the av1C's
    configOBUs (AV1 spec 5.5), and the frame size, to show the reading went right."""
    obus = record[4:]
    while obus:
        header, offset = obus[0], 2 if obus[0] & 0x04 else 1  # obu_extension_flag
        assert header & 0x02, "configOBUs carry obu_size"
        size = shift = 0
        while True:  # leb128
            byte, offset = obus[offset], offset + 1
            size, shift = size | (byte & 0x7F) << shift, shift + 7
            if not byte & 0x80:
                break
        payload, obus = obus[offset : offset + size], obus[offset + size :]
        if header >> 3 & 0x0F == AV1_OBU_SEQUENCE_HEADER:
            return _parse_sequence_header(_Bits(payload))
    raise AssertionError("no sequence header OBU in the av1C")


def _parse_sequence_header(f: _Bits) -> dict[str, int]:
    """seq_profile, operating point 0's level and tier, frame size and bit depth."""
    seq = {"profile": f(3)}
    f(1)  # still_picture
    reduced = f(1)  # reduced_still_picture_header
    if reduced:
        seq |= {"level": f(5), "tier": 0}
    else:
        decoder_model = delay_length = 0
        if f(1):  # timing_info_present_flag
            f(32), f(32)  # num_units_in_display_tick, time_scale
            if f(1):  # equal_picture_interval
                f.uvlc()
            decoder_model = f(1)
            if decoder_model:
                delay_length = f(5) + 1
                f(32), f(5), f(5)
        initial_display_delay = f(1)
        for op in range(f(5) + 1):  # operating points
            f(12)  # operating_point_idc
            level = f(5)
            tier = f(1) if level > 7 else 0
            if op == 0:
                seq |= {"level": level, "tier": tier}
            if decoder_model and f(1):
                f(delay_length), f(delay_length), f(1)
            if initial_display_delay and f(1):
                f(4)
    width_bits, height_bits = f(4) + 1, f(4) + 1
    seq |= {"width": f(width_bits) + 1, "height": f(height_bits) + 1}
    if not reduced and f(1):  # frame_id_numbers_present_flag
        f(4), f(3)
    f(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if not reduced:
        f(4)  # interintra, masked compound, warped motion, dual filter
        order_hint = f(1)
        if order_hint:
            f(2)  # enable_jnt_comp, enable_ref_frame_mvs
        screen_content = 2 if f(1) else f(1)  # seq_choose / seq_force_screen_content_tools
        if screen_content and not f(1):  # seq_choose_integer_mv
            f(1)  # seq_force_integer_mv
        if order_hint:
            f(3)  # order_hint_bits_minus_1
    f(3)  # enable_superres, enable_cdef, enable_restoration
    high_bitdepth = f(1)  # color_config
    twelve_bit = f(1) if seq["profile"] == 2 and high_bitdepth else 0
    return seq | {"bit_depth": 12 if twelve_bit else 10 if high_bitdepth else 8}


@pytest.mark.parametrize(
    ("pix_fmt", "bit_depth"), [("yuv420p", 8), ("yuv420p10le", 10)], ids=["8bit", "10bit"]
)
def test_real_svtav1_encode(tmp_path, pix_fmt, bit_depth):
    init, ffmpeg_codecs, hls_init = _encode(tmp_path / "svtav1", SVTAV1, pix_fmt)
    assert (init.codec_fourcc, init.width, init.height) == ("av01", 320, 240)
    assert init.av1_config and init.avc_config is None and init.hevc_config is None
    seq = _av1_sequence_header(init.av1_config)
    assert (seq["profile"], seq["width"], seq["height"]) == (0, 320, 240)  # Main profile
    assert seq["bit_depth"] == bit_depth
    codecs = codecs_string(init)
    assert codecs == f"av01.0.{seq['level']:02d}{'MH'[seq['tier']]}.{bit_depth:02d}"
    assert codecs == ffmpeg_codecs  # FFmpeg's HLS muxer, from the sequence header
    assert codecs_string(hls_init) == codecs
