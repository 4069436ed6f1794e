"""Composition Playlist (SMPTE ST 2067-3): the title's timeline, read as written.

`<SegmentList>` holds `<Segment>`s played one after another; each segment's
`<SequenceList>` holds one sequence per track (`MainImageSequence`, each
`MainAudioSequence`, timed text sequences such as `SubtitlesSequence` and
`ForcedNarrativeSequence`, `MarkerSequence`), and each sequence lists `<Resource>`s:
`TrackFileId`, `EditRate` (the CPL's when absent), `IntrinsicDuration`, `EntryPoint`
(0), `SourceDuration` (the rest of the track file), `RepeatCount` (1). Languages come
from the `EssenceDescriptorList` a resource's `SourceEncoding` names (the MCA
`RFC5646SpokenLanguage` of its soundfield group, or a timed text descriptor's language
list). Composing the timeline is `media.ingest.imf.composition`'s job.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction

from media.ingest.imf.errors import ImfMalformedXml
from media.ingest.imf.storage import LOCAL, Storage
from media.ingest.imf.xml import (
    child,
    children,
    integer,
    local,
    parse_xml,
    rational,
    read_xml,
    text,
    uuid_text,
)

IMAGE = "MainImageSequence"
AUDIO = "MainAudioSequence"
MARKERS = "MarkerSequence"
TIMED_TEXT = ("SubtitlesSequence", "ForcedNarrativeSequence", "HearingImpairedCaptionsSequence",
              "VisuallyImpairedTextSequence", "CommentarySequence", "KaraokeSequence",
              "MainSubtitleSequence")
_LANGUAGE_ELEMENTS = ("RFC5646SpokenLanguage", "RFC5646AudioLanguageCode",
                      "RFC5646LanguageTagList", "RFC5646TextLanguageCode",
                      "PrimaryRFC5646LanguageCode")
"""Where an essence descriptor names its language: the MCA soundfield group's spoken
language (ST 377-4; 'RFC5646AudioLanguageCode' in 2013-era CPLs), a timed text
descriptor's language list."""


@dataclass(frozen=True)
class Marker:
    label: str
    """'FFOC', 'LFOC', 'FFEC', 'FFCB', ... (ST 2067-3's marker labels)."""
    offset: int
    """Edit units from the start of the marker resource's intrinsic timeline."""
    scope: str = ""


@dataclass(frozen=True)
class Resource:
    id: str
    edit_rate: Fraction
    intrinsic_duration: int
    entry_point: int
    source_duration: int
    repeat_count: int
    track_file_id: str = ""
    """'' for a marker resource (it has no track file)."""
    source_encoding: str = ""
    markers: tuple[Marker, ...] = ()

    @property
    def duration(self) -> int:
        """Edit units (of `edit_rate`) the resource plays: SourceDuration x RepeatCount."""
        return self.source_duration * self.repeat_count


@dataclass(frozen=True)
class Sequence:
    kind: str
    """The element's local name: 'MainImageSequence', 'MainAudioSequence', ..."""
    id: str
    track_id: str
    resources: tuple[Resource, ...]


@dataclass(frozen=True)
class Segment:
    id: str
    sequences: tuple[Sequence, ...]

    def of_kind(self, kind: str) -> list[Sequence]:
        return [sequence for sequence in self.sequences if sequence.kind == kind]


@dataclass(frozen=True)
class EssenceInfo:
    """What the CPL's copy of a track file's essence descriptor says."""

    id: str
    descriptor: str
    """Local name of the descriptor ('RGBADescriptor', 'WAVEPCMDescriptor', ...)."""
    language: str = ""
    mca_tag: str = ""
    """Soundfield group symbol ('sgST', 'sg51', ...) of an audio track."""


@dataclass(frozen=True)
class CompositionPlaylist:
    path: str
    id: str
    content_title: str
    edit_rate: Fraction
    segments: tuple[Segment, ...]
    essences: dict
    """`SourceEncoding` id -> `EssenceInfo`."""
    content_version_id: str = ""
    content_version_label: str = ""
    issue_date: str = ""
    locale_languages: tuple[str, ...] = ()

    def track_file_ids(self) -> list[str]:
        """Every track file the CPL references, in first-use order, once each."""
        seen: dict[str, None] = {}
        for segment in self.segments:
            for sequence in segment.sequences:
                for resource in sequence.resources:
                    if resource.track_file_id:
                        seen.setdefault(resource.track_file_id)
        return list(seen)


def is_cpl(root: ET.Element) -> bool:
    return local(root.tag) == "CompositionPlaylist"


def read_cpl(path: str, storage: Storage = LOCAL) -> CompositionPlaylist:
    return cpl_from_root(read_xml(path, storage), path)


def parse_cpl(data: bytes, path: str) -> CompositionPlaylist:
    return cpl_from_root(parse_xml(data, path), path)


