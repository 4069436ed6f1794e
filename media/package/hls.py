"""HLS playlists (RFC 8216, version 7) over the title's CMAF segments.

`media_playlist` lists one track; it lives at `naming.playlist_uri(kind, track_id)`,
next to its segments, so its URIs are relative to that folder. `multivariant_playlist`
is `master.m3u8` at the title root: one audio rendition group and one variant per video
track, with BANDWIDTH and AVERAGE-BANDWIDTH measured from the written segment sizes.
Both return the playlist text; writing it is the caller's business.
"""

from __future__ import annotations

import math
import posixpath
import re
from fractions import Fraction

from media.core import naming
from media.core.types import PackagedTrack
from media.package.bandwidth import (
    EXTINF_DECIMALS,
    extinf_s,
    segment_durations_s,
    track_average_bandwidth_bps,
    track_peak_bandwidth_bps,
    track_target_duration_s,
)
from media.package.playlist_text import decimal, quoted
from media.package.subtitles import subtitle_media_playlist

__all__ = ["AUDIO_GROUP_ID", "HLS_VERSION", "SUBTITLES_GROUP_ID", "media_playlist",
           "multivariant_playlist"]

HLS_VERSION = 7
AUDIO_GROUP_ID = "audio"
SUBTITLES_GROUP_ID = "subs"


def _relative_to_track(track: PackagedTrack, uri: str) -> str:
    return posixpath.relpath(uri, naming.track_dir(track.kind, track.track_id, track.media_dir))


def media_playlist(track: PackagedTrack) -> str:
    """The VOD media playlist of one track (video rendition, audio or subtitle track)."""
    if track.kind == "subtitles":
        durations = [Fraction(s.duration_ticks, track.timescale) for s in track.segments]
        return subtitle_media_playlist(
            [_relative_to_track(track, s.uri) for s in track.segments], durations,
            max(1, math.ceil(max(durations))))
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{track_target_duration_s(track)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f"#EXT-X-MAP:URI={quoted(_relative_to_track(track, track.init_uri))}",
    ]
    for segment, duration in zip(track.segments, segment_durations_s(track), strict=True):
        lines.append(f"#EXTINF:{decimal(extinf_s(duration), EXTINF_DECIMALS)},")
        lines.append(_relative_to_track(track, segment.uri))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _audio_media_lines(audio: list[PackagedTrack]) -> list[str]:
    names = [track.name or track.track_id for track in audio]
    if len(set(names)) != len(names):
        raise ValueError(f"audio track names must differ within a group, got {names}")
    lines = []
    for position, (track, name) in enumerate(zip(audio, names, strict=True)):
        attributes = [
            "TYPE=AUDIO",
            f"GROUP-ID={quoted(AUDIO_GROUP_ID)}",
            f"LANGUAGE={quoted(track.language)}",
            f"NAME={quoted(name)}",
            f"DEFAULT={'YES' if position == 0 else 'NO'}",
            "AUTOSELECT=YES",
        ]
        if track.channels:
            attributes.append(f"CHANNELS={quoted(str(track.channels))}")
        attributes.append(
            f"URI={quoted(naming.playlist_uri(track.kind, track.track_id, track.media_dir))}")
        lines.append("#EXT-X-MEDIA:" + ",".join(attributes))
    return lines


def _subtitle_media_lines(subtitles: list[PackagedTrack]) -> list[str]:
    names = [track.name or track.language for track in subtitles]
    if len(set(names)) != len(names):
        raise ValueError(f"subtitle track names must differ within a group, got {names}")
    lines = []
    for track, name in zip(subtitles, names, strict=True):
        attributes = [
            "TYPE=SUBTITLES",
            f"GROUP-ID={quoted(SUBTITLES_GROUP_ID)}",
            f"LANGUAGE={quoted(track.language)}",
            f"NAME={quoted(name)}",
            "DEFAULT=NO",
            "AUTOSELECT=YES",
            f"FORCED={'YES' if track.forced else 'NO'}",
            f"URI={quoted(naming.playlist_uri(track.kind, track.track_id, track.media_dir))}",
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attributes))
    return lines


VIDEO_RANGES = {"pq": "PQ", "hlg": "HLG", "": "SDR"}
"""VIDEO-RANGE of a variant by its rendition's HDR (`Rendition.hdr`)."""


def video_range(track: PackagedTrack) -> str:
    """The VIDEO-RANGE of a video track: PQ, HLG or SDR."""
    return VIDEO_RANGES[track.rendition.hdr if track.rendition else ""]


