"""RFC 6381 `codecs` strings (HLS CODECS=, DASH @codecs) from what an init segment holds.

The string is made from the sample entry's decoder configuration, so it matches the
encoded stream whatever flags the encoder was given:

    codecs_string(read_init(init_bytes))  # 'avc1.64001f', 'hvc1.1.6.L93.B0', 'av01.0.04M.08'
"""

from __future__ import annotations

from media.package.isobmff import InitInfo, IsobmffError

__all__ = [
    "aac_codecs_string",
    "av1_codecs_string",
    "avc_codecs_string",
    "codecs_string",
    "hevc_codecs_string",
]

_AVC_FOURCCS = frozenset({"avc1", "avc3"})
_HEVC_FOURCCS = frozenset({"hvc1", "hev1"})
_HVCC_HEAD = 13
"""Bytes of an HEVCDecoderConfigurationRecord up to and including general_level_idc."""
_PROFILE_SPACES = ("", "A", "B", "C")
"""general_profile_space 0..3 as written before general_profile_idc (ISO/IEC 14496-15 E.3)."""
_AV1C_MARKER_VERSION_1 = 0x81
"""First byte of an AV1CodecConfigurationRecord: marker bit 1, version 1."""
_MPEG4_AUDIO = 0x40
"""objectTypeIndication of MPEG-4 Audio (ISO/IEC 14496-3), the '40' of 'mp4a.40.2'."""


def avc_codecs_string(avc_config: bytes, fourcc: str = "avc1") -> str:
    """'avc1.PPCCLL' from an AVCDecoderConfigurationRecord (the avcC box payload).

    PP is AVCProfileIndication, CC the profile_compatibility (constraint flags) byte and
    LL AVCLevelIndication, each as two lowercase hex digits (RFC 6381, 3.3).

    >>> avc_codecs_string(bytes([1, 0x64, 0x00, 0x1F, 0xFF]))
    'avc1.64001f'
    """
    if fourcc not in _AVC_FOURCCS:
        raise ValueError(f"not an H.264 sample entry: {fourcc!r} (expected avc1 or avc3)")
    if len(avc_config) < 4 or avc_config[0] != 1:
        raise IsobmffError(
            "avcC is not an AVCDecoderConfigurationRecord version 1 "
            f"(got {bytes(avc_config[:4]).hex() or 'nothing'})"
        )
    return f"{fourcc}.{bytes(avc_config[1:4]).hex()}"


def hevc_codecs_string(hvcc: bytes, fourcc: str = "hvc1") -> str:
    """'hvc1.1.6.L93.B0' from an HEVCDecoderConfigurationRecord (the hvcC box payload).

    ISO/IEC 14496-15 Annex E.3, dot-separated: general_profile_space as '', 'A', 'B' or 'C'
    followed by general_profile_idc in decimal; the 32 general_profile_compatibility_flags in
    reverse bit order, in hex without leading zeros; 'L' (Main tier) or 'H' (High tier) and
    general_level_idc in decimal (30 × the level: 93 is level 3.1); then the six bytes of
    general constraint indicator flags, one hex number each, trailing zero bytes left out
    (so none at all when every flag is 0). Hex digits are upper case, as in the standard's
    examples; players read them either way.

    >>> hevc_codecs_string(bytes([1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93]))
    'hvc1.1.6.L93.B0'
    """
    if fourcc not in _HEVC_FOURCCS:
        raise ValueError(f"not an HEVC sample entry: {fourcc!r} (expected hvc1 or hev1)")
    if len(hvcc) < _HVCC_HEAD or hvcc[0] != 1:
        raise IsobmffError(
            "hvcC is not an HEVCDecoderConfigurationRecord version 1 "
            f"(got {bytes(hvcc[:_HVCC_HEAD]).hex() or 'nothing'})"
        )
    space, tier, profile_idc = hvcc[1] >> 6, hvcc[1] >> 5 & 1, hvcc[1] & 0x1F
    flags = int.from_bytes(hvcc[2:6], "big")
    compatibility = int(f"{flags:032b}"[::-1], 2)  # flag j is bit 31 - j; reversed: bit j
    constraints = bytes(hvcc[6:12]).rstrip(b"\0")
    parts = [
        fourcc,
        f"{_PROFILE_SPACES[space]}{profile_idc}",
        f"{compatibility:X}",
        f"{'LH'[tier]}{hvcc[12]}",
        *(f"{byte:X}" for byte in constraints),
    ]
    return ".".join(parts)


