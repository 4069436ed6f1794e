"""An IMF title as a pipeline source: how it is recognised, the slim table of what plays
when that workers read it by, and the chunk and audio spans staged from its track files.

A composed title travels as a small JSON table (`TitleTable`: the picture's and each
audio track's spans of track files, the markers), written once beside the title's work
files; the title's `source_uri` is that table's URI (suffix `.imf.json`). Staging a
chunk opens the table, maps the chunk onto the track file ranges it covers
(`Track.reads`) and copies only those frames (JPEG 2000 and ProRes are intra-only: every
cut is exact), with the title's timestamps, into the small local file an encode reads.
Audio spans decode only their PCM ranges the same way. No Beam here: track files are
read through a `Storage` (local disk, or Beam's FileSystems imported when a URI needs it).
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from media.core.containers import UnstageableCodec, staging_format
from media.core.errors import UndecodableVideo, UnreadableSource
from media.ingest.imf.assetmap import ASSETMAP_NAMES
from media.ingest.imf.composition import Composition, Span, TitleMarker, Track
from media.ingest.imf.storage import LOCAL, Storage, read_head, storage_for
from media.inspect.probe import SOURCE_OPEN_OPTIONS

TABLE_SUFFIX = ".imf.json"
"""The suffix of an IMF title's table: a `source_uri` ending so is an IMF title."""
TABLE_FORMAT = "ladderflow-imf-title/1"
_ROOT_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")


# --- Recognising a source -----------------------------------------------------------------


def is_imf_title(uri: str) -> bool:
    """A title composed from an IMF package (its `source_uri` is its table)."""
    return uri.endswith(TABLE_SUFFIX)


def xml_root_name(head: bytes) -> str:
    """The local name of an XML document's root element, from its first bytes ('' if
    none: the prolog, comments and processing instructions are skipped)."""
    text = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", head, flags=re.S)
    match = _ROOT_TAG.search(text.lstrip(b"\xef\xbb\xbf \t\r\n"))
    return match.group(1).decode("ascii", "replace") if match else ""


def is_imf_source(uri: str, storage: Storage = LOCAL) -> bool:
    """An IMF package: a folder or prefix holding ASSETMAP.xml, an ASSETMAP file, or an
    XML file whose root is a CompositionPlaylist."""
    base = uri.rstrip("/")
    name = posixpath.basename(base)
    if name in ASSETMAP_NAMES or base.lower().endswith(".xml"):
        try:
            head = read_head(storage, base, 4096)
        except OSError:
            return False
        return xml_root_name(head) in ("CompositionPlaylist", "AssetMap")
    return any(storage.size(f"{base}/{candidate}") is not None for candidate in ASSETMAP_NAMES)


# --- The title's table ------------------------------------------------------------------


@dataclass(frozen=True)
class TitleTable:
    """What a worker needs of a composed title: its picture and audio tracks' spans."""

    cpl_uri: str
    title_id: str
    edit_rate: Fraction
    frame_count: int
    image: Track
    audio: tuple[Track, ...] = ()
    markers: tuple[TitleMarker, ...] = ()

    @property
    def duration_s(self) -> Fraction:
        return self.frame_count / self.edit_rate

    def image_reads(self, first_frame: int, count: int):
        rate = self.edit_rate
        return self.image.reads(Fraction(first_frame) / rate,
                                Fraction(first_frame + count) / rate)


def table_of(composition: Composition) -> TitleTable:
    return TitleTable(composition.cpl.path, composition.title_id, composition.edit_rate,
                      composition.frame_count, composition.image, composition.audio,
                      composition.markers)


def _track_json(track: Track) -> dict:
    return {"kind": track.kind, "track_id": track.track_id, "language": track.language,
            "mca_tag": track.mca_tag,
            "spans": [[s.track_file_id, s.path, str(s.edit_rate), s.entry_point,
                       s.source_duration, s.repeat_count, str(s.start_s)] for s in track.spans]}


