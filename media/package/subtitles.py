"""Subtitles: read SRT or WebVTT, write WebVTT, and segment it for HLS.

`read_subtitles` turns the bytes a studio delivers into `Cue`s; `to_webvtt` writes one
WebVTT document; `segment_webvtt` cuts the cues onto the video's segment grid (one
WebVTT document per video segment) and `subtitle_media_playlist` lists those segments.
Every function returns text; writing it is the caller's business.

A `Cue`'s text is WebVTT cue text whatever the input was: `<i>`, `<b>` and `<u>` are
kept, and a literal '&', '<' or '>' of an SRT file is escaped ('&amp;', '&lt;',
'&gt;'), so a cue reads back the same after any number of round trips. Times are exact
`Fraction`s of a second; they are rounded (to the millisecond) only when written.
"""

from __future__ import annotations

import bisect
import codecs
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from media.core.errors import MediaError
from media.package.playlist_text import decimal

__all__ = [
    "HLS_SUBTITLE_VERSION",
    "MPEGTS_HZ",
    "Cue",
    "SubtitleError",
    "format_srt_time",
    "format_webvtt_time",
    "read_subtitles",
    "segment_webvtt",
    "subtitle_media_playlist",
    "to_webvtt",
]

MPEGTS_HZ = 90_000
"""Clock of X-TIMESTAMP-MAP's MPEGTS value (RFC 8216 3.5), whatever the media's timescale."""
MPEGTS_WRAP = 2**33
"""MPEG-2 timestamps are 33-bit."""
HLS_SUBTITLE_VERSION = 7
EXTINF_DECIMALS = 3

_MS = Fraction(1, 1000)
_HALF = Fraction(1, 2)


