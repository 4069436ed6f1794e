"""ISO/IEC 23091-2 code points as FFmpeg names them, and the colour the inspection
assumes where a source does not say."""

from __future__ import annotations


def code_point(obj, name: str) -> int:
    """The integer PyAV gives for attribute `name` of a codec context or frame (a colour
    code point, a field order), or -1 where it gives none."""
    try:
        return int(getattr(obj, name, None))
    except (TypeError, ValueError):
        return -1


# --- ISO/IEC 23091-2 code points, as FFmpeg names them ------------------------------------

_PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFER = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_MATRIX = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_RANGE = {1: "tv", 2: "pc"}
_FIELD_ORDER = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
_INTERLACED_ORDERS = frozenset({"tt", "bb", "tb", "bt"})
UNKNOWN = "unknown"

_HDR_TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}
_SDR_TRANSFERS = frozenset(
    {"bt709", "smpte170m", "gamma22", "gamma28", "iec61966-2-1", "smpte240m"}
)
_BT2020_MATRICES = frozenset({"bt2020nc", "bt2020c"})
_SD_COLOUR = "smpte170m"
"""Default primaries, transfer and matrix of untagged SD video (BT.601, as FFmpeg names
it for 525-line video; 625-line BT.470BG differs only slightly in its primaries)."""
_HD_COLOUR = "bt709"
"""Default of untagged HD and larger video."""


def colour_names(obj) -> tuple[str, str, str, str]:
    """(primaries, transfer, matrix, range) that a codec context or frame declares, each
    by FFmpeg's name, or UNKNOWN."""
    return (_PRIMARIES.get(code_point(obj, "color_primaries"), UNKNOWN),
            _TRANSFER.get(code_point(obj, "color_trc"), UNKNOWN),
            _MATRIX.get(code_point(obj, "colorspace"), UNKNOWN),
            _RANGE.get(code_point(obj, "color_range"), UNKNOWN))
