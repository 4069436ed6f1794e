"""Known answers for RFC 6381 codecs strings."""

from __future__ import annotations

import pytest

from media.codecs import aac_codecs_string, avc_codecs_string, codecs_string
from media.isobmff import InitInfo, IsobmffError


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


@pytest.mark.parametrize("fourcc", ["hvc1", "hev1", "av01", "Opus"])
def test_codecs_string_names_what_it_does_not_support(fourcc):
    with pytest.raises(NotImplementedError, match=f"'{fourcc}'.*avc1, avc3.*mp4a"):
        codecs_string(_init(fourcc))


@pytest.mark.parametrize(
    ("init", "missing"),
    [(_init("avc1"), "no avcC"), (_init("mp4a"), "no esds")],
)
def test_codecs_string_needs_the_decoder_configuration(init, missing):
    with pytest.raises(IsobmffError, match=missing):
        codecs_string(init)