def _with_range(line: str, by_uri: dict[str, PackagedTrack]) -> str:
    """An EXT-X-I-FRAME-STREAM-INF line with its track's VIDEO-RANGE before its URI."""
    found = re.search(r',URI="([^"]*)"', line)
    track = by_uri.get(found.group(1)) if found else None
    if track is None or "VIDEO-RANGE=" in line:
        return line
    return line.replace(found.group(0), f",VIDEO-RANGE={video_range(track)}{found.group(0)}")


def _stream_inf(video: PackagedTrack, audio: list[PackagedTrack],
                subtitles: list[PackagedTrack] | None = None,
                ranges: bool = False) -> tuple[int, str]:
    """(BANDWIDTH, EXT-X-STREAM-INF line) of one variant.

    A variant plays its video with any one track of the audio group, so per RFC 8216
    4.3.4.2 its BANDWIDTH is the largest sum over those combinations: the video's peak
    plus the largest audio peak; AVERAGE-BANDWIDTH likewise with averages.
    `ranges`: say the variant's VIDEO-RANGE (a title with HDR variants says it for all).
    """
    bandwidth = track_peak_bandwidth_bps(video)
    average = track_average_bandwidth_bps(video)
    codecs = [video.codecs]
    if audio:
        bandwidth += max(track_peak_bandwidth_bps(track) for track in audio)
        average += max(track_average_bandwidth_bps(track) for track in audio)
        codecs += [track.codecs for track in audio]
    if subtitles:  # the largest subtitle rendition too (HLS authoring spec 9.13)
        bandwidth += max(track_peak_bandwidth_bps(track) for track in subtitles)
        average += max(track_average_bandwidth_bps(track) for track in subtitles)
    attributes = [
        f"BANDWIDTH={bandwidth}",
        f"AVERAGE-BANDWIDTH={average}",
        f"CODECS={quoted(','.join(dict.fromkeys(codecs)))}",
    ]
    if video.width and video.height:
        attributes.append(f"RESOLUTION={video.width}x{video.height}")
    if video.frame_rate:
        attributes.append(f"FRAME-RATE={decimal(Fraction(video.frame_rate), 3)}")
    if ranges:
        attributes.append(f"VIDEO-RANGE={video_range(video)}")
    if audio:
        attributes.append(f"AUDIO={quoted(AUDIO_GROUP_ID)}")
    if subtitles:
        attributes.append(f"SUBTITLES={quoted(SUBTITLES_GROUP_ID)}")
    return bandwidth, "#EXT-X-STREAM-INF:" + ",".join(attributes)


def multivariant_playlist(video: list[PackagedTrack], audio: list[PackagedTrack],
                          subtitles: list[PackagedTrack] | None = None,
                          iframe_lines: list[str] | None = None) -> str:
    """`master.m3u8`: every audio track in one group, every subtitle track in another,
    one variant per video track, and the I-frame playlists' EXT-X-I-FRAME-STREAM-INF
    lines (`iframe_lines`, from `media.package.iframes`).

    Variants are listed by BANDWIDTH ascending (ties by track id). Players that start
    with the first variant listed (AVPlayer) then start on the cheapest rung, which
    starts fast on any network and climbs once the throughput is measured.
    """
    if not video:
        raise ValueError("a multivariant playlist needs at least one video track")
    variants = []
    subtitles = subtitles or []
    # VIDEO-RANGE where a title has HDR variants (`--hdr keep`); SDR titles as before
    ranges = any(video_range(track) != "SDR" for track in video)
    for track in video:
        bandwidth, stream_inf = _stream_inf(track, audio, subtitles, ranges)
        uri = naming.playlist_uri(track.kind, track.track_id, track.media_dir)
        variants.append((bandwidth, track.track_id, stream_inf, uri))
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines += _audio_media_lines(audio)
    lines += _subtitle_media_lines(subtitles)
    for _, _, stream_inf, uri in sorted(variants):
        lines += [stream_inf, uri]
    if ranges:  # the I-frame playlists' ranges too (RFC 8216bis 4.4.6.3)
        by_uri = {naming.iframe_playlist_uri(t.kind, t.track_id, t.media_dir): t
                  for t in video}
        iframe_lines = [_with_range(line, by_uri) for line in iframe_lines or []]
    lines += iframe_lines or []
    return "\n".join(lines) + "\n"