def cpl_from_root(root: ET.Element, path: str) -> CompositionPlaylist:
    if not is_cpl(root):
        raise ImfMalformedXml(f"{path}: root element is <{local(root.tag)}>, "
                              "not <CompositionPlaylist>")
    edit_rate = rational(text(root, "EditRate", path), f"{path}: <EditRate>")
    segment_list = child(root, "SegmentList")
    segments = tuple(_segment(element, n, path, edit_rate)
                     for n, element in enumerate(
                         children(segment_list, "Segment") if segment_list is not None else [], 1))
    version_id = version_label = ""
    versions = child(root, "ContentVersionList")
    version = child(versions, "ContentVersion") if versions is not None else None
    if version is not None:
        version_id = text(version, "Id", path, "")
        version_label = text(version, "LabelText", path, "")
    return CompositionPlaylist(
        path=path,
        id=uuid_text(text(root, "Id", path), path),
        content_title=text(root, "ContentTitle", path, ""),
        edit_rate=edit_rate,
        segments=segments,
        essences=_essences(root, path),
        content_version_id=version_id,
        content_version_label=version_label,
        issue_date=text(root, "IssueDate", path, ""),
        locale_languages=_locale_languages(root),
    )


def _segment(element: ET.Element, number: int, path: str, edit_rate: Fraction) -> Segment:
    where = f"{path}: segment {number}"
    segment_id = uuid_text(text(element, "Id", where), where)
    sequence_list = child(element, "SequenceList")
    sequences = []
    for item in (sequence_list if sequence_list is not None else []):
        kind = local(item.tag)
        if not kind.endswith("Sequence"):
            continue
        at = f"{where}: {kind}"
        resource_list = child(item, "ResourceList")
        resources = tuple(_resource(r, f"{at}: resource {n}", edit_rate, kind == MARKERS)
                          for n, r in enumerate(children(resource_list, "Resource")
                                                if resource_list is not None else [], 1))
        sequences.append(Sequence(kind, uuid_text(text(item, "Id", at), at),
                                  uuid_text(text(item, "TrackId", at), at), resources))
    return Segment(segment_id, tuple(sequences))


def _resource(element: ET.Element, where: str, default_rate: Fraction,
              marker: bool) -> Resource:
    raw_rate = text(element, "EditRate", where, "")
    rate = rational(raw_rate, f"{where}: <EditRate>") if raw_rate else default_rate
    intrinsic = integer(element, "IntrinsicDuration", where)
    entry = integer(element, "EntryPoint", where, 0)
    source = (integer(element, "SourceDuration", where)
              if child(element, "SourceDuration") is not None else max(intrinsic - entry, 0))
    repeat = integer(element, "RepeatCount", where, 1)
    markers = ()
    track_file = ""
    if marker:
        markers = tuple(_marker(m, where) for m in children(element, "Marker"))
    else:
        track_file = uuid_text(text(element, "TrackFileId", where), where)
    encoding = text(element, "SourceEncoding", where, "")
    return Resource(
        id=text(element, "Id", where, ""), edit_rate=rate, intrinsic_duration=intrinsic,
        entry_point=entry, source_duration=source, repeat_count=repeat,
        track_file_id=track_file,
        source_encoding=uuid_text(encoding, where) if encoding else "",
        markers=markers)


def _marker(element: ET.Element, where: str) -> Marker:
    label = child(element, "Label")
    if label is None or not (label.text or "").strip():
        raise ImfMalformedXml(f"{where}: <Marker> has no <Label>")
    return Marker(label.text.strip(), integer(element, "Offset", where),
                  label.get("scope", ""))


def _essences(root: ET.Element, path: str) -> dict:
    found = {}
    descriptors = child(root, "EssenceDescriptorList")
    for element in (descriptors if descriptors is not None else []):
        if local(element.tag) != "EssenceDescriptor":
            continue
        raw = text(element, "Id", path, "")
        if not raw:
            continue
        body = next((item for item in element if local(item.tag) != "Id"), None)
        language = mca_tag = ""
        if body is not None:
            for item in body.iter():
                name = local(item.tag)
                value = (item.text or "").strip()
                if not value:
                    continue
                if name in _LANGUAGE_ELEMENTS and not language:
                    language = value.split()[0]
                if name == "MCATagSymbol" and value.startswith("sg") and not mca_tag:
                    mca_tag = value
        essence_id = uuid_text(raw, path)
        found[essence_id] = EssenceInfo(essence_id, local(body.tag) if body is not None else "",
                                        language, mca_tag)
    return found


def _locale_languages(root: ET.Element) -> tuple[str, ...]:
    languages = []
    locales = child(root, "LocaleList")
    for locale in (children(locales, "Locale") if locales is not None else []):
        for language_list in children(locale, "LanguageList"):
            for language in children(language_list, "Language"):
                if language.text and language.text.strip():
                    languages.append(language.text.strip())
    return tuple(languages)
