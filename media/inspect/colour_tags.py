"""Colour: the space, range and transfer a source declares, HDR signalling, and what to
assume where its tags are missing or disagree."""

from __future__ import annotations

from media.inspect.codepoints import (
    _BT2020_MATRICES,
    _HD_COLOUR,
    _HDR_TRANSFERS,
    _SD_COLOUR,
    _SDR_TRANSFERS,
    UNKNOWN,
)
from media.inspect.demux import _summary
from media.inspect.results import INFO, WARNING, Colour, Finding, StreamSummary

# --- colour -------------------------------------------------------------------------------


def colour_facts(source: str | StreamSummary) -> Colour:
    """The colour description to encode from: each tag as found, or, where untagged, the
    default for the resolution (SD: BT.601 as smpte170m; HD and larger: bt709), kept in
    the BT.2020 family when the other tags are BT.2020. Range defaults to tv (limited),
    or pc for full-range ("yuvj") and RGB pixel formats."""
    summary = _summary(source)
    default = _HD_COLOUR if summary.width >= 1280 or summary.height >= 720 else _SD_COLOUR
    primaries, transfer, matrix, rng = (
        summary.color_primaries,
        summary.color_transfer,
        summary.color_matrix,
        summary.color_range,
    )
    defaulted = []
    if primaries == UNKNOWN:
        defaulted.append("primaries")
        primaries = "bt2020" if matrix in _BT2020_MATRICES else default
    if transfer == UNKNOWN:
        defaulted.append("transfer")
        transfer = default
    if matrix == UNKNOWN:
        defaulted.append("matrix")
        matrix = "bt2020nc" if primaries == "bt2020" else default
    if rng == UNKNOWN:
        defaulted.append("range")
        full = summary.pix_fmt.startswith(("yuvj", "rgb", "bgr", "gbr"))
        rng = "pc" if full else "tv"
    return Colour(
        primaries, transfer, matrix, rng, _HDR_TRANSFERS.get(transfer, ""), tuple(defaulted)
    )


def colour(source: str | StreamSummary) -> list[Finding]:
    """Colour tags: defaults applied (info), HDR (warning), inconsistent tags (warning),
    full range (info)."""
    summary = _summary(source)
    facts = colour_facts(summary)
    findings = []
    if facts.defaulted:
        findings.append(
            Finding(
                INFO,
                "colour_defaulted",
                f"The source does not tag its colour {', '.join(facts.defaulted)}; "
                f"{summary.width}x{summary.height} video is assumed to be "
                f"{facts.primaries}/{facts.transfer}/{facts.matrix}, {facts.range} range.",
                "Tag the colour description when exporting if the assumption is wrong.",
            )
        )
    odd = _colour_inconsistencies(summary)
    if odd:
        findings.append(
            Finding(
                WARNING,
                "colour_inconsistent",
                f"The colour tags do not fit together: {'; '.join(odd)} (primaries "
                f"{summary.color_primaries}, transfer {summary.color_transfer}, matrix "
                f"{summary.color_matrix}, pixel format {summary.pix_fmt}).",
                "The tags are used as found; if colours look wrong, re-export the source "
                "with a correct colour description.",
            )
        )
    if facts.hdr:
        kind = "HDR10 (PQ, SMPTE ST 2084)" if facts.hdr == "pq" else "HLG (ARIB STD-B67)"
        findings.append(
            Finding(
                WARNING,
                "hdr",
                f"The source is {kind} with {facts.primaries} primaries.",
                "The renditions are SDR (BT.709), so the picture is tone-mapped to SDR "
                "(SourceFacts.hdr tells the encoder), which compresses highlights; provide "
                "an SDR grade for the best result.",
            )
        )
    if summary.color_range == "pc" and not summary.pix_fmt.startswith(("rgb", "bgr", "gbr")):
        findings.append(
            Finding(
                INFO,
                "full_range",
                "The source is full-range (pc) YUV.",
                "It is converted to limited (tv) range for delivery.",
            )
        )
    return findings


def _colour_inconsistencies(summary: StreamSummary) -> list[str]:
    p, t, m = summary.color_primaries, summary.color_transfer, summary.color_matrix
    odd = []
    if p == "bt2020" and t in _SDR_TRANSFERS:
        odd.append(
            f"BT.2020 primaries with the SDR {t} transfer (expected bt2020-10/12, "
            "smpte2084 or arib-std-b67)"
        )
    if t in _HDR_TRANSFERS and p not in (UNKNOWN, "bt2020"):
        odd.append(f"an HDR transfer ({t}) with {p} primaries")
    if t in _HDR_TRANSFERS and _bit_depth(summary.pix_fmt) == 8:
        odd.append(f"an HDR transfer ({t}) in an 8-bit pixel format")
    if m in _BT2020_MATRICES and p not in (UNKNOWN, "bt2020"):
        odd.append(f"a BT.2020 matrix with {p} primaries")
    if p == "bt2020" and m not in (UNKNOWN, *_BT2020_MATRICES, "ictcp"):
        odd.append(f"BT.2020 primaries with the {m} matrix")
    return odd


def _bit_depth(pix_fmt: str) -> int:
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8
