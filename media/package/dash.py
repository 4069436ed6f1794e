"""The DASH MPD (ISO/IEC 23009-1, live profile) over the title's CMAF segments.

One static Period: a video AdaptationSet per codec (`video_families`) with one
Representation per rendition, one audio AdaptationSet per language (the first in the
role "main", the others "alternate"), and one text AdaptationSet per subtitle track
(WebVTT sidecar files). Each media Representation carries a SegmentTemplate whose
`$RepresentationID$`/`$Number%05d$` names are exactly the files `media.core.naming` writes
(checked, so a drift between the two fails here rather than in a player), and a
SegmentTimeline with the written segments' exact start times and durations. The same
segments serve the HLS playlists of `media.package.hls`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

from media.core import naming
from media.core.types import PackagedTrack, Segment
from media.package.bandwidth import track_peak_bandwidth_bps

__all__ = [
    "DASH_NS",
    "TimelineEntry",
    "frame_rate_attr",
    "iso8601_duration",
    "mpd",
    "segment_timeline",
    "template_uris",
    "video_families",
]

DASH_NS = "urn:mpeg:dash:schema:mpd:2011"
LIVE_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
MIN_BUFFER_TIME = "PT2S"
START_NUMBER = 1
"""`naming.segment_name` numbers segments from 1."""
MAIN_SELECTION_PRIORITY = 2
"""AdaptationSet@selectionPriority of the main audio set; the others have the default, 1."""


class TimelineEntry(NamedTuple):
    """One SegmentTimeline `S`: `r + 1` segments of `d` ticks from `t` (None: contiguous)."""

    t: int | None
    d: int
    r: int


def segment_timeline(segments: Sequence[Segment]) -> list[TimelineEntry]:
    """The compressed timeline: runs of equal durations share one `S` with a repeat count.

    `t` is written on the first `S` and wherever a segment does not start where the one
    before it ended (a gap or an overlap), so the timeline reproduces every start time.
    """
    entries: list[TimelineEntry] = []
    end: int | None = None
    for segment in segments:
        contiguous = segment.start_ticks == end
        if entries and contiguous and entries[-1].d == segment.duration_ticks:
            entries[-1] = entries[-1]._replace(r=entries[-1].r + 1)
        else:
            t = None if contiguous else segment.start_ticks
            entries.append(TimelineEntry(t, segment.duration_ticks, 0))
        end = segment.start_ticks + segment.duration_ticks
    return entries


def iso8601_duration(seconds: Fraction) -> str:
    """An xs:duration with millisecond precision, rounded up so no sample is cut off.

    >>> iso8601_duration(Fraction(576512, 48000))
    'PT12.011S'
    """
    milliseconds = math.ceil(Fraction(seconds) * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if hours or minutes else "")
    return text + f"{milliseconds // 1000}.{milliseconds % 1000:03d}S"


def frame_rate_attr(rate: Fraction) -> str:
    """A DASH FrameRateType: '25' or '30000/1001'."""
    rate = Fraction(rate)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def template_uris(kind: str, media_dir: str = "") -> tuple[str, str]:
    """(initialization, media) SegmentTemplate attributes of a kind of track."""
    rep = "$RepresentationID$"
    media = naming.SEGMENT_PATTERN.replace("{index:05d}", "$Number%05d$")
    return (naming.init_uri(kind, rep, media_dir),
            f"{naming.track_dir(kind, rep, media_dir)}/{media}")


def _resolve(template: str, track_id: str, number: int | None = None) -> str:
    uri = template.replace("$RepresentationID$", track_id)
    return uri if number is None else uri.replace("$Number%05d$", f"{number:05d}")


def _check_names(track: PackagedTrack, init: str, media: str) -> None:
    """Fail loudly when the template would not name the files the track lists."""
    expected = [(_resolve(init, track.track_id), track.init_uri)]
    for position, segment in enumerate(track.segments, start=START_NUMBER):
        expected.append((_resolve(media, track.track_id, position), segment.uri))
    for want, have in expected:
        if want != have:
            raise ValueError(
                f"track {track.track_id!r} lists {have!r} where the SegmentTemplate names "
                f"{want!r}; name segments with media.core.naming, numbered from {START_NUMBER}"
            )


def _el(parent: ET.Element, tag: str, attrib: dict[str, object] | None = None) -> ET.Element:
    items = (attrib or {}).items()
    return ET.SubElement(parent, tag, {k: str(v) for k, v in items})


def _timeline(template: ET.Element, segments: Sequence[Segment]) -> None:
    timeline = _el(template, "SegmentTimeline")
    for entry in segment_timeline(segments):
        attrib = {} if entry.t is None else {"t": entry.t}
        attrib["d"] = entry.d
        if entry.r:
            attrib["r"] = entry.r
        _el(timeline, "S", attrib)


def _representation(parent: ET.Element, track: PackagedTrack, channels: bool) -> None:
    attrib: dict[str, object] = {
        "id": track.track_id,
        "codecs": track.codecs,
        "bandwidth": track_peak_bandwidth_bps(track),
    }
    if track.kind == "video":
        if track.width and track.height:
            attrib |= {"width": track.width, "height": track.height}
        if track.frame_rate:
            attrib["frameRate"] = frame_rate_attr(track.frame_rate)
    elif track.sample_rate_hz:
        attrib["audioSamplingRate"] = track.sample_rate_hz
    representation = _el(parent, "Representation", attrib)
    if channels:
        _el(representation, "AudioChannelConfiguration",
            {"schemeIdUri": CHANNEL_SCHEME, "value": track.channels})
    init, media = template_uris(track.kind, track.media_dir)
    _check_names(track, init, media)
    template = _el(representation, "SegmentTemplate", {
        "timescale": track.timescale, "initialization": init, "media": media,
        "startNumber": START_NUMBER,
    })
    _timeline(template, track.segments)


def _by_bandwidth(tracks: list[PackagedTrack]) -> list[PackagedTrack]:
    return sorted(tracks, key=lambda track: (track_peak_bandwidth_bps(track), track.track_id))


def _par(tracks: list[PackagedTrack]) -> str:
    """Picture aspect ratio of the largest rendition (square pixels assumed)."""
    largest = max(tracks, key=lambda track: (track.width * track.height, track.width))
    divisor = math.gcd(largest.width, largest.height)
    return f"{largest.width // divisor}:{largest.height // divisor}"


CODEC_PREFERENCE = ("av01", "hvc1", "hev1", "avc1", "avc3")
"""Sample entries of the video codecs, most efficient first: the order of a title's
video AdaptationSets, and of their selectionPriority (a player that decodes several
starts on the most efficient)."""


def video_families(video: list[PackagedTrack]) -> list[list[PackagedTrack]]:
    """The video tracks grouped by codec (the sample entry of their CODECS string, HEVC's
    two as one), most efficient first (CODEC_PREFERENCE): one AdaptationSet each, as a
    player cannot switch codecs within a set (DASH-IF IOP 3.2.13)."""
    groups: dict[str, list[PackagedTrack]] = {}
    for track in video:
        entry = track.codecs.split(".", 1)[0]
        groups.setdefault("hvc1" if entry == "hev1" else entry, []).append(track)

    def rank(entry: str) -> int:
        return CODEC_PREFERENCE.index(entry) if entry in CODEC_PREFERENCE else len(
            CODEC_PREFERENCE)
    return [groups[entry] for entry in sorted(groups, key=lambda e: (rank(e), e))]


CICP = "urn:mpeg:mpegB:cicp:"
"""Scheme prefix of the colour properties (ISO/IEC 23001-8 code points, DASH-IF IOP)."""
HDR_TRANSFER_CICP = {"pq": 16, "hlg": 18}
"""TransferCharacteristics of an HDR rendition (`Rendition.hdr`): SMPTE ST 2084 (PQ),
ARIB STD-B67 (HLG)."""


def _colour_properties(adaptation_set: ET.Element, video: list[PackagedTrack]) -> None:
    """An HDR codec ladder's colour signalling (`--hdr keep`): its transfer as an
    EssentialProperty (a player that does not know it must not pick the set), BT.2020
    primaries and matrix (code points 9) as SupplementalProperty. SDR sets get none."""
    hdr = {track.rendition.hdr if track.rendition else "" for track in video}
    if len(hdr) != 1 or not (kept := hdr.pop()):
        return
    _el(adaptation_set, "EssentialProperty", {
        "schemeIdUri": f"{CICP}TransferCharacteristics", "value": HDR_TRANSFER_CICP[kept]})
    for name in ("ColourPrimaries", "MatrixCoefficients"):
        _el(adaptation_set, "SupplementalProperty",
            {"schemeIdUri": f"{CICP}{name}", "value": 9})


def _video_set(period: ET.Element, video: list[PackagedTrack], set_id: int,
               priority: int = 0) -> None:
    """One codec's AdaptationSet; with several codecs, `priority` is its
    selectionPriority (dash.js starts on the set of highest priority it can decode)."""
    attrib: dict[str, object] = {
        "id": set_id, "contentType": "video", "mimeType": "video/mp4",
        "segmentAlignment": "true", "startWithSAP": 1,
    }
    if priority:
        attrib["selectionPriority"] = priority
    sized = [track for track in video if track.width and track.height]
    if sized:
        attrib["maxWidth"] = max(track.width for track in sized)
        attrib["maxHeight"] = max(track.height for track in sized)
    rates = [Fraction(track.frame_rate) for track in video if track.frame_rate]
    if rates:
        attrib["maxFrameRate"] = frame_rate_attr(max(rates))
    if sized:
        attrib["par"] = _par(sized)
    adaptation_set = _el(period, "AdaptationSet", attrib)
    _colour_properties(adaptation_set, video)
    for track in _by_bandwidth(video):
        _representation(adaptation_set, track, channels=False)


def _audio_set(period: ET.Element, tracks: list[PackagedTrack], set_id: int,
               role: str = "main") -> None:
    """One language's AdaptationSet; channels go on it when all its tracks agree, and so
    does a Label (the name a player lists, as HLS's NAME) when they share a name.

    The main set has the higher selectionPriority: dash.js starts on the set of highest
    priority and, between equals, on the highest bandwidth, ignoring Role."""
    adaptation_set = _el(period, "AdaptationSet", {
        "id": set_id, "contentType": "audio", "mimeType": "audio/mp4",
        "lang": tracks[0].language, "segmentAlignment": "true", "startWithSAP": 1,
        "selectionPriority": MAIN_SELECTION_PRIORITY if role == "main" else 1,
    })
    channel_counts = {track.channels for track in tracks}
    shared = len(channel_counts) == 1 and tracks[0].channels > 0
    if shared:
        _el(adaptation_set, "AudioChannelConfiguration",
            {"schemeIdUri": CHANNEL_SCHEME, "value": tracks[0].channels})
    names = {track.name for track in tracks}
    if len(names) == 1 and tracks[0].name:
        _el(adaptation_set, "Label").text = tracks[0].name
    _el(adaptation_set, "Role", {"schemeIdUri": ROLE_SCHEME, "value": role})
    for track in _by_bandwidth(tracks):
        _representation(adaptation_set, track, channels=not shared and track.channels > 0)


def _text_set(period: ET.Element, track: PackagedTrack, set_id: int) -> None:
    """A subtitle track: its whole WebVTT file (`sidecar_uri`) as the Representation's
    BaseURL, which dash.js and Shaka Player both read."""
    adaptation_set = _el(period, "AdaptationSet", {
        "id": set_id, "contentType": "text", "mimeType": "text/vtt", "lang": track.language,
    })
    if track.name:
        _el(adaptation_set, "Label").text = track.name
    role = "forced-subtitle" if track.forced else "subtitle"
    _el(adaptation_set, "Role", {"schemeIdUri": ROLE_SCHEME, "value": role})
    representation = _el(adaptation_set, "Representation", {
        "id": track.track_id, "bandwidth": max(1, track_peak_bandwidth_bps(track))})
    _el(representation, "BaseURL").text = track.sidecar_uri


def _check_tracks(video: list[PackagedTrack], audio: list[PackagedTrack]) -> None:
    if not video:
        raise ValueError("an MPD needs at least one video track")
    for kind, tracks in (("video", video), ("audio", audio)):
        if wrong := [track.track_id for track in tracks if track.kind != kind]:
            raise ValueError(f"tracks {wrong} were passed as {kind} but are not of kind {kind!r}")
    ids = [track.track_id for track in video + audio]
    if len(set(ids)) != len(ids):
        raise ValueError(f"Representation ids must be unique in a Period, got {ids}")


def mpd(video: list[PackagedTrack], audio: list[PackagedTrack], title: str = "",
        subtitles: list[PackagedTrack] | None = None) -> str:
    """The static MPD (`manifest.mpd` at the title root) of a title's tracks, as text."""
    _check_tracks(video, audio)
    subtitles = subtitles or []
    duration = max(track.duration_s for track in video + audio)
    # The default namespace as a plain xmlns attribute: ElementTree's default_namespace
    # option refuses unqualified attributes, and register_namespace is process-global.
    root = ET.Element("MPD", {
        "xmlns": DASH_NS, "profiles": LIVE_PROFILE, "type": "static",
        "minBufferTime": MIN_BUFFER_TIME, "mediaPresentationDuration": iso8601_duration(duration),
    })
    if title:
        _el(_el(root, "ProgramInformation"), "Title").text = title
    period = _el(root, "Period", {"id": "0", "start": "PT0S"})
    families = video_families(video)
    for set_id, tracks in enumerate(families):
        _video_set(period, tracks, set_id=set_id,
                   priority=(len(families) - set_id) if len(families) > 1 else 0)
    languages: dict[str, list[PackagedTrack]] = {}
    for track in audio:
        languages.setdefault(track.language, []).append(track)
    first_audio = len(families)
    for set_id, tracks in enumerate(languages.values(), start=first_audio):
        _audio_set(period, tracks, set_id,
                   role="main" if set_id == first_audio else "alternate")
    for set_id, track in enumerate(subtitles, start=first_audio + len(languages)):
        _text_set(period, track, set_id)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
