"""What the track files themselves say, read from their headers with PyAV (no decode).

The CPL's `IntrinsicDuration` and `EditRate` are claims about a track file; a CPL that
reads past the file's real end, or an image resource whose file runs at another frame
rate, is caught here before any encode. Size, colour and decodability of the image are
`media.inspect.probe.inspect_source`'s job, run on the image track file.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction

import av

from media.ingest.imf.composition import Composition, Track
from media.ingest.imf.cpl import IMAGE
from media.ingest.imf.errors import ImfEditRateMismatch, ImfError, ImfResourceOverrun
from media.ingest.imf.storage import LOCAL, LocalStorage, Storage


@dataclass(frozen=True)
class TrackFileFacts:
    path: str
    kind: str
    """'video' or 'audio' (PyAV's stream type)."""
    codec: str
    duration_s: Fraction
    frame_rate: Fraction | None
    """Frames per second of a video track file; None for audio."""

    def edit_units(self, edit_rate: Fraction) -> int:
        """Whole edit units of `edit_rate` the file holds."""
        return math.floor(self.duration_s * edit_rate + Fraction(1, 1000))


def track_file_facts(path: str, storage: Storage = LOCAL) -> TrackFileFacts:
    """The essence's kind, codec, length and frame rate, from the header and index only
    (a file object of another store is read by range)."""
    try:
        source = path if isinstance(storage, LocalStorage) else storage.open(path)
        with av.open(source) as container:
            stream = next((s for s in container.streams if s.type in ("video", "audio")), None)
            if stream is None or stream.duration is None:
                raise ImfError(f"{path}: no video or audio essence with a duration")
            duration = Fraction(stream.duration) * stream.time_base
            rate = Fraction(stream.guessed_rate) if stream.type == "video" else None
            return TrackFileFacts(path, stream.type, stream.codec_context.name, duration, rate)
    except (av.FFmpegError, OSError) as exc:
        raise ImfError(f"{path}: the track file cannot be read: {exc}") from None


def interleaved_essence(path: str, storage: Storage = LOCAL) -> bool:
    """Whether an MXF file holds both picture and sound, read from its header (and the
    index PyAV finds through the footer): then it is no IMF track file, which carries one
    essence component, but a master of its own. False when it cannot be read."""
    try:
        with ExitStack() as stack:
            source = (path if isinstance(storage, LocalStorage)
                      else stack.enter_context(storage.open(path)))
            container = stack.enter_context(av.open(source, format="mxf"))
            kinds = {s.type for s in container.streams}
    except (av.FFmpegError, OSError):
        return False
    return {"video", "audio"} <= kinds


def check_track_files(composition: Composition,
                      storage: Storage = LOCAL) -> dict[str, TrackFileFacts]:
    """Each audio and image resource fits the track file it reads, at its frame rate.
    Timed text track files are checked when their cues are read. Returns the facts by path."""
    facts: dict[str, TrackFileFacts] = {}
    tracks: list[Track] = [composition.image, *composition.audio]
    for track in tracks:
        for span in track.spans:
            if span.path not in facts:
                facts[span.path] = track_file_facts(span.path, storage)
            fact = facts[span.path]
            if track.kind == IMAGE and fact.frame_rate and fact.frame_rate != span.edit_rate:
                raise ImfEditRateMismatch(
                    f"{span.path}: the track file runs at {fact.frame_rate} fps, its CPL "
                    f"resource at EditRate {span.edit_rate}")
            units = fact.edit_units(span.edit_rate)
            if span.entry_point + span.source_duration > units:
                raise ImfResourceOverrun(
                    f"{span.path}: the CPL reads edit units {span.entry_point} to "
                    f"{span.entry_point + span.source_duration}, the track file holds {units}")
    return facts
