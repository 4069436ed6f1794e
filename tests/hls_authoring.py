"""A checker for the HLS Authoring Specification for Apple Devices, VOD fMP4 rules.

`check_hls_title(title_dir)` reads `title_dir/master.m3u8` and every playlist it names
(variants, EXT-X-MEDIA renditions, I-frame playlists) with the `m3u8` package, measures the
bit rates from the segment files on disk, and returns one human-readable line per violation
([] when the title conforms). m3u8 is lenient on purpose (it strips quotes, converts numbers,
keeps the last of a repeated tag), so the rules on how a tag is written are checked on the
tags as m3u8's custom-tags hook hands them over, line numbers and all. An init segment is
read with media/package/isobmff.py's reader, the project's one reader of boxes.

Rule numbers are those of Apple's "HLS Authoring Specification for Apple Devices" (the
2023 edition: 1.x video, 7.x media segmentation, 8.x media playlists, 9.x multivariant
playlist) and of RFC 8216 (HLS, protocol version 7) where Apple defers to it. What is
checked, and how:

Every playlist
  - the first line is exactly `#EXTM3U` (RFC 8216 4.3.1.1);
  - exactly one EXT-X-VERSION, and high enough for what the playlist uses (RFC 8216 7):
    floating-point EXTINF needs 3, EXT-X-BYTERANGE / EXT-X-I-FRAMES-ONLY 4, EXT-X-MAP in
    an I-frame playlist 5, EXT-X-MAP in any other Media Playlist 6. (Apple's authoring
    spec has no EXT-X-VERSION rule of its own; RFC 8216 7 asks 6, not 7, for fMP4's
    EXT-X-MAP. Version 7 is what RFC 8216 describes, and the playlists here declare it.)

Multivariant playlist (9.x)
  - EXT-X-INDEPENDENT-SEGMENTS (9.11 SHOULD; required here because every segment this
    pipeline writes starts with an IDR, 7.4);
  - every EXT-X-STREAM-INF has BANDWIDTH, AVERAGE-BANDWIDTH (9.14), CODECS (9.1), and,
    when it carries video, RESOLUTION (9.2) and FRAME-RATE (9.15), in their RFC 8216
    value formats, and is followed by a URI;
  - at least two variants (9.9 "You MUST provide multiple bit rates of video"), unless the
    caller allows one (`min_variants=1`): a still title whose planning dropped its second
    rung, which no CRF made a real step under the top (the ladder invariant, issue 25);
  - every EXT-X-MEDIA has TYPE, GROUP-ID and NAME (RFC 8216 4.3.4.1) and LANGUAGE unless
    TYPE=VIDEO (8.10); names differ within a group, at most one DEFAULT=YES per group;
  - AUDIO= / SUBTITLES= of a variant names an existing group of that TYPE;
  - every EXT-X-I-FRAME-STREAM-INF has BANDWIDTH, CODECS (9.3), RESOLUTION (9.4) and URI,
    and its playlist has EXT-X-I-FRAMES-ONLY (6.8);
  - CODECS: each entry is an RFC 6381 string of a known form (`avc1.PPCCLL`, `hvc1...`,
    `av01...`, `mp4a.40.N`, `ac-3`, `ec-3`, `wvtt`, `stpp...`, ...); an H.264 entry is at
    most High profile, level 5.2 (1.3b) and equals the profile/compatibility/level bytes
    of the avcC box in the variant's init segment; a variant with an AUDIO group lists an
    audio codec, one with video a video codec (RFC 8216 4.3.4.2).

Media playlists (7.x, 8.x)
  - EXT-X-PLAYLIST-TYPE:VOD (8.6) and EXT-X-ENDLIST (a VOD playlist is complete);
  - EXT-X-MAP when the segments are fMP4 (`.m4s`, `.mp4`) (8.20);
  - EXT-X-TARGETDURATION is a decimal-integer >= 1; every EXTINF, rounded half up to an
    integer, is <= it (RFC 8216 4.3.3.1), and no EXTINF exceeds it by more than 0.5 s
    (7.7);
  - segment duration (7.6 "SHOULD be nominally" the target): every segment but the last
    lies within 1 s of the target duration. The last segment may be any shorter length;
  - every segment and init file exists on disk (a BYTERANGE lies inside its file);
  - audio and video playlists share one target duration (8.2; I-frame and subtitle
    playlists may differ for VOD, 6.12 / 5.7) and cover the same duration of content
    (8.3, 8.7): their EXTINF sums differ by at most one video frame (1 / the highest
    FRAME-RATE), the accuracy 8.1 asks of EXTINF sums.

Measured bandwidth (1.26, 1.27, 9.13)
  Per media playlist, from the files on disk and the EXTINF durations as written: the
  segment bit rate is size * 8 / EXTINF (RFC 8216 4.3.4.2; the init segment is not a
  Media Segment and is not counted; a BYTERANGE counts its length). The peak is the
  largest bit rate of any contiguous run of segments whose total duration lies between
  0.5 and 1.5 target durations (RFC 8216 4.1's definition; the largest single-segment
  rate when no run qualifies), found by brute force over every run, not by
  media/package/bandwidth.py's scan, so that the two check each other; the average is
  all bits over all EXTINF time. A variant's measured peak is its video playlist's peak plus
  the largest peak among the renditions of its AUDIO group (and of its SUBTITLES group):
  the "largest sum of peak segment bit rates produced by any playable combination of
  renditions" of 9.13; its average likewise with averages. BANDWIDTH must lie within
  10 % of the measured peak (1.27) and AVERAGE-BANDWIDTH within 10 % of the measured
  average (1.26), "within 10 % of the attribute": |measured - declared| <= 0.1 * declared.
  I-frame variants are held to 1.27 against their own playlist.

Not checked: rules on the media samples (IDRs, continuity, loudness), 6.1's I-frame
playlists (absence is not reported), 7.5's 6 s target (a SHOULD; the pipeline's segment
length is an option), delivery, encryption and live-only rules.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import m3u8

from media.package.isobmff import IsobmffError, read_init

__all__ = ["check_hls_title"]

MASTER = "master.m3u8"
BANDWIDTH_TOLERANCE = Fraction(1, 10)
NOMINAL_SEGMENT_SLACK_S = Fraction(1)
MAX_OVER_TARGET_S = Fraction(1, 2)
H264_MAX_LEVEL_IDC = 52  # 1.3b: at most High profile, level 5.2
H264_PROFILES_UP_TO_HIGH = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High"}
FMP4_SUFFIXES = (".m4s", ".mp4")

_VIDEO_CODECS = [
    r"avc[13]\.[0-9A-Fa-f]{6}",
    r"(hvc1|hev1)\.[ABC]?\d{1,3}\.[0-9A-Fa-f]{1,8}\.[LH]\d{1,3}(\.[0-9A-Fa-f]{1,2}){0,6}",
    r"(dvh1|dvhe|dvav|dva1)\.\d{2}\.\d{2}",
    r"av01\.\d\.\d{2}[MH]\.\d{2}(\.\d\.\d{3}\.\d{2}\.\d{2}\.\d{2}\.\d)?",
    r"mjpg",
]
_AUDIO_CODECS = [r"mp4a\.40\.\d{1,2}", r"mp4a\.(69|6B|6b)", r"ac-3", r"ec-3", r"alac", r"fLaC"]
_TEXT_CODECS = [r"wvtt", r"stpp(\.ttml(\.im1[ti])?)?"]
_CODEC_KINDS = {
    kind: re.compile("|".join(f"(?:{p})" for p in patterns))
    for kind, patterns in (
        ("video", _VIDEO_CODECS),
        ("audio", _AUDIO_CODECS),
        ("text", _TEXT_CODECS),
    )
}
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)(,|$)')
_DECIMAL_INTEGER = re.compile(r"\d{1,20}")
_DECIMAL_FLOAT = re.compile(r"\d+(\.\d+)?")
_RESOLUTION = re.compile(r"(\d+)x(\d+)")
_BYTERANGE = re.compile(r"(\d+)(?:@(\d+))?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


# --- reading: m3u8 parses, a hook keeps each tag as written ------------------------------


@dataclass
class _Tag:
    name: str
    value: str | None
    line: int


@dataclass
class _Segment:
    uri: str
    duration: Fraction | None
    byterange: tuple[int, int | None] | None = None


@dataclass
class _Playlist:
    rel: str  # path relative to the title folder, for messages
    path: Path
    parsed: dict = field(default_factory=dict)  # m3u8.parse's result
    tags: list[_Tag] = field(default_factory=list)  # every tag as written, in order
    segments: list[_Segment] = field(default_factory=list)
    variants: list[tuple[_Tag, str | None]] = field(default_factory=list)  # STREAM-INF, URI
    uri_lines: int = 0
    problems: list[str] = field(default_factory=list)
    readable: bool = True  # False when m3u8 had to leave a tag out

    def named(self, name: str) -> list[_Tag]:
        return [t for t in self.tags if t.name == name]

    def has(self, name: str) -> bool:
        return any(t.name == name for t in self.tags)


@dataclass
class _Stats:
    target: int
    peak_bps: Fraction
    average_bps: Fraction
    total_s: Fraction


class _TagHook:
    """m3u8's custom-tags hook: called with every `#` line before m3u8 reads it.

    It keeps each tag as written with its line number (m3u8 strips quotes, converts
    numbers and keeps the last of a repeated tag, so the rules on how a value is written
    are checked on these), leaves out of the parse a tag m3u8 cannot read on its own
    (it would raise, and the title would report nothing else), and notes which
    EXT-X-STREAM-INF lost its URI or did not have it on the next line (RFC 8216 4.3.4.2).
    """

    def __init__(self, playlist: _Playlist) -> None:
        self.playlist = playlist
        self.stream_infs: list[_Tag] = []  # in the order m3u8 read them
        self.without_uri: set[int] = set()  # lines of the STREAM-INFs m3u8 gave no URI
        self.uri_not_next: set[int] = set()  # lines of those with a line before their URI

    def __call__(self, line: str, lineno: int, data: dict, state: dict) -> bool:
        waiting = state.get("expect_playlist", False) and bool(self.stream_infs)
        if waiting:
            self.uri_not_next.add(self.stream_infs[-1].line)
        if not line.startswith("#EXT"):
            return False  # a comment
        name, colon, value = line[1:].partition(":")
        tag = _Tag(name, value if colon else None, lineno)
        self.playlist.tags.append(tag)
        try:
            m3u8.parse(line)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self.playlist.readable = False
            self.playlist.problems.append(
                f"{self.playlist.rel}:{lineno}: {name} {value!r} is not '<duration>,[<title>]'"
                if name == "EXTINF"
                else f"{self.playlist.rel}:{lineno}: m3u8 cannot read #{name} ({exc!r})"
            )
            return True
        if name == "EXT-X-STREAM-INF":
            if waiting:  # m3u8 gives the next URI to this tag, not to the one before
                self.without_uri.add(self.stream_infs[-1].line)
            self.stream_infs.append(tag)
        return False

    def variants(self, parsed: dict) -> list[tuple[_Tag, str | None]]:
        """Each EXT-X-STREAM-INF with the URI m3u8 gave it (None: it has none)."""
        given = [t for t in self.stream_infs if t.line not in self.without_uri]
        uris = [p["uri"] for p in parsed["playlists"]]
        return [
            (tag, uris[n] if n < len(uris) and tag.line not in self.uri_not_next else None)
            for n, tag in enumerate(given)
        ] + [(t, None) for t in self.stream_infs if t.line in self.without_uri]


def _read_playlist(title_dir: Path, rel: str) -> _Playlist | None:
    path = title_dir / rel
    playlist = _Playlist(rel, path)
    if not path.is_file():
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    first = text.split("\n")[0].rstrip("\r")
    if first != "#EXTM3U":
        playlist.problems.append(
            f"{rel}: the first line is {first[:40]!r}, not '#EXTM3U' (RFC 8216 4.3.1.1: "
            "every playlist starts with #EXTM3U)"
        )
    hook = _TagHook(playlist)
    try:
        playlist.parsed = m3u8.parse(text, custom_tags_parser=hook)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        playlist.problems.append(f"{rel}: m3u8 cannot read it ({exc!r})")
        playlist.readable = False
        return playlist
    playlist.variants = hook.variants(playlist.parsed)
    # m3u8 drops a URI line that no EXTINF announces: count them on the text.
    playlist.uri_lines = sum(
        1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    for segment in playlist.parsed["segments"]:
        if segment.get("uri") is None:
            playlist.problems.append(
                f"{rel}: EXTINF without a URI line after it (RFC 8216 4.3.2.1)"
            )
            continue
        duration = segment.get("duration")
        # m3u8 reads an EXTINF as a float; its shortest repr is the decimal as written.
        exact = None if duration is None else Fraction(repr(duration))
        playlist.segments.append(
            _Segment(segment["uri"], exact, _byterange(segment.get("byterange"), playlist))
        )
    return playlist


def _byterange(value: str | None, playlist: _Playlist) -> tuple[int, int | None] | None:
    if value is None:
        return None
    match = _BYTERANGE.fullmatch(value)
    if match is None:
        playlist.problems.append(f"{playlist.rel}: EXT-X-BYTERANGE {value!r} is not <n>[@<o>]")
        playlist.readable = False
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def _attributes(tag: _Tag, rel: str, problems: list[str]) -> dict[str, str]:
    """A tag's attribute-list, values as written (quoted strings keep their quotes)."""
    text = tag.value or ""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _ATTRIBUTE.match(text, pos)
        if match is None:
            problems.append(
                f"{rel}:{tag.line}: #{tag.name} has a malformed attribute-list "
                f"at {text[pos : pos + 30]!r} (RFC 8216 4.2)"
            )
            break
        if match.group(1) in found:
            problems.append(
                f"{rel}:{tag.line}: #{tag.name} repeats {match.group(1)} "
                "(RFC 8216 4.2: an AttributeName appears at most once)"
            )
        found[match.group(1)] = match.group(2)
        pos = match.end()
        if not match.group(3):
            break
    return found


