"""The composed timeline of one CPL: per track, which track file plays when.

`compose` walks the CPL's segments one after another and lays each sequence's resources
end to end, in seconds (exact `Fraction`s) so that audio or timed text resources with
their own edit rates (48000/1, ...) line up with the image. It also does the checks that
need no file I/O: every track file resolved, no resource past its IntrinsicDuration,
image resources at the CPL's edit rate, every sequence of a segment as long as its
image (within a frame: 48 kHz audio cannot always end exactly on a 30000/1001 frame).
`Track.reads` maps a time range of the title onto the resource spans it covers, so that
a chunk reads only its own span of each track file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from media.core.naming import sanitize_title_id
from media.ingest.imf.cpl import AUDIO, IMAGE, MARKERS, TIMED_TEXT, CompositionPlaylist, Resource
from media.ingest.imf.errors import (
    ImfEditRateMismatch,
    ImfEmptyComposition,
    ImfMalformedXml,
    ImfResourceOverrun,
    ImfUnknownTrackFile,
)


@dataclass(frozen=True)
class Span:
    """One resource of a track, placed on the title's timeline (all its repeats)."""

    track_file_id: str
    path: str
    edit_rate: Fraction
    entry_point: int
    """First edit unit read from the track file."""
    source_duration: int
    repeat_count: int
    start_s: Fraction
    """Where its first repeat starts on the title's timeline."""

    @property
    def repeat_s(self) -> Fraction:
        return self.source_duration / self.edit_rate

    @property
    def duration_s(self) -> Fraction:
        return self.repeat_s * self.repeat_count

    @property
    def end_s(self) -> Fraction:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Read:
    """Edit units `[first, first + count)` of one track file, shown from `title_start_s`."""

    track_file_id: str
    path: str
    edit_rate: Fraction
    first: int
    count: int
    title_start_s: Fraction

    @property
    def start_s(self) -> Fraction:
        """Offset of the first unit in the track file's own timeline (for a seek)."""
        return self.first / self.edit_rate

    @property
    def duration_s(self) -> Fraction:
        return self.count / self.edit_rate


@dataclass(frozen=True)
class Track:
    kind: str
    """The CPL sequence kind: 'MainImageSequence', 'MainAudioSequence', 'SubtitlesSequence', ..."""
    track_id: str
    spans: tuple[Span, ...]
    language: str = "und"
    """RFC 5646 tag from the essence descriptor's MCA labels or language list, else the
    CPL's single `LocaleList` language, else 'und'."""
    mca_tag: str = ""

    @property
    def forced(self) -> bool:
        return self.kind == "ForcedNarrativeSequence"

    def reads(self, start_s: Fraction, end_s: Fraction) -> list[Read]:
        """The track file ranges that cover `[start_s, end_s)` of the title, in order.

        Ranges are whole edit units: a range that starts or ends inside one includes it.
        Each repeat of a resource is its own read."""
        start_s, end_s = Fraction(start_s), Fraction(end_s)
        out = []
        for span in self.spans:
            if span.end_s <= start_s or span.start_s >= end_s:
                continue
            for repeat in range(span.repeat_count):
                begin = span.start_s + repeat * span.repeat_s
                finish = begin + span.repeat_s
                if finish <= start_s or begin >= end_s:
                    continue
                low = math.floor((max(start_s, begin) - begin) * span.edit_rate)
                high = math.ceil((min(end_s, finish) - begin) * span.edit_rate)
                if high > low:
                    out.append(Read(span.track_file_id, span.path, span.edit_rate,
                                    span.entry_point + low, high - low,
                                    begin + low / span.edit_rate))
        return out


@dataclass(frozen=True)
class TitleMarker:
    label: str
    frame: int
    """Frame of the title (CPL edit units from its start)."""
    seconds: Fraction


@dataclass(frozen=True)
class Composition:
    cpl: CompositionPlaylist
    image: Track
    audio: tuple[Track, ...]
    timed_text: tuple[Track, ...]
    markers: tuple[TitleMarker, ...]
    frame_count: int
    """Title duration in frames of the CPL's edit rate (the image track's length)."""
    title_id: str = ""
    """`cpl_title_id`; made unique among a package's titles by `package.compositions`."""

    @property
    def edit_rate(self) -> Fraction:
        return self.cpl.edit_rate

    @property
    def duration_s(self) -> Fraction:
        return self.frame_count / self.edit_rate

    def image_reads(self, first_frame: int, frame_count: int) -> list[Read]:
        """The image track file ranges of title frames `[first_frame, first_frame + count)`."""
        rate = self.edit_rate
        return self.image.reads(Fraction(first_frame) / rate,
                                Fraction(first_frame + frame_count) / rate)

    def track_file_ids(self) -> list[str]:
        return self.cpl.track_file_ids()


def cpl_title_id(cpl: CompositionPlaylist) -> str:
    """'ContentTitle-Version': the ContentVersion label when the CPL has one, else the
    first 8 hex digits of the CPL id (two CPLs of one package never share an id)."""
    version = cpl.content_version_label or cpl.id.removeprefix("urn:uuid:")[:8]
    title = cpl.content_title or "imf"
    return sanitize_title_id(f"{title}-{version}")


