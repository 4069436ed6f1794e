"""Which container a codec can be copied into (stream copy, no decode).

Staging copies a chunk's span of the source into a small local file
(`media.encode.staging`); that file's container must take the source's video codec.
Matroska takes most; MOV takes what it does not (DNxHD/DNxHR, VC-1, CineForm). Inspection
refuses a source whose codec none of them takes (`UnstageableCodec`), before any encode.
"""

from __future__ import annotations

import functools
import io

import av

from media.core.errors import UndecodableVideo

STAGING_FORMATS = (("matroska", ".mkv"), ("mov", ".mov"), ("nut", ".nut"))
"""Containers a span may be staged in, in order of preference, with their file suffix."""


class UnstageableCodec(UndecodableVideo):
    """No staging container takes the source's video codec."""

    hint = (
        "Re-export the source with a common codec (H.264, HEVC, ProRes, DNxHR, AV1, VP9) "
        "in MP4, MOV, Matroska or MXF."
    )


@functools.cache
def staging_format(codec: str) -> tuple[str, str] | None:
    """(format, suffix) of the first of `STAGING_FORMATS` that takes `codec`, by FFmpeg's
    descriptor name ('h264', 'dnxhd', 'av1': not a decoder's name such as 'libdav1d'),
    or None where none does."""
    for name, suffix in STAGING_FORMATS:
        with av.open(io.BytesIO(), mode="w", format=name) as probe:
            if codec in probe.supported_codecs:
                return name, suffix
    return None
