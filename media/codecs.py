"""RFC 6381 `codecs` strings (HLS CODECS=, DASH @codecs) from what an init segment holds.

The string is made from the sample entry's decoder configuration, so it matches the
encoded stream whatever flags the encoder was given:

    codecs_string(read_init(init_bytes))  # 'avc1.64001f' or 'mp4a.40.2'
"""

from __future__ import annotations

from media.isobmff import InitInfo, IsobmffError

__all__ = ["aac_codecs_string", "avc_codecs_string", "codecs_string"]

_AVC_FOURCCS = frozenset({"avc1", "avc3"})
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

    Raises `NotImplementedError` for sample entries other than avc1/avc3/mp4a, and
    `IsobmffError` when the entry lacks the configuration the string is made from.
    """
    if init.codec_fourcc in _AVC_FOURCCS:
        if init.avc_config is None:
            raise IsobmffError(f"'{init.codec_fourcc}' sample entry has no avcC box")
        return avc_codecs_string(init.avc_config, init.codec_fourcc)
    if init.codec_fourcc == "mp4a":
        if init.audio_object_type is None:
            raise IsobmffError("'mp4a' sample entry has no esds AudioSpecificConfig")
        return aac_codecs_string(init.audio_object_type)
    raise NotImplementedError(
        f"no codecs string for '{init.codec_fourcc}' tracks yet; "
        "supported: avc1, avc3 (H.264) and mp4a (AAC)"
    )
