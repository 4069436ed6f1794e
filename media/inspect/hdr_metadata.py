"""An HDR10 source's static metadata: its mastering display colour volume (SMPTE ST 2086)
and content light level (CTA-861.3), for the HDR rungs that keep them (`--hdr keep`).

Read from the side data of the source's first decoded frame, where FFmpeg puts both the
bitstream's SEI (HEVC) or metadata OBUs (AV1) and the container's (`mdcv`/`clli`,
Matroska's MasteringMetadata). A chunk is staged from a span of the source, whose
packets may not hold the SEI (x265 writes it with the first frame only), so the chunk
encodes are given them again as their input's side data (`media.encode.commands`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import av

__all__ = ["HdrMetadata", "read_hdr_metadata"]

_CHROMATICITY = 50000
"""Units per 1 of a chromaticity coordinate (SMPTE ST 2086, x265's --master-display)."""
_LUMINANCE = 10000
"""Units per cd/m2 of the mastering luminance."""


@dataclass(frozen=True)
class HdrMetadata:
    mastering_display: str = ""
    """'G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)' in ST 2086 units, as x265's
    --master-display and FFmpeg's `-mastering_display` take it; '' where absent."""
    content_light: str = ""
    """'MaxCLL,MaxFALL' in cd/m2, as FFmpeg's `-content_light` takes it; '' where absent."""


def _mastering(data: bytes) -> str:
    """FFmpeg's AVMasteringDisplayMetadata (primaries R, G, B then white point, min and
    max luminance, as rationals; has_primaries, has_luminance) in x265's syntax."""
    values = struct.unpack("=20i2i", data[:88])
    ratios = [(values[i], values[i + 1]) for i in range(0, 20, 2)]
    has_primaries, has_luminance = values[20], values[21]
    if not (has_primaries and has_luminance):
        return ""

    def scaled(ratio: tuple[int, int], unit: int) -> int:
        num, den = ratio
        return round(num * unit / den) if den else 0

    (rx, ry, gx, gy, bx, by, wx, wy) = (scaled(r, _CHROMATICITY) for r in ratios[:8])
    low, high = scaled(ratios[8], _LUMINANCE), scaled(ratios[9], _LUMINANCE)
    return f"G({gx},{gy})B({bx},{by})R({rx},{ry})WP({wx},{wy})L({high},{low})"


def from_side_data(side_data: Any) -> HdrMetadata:
    """The metadata in a decoded frame's side data (PyAV's)."""
    fields = {}
    for entry in side_data:
        name = getattr(entry.type, "name", str(entry.type))
        if name == "MASTERING_DISPLAY_METADATA":
            fields["mastering_display"] = _mastering(bytes(entry))
        elif name == "CONTENT_LIGHT_LEVEL":
            max_cll, max_fall = struct.unpack("=2I", bytes(entry)[:8])
            fields["content_light"] = f"{max_cll},{max_fall}"
    return HdrMetadata(**fields)


def read_hdr_metadata(source: Any) -> HdrMetadata:
    """The metadata of a source (a path or a seekable file object), from its first
    decoded video frame. Raises `av.FFmpegError` where it cannot be decoded."""
    with av.open(source) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            return from_side_data(frame.side_data)
    return HdrMetadata()