def _quoted(attrs: dict[str, str], name: str) -> str | None:
    value = attrs.get(name)
    if value is None or len(value) < 2 or not (value[0] == value[-1] == '"'):
        return None
    return value[1:-1]


def _resolve(base_rel: str, uri: str) -> str | None:
    """A URI relative to the playlist at `base_rel`, as a path relative to the title."""
    if _SCHEME.match(uri) or uri.startswith("/"):
        return None
    parts = base_rel.split("/")[:-1]
    for piece in uri.split("?")[0].split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(piece)
    return "/".join(parts)


def _round_half_up(value: Fraction) -> int:
    """An EXTINF "rounded to the nearest integer" (RFC 8216 4.3.3.1), halves up, with the
    decimal module's rounding rather than bandwidth.py's arithmetic."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def _pct(measured: Fraction, declared: int) -> str:
    return f"{float((measured - declared) / declared * 100):+.1f} %"


# --- the checker ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, title_dir: Path, min_variants: int = 2) -> None:
        self.title = title_dir
        self.min_variants = min_variants
        self.out: list[str] = []
        self.media: dict[str, _Playlist] = {}
        self.stats: dict[str, _Stats | None] = {}

    # every playlist

    def _version(self, playlist: _Playlist, needed: int, why: str) -> None:
        versions = playlist.named("EXT-X-VERSION")
        if not versions:
            self.out.append(
                f"{playlist.rel}: no EXT-X-VERSION tag (it MUST be present in a "
                "playlist using tags or attributes beyond protocol version 1, "
                "RFC 8216 4.3.1.2 / 7)"
            )
            return
        if len(versions) > 1:
            self.out.append(
                f"{playlist.rel}: {len(versions)} EXT-X-VERSION tags (RFC 8216 "
                "4.3.1.2: at most one)"
            )
        value = versions[0].value or ""
        if not _DECIMAL_INTEGER.fullmatch(value):
            self.out.append(f"{playlist.rel}: EXT-X-VERSION {value!r} is not a decimal-integer")
        elif int(value) < needed:
            self.out.append(
                f"{playlist.rel}: EXT-X-VERSION {value} but {why} requires "
                f"version {needed} or higher (RFC 8216 7)"
            )

    # multivariant playlist

    def run(self) -> list[str]:
        master = _read_playlist(self.title, MASTER)
        if master is None:
            return [f"{MASTER}: missing from {self.title}"]
        self.out += master.problems
        self._version(master, 1, "")
        if any(t.name in ("EXTINF", "EXT-X-TARGETDURATION") for t in master.tags):
            self.out.append(
                f"{MASTER}: holds media segment tags (EXTINF, TARGETDURATION); a "
                "playlist is either a Media or a Multivariant Playlist (RFC 8216 4.1)"
            )
        if not master.parsed.get("is_independent_segments"):
            self.out.append(
                f"{MASTER}: no EXT-X-INDEPENDENT-SEGMENTS (9.11: with segments that "
                "start with an IDR it SHOULD be in the Multivariant Playlist; 9.12: "
                "else every video Media Playlist MUST carry it)"
            )
        groups = self._renditions(master)
        variants = self._variants(master, groups)
        self._i_frame_variants(master)
        self._cross_playlist(variants, groups)
        return self.out

    def _renditions(self, master: _Playlist) -> dict[tuple[str, str], list[str]]:
        """(TYPE, GROUP-ID) -> media playlist paths of its renditions (those with a URI)."""
        groups: dict[tuple[str, str], list[str]] = {}
        names: dict[tuple[str, str], list[str]] = {}
        defaults: dict[tuple[str, str], int] = {}
        for tag in master.named("EXT-X-MEDIA"):
            where = f"{MASTER}:{tag.line}: EXT-X-MEDIA"
            attrs = _attributes(tag, MASTER, self.out)
            kind = attrs.get("TYPE")
            if kind is None:
                self.out.append(f"{where} has no TYPE (RFC 8216 4.3.4.1: REQUIRED)")
            elif kind not in ("AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"):
                self.out.append(
                    f"{where} TYPE={kind} is not AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS"
                )
            for name in ("GROUP-ID", "NAME"):
                if name not in attrs:
                    self.out.append(f"{where} has no {name} (RFC 8216 4.3.4.1: REQUIRED)")
                elif _quoted(attrs, name) is None:
                    self.out.append(f"{where} {name} is not a quoted-string")
            if kind != "VIDEO":
                if "LANGUAGE" not in attrs:
                    self.out.append(
                        f"{where} has no LANGUAGE (8.10: MUST be in every EXT-X-MEDIA "
                        "that doesn't have TYPE=VIDEO)"
                    )
                elif not _quoted(attrs, "LANGUAGE"):
                    self.out.append(f"{where} LANGUAGE is not a non-empty quoted-string")
            group, uri = _quoted(attrs, "GROUP-ID"), _quoted(attrs, "URI")
            if kind == "SUBTITLES" and uri is None:
                self.out.append(f"{where} TYPE=SUBTITLES has no URI (RFC 8216 4.3.4.1: REQUIRED)")
            if kind == "CLOSED-CAPTIONS" and "URI" in attrs:
                self.out.append(
                    f"{where} TYPE=CLOSED-CAPTIONS has a URI (RFC 8216 4.3.4.1: MUST NOT)"
                )
            if kind is None or group is None:
                continue
            key = (kind, group)
            groups.setdefault(key, [])
            names.setdefault(key, [])
            name = _quoted(attrs, "NAME")
            if name is not None and name in names[key]:
                self.out.append(
                    f"{where} NAME={name!r} repeats in group {group!r} (RFC 8216 "
                    "4.3.4.1.1: names differ within a group)"
                )
            names[key].append(name or "")
            if attrs.get("DEFAULT") == "YES":
                defaults[key] = defaults.get(key, 0) + 1
                if attrs.get("AUTOSELECT", "YES") != "YES":
                    self.out.append(f"{where} DEFAULT=YES needs AUTOSELECT=YES (RFC 8216 4.3.4.1)")
            if uri is not None and kind != "CLOSED-CAPTIONS":
                rel = self._media_playlist(uri, f"{where} URI")
                groups[key].append(rel or f"<unreadable {uri}>")  # no stats: not measured
        for (kind, group), count in defaults.items():
            if count > 1:
                self.out.append(
                    f"{MASTER}: group {kind} {group!r} has {count} DEFAULT=YES "
                    "renditions (RFC 8216 4.3.4.1.1: at most one)"
                )
        return groups

    def _variants(
        self, master: _Playlist, groups: dict[tuple[str, str], list[str]]
    ) -> list[tuple[dict[str, str], str | None]]:
        variants: list[tuple[dict[str, str], str | None]] = []
        for tag, uri in master.variants:
            where = f"{MASTER}:{tag.line}: EXT-X-STREAM-INF"
            attrs = _attributes(tag, MASTER, self.out)
            if uri is None:
                self.out.append(f"{where} is not followed by its URI line (RFC 8216 4.3.4.2)")
            for name in ("BANDWIDTH", "AVERAGE-BANDWIDTH"):
                if name not in attrs:
                    rule = "RFC 8216 4.3.4.2: REQUIRED" if name == "BANDWIDTH" else "9.14: MUST"
                    self.out.append(f"{where} has no {name} ({rule})")
                elif not _DECIMAL_INTEGER.fullmatch(attrs[name]) or int(attrs[name]) == 0:
                    self.out.append(
                        f"{where} {name}={attrs[name]} is not a positive decimal-integer"
                    )
            codecs = self._codecs(attrs, where, "9.1")
            has_video = any(_CODEC_KINDS["video"].fullmatch(c) for c in codecs) or not codecs
            if has_video:
                self._resolution(attrs, where, "9.2")
                if "FRAME-RATE" not in attrs:
                    self.out.append(f"{where} has no FRAME-RATE (9.15: MUST for video)")
                elif not _DECIMAL_FLOAT.fullmatch(attrs["FRAME-RATE"]):
                    self.out.append(
                        f"{where} FRAME-RATE={attrs['FRAME-RATE']} is not a decimal-floating-point"
                    )
                elif Fraction(attrs["FRAME-RATE"]) > 60:
                    self.out.append(f"{where} FRAME-RATE={attrs['FRAME-RATE']} is above 60 (1.19)")
            if "VIDEO-RANGE" in attrs and attrs["VIDEO-RANGE"] not in ("SDR", "HLG", "PQ"):
                self.out.append(f"{where} VIDEO-RANGE={attrs['VIDEO-RANGE']} is not SDR, HLG or PQ")
            for kind, attr in (("AUDIO", "AUDIO"), ("SUBTITLES", "SUBTITLES")):
                if attr not in attrs:
                    continue
                group = _quoted(attrs, attr)
                if group is None or (kind, group) not in groups:
                    self.out.append(
                        f"{where} {attr}={attrs[attr]} names no EXT-X-MEDIA group "
                        f"of TYPE={kind} (RFC 8216 4.3.4.2)"
                    )
            if (
                "AUDIO" in attrs
                and codecs
                and not any(_CODEC_KINDS["audio"].fullmatch(c) for c in codecs)
            ):
                self.out.append(
                    f"{where} has AUDIO= but CODECS lists no audio codec "
                    "(RFC 8216 4.3.4.2: every format of every rendition)"
                )
            video_rel = self._media_playlist(uri, f"{where} URI") if uri else None
            if video_rel is not None:
                self._avcc_matches(video_rel, codecs, where)
                self._variant_bandwidth(attrs, video_rel, groups, where)
            variants.append((attrs, video_rel))
        if len(variants) < self.min_variants:
            self.out.append(
                f"{MASTER}: {len(variants)} variant(s); 9.9: You MUST provide "
                "multiple bit rates of video"
            )
        return variants

    def _i_frame_variants(self, master: _Playlist) -> None:
        for tag in master.named("EXT-X-I-FRAME-STREAM-INF"):
            where = f"{MASTER}:{tag.line}: EXT-X-I-FRAME-STREAM-INF"
            attrs = _attributes(tag, MASTER, self.out)
            if "BANDWIDTH" not in attrs:
                self.out.append(f"{where} has no BANDWIDTH (RFC 8216 4.3.4.3: REQUIRED)")
            elif not _DECIMAL_INTEGER.fullmatch(attrs["BANDWIDTH"]):
                self.out.append(f"{where} BANDWIDTH={attrs['BANDWIDTH']} is not a decimal-integer")
            self._codecs(attrs, where, "9.3")
            self._resolution(attrs, where, "9.4")
            uri = _quoted(attrs, "URI")
            if uri is None:
                self.out.append(f"{where} has no quoted URI (RFC 8216 4.3.4.3: REQUIRED)")
                continue
            rel = self._media_playlist(uri, f"{where} URI")
            if rel is None:
                continue
            if not self.media[rel].parsed.get("is_i_frames_only"):
                self.out.append(f"{rel}: an I-frame playlist without EXT-X-I-FRAMES-ONLY (6.8)")
            stats = self.stats.get(rel)
            if stats is not None and _DECIMAL_INTEGER.fullmatch(attrs.get("BANDWIDTH", "")):
                self._within(
                    where, "BANDWIDTH", int(attrs["BANDWIDTH"]), stats.peak_bps, "peak", "1.27"
                )
                if _DECIMAL_INTEGER.fullmatch(attrs.get("AVERAGE-BANDWIDTH", "")):
                    self._within(
                        where,
                        "AVERAGE-BANDWIDTH",
                        int(attrs["AVERAGE-BANDWIDTH"]),
                        stats.average_bps,
                        "average",
                        "1.26",
                    )

    def _codecs(self, attrs: dict[str, str], where: str, rule: str) -> list[str]:
        if "CODECS" not in attrs:
            self.out.append(f"{where} has no CODECS ({rule}: MUST)")
            return []
        value = _quoted(attrs, "CODECS")
        if value is None:
            self.out.append(f"{where} CODECS is not a quoted-string")
            return []
        codecs = value.split(",")
        for codec in codecs:
            if not any(p.fullmatch(codec) for p in _CODEC_KINDS.values()):
                self.out.append(
                    f"{where} CODECS entry {codec!r} is not an RFC 6381 codecs "
                    "string of a known form (avc1.PPCCLL, hvc1..., av01..., "
                    "mp4a.40.N, ac-3, ec-3, wvtt, stpp...)"
                )
            elif re.fullmatch(r"avc[13]\.[0-9A-Fa-f]{6}", codec):
                profile, level = int(codec[5:7], 16), int(codec[9:11], 16)
                if profile not in H264_PROFILES_UP_TO_HIGH or level > H264_MAX_LEVEL_IDC:
                    self.out.append(
                        f"{where} CODECS {codec}: H.264 profile_idc {profile}, "
                        f"level {level / 10:g}; 1.3b: MUST be at most High "
                        "profile, level 5.2"
                    )
        return codecs

    def _resolution(self, attrs: dict[str, str], where: str, rule: str) -> None:
        if "RESOLUTION" not in attrs:
            self.out.append(f"{where} has no RESOLUTION ({rule}: MUST)")
        elif not _RESOLUTION.fullmatch(attrs["RESOLUTION"]) or "0" in (
            attrs["RESOLUTION"].split("x")
        ):
            self.out.append(
                f"{where} RESOLUTION={attrs['RESOLUTION']} is not a "
                "decimal-resolution <width>x<height>"
            )

    def _avcc_matches(self, video_rel: str, codecs: list[str], where: str) -> None:
        playlist = self.media[video_rel]
        maps = playlist.named("EXT-X-MAP")
        init_uri = _quoted(_attributes(maps[0], video_rel, []), "URI") if maps else None
        init_rel = _resolve(video_rel, init_uri) if init_uri else None
        if init_rel is None or not (self.title / init_rel).is_file():
            return  # reported with the media playlist
        if not codecs:
            return  # reported: no CODECS
        try:
            config = read_init((self.title / init_rel).read_bytes()).avc_config
        except IsobmffError as exc:
            self.out.append(f"{where} {init_rel} is not an init segment the reader reads: {exc}")
            return
        avc = [c for c in codecs if re.fullmatch(r"avc[13]\.[0-9A-Fa-f]{6}", c)]
        if config is None or len(config) < 4:
            if avc:
                self.out.append(f"{where} CODECS says {avc[0]} but {init_rel} has no avcC box")
            return
        # AVCProfileIndication, profile_compatibility, AVCLevelIndication (ISO 14496-15).
        avcc = config[1:4]
        expected = avcc.hex()
        if not avc:
            self.out.append(
                f"{where} CODECS {','.join(codecs)!r} lists no avc1.{expected} for "
                f"the H.264 track of {init_rel}"
            )
        elif all(c[5:].lower() != expected for c in avc):
            self.out.append(
                f"{where} CODECS {avc[0]} does not match {init_rel}'s avcC "
                f"(profile/compatibility/level {expected}): RFC 6381 / RFC 8216 "
                "4.3.4.2"
            )

    def _variant_bandwidth(
        self,
        attrs: dict[str, str],
        video_rel: str,
        groups: dict[tuple[str, str], list[str]],
        where: str,
    ) -> None:
        """9.13 / 1.26 / 1.27: video plus the largest rendition of each group it names."""
        video = self.stats.get(video_rel)
        if video is None:
            return
        peak, average = video.peak_bps, video.average_bps
        for kind in ("AUDIO", "SUBTITLES"):
            if kind not in attrs:
                continue
            key = (kind, _quoted(attrs, kind) or "")
            if key not in groups:
                return  # reported: names no group
            members = [self.stats.get(rel) for rel in groups[key]]
            if not members:
                continue  # renditions without URI: carried in the variant's own segments
            known = [s for s in members if s is not None]
            if len(known) != len(members):
                return  # a rendition could not be measured; reported with its playlist
            peak += max(s.peak_bps for s in known)
            average += max(s.average_bps for s in known)
        if _DECIMAL_INTEGER.fullmatch(attrs.get("BANDWIDTH", "")):
            self._within(where, "BANDWIDTH", int(attrs["BANDWIDTH"]), peak, "peak", "1.27")
        if _DECIMAL_INTEGER.fullmatch(attrs.get("AVERAGE-BANDWIDTH", "")):
            self._within(
                where,
                "AVERAGE-BANDWIDTH",
                int(attrs["AVERAGE-BANDWIDTH"]),
                average,
                "average",
                "1.26",
            )

    def _within(
        self, where: str, name: str, declared: int, measured: Fraction, what: str, rule: str
    ) -> None:
        if declared <= 0 or abs(measured - declared) > BANDWIDTH_TOLERANCE * declared:
            self.out.append(
                f"{where} {name}={declared} but the measured {what} bit rate is "
                f"{math.ceil(measured)} bit/s ({_pct(measured, declared) if declared else 'n/a'}"
                f"); {rule}: MUST be within 10 % of the attribute"
            )

    # media playlists

    def _media_playlist(self, uri: str, where: str) -> str | None:
        rel = _resolve(MASTER, uri)
        if rel is None:
            self.out.append(
                f"{where} {uri!r} is not a relative URI inside the title; cannot check it on disk"
            )
            return None
        if rel in self.media:
            return rel
        playlist = _read_playlist(self.title, rel)
        if playlist is None:
            self.out.append(f"{where} {uri!r}: {rel} does not exist")
            return None
        self.media[rel] = playlist
        self.stats[rel] = self._check_media(playlist)
        return rel

    def _check_media(self, playlist: _Playlist) -> _Stats | None:
        rel, out = playlist.rel, self.out
        out += playlist.problems
        i_frames = playlist.parsed.get("is_i_frames_only", False)
        maps = playlist.named("EXT-X-MAP")
        needed, why = 1, ""
        if any(s.duration is not None and s.duration.denominator != 1 for s in playlist.segments):
            needed, why = 3, "floating-point EXTINF"
        if i_frames or playlist.has("EXT-X-BYTERANGE"):
            needed, why = 4, "EXT-X-BYTERANGE / EXT-X-I-FRAMES-ONLY"
        if maps:
            needed, why = (
                (5, "EXT-X-MAP in an I-frame playlist")
                if i_frames
                else (6, "EXT-X-MAP in a Media Playlist without EXT-X-I-FRAMES-ONLY")
            )
        self._version(playlist, needed, why)
        kinds = [t.value for t in playlist.named("EXT-X-PLAYLIST-TYPE")]
        if kinds != ["VOD"]:
            out.append(
                f"{rel}: EXT-X-PLAYLIST-TYPE is {kinds or 'absent'}, not one VOD (8.6: "
                "VOD playlists MUST carry EXT-X-PLAYLIST-TYPE:VOD)"
            )
        if not playlist.parsed.get("is_endlist"):
            out.append(f"{rel}: no EXT-X-ENDLIST (a VOD playlist is complete, RFC 8216 4.3.3.5)")
        if any(t.name == "EXT-X-STREAM-INF" for t in playlist.tags):
            out.append(f"{rel}: a media playlist holding EXT-X-STREAM-INF (RFC 8216 4.1)")
        if playlist.uri_lines > len(playlist.segments):
            out.append(
                f"{rel}: {playlist.uri_lines - len(playlist.segments)} URI line(s) without an "
                "EXTINF before them (RFC 8216 4.3.2.1: every Media Segment has one)"
            )
        if not playlist.segments:
            out.append(f"{rel}: no media segments")
            return None
        fmp4 = any(s.uri.split("?")[0].endswith(FMP4_SUFFIXES) for s in playlist.segments)
        if fmp4 and not maps:
            out.append(
                f"{rel}: fMP4 segments but no EXT-X-MAP (8.20: If using fMP4, EXT-X-MAP "
                "tags MUST be present)"
            )
        for tag in maps:
            init = _quoted(_attributes(tag, rel, out), "URI")
            init_rel = _resolve(rel, init) if init else None
            if init is None:
                out.append(f"{rel}:{tag.line}: EXT-X-MAP has no quoted URI (RFC 8216 4.3.2.5)")
            elif init_rel is None or not (self.title / init_rel).is_file():
                out.append(f"{rel}:{tag.line}: init segment {init!r} does not exist")

        target = self._target(playlist)
        sizes: list[int] = []
        ok = target is not None and playlist.readable
        for index, segment in enumerate(playlist.segments):
            where = f"{rel} ({segment.uri})"
            seg_rel = _resolve(rel, segment.uri)
            if seg_rel is None or not (self.title / seg_rel).is_file():
                out.append(f"{where}: segment {segment.uri!r} does not exist")
                ok = False
                continue
            size = (self.title / seg_rel).stat().st_size
            if segment.byterange is not None:
                length, offset = segment.byterange
                if offset is not None and offset + length > size:
                    out.append(
                        f"{where}: EXT-X-BYTERANGE {length}@{offset} runs past the end "
                        f"of {segment.uri} ({size} bytes)"
                    )
                size = length
            sizes.append(size)
            duration = segment.duration
            if duration is None:
                ok = False
                continue
            if duration <= 0:
                out.append(f"{where}: EXTINF {float(duration)} is not positive")
                ok = False
                continue
            if target is None:
                continue
            if _round_half_up(duration) > target:
                out.append(
                    f"{where}: EXTINF {float(duration):g} rounds to "
                    f"{_round_half_up(duration)} > EXT-X-TARGETDURATION {target} "
                    "(RFC 8216 4.3.3.1)"
                )
            if duration > target + MAX_OVER_TARGET_S:
                out.append(
                    f"{where}: EXTINF {float(duration):g} exceeds the target duration "
                    f"{target} by more than 0.5 s (7.7: MUST NOT)"
                )
            last = index == len(playlist.segments) - 1
            if not last and abs(duration - target) > NOMINAL_SEGMENT_SLACK_S:
                out.append(
                    f"{where}: EXTINF {float(duration):g} of a segment other than the "
                    f"last is more than 1 s from the target duration {target} (7.6: "
                    "segment durations SHOULD be nominally the target)"
                )
        if not ok or target is None:
            return None
        durations = [s.duration for s in playlist.segments if s.duration is not None]
        total = sum(durations, Fraction(0))
        return _Stats(
            target, _peak_bps(sizes, durations, target), Fraction(8 * sum(sizes)) / total, total
        )

    def _target(self, playlist: _Playlist) -> int | None:
        tags = playlist.named("EXT-X-TARGETDURATION")
        if len(tags) != 1:
            self.out.append(
                f"{playlist.rel}: {len(tags)} EXT-X-TARGETDURATION tags, not one "
                "(RFC 8216 4.3.3.1: REQUIRED, once)"
            )
            return None
        value = tags[0].value or ""
        if not _DECIMAL_INTEGER.fullmatch(value) or int(value) < 1:
            self.out.append(
                f"{playlist.rel}: EXT-X-TARGETDURATION {value!r} is not a positive "
                "decimal-integer (RFC 8216 4.3.3.1)"
            )
            return None
        return int(value)

    # across playlists

    def _cross_playlist(
        self,
        variants: list[tuple[dict[str, str], str | None]],
        groups: dict[tuple[str, str], list[str]],
    ) -> None:
        """8.2 one target duration, 8.3 / 8.7 one duration, over audio and video playlists."""
        rates = [
            Fraction(a["FRAME-RATE"])
            for a, _ in variants
            if _DECIMAL_FLOAT.fullmatch(a.get("FRAME-RATE", ""))
        ]
        rates = [r for r in rates if r > 0]
        frame_s = 1 / max(rates) if rates else Fraction(1, 60)
        rels = {rel for _, rel in variants if rel is not None}
        for (kind, _), members in groups.items():
            if kind in ("AUDIO", "VIDEO"):
                rels.update(members)
        stats = {rel: s for rel in sorted(rels) if (s := self.stats.get(rel)) is not None}
        if not stats:
            return
        targets = {rel: s.target for rel, s in stats.items()}
        if len(set(targets.values())) > 1:
            self.out.append(
                f"audio and video playlists use different target durations "
                f"{targets} (8.2: MUST all use the same target duration)"
            )
        totals = {rel: s.total_s for rel, s in stats.items()}
        longest, shortest = max(totals.values()), min(totals.values())
        if longest - shortest > frame_s:
            spread = {rel: f"{float(t):.6f}" for rel, t in totals.items()}
            self.out.append(
                f"audio and video playlists cover different durations {spread}: "
                f"they differ by {float(longest - shortest) * 1000:.1f} ms, more "
                f"than one video frame ({float(frame_s) * 1000:.1f} ms) (8.3 / 8.7: "
                "MUST contain the same duration / cover the same time range)"
            )


def _peak_bps(sizes: list[int], durations: list[Fraction], target: int) -> Fraction:
    """The peak segment bit rate as RFC 8216 4.1 words it, by brute force.

    "The largest bit rate of any contiguous set of segments whose total duration is
    between 0.5 and 1.5 times the target duration", where "the bit rate of a set is
    calculated by dividing the sum of the segment sizes by the sum of the segment
    durations". Every set (first, last) is measured from running totals, with no early
    exit: a different road from media/package/bandwidth.py's scan, so that a slip there
    shows here. When no set qualifies (never with a target rounded up from the EXTINFs),
    the largest single-segment rate.
    """
    bits = list(itertools.accumulate((8 * size for size in sizes), initial=0))
    seconds = list(itertools.accumulate(durations, initial=Fraction(0)))
    rates = [
        Fraction(bits[stop] - bits[first], seconds[stop] - seconds[first])
        for first, stop in itertools.combinations(range(len(sizes) + 1), 2)
        if Fraction(target, 2) <= seconds[stop] - seconds[first] <= Fraction(3 * target, 2)
    ]
    if rates:
        return max(rates)
    return max(
        Fraction(8 * size) / duration for size, duration in zip(sizes, durations, strict=True)
    )


def check_hls_title(title_dir: Path, min_variants: int = 2) -> list[str]:
    """Every violation of the checked HLS authoring rules in one title folder; [] if none.
    `min_variants`: 1 for a title allowed one video rendition (9.9 aside)."""
    return _Checker(Path(title_dir), min_variants).run()