def compose(cpl: CompositionPlaylist, resolve: Callable[[str], str | None]) -> Composition:
    """The timeline of `cpl`; `resolve` gives a track file id's local path (None: unknown)."""
    if not cpl.segments:
        raise ImfEmptyComposition(f"{cpl.path}: the CPL has no <Segment>")
    tracks: dict[tuple[str, str], list[Span]] = {}
    order: list[tuple[str, str]] = []
    encodings: dict[tuple[str, str], str] = {}
    markers: list[TitleMarker] = []
    present: dict[tuple[str, str], int] = {}
    position = Fraction(0)
    for number, segment in enumerate(cpl.segments, 1):
        where = f"{cpl.path}: segment {number}"
        images = segment.of_kind(IMAGE)
        if len(images) != 1:
            raise ImfMalformedXml(f"{where}: has {len(images)} MainImageSequence, not 1")
        for resource in images[0].resources:
            if resource.edit_rate != cpl.edit_rate:
                raise ImfEditRateMismatch(
                    f"{where}: image resource {resource.id or resource.track_file_id} has "
                    f"EditRate {_rate(resource.edit_rate)}, the CPL {_rate(cpl.edit_rate)}")
        length = _sequence_length(images[0].resources, where)
        for sequence in segment.sequences:
            if sequence.kind == MARKERS:
                markers += _markers(sequence.resources, position, cpl, where)
                continue
            if sequence.kind not in (IMAGE, AUDIO, *TIMED_TEXT):
                continue
            seconds = _sequence_length(sequence.resources, f"{where}: {sequence.kind}")
            if abs(seconds - length) >= 1 / cpl.edit_rate:
                raise ImfEditRateMismatch(
                    f"{where}: {sequence.kind} {sequence.track_id} lasts {float(seconds):.6f} s, "
                    f"its MainImageSequence {float(length):.6f} s")
            key = (sequence.kind, sequence.track_id)
            present[key] = present.get(key, 0) + 1
            if key not in tracks:
                tracks[key] = []
                order.append(key)
            at = position
            for resource in sequence.resources:
                path = resolve(resource.track_file_id)
                if path is None:
                    raise ImfUnknownTrackFile(
                        f"{where}: {sequence.kind} references track file "
                        f"{resource.track_file_id}, which no ASSETMAP given lists")
                tracks[key].append(Span(resource.track_file_id, path, resource.edit_rate,
                                        resource.entry_point, resource.source_duration,
                                        resource.repeat_count, at))
                encodings.setdefault(key, resource.source_encoding)
                at += resource.duration / resource.edit_rate
        position += length
    for key, count in present.items():
        if key[0] == AUDIO and count != len(cpl.segments):
            raise ImfMalformedXml(
                f"{cpl.path}: audio track {key[1]} is in {count} of the CPL's "
                f"{len(cpl.segments)} segments; every segment needs a MainAudioSequence "
                "for each audio track")
    frame_count = position * cpl.edit_rate
    if frame_count == 0:
        raise ImfEmptyComposition(f"{cpl.path}: the CPL's image sequences last 0 frames")
    built = {key: _track(key, tracks[key], encodings.get(key, ""), cpl) for key in order}
    return Composition(
        cpl=cpl,
        image=built[(IMAGE, next(k[1] for k in order if k[0] == IMAGE))],
        audio=tuple(track for key, track in built.items() if key[0] == AUDIO),
        timed_text=tuple(track for key, track in built.items() if key[0] in TIMED_TEXT),
        markers=tuple(sorted(markers, key=lambda m: (m.frame, m.label))),
        frame_count=int(frame_count),
        title_id=cpl_title_id(cpl),
    )


def _rate(rate: Fraction) -> str:
    return f"{rate.numerator} {rate.denominator}"


def _sequence_length(resources: tuple[Resource, ...], where: str) -> Fraction:
    """Seconds a sequence plays, after checking each resource's window and counts."""
    total = Fraction(0)
    for resource in resources:
        name = resource.id or resource.track_file_id
        if resource.source_duration == 0 or resource.repeat_count == 0:
            raise ImfMalformedXml(f"{where}: resource {name} has a SourceDuration or "
                                  "RepeatCount of 0")
        if resource.entry_point + resource.source_duration > resource.intrinsic_duration:
            raise ImfResourceOverrun(
                f"{where}: resource {name} reads edit units {resource.entry_point} to "
                f"{resource.entry_point + resource.source_duration} of a track file "
                f"{resource.intrinsic_duration} long (IntrinsicDuration)")
        total += resource.duration / resource.edit_rate
    return total


def _markers(resources: tuple[Resource, ...], position: Fraction, cpl: CompositionPlaylist,
             where: str) -> list[TitleMarker]:
    """Markers on the title's timeline: a marker's Offset counts edit units of its resource
    from the resource's intrinsic start; those outside [EntryPoint, EntryPoint +
    SourceDuration) are not played and are dropped. Repeats repeat the markers."""
    out = []
    at = position
    for resource in resources:
        if resource.entry_point + resource.source_duration > resource.intrinsic_duration:
            raise ImfResourceOverrun(f"{where}: marker resource {resource.id} reads past "
                                     "its IntrinsicDuration")
        for repeat in range(resource.repeat_count):
            begin = at + Fraction(repeat * resource.source_duration) / resource.edit_rate
            for marker in resource.markers:
                inside = marker.offset - resource.entry_point
                if 0 <= inside < resource.source_duration:
                    seconds = begin + Fraction(inside) / resource.edit_rate
                    frame = math.floor(seconds * cpl.edit_rate)
                    out.append(TitleMarker(marker.label, frame, seconds))
        at += resource.duration / resource.edit_rate
    return out


def _track(key: tuple[str, str], spans: list[Span], encoding: str,
           cpl: CompositionPlaylist) -> Track:
    essence = cpl.essences.get(encoding)
    language = essence.language if essence and essence.language else ""
    if not language and len(set(cpl.locale_languages)) == 1:
        language = cpl.locale_languages[0]
    return Track(key[0], key[1], tuple(spans), language or "und",
                 essence.mca_tag if essence else "")