class SubtitleError(MediaError):
    """A subtitle file that cannot be read; the message names the line where it can."""

    hint = (
        "Fix the subtitle file and deliver it again: SRT or WebVTT text (UTF-8 preferred), "
        "each cue a timing line such as '00:00:01,000 --> 00:00:02,500' (SRT) or "
        "'00:00:01.000 --> 00:00:02.500' (WebVTT) followed by its text, with the end "
        "after the start."
    )


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from `start` until `end` (seconds on the title's timeline)."""

    start: Fraction
    end: Fraction
    text: str
    """WebVTT cue text, lines joined by '\\n': no blank line and no '-->' (they would end
    or split the cue in a WebVTT file)."""
    settings: str = ""
    """WebVTT cue settings ('line:0 align:start'), kept from WebVTT input; '' from SRT."""

    def __post_init__(self):
        object.__setattr__(self, "start", Fraction(self.start))
        object.__setattr__(self, "end", Fraction(self.end))
        if self.start < 0 or self.end <= self.start:
            raise ValueError(f"a cue needs 0 <= start < end, got {self.start} to {self.end} s")
        if not self.text.strip() or "-->" in self.text or _has_blank_line(self.text):
            raise ValueError(
                f"cue text must be non-empty, without blank lines or '-->': {self.text!r}"
            )
        if "\n" in self.settings or "-->" in self.settings:
            raise ValueError(f"cue settings must be one line without '-->': {self.settings!r}")


def _has_blank_line(text: str) -> bool:
    return any(not line.strip() for line in text.split("\n"))


# --- time ---------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d+))?")
"""[hours:]minutes:seconds[.fraction], with ',' or '.' and 1-2 digit fields: SRT's and
WebVTT's forms and the sloppy variants real files have (hours omitted, '.' in SRT)."""

_TIMING = re.compile(r"\s*([\d:.,]+)\s*-->\s*([\d:.,]+)(.*)")


def _round_ms(seconds: Fraction) -> int:
    if seconds < 0:
        raise ValueError(f"a subtitle time cannot be negative, got {seconds} s")
    return math.floor(seconds * 1000 + _HALF)


def _format_time(seconds: Fraction, separator: str) -> str:
    hours, rest = divmod(_round_ms(Fraction(seconds)), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def format_webvtt_time(seconds: Fraction) -> str:
    """'HH:MM:SS.mmm', rounded half up to the millisecond (WebVTT has no finer unit).

    >>> format_webvtt_time(Fraction(1001, 30))
    '00:00:33.367'
    """
    return _format_time(seconds, ".")


def format_srt_time(seconds: Fraction) -> str:
    """'HH:MM:SS,mmm', rounded half up to the millisecond."""
    return _format_time(seconds, ",")


def _parse_time(token: str, where: str) -> Fraction:
    match = _TIMESTAMP.fullmatch(token)
    if not match:
        raise SubtitleError(f"{where}: {token!r} is not a time (expected HH:MM:SS,mmm)")
    hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        raise SubtitleError(f"{where}: {token!r} has minutes or seconds over 59")
    value = Fraction(int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds))
    if fraction:
        value += Fraction(int(fraction), 10 ** len(fraction))
    return value


# --- reading ------------------------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    """Text of a subtitle file: a BOM decides; without one UTF-8, else Windows-1252.

    Studios still deliver SRT saved by Windows tools in cp1252; latin-1 is the last resort
    for the five bytes cp1252 leaves undefined, so any byte string decodes and a NUL is
    what tells a binary file (or UTF-16 without a BOM) apart.
    """
    try:
        if data.startswith(codecs.BOM_UTF8):
            text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
        elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    text = data.decode("cp1252")
                except UnicodeDecodeError:
                    text = data.decode("latin-1")
    except UnicodeDecodeError as err:
        raise SubtitleError(
            f"{name or 'subtitles'}: cannot decode the text ({err.reason} at byte {err.start})",
            hint="Save the subtitle file again as UTF-8 and deliver it again.",
        ) from err
    if "\x00" in text:
        raise SubtitleError(
            f"{name or 'subtitles'}: not a text file (NUL characters; UTF-16 without a BOM?)",
            hint="Save the subtitle file as UTF-8 text (SRT or WebVTT) and deliver it again.",
        )
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _visible(text: str) -> str:
    return re.sub(r"<[^>]*>", "", text).strip()


def _timing(line: str, where: str) -> tuple[Fraction, Fraction, str] | None:
    """(start, end, rest of the line) of a timing line; None for a line without '-->'."""
    if "-->" not in line:
        return None
    match = _TIMING.fullmatch(line)
    if not match or (match[3] and not match[3][0].isspace()) or "-->" in match[3]:
        raise SubtitleError(
            f"{where}: bad timing line {line.strip()!r} (expected '00:00:01,000 --> 00:00:02,500')"
        )
    start, end = _parse_time(match[1], where), _parse_time(match[2], where)
    if end < start:
        raise SubtitleError(f"{where}: the cue ends ({match[2]}) before it starts ({match[1]})")
    return start, end, " ".join(match[3].split())


def _cue(start: Fraction, end: Fraction, lines: list[str], settings: str = "") -> Cue | None:
    """A cue, or None for one that would never show (no visible text, or no duration)."""
    kept = [line for line in lines if line.strip()]
    text = "\n".join(kept)
    if not _visible(text) or end == start:
        return None
    return Cue(start, end, text, settings)


_SRT_TAG = re.compile(r"(</?[A-Za-z][^<>]*>)")
_SRT_KEPT_TAG = re.compile(r"<(/?)([ibu])>", re.IGNORECASE)
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")
_INDEX = re.compile(r"[0-9]+")
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")


def _escape(text: str) -> str:
    """WebVTT text for literal text: '&' (unless it starts a character reference), '<'
    and '>' escaped; '>' too, so that no cue text can hold '-->'."""
    parts = []
    position = 0
    for entity in _ENTITY.finditer(text):
        parts.append(text[position : entity.start()].replace("&", "&amp;"))
        parts.append(entity[0])
        position = entity.end()
    parts.append(text[position:].replace("&", "&amp;"))
    return "".join(parts).replace("<", "&lt;").replace(">", "&gt;")


def _srt_text_line(line: str) -> str:
    """One SRT text line as WebVTT cue text.

    <i>, <b> and <u> are WebVTT too (lower-cased: WebVTT tags are case-sensitive);
    <font ...> and any other HTML-like tag are dropped (their text stays), so are ASS
    overrides such as {\\an8} that SRT authoring tools leave in.
    """
    out = []
    for position, part in enumerate(_SRT_TAG.split(_ASS_OVERRIDE.sub("", line))):
        if position % 2 == 0:
            out.append(_escape(part))
        elif kept := _SRT_KEPT_TAG.fullmatch(part):
            out.append(f"<{kept[1]}{kept[2].lower()}>")
    return "".join(out).strip()


def _read_srt(lines: list[str], name: str) -> list[Cue]:
    """SRT: a timing line starts a cue, whose text runs to the next cue.

    The index line is optional: a digits-only line right before a timing line is taken
    as one. Blank lines inside a cue's text are dropped (a WebVTT cue cannot hold one).
    """
    timings = []
    for number, line in enumerate(lines, start=1):
        timing = _timing(line, f"{name}: line {number}")
        if timing:
            timings.append((number - 1, timing))
    cues = []
    for position, (line_index, (start, end, _coordinates)) in enumerate(timings):
        last = position + 1 == len(timings)
        stop = len(lines) if last else timings[position + 1][0]
        if not last and stop - 1 > line_index and _INDEX.fullmatch(lines[stop - 1].strip()):
            stop -= 1  # the next cue's index line
        text = [_srt_text_line(line) for line in lines[line_index + 1 : stop]]
        if cue := _cue(start, end, text):
            cues.append(cue)
    return cues


_VTT_SKIPPED_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t].*)?")


def _read_webvtt(lines: list[str], name: str) -> list[Cue]:
    """WebVTT as its parser reads it: blocks between blank lines.

    The header block (WEBVTT ...) and NOTE, STYLE and REGION blocks are skipped, a block
    without a timing line on its first or second line (after an identifier) is ignored,
    and a timing line inside a cue's text starts a new cue. Cue identifiers are not kept.
    """
    cues: list[Cue] = []
    current: tuple[Fraction, Fraction, str, list[str]] | None = None
    state = "start"  # start, header, block, cue, skip (NOTE/STYLE/REGION), ignored
    block_lines = 0

    def close():
        nonlocal current
        if current and (cue := _cue(current[0], current[1], current[3], current[2])):
            cues.append(cue)
        current = None

    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        if not line:
            if state != "start":
                close()
                state, block_lines = "block", 0
            continue
        if state == "start":
            state = "header"  # the WEBVTT line
            continue
        timing = _timing(line, f"{name}: line {number}")
        if timing:
            close()
            current = (timing[0], timing[1], timing[2], [])
            state = "cue"
        elif state == "cue":
            current[3].append(line)
        elif state == "block":
            block_lines += 1
            if block_lines == 1 and _VTT_SKIPPED_BLOCK.fullmatch(line):
                state = "skip"
            elif block_lines == 2:
                state = "ignored"  # two lines and no timing: not a cue (WebVTT ignores it)
    close()
    return cues


def read_subtitles(data: bytes, name: str = "") -> list[Cue]:
    """The cues of an SRT or WebVTT file, sorted by start (stable for equal starts).

    `name` only labels error messages. Cues without visible text or with no duration are
    dropped; a file that leaves no cue, a cue that ends before it starts, a bad timing
    line and text that is neither WebVTT nor SRT raise `SubtitleError`.
    """
    label = name or "subtitles"
    text = _decode(data, name)
    lines = text.split("\n")
    first = text.lstrip("\n").split("\n", 1)[0]
    if re.fullmatch(r"WEBVTT(?:[ \t].*)?", first):
        cues = _read_webvtt(lines, label)
    elif any("-->" in line for line in lines):
        cues = _read_srt(lines, label)
    elif not text.strip():
        raise SubtitleError(f"{label}: the file is empty")
    else:
        raise SubtitleError(
            f"{label}: neither WebVTT (no 'WEBVTT' first line) nor SRT "
            "(no '00:00:01,000 --> 00:00:02,500' timing line)"
        )
    if not cues:
        raise SubtitleError(f"{label}: no cue with text in the file")
    return sorted(cues, key=lambda cue: cue.start)


# --- writing ------------------------------------------------------------------------------


def _cue_block(cue: Cue) -> str:
    start = format_webvtt_time(cue.start)
    end = format_webvtt_time(max(cue.end, cue.start + _MS))
    settings = f" {cue.settings}" if cue.settings else ""
    return f"{start} --> {end}{settings}\n{cue.text}"


def _document(header: list[str], cues: Iterable[Cue]) -> str:
    """A WebVTT document: the header lines, then the cues in start order.

    A cue shorter than a millisecond would round to no duration; its end is written
    one millisecond after its start instead, so every written cue ends after it starts.
    """
    blocks = ["\n".join(header), *(_cue_block(cue) for cue in sorted(cues, key=_start))]
    return "\n\n".join(blocks) + "\n"


def _start(cue: Cue) -> Fraction:
    return cue.start


def to_webvtt(cues: Iterable[Cue]) -> str:
    """A complete WebVTT document of `cues` (sorted by start, times to the millisecond)."""
    return _document(["WEBVTT"], cues)


def segment_webvtt(
    cues: Sequence[Cue],
    segment_starts: Sequence[Fraction],
    segment_durations: Sequence[Fraction],
    mpegts_zero: int = 0,
) -> list[str]:
    """One WebVTT document per video segment, for an HLS subtitle rendition.

    A cue is in every segment it overlaps (start < segment end and end > segment start)
    with its own times, not clipped: RFC 8216 3.5 wants a cue that spans segments in each
    of them, and players drop the repeats. A segment without a cue is the header alone.
    Cues entirely outside the grid are in no segment (no player would show them).

    Each document's header maps its times onto the media's:
    `X-TIMESTAMP-MAP=MPEGTS:<mpegts_zero>,LOCAL:00:00:00.000` says that WebVTT time 0 is
    media time `mpegts_zero` in 90 kHz ticks. hls.js and Safari read it to line the cues
    up with the video. Our CMAF tracks start at tfdt 0 with presentation time 0, so the
    default 0 is right for them; pass the 90 kHz time of the title's zero for media whose
    timeline does not start at 0 (an MPEG-TS source that kept its PTS, say).
    """
    if len(segment_starts) != len(segment_durations):
        raise ValueError(
            f"{len(segment_starts)} segment starts but {len(segment_durations)} "
            "durations; pass one of each per video segment"
        )
    if not 0 <= mpegts_zero < MPEGTS_WRAP:
        raise ValueError(f"mpegts_zero must be a 33-bit timestamp, got {mpegts_zero}")
    header = ["WEBVTT", f"X-TIMESTAMP-MAP=MPEGTS:{mpegts_zero},LOCAL:00:00:00.000"]
    starts = [Fraction(start) for start in segment_starts]
    durations = [Fraction(duration) for duration in segment_durations]
    ends = [start + duration for start, duration in zip(starts, durations, strict=True)]
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if end <= start:
            raise ValueError(f"segment durations must be positive, got {end - start} s")
        if index and start < ends[index - 1]:
            raise ValueError(
                f"segment {index} starts at {start} s, before the one before it "
                f"ends ({ends[index - 1]} s); pass the grid in order"
            )
    segments: list[list[Cue]] = [[] for _ in starts]
    for cue in sorted(cues, key=_start):
        # The first segment that ends after the cue starts, then on while they start before
        # it ends: a long title's cues are placed in O(cues log segments), not a full scan.
        index = bisect.bisect_right(ends, cue.start)
        while index < len(starts) and starts[index] < cue.end:
            segments[index].append(cue)
            index += 1
    return [_document(header, segment) for segment in segments]


def subtitle_media_playlist(
    segment_uris: Sequence[str],
    segment_durations: Sequence[Fraction],
    target_duration_s: int,
) -> str:
    """The VOD media playlist of a segmented WebVTT rendition (RFC 8216, version 7).

    Pass the video's segment durations and its EXT-X-TARGETDURATION, so the subtitle
    segments line up with the video's one for one. URIs are written as given (relative
    to the playlist). Raises ValueError for an EXTINF that rounds above the target
    duration, which RFC 8216 4.3.3.1 forbids.
    """
    if len(segment_uris) != len(segment_durations):
        raise ValueError(
            f"{len(segment_uris)} segment URIs but {len(segment_durations)} "
            "durations; pass one of each per segment"
        )
    if not segment_uris:
        raise ValueError("a subtitle playlist needs at least one segment")
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_SUBTITLE_VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration_s}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for uri, segment_duration in zip(segment_uris, segment_durations, strict=True):
        duration = Fraction(segment_duration)
        if duration <= 0:
            raise ValueError(f"segment durations must be positive, got {duration} s")
        extinf = decimal(duration, EXTINF_DECIMALS)
        if math.floor(Fraction(extinf) + _HALF) > target_duration_s:
            raise ValueError(
                f"EXTINF {extinf} rounds above the target duration {target_duration_s} s"
            )
        if not uri or any(c in uri for c in "\r\n") or uri.startswith("#"):
            raise ValueError(f"cannot write {uri!r} as a playlist URI line")
        lines += [f"#EXTINF:{extinf},", uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