HDR_TRANSFERS = (16, 18)
"""Transfer characteristics (PQ, HLG) for which an AV1 codecs string takes its long form."""


def av1_codecs_string(av1c: bytes, colour: tuple[int, int, int, bool] | None = None) -> str:
    """'av01.0.04M.08' from an AV1CodecConfigurationRecord (the av1C box payload).

    The short form of the AV1 ISOBMFF binding (5 Codecs Parameter String):
    av01.<seq_profile>.<seq_level_idx_0, two digits><M or H for seq_tier_0>.<bit depth,
    two digits>, the bit depth being 8, 10 or 12 from high_bitdepth and twelve_bit. The
    optional fields that may follow (monochrome, chroma subsampling, colour primaries,
    transfer, matrix, range) are left out, which a reader takes as 4:2:0 BT.709 limited
    range: fine for SDR. An HDR track (`colour`, the init's `colr`: (primaries, transfer,
    matrix, full range), with a PQ or HLG transfer) gets the long form, so that a player
    can tell it from SDR before it fetches the init segment:
    av01.P.LLT.DD.M.CCC.cp.tc.mc.F.

    >>> av1_codecs_string(bytes([0x81, 0x04, 0x0C, 0x00]))
    'av01.0.04M.08'
    >>> av1_codecs_string(bytes([0x81, 0x04, 0x4C, 0x00]), (9, 16, 9, False))
    'av01.0.04M.10.0.110.09.16.09.0'
    """
    if len(av1c) < 4 or av1c[0] != _AV1C_MARKER_VERSION_1:
        raise IsobmffError(
            "av1C is not an AV1CodecConfigurationRecord version 1 "
            f"(got {bytes(av1c[:4]).hex() or 'nothing'})"
        )
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier, high_bitdepth, twelve_bit = av1c[2] >> 7, av1c[2] >> 6 & 1, av1c[2] >> 5 & 1
    bit_depth = (12 if twelve_bit else 10) if high_bitdepth else 8
    short = f"av01.{profile}.{level:02d}{'MH'[tier]}.{bit_depth:02d}"
    if colour is None or colour[1] not in HDR_TRANSFERS:
        return short
    mono, sub_x, sub_y = av1c[2] >> 4 & 1, av1c[2] >> 3 & 1, av1c[2] >> 2 & 1
    position = av1c[2] & 3
    primaries, transfer, matrix, full = colour
    return (f"{short}.{mono}.{sub_x}{sub_y}{position}.{primaries:02d}.{transfer:02d}"
            f".{matrix:02d}.{int(full)}")


def aac_codecs_string(audio_object_type: int) -> str:
    """'mp4a.40.N' for MPEG-4 audio object type N, in decimal (2 = AAC-LC, 5 = HE-AAC).

    >>> aac_codecs_string(2)
    'mp4a.40.2'
    """
    if not 1 <= audio_object_type <= 95:  # the widest the escape code can express
        raise ValueError(f"MPEG-4 audio object type out of range: {audio_object_type}")
    return f"mp4a.{_MPEG4_AUDIO:02x}.{audio_object_type}"


def codecs_string(init: InitInfo) -> str:
    """The codecs string of an init segment's track.

    Raises `NotImplementedError` for sample entries other than avc1/avc3, hvc1/hev1, av01
    and mp4a, and `IsobmffError` when the entry lacks the configuration the string is made
    from.
    """
    if init.codec_fourcc in _AVC_FOURCCS:
        if init.avc_config is None:
            raise IsobmffError(f"'{init.codec_fourcc}' sample entry has no avcC box")
        return avc_codecs_string(init.avc_config, init.codec_fourcc)
    if init.codec_fourcc in _HEVC_FOURCCS:
        if init.hevc_config is None:
            raise IsobmffError(f"'{init.codec_fourcc}' sample entry has no hvcC box")
        return hevc_codecs_string(init.hevc_config, init.codec_fourcc)
    if init.codec_fourcc == "av01":
        if init.av1_config is None:
            raise IsobmffError("'av01' sample entry has no av1C box")
        return av1_codecs_string(init.av1_config, init.colour)
    if init.codec_fourcc == "mp4a":
        if init.audio_object_type is None:
            raise IsobmffError("'mp4a' sample entry has no esds AudioSpecificConfig")
        return aac_codecs_string(init.audio_object_type)
    raise NotImplementedError(
        f"no codecs string for '{init.codec_fourcc}' tracks yet; "
        "supported: avc1, avc3 (H.264), hvc1, hev1 (HEVC), av01 (AV1) and mp4a (AAC)"
    )
