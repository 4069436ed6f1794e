"""Ladders: which renditions a title gets.

The fixed ladder (`--ladder fixed`): capped-CRF rungs from 1080p to 234p, skipping
rungs taller than the source; Apple's authoring-spec ladder, a benchmark baseline; and
the sizing every ladder uses, per-title included. Widths follow the source's display
aspect ratio, rounded to even numbers as 4:2:0 chroma requires.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.core.naming import rendition_id
from media.core.types import Rendition, SourceInfo
from media.encode.encoders import codec_crf, codec_encoder

DEFAULT_CRF = 23.0
BUFSIZE_RATIO = 2.0
"""VBV buffer = this many seconds' worth of the cap: smooth enough for 4 s segments."""
SECOND_RUNG_CRF_STEP = 6.0
"""How far over the fixed ladder's CRF the second rung of a source with room for one
rung is encoded (at half its height), so that it is a real step under the first where
neither cap binds: on an easy source, neither alone is (docs/per-title.md)."""


@dataclass(frozen=True)
class Rung:
    height: int
    maxrate_kbps: int


FIXED_LADDER: tuple[Rung, ...] = (
    Rung(1080, 5000),
    Rung(720, 3000),
    Rung(540, 1600),
    Rung(360, 700),
    Rung(234, 250),
)


APPLE_LADDER: tuple[tuple[int, int], ...] = (
    (1080, 7800), (1080, 6000), (720, 4500), (720, 3000), (540, 2000), (432, 1100),
    (432, 730), (360, 365), (234, 145),
)
"""Apple's H.264 ladder (HLS Authoring Specification): (height, average kb/s)."""
APPLE_MAXRATE_RATIO = 1.1
"""The authoring spec asks peaks within 110 % of the average for VOD (capped VBR)."""


def apple_ladder(source: SourceInfo, max_renditions: int = 0) -> list[Rendition]:
    """Apple's ladder at fixed average bitrates, rungs no taller than the source."""
    kept = [(h, kbps) for h, kbps in APPLE_LADDER if h <= source.height]
    if not kept:
        kept = [(even_floor(source.height), APPLE_LADDER[-1][1])]
    if max_renditions:
        kept = kept[:max_renditions]
    return [
        Rendition(rendition_id=rendition_id(h, kbps), width=scaled_width(source, h), height=h,
                  crf=0.0, maxrate_kbps=int(kbps * APPLE_MAXRATE_RATIO),
                  bufsize_kbit=int(kbps * BUFSIZE_RATIO), target_kbps=kbps)
        for h, kbps in kept
    ]


def even(value: float) -> int:
    """Nearest even integer, at least 2 (for widths: keeps the aspect ratio best)."""
    return max(2, round(value / 2) * 2)


def even_floor(value: float) -> int:
    """Largest even integer not above `value`, at least 2 (for heights: never upscale)."""
    return max(2, int(value) // 2 * 2)


def scaled_width(source: SourceInfo, height: int) -> int:
    """Width at `height` that keeps the source's display aspect ratio."""
    return even(Fraction(source.width, source.height) * height)


def fixed_ladder(source: SourceInfo, crf: float = DEFAULT_CRF,
                 rungs: tuple[Rung, ...] = FIXED_LADDER,
                 max_renditions: int = 0) -> list[Rendition]:
    """The fixed ladder for a source: rungs no taller than the source, tallest first.

    A source shorter than the smallest rung still gets a rendition at its own height.
    Where only one rung fits, a second is added (a player needs another bit rate to go
    to, HLS authoring spec 9.9) that is a real step under it on content too easy for the
    cap to bind (`media.plan.invariant`): half its height, cap and rate, SECOND_RUNG_CRF_STEP
    CRF steps up.
    """
    kept = [r for r in rungs if r.height <= source.height] or [
        Rung(even_floor(source.height), rungs[-1].maxrate_kbps)]
    crfs = [crf] * len(kept)
    if len(kept) == 1:
        kept.append(Rung(even_floor(kept[0].height / 2), max(1, kept[0].maxrate_kbps // 2)))
        crfs.append(min(51.0, crf + SECOND_RUNG_CRF_STEP))
    if max_renditions:
        kept = kept[:max_renditions]
    return [
        Rendition(
            rendition_id=rendition_id(rung.height, rung.maxrate_kbps),
            width=scaled_width(source, rung.height),
            height=rung.height,
            crf=rung_crf,
            maxrate_kbps=rung.maxrate_kbps,
            bufsize_kbit=int(rung.maxrate_kbps * BUFSIZE_RATIO),
        )
        for rung, rung_crf in zip(kept, crfs, strict=False)
    ]


def vmaf_height(source: SourceInfo) -> int:
    """Display height at which quality is scored: 1080 lines, or the source's if lower."""
    return even_floor(min(1080, source.height))


CODEC_RATE_RATIO = {"h264": 1.0, "hevc": 0.8, "av1": 0.65}
"""A fixed rung's cap in each codec, as a share of its H.264 cap: about the rate at
which the codec matches H.264's quality (AV1 a third less, HEVC a fifth)."""


def codec_id(codec: str, rendition_id_: str) -> str:
    """A rendition's id in a codec ladder: H.264's as it is, the others' prefixed with
    the codec ('av1-360p-455k'), so ids stay unique across the codecs of a title."""
    return rendition_id_ if codec == "h264" else f"{codec}-{rendition_id_}"


def codec_of(rendition: Rendition) -> str:
    """The codec of a rendition of a codec ladder (`codec_id`)."""
    head = rendition.rendition_id.split("-", 1)[0]
    return head if head in CODEC_RATE_RATIO else "h264"


def in_codec(renditions: Sequence[Rendition], codec: str, encoder: str,
             hdr: str = "") -> list[Rendition]:
    """A fixed ladder (H.264's rungs) as `codec`'s ladder, encoded with `encoder`
    (`media.encode.encoders.codec_encoder`): its caps and average rates scaled by
    CODEC_RATE_RATIO, its CRF carried onto the codec's scale (`codec_crf`), its ids
    prefixed (`codec_id`); `hdr` ('pq', 'hlg') kept in its rungs (`Rendition.hdr`)."""
    ratio = CODEC_RATE_RATIO[codec]
    out = []
    for r in renditions:
        maxrate = max(1, round(r.maxrate_kbps * ratio)) if r.maxrate_kbps else 0
        out.append(dataclasses.replace(
            r, rendition_id=codec_id(codec, rendition_id(r.height, maxrate)),
            crf=codec_crf(codec, r.crf), maxrate_kbps=maxrate,
            bufsize_kbit=int(maxrate * BUFSIZE_RATIO),
            target_kbps=max(1, round(r.target_kbps * ratio)) if r.target_kbps else 0,
            encoder=encoder, hdr=hdr))
    return out


def codec_ladders(renditions: Sequence[Rendition], codecs: Sequence[str],
                  requested_encoder: str, hdr: str = "") -> list[Rendition]:
    """Every codec's fixed ladder, codec by codec in `codecs` order, each rung with its
    codec's encoder for the job's `--encoder` (`codec_encoder`). `hdr` ('pq', 'hlg'; '' for
    none): an HDR source's HDR, kept in every codec's ladder but H.264's (`--hdr keep`:
    `media.core.config.JobConfig.title_codecs`), which stays SDR for every device."""
    return [r for codec in codecs
            for r in in_codec(renditions, codec, codec_encoder(codec, requested_encoder),
                              hdr if codec != "h264" else "")]