def _track(data: dict) -> Track:
    spans = tuple(Span(tid, path, Fraction(rate), entry, duration, repeat, Fraction(start))
                  for tid, path, rate, entry, duration, repeat, start in data["spans"])
    return Track(data["kind"], data["track_id"], spans, data["language"], data["mca_tag"])


def table_json(table: TitleTable) -> bytes:
    return json.dumps({
        "format": TABLE_FORMAT, "cpl_uri": table.cpl_uri, "title_id": table.title_id,
        "edit_rate": str(table.edit_rate), "frame_count": table.frame_count,
        "image": _track_json(table.image), "audio": [_track_json(t) for t in table.audio],
        "markers": [[m.label, m.frame, str(m.seconds)] for m in table.markers],
    }, indent=1).encode("utf-8")


def parse_table(data: bytes, uri: str = "") -> TitleTable:
    try:
        raw = json.loads(data.decode("utf-8"))
        if raw.get("format") != TABLE_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}")
        return TitleTable(
            raw["cpl_uri"], raw["title_id"], Fraction(raw["edit_rate"]), raw["frame_count"],
            _track(raw["image"]), tuple(_track(t) for t in raw["audio"]),
            tuple(TitleMarker(label, frame, Fraction(seconds))
                  for label, frame, seconds in raw["markers"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise UnreadableSource(f"{uri}: not an IMF title table: {exc}") from exc


_TABLES: dict[str, tuple[bytes, TitleTable]] = {}


def read_table(source: str | BinaryIO, uri: str) -> TitleTable:
    """The table at `uri` (`source`: its local path or an open handle); parsed once per
    worker while its bytes stay the same (a rewritten table is parsed again)."""
    if isinstance(source, str):
        with open(source, "rb") as handle:
            data = handle.read()
    else:
        data = source.read()
    cached = _TABLES.get(uri)
    if cached is not None and cached[0] == data:
        return cached[1]
    table = parse_table(data, uri)
    if len(_TABLES) > 64:
        _TABLES.clear()
    _TABLES[uri] = (data, table)
    return table


def marker_rows(markers: Sequence[TitleMarker]) -> tuple[tuple[str, int, float], ...]:
    """(label, frame, seconds) per marker, for the title's report."""
    return tuple((m.label, m.frame, round(float(m.seconds), 6)) for m in markers)


def check_first_frames(table: TitleTable, storage: Storage | None = None) -> None:
    """Each image track file the title plays decodes its first frame in the title (the
    essence is what the CPL says it is, and the bundled decoder takes it): a title that
    cannot be decoded stops before any encode, naming the file."""
    seen = set()
    for span in table.image.spans:
        if span.path in seen:
            continue
        seen.add(span.path)
        read = table.image.reads(span.start_s, span.start_s + 1 / span.edit_rate)[0]
        try:
            with _opened(span.path, storage or storage_for(span.path)) as source, \
                    _open_av(source) as container:
                stream = container.streams.video[0]
                frames = [f for p in _units(container, stream, read) for f in p.decode()]
        except av.FFmpegError as exc:
            raise UndecodableVideo(f"{span.path}: edit unit {read.first} cannot be "
                                   f"decoded: {exc}") from exc
        if not frames:
            raise UndecodableVideo(f"{span.path}: edit unit {read.first} gave no picture")


# --- Staging ----------------------------------------------------------------------------


@contextmanager
def _opened(path: str, storage: Storage):
    """A track file for PyAV: its local path, or a seekable handle (read by range)."""
    if storage is LOCAL:
        yield path
        return
    handle = storage.open(path)
    try:
        yield handle
    finally:
        handle.close()


def _open_av(source):
    return av.open(source, options=SOURCE_OPEN_OPTIONS)


@dataclass(frozen=True)
class StagedImage:
    path: str
    packets: int
    bytes_copied: int
    first_pts_s: float


def frame_range(table: TitleTable, start_s: float, end_s: float) -> tuple[int, int]:
    """Title frames [first, end) whose times fall in [start_s, end_s)."""
    rate = table.edit_rate
    first = max(0, math.ceil(Fraction(start_s) * rate - Fraction(1, 10**6)))
    end = min(table.frame_count, math.ceil(Fraction(end_s) * rate - Fraction(1, 10**6)))
    return first, max(first, end)


def stage_image_span(table: TitleTable, start_s: float, end_s: float, out_path: str,
                     storage: Storage | None = None) -> StagedImage:
    """Copy the title's frames in [start_s, end_s) from their track files into a small
    local file (stream copy), each frame at its title time: a chunk reads only its own
    frames of each track file it covers."""
    first, end = frame_range(table, start_s, end_s)
    reads = table.image_reads(first, end - first)
    if not reads:
        raise UnreadableSource(f"{table.cpl_uri}: no frame of the title in "
                               f"{start_s:.3f}-{end_s:.3f} s")
    out = None
    count = nbytes = 0
    try:
        for stream, packet in image_packets(table, reads, storage):
            if out is None:
                fmt, suffix = image_staging_format(stream, table.cpl_uri)
                out_path = os.path.splitext(out_path)[0] + suffix
                out = av.open(out_path, mode="w", format=fmt)
                ostream = out.add_stream_from_template(stream, opaque=True)
            packet.stream = ostream
            out.mux(packet)
            count += 1
            nbytes += packet.size
    except av.FFmpegError as exc:
        raise UnreadableSource(f"{table.cpl_uri}: cannot read title frames {first}-{end}: "
                               f"{exc}") from exc
    finally:
        if out is not None:
            out.close()
    if count != end - first:
        raise UnreadableSource(f"{table.cpl_uri}: {count} of the {end - first} frames "
                               f"{first}-{end} were found in their track files")
    return StagedImage(out_path, count, nbytes, float(first / table.edit_rate))


def image_packets(table: TitleTable, reads, storage: Storage | None = None):
    """(track file stream, packet) of each edit unit of `reads` (`Track.reads` of the
    picture), in title order, the packet's timestamps the title's frame number (time base
    1/edit rate): what `stage_image_span` copies. Raises `av.FFmpegError`."""
    if not reads:
        return
    storage = storage or storage_for(reads[0].path)
    rate = table.edit_rate
    for read in reads:
        frame0 = round(read.title_start_s * rate)
        with _opened(read.path, storage) as source, _open_av(source) as container:
            stream = container.streams.video[0]
            for packet in _units(container, stream, read):
                unit = packet.pts
                packet.pts = packet.dts = frame0 + unit - read.first
                packet.time_base = Fraction(1) / rate
                packet.duration = 1
                yield stream, packet


def image_staging_format(stream, uri: str) -> tuple[str, str]:
    """(format, suffix) of the local file a track file's picture is staged in."""
    codec = stream.codec_context.codec.canonical_name
    chosen = staging_format(codec)
    if chosen is None:
        raise UnstageableCodec(f"{uri}: the video codec {codec} cannot be staged for encoding")
    return chosen


def _units(container, stream, read):
    """The packets of edit units [read.first, read.first + read.count) of a track file,
    each with `pts` set to its edit unit, one at a time (a minute of a picture track
    is gigabytes: none is held)."""
    tb = stream.time_base
    for seek in (read.start_s, Fraction(0)):
        container.seek(max(0, math.floor(seek / tb)), stream=stream, backward=True,
                       any_frame=False)
        started = False
        for packet in container.demux(stream):
            if packet.pts is None:  # intra-only essence: decode order is display order
                packet.pts = packet.dts
            if packet.size == 0 or packet.pts is None:
                continue
            unit = round(packet.pts * tb * read.edit_rate)
            if not started and unit > read.first and seek > 0:
                break  # the index landed late: from the start
            if unit < read.first:
                continue
            if unit >= read.first + read.count:
                return
            packet.pts = unit
            started = True
            yield packet
        else:
            return


@dataclass(frozen=True)
class StagedPcm:
    path: str
    first_time_s: Fraction
    """Title time of the first sample."""
    packets: int
    bytes_copied: int


def stage_audio_span(table: TitleTable, track_index: int, start_s: float, end_s: float,
                     out_path: str, storage: Storage | None = None) -> StagedPcm:
    """The PCM of audio track `track_index` covering [start_s, end_s] of the title,
    decoded from only the track file ranges it covers (`Track.reads`), into a small
    local float WAV whose first sample plays at `first_time_s`. Nothing in reach (before
    0 or past the end): no packet, silence."""
    pcm = track_pcm(table, track_index, start_s, end_s, storage)
    if pcm is None:
        return StagedPcm(out_path, Fraction(0), 0, 0)
    audio, rate = pcm.samples, pcm.rate
    path = os.path.splitext(out_path)[0] + ".wav"
    channels = audio.shape[0]
    layout = pcm_layout(channels)
    with av.open(path, mode="w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=rate, layout=layout)
        packed = np.ascontiguousarray(audio.T).reshape(1, -1)
        step = 4096
        for at in range(0, audio.shape[1], step):
            piece = packed[:, at * channels:(at + step) * channels]
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = at
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return StagedPcm(path, pcm.first_time_s, pcm.reads, pcm.bytes_read)


@dataclass(frozen=True)
class TrackPcm:
    samples: np.ndarray
    """channels x n, float32."""
    rate: int
    first_time_s: Fraction
    """Title time of the first sample."""
    reads: int
    bytes_read: int


def track_pcm(table: TitleTable, track_index: int, start_s: float, end_s: float,
              storage: Storage | None = None) -> TrackPcm | None:
    """The PCM of audio track `track_index` covering [start_s, end_s] of the title, from
    only the track file ranges it covers (None: nothing in reach)."""
    track = table.audio[track_index]
    start = max(Fraction(0), Fraction(start_s))
    end = min(Fraction(end_s), table.duration_s)
    reads = track.reads(start, end) if end > start else []
    if not reads:
        return None
    storage = storage or storage_for(reads[0].path)
    pieces: list[np.ndarray] = []
    rate = 0
    nbytes = 0
    for read in reads:
        with _opened(read.path, storage) as source, _open_av(source) as container:
            samples, rate, read_bytes = _pcm(container, read)
            pieces.append(samples)
            nbytes += read_bytes
    return TrackPcm(np.concatenate(pieces, axis=1), rate, reads[0].title_start_s,
                    len(reads), nbytes)


def pcm_layout(channels: int) -> str:
    return {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(channels, f"{channels}c")


def _pcm(container, read) -> tuple[np.ndarray, int, int]:
    """Samples (channels x n, float32) of edit units [first, first + count) of a track
    file, its sample rate and the packet bytes read."""
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate
    first = round(read.start_s * rate)
    end = round((read.start_s + read.duration_s) * rate)
    container.seek(max(0, math.floor((read.start_s - Fraction(1, 10)) / stream.time_base)),
                   stream=stream, backward=True, any_frame=False)
    out = []
    nbytes = 0
    at = None
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        nbytes += packet.size
        for frame in packet.decode():
            at = round(frame.pts * frame.time_base * rate) if frame.pts is not None else at
            data = _planar_float(frame)
            lo, hi = max(first, at), min(end, at + frame.samples)
            if hi > lo:
                out.append(data[:, lo - at:hi - at])
            at += frame.samples
        if at is not None and at >= end:
            break
    channels = stream.codec_context.channels
    samples = np.concatenate(out, axis=1) if out else np.zeros((channels, 0), np.float32)
    if samples.shape[1] < end - first:  # a short track file: silence to the unit's end
        samples = np.pad(samples, ((0, 0), (0, end - first - samples.shape[1])))
    return samples, rate, nbytes


def _planar_float(frame) -> np.ndarray:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype.kind == "i":
        data = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    return data.astype(np.float32)
