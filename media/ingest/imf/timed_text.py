"""IMSC1 timed text of a composition as WebVTT cues on the title's timeline.

A timed text track file is an IMSC1 (TTML) document, bare or in an MXF timed text track
file (ST 2067-2 / ST 429-5), where it is the value of the timed text essence element
(key 06.0e.2b.34.01.02.01.01.0d.01.03.01.17.01.0b.01, version byte ignored). `ttconv`
turns the IMSC1 into WebVTT, which `media.package.subtitles` reads into `Cue`s (none for
a document without text, such as an IMSC1 image profile one); each resource then
contributes the cues of its window `[EntryPoint, EntryPoint + SourceDuration)`, clipped
to it and moved to where the resource plays (once per repeat).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from fractions import Fraction

from media.ingest.imf.composition import Track
from media.ingest.imf.errors import ImfMalformedXml
from media.ingest.imf.storage import LOCAL, Storage, read_head
from media.ingest.imf.xml import MAX_XML_BYTES, parse_xml
from media.package.subtitles import Cue, read_subtitles

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


TIMED_TEXT_ELEMENT_KEY = bytes.fromhex("060e2b34010201010d01030117010b01")
"""The KLV key of an MXF timed text essence element (ST 429-5), frame-wrapped."""


def _is_timed_text_key(key: bytes) -> bool:
    return key[:7] == TIMED_TEXT_ELEMENT_KEY[:7] and key[8:] == TIMED_TEXT_ELEMENT_KEY[8:]


def timed_text_document(path: str, storage: Storage = LOCAL) -> bytes:
    """The IMSC1 XML of a timed text track file (bare XML, or its MXF essence element)."""
    data = read_head(storage, path, MAX_XML_BYTES + 1)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return data
    position = 0
    while position + 17 <= len(data):
        length_byte = data[position + 16]
        if length_byte < 0x80:
            length, header = length_byte, 17
        else:
            size = length_byte & 0x7F
            if size == 0 or size > 8 or position + 17 + size > len(data):
                break
            length = int.from_bytes(data[position + 17:position + 17 + size], "big")
            header = 17 + size
        if _is_timed_text_key(data[position:position + 16]):
            return data[position + header:position + header + length]
        position += header + length
    raise ImfMalformedXml(f"{path}: no timed text essence element (IMSC1 document) in the "
                          "track file")


def imsc1_cues(data: bytes, name: str) -> tuple[list[Cue], str]:
    """The cues of one IMSC1 document (times from its own start) and its xml:lang."""
    import ttconv.imsc.reader as imsc_reader
    import ttconv.vtt.writer as vtt_writer

    root = parse_xml(data, name)
    logging.getLogger("ttconv").setLevel(logging.ERROR)
    try:
        model = imsc_reader.to_model(ET.ElementTree(root))
    except Exception as exc:  # ttconv raises plain exceptions on documents it refuses
        raise ImfMalformedXml(f"{name}: not an IMSC1 document ttconv can read: {exc}") from None
    if model is None:
        raise ImfMalformedXml(f"{name}: not an IMSC1 (TTML) document")
    vtt = vtt_writer.from_model(model)
    language = root.get(_XML_LANG, "")
    if "-->" not in vtt:  # no text at all (image subtitles, or empty paragraphs)
        return [], language
    return read_subtitles(vtt.encode("utf-8"), name), language


def track_cues(track: Track, storage: Storage = LOCAL) -> list[Cue]:
    """The cues of a timed text track on the title's timeline, in time order."""
    documents: dict[str, list[Cue]] = {}
    out = []
    for span in track.spans:
        if span.path not in documents:
            documents[span.path] = imsc1_cues(timed_text_document(span.path, storage),
                                              span.path)[0]
        window_start = Fraction(span.entry_point) / span.edit_rate
        window_end = window_start + span.repeat_s
        for repeat in range(span.repeat_count):
            shift = span.start_s + repeat * span.repeat_s - window_start
            for cue in documents[span.path]:
                start, end = max(cue.start, window_start), min(cue.end, window_end)
                if end > start:
                    out.append(Cue(start + shift, end + shift, cue.text, cue.settings))
    return sorted(out, key=lambda cue: (cue.start, cue.end))


def track_language(track: Track, storage: Storage = LOCAL) -> str:
    """The track's language: the CPL's, else the first document's xml:lang, else 'und'."""
    if track.language != "und" or not track.spans:
        return track.language
    path = track.spans[0].path
    _, language = imsc1_cues(timed_text_document(path, storage), path)
    return language or "und"
