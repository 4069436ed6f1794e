"""Audio: each audio track of a title becomes AAC-LC stereo CMAF segments.

Split cuts each track into spans of whole segments (`media.encode.audio_spans`). In the
encode stage, beside the video chunks (`transforms.encode`), each span task reads only
its own packets of the source (a seek and a stream copy, through a `FileSystems` handle
where the source is not local), encodes them and writes its segments under their
published names (`DEST/<title>/audio/<track>/`, the first span the init segment too),
then sends a slim record. A gather per (title version, track) joins the records, O(1)
state work per span, into the track's `PackagedTrack`. Nothing a worker holds grows
with the title.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from media.core import naming
from media.core.errors import MediaError
from media.core.types import AudioTask, PackagedTrack, Segment
from media.encode.audio_spans import SAMPLE_RATE_HZ, AudioSpan, encode_span
from media.package.codecs import codecs_string
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters
from transforms.gather import GatherParts, Part

__all__ = ["AudioSpanResult", "GatherAudio", "packaged_track"]

log = logging.getLogger(__name__)
_SPANS_ENCODED = Metrics.counter("ladderflow", "audio spans encoded")
_PACKET_BYTES = Metrics.counter("ladderflow", "audio packet bytes copied")


@dataclass(frozen=True)
class AudioSpanResult:
    """What a span wrote: its segments (numbered and timed on the track), and on the
    first span the init segment, the codecs string and the task (the track's names)."""

    span_index: int
    span_count: int
    segments: tuple[Segment, ...]
    packet_bytes: int
    """Bytes of the source's audio packets the span copied."""
    init_uri: str = ""
    codecs: str = ""
    timescale: int = SAMPLE_RATE_HZ
    task: AudioTask | None = None


def span_of(task: AudioTask) -> AudioSpan:
    return AudioSpan(task.span_index, task.span_count, task.first_segment, task.end_segment,
                     task.start_frame, task.end_frame, task.segment_starts)


class _EncodeAudioFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    @dead_letters("audio")
    def process(self, task: AudioTask):
        try:
            result = self._encode(task)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, f"audio ({task.track_id})", exc))
            return
        _SPANS_ENCODED.inc()
        _PACKET_BYTES.inc(result.packet_bytes)
        log.info("%s: audio %s: span %d/%d: segments %d-%d, %d bytes of audio packets read",
                 task.title_id, task.track_id, task.span_index + 1, task.span_count,
                 task.first_segment + 1, task.end_segment, result.packet_bytes)
        key = (task.title_id, task.source.generation, task.track_id)
        yield key, Part(task.span_index, task.span_count, result)

    def _encode(self, task: AudioTask) -> AudioSpanResult:
        # A title package's audio file starts where the video does; a stream of the
        # video source is placed by the source's own timestamps.
        uri = task.stream.uri or task.source.source_uri
        video_offset_s = (0.0 if task.stream.uri else
                          task.source.video_start_s - task.source.container_start_s)
        with tempfile.TemporaryDirectory(prefix="ladderflow-audio-") as scratch, \
                _storage.open_source(uri) as source:
            encoded = encode_span(source, task.stream.stream_index, span_of(task),
                                  task.source.duration_s, video_offset_s, task.grid.segment_s,
                                  task.bitrate_kbps, scratch, self._timeout_s, uri)
        root = naming.title_root(task.output_root, task.title_id)
        media_dir = task.source.media_dir
        written = []
        for number, data, frag in zip(range(task.first_segment + 1, task.end_segment + 1),
                                      encoded.segments, encoded.timing, strict=True):
            rel = naming.segment_uri("audio", task.track_id, number, media_dir)
            _storage.write_bytes(naming.join(root, rel), data)
            written.append(Segment(number, rel, frag.base_decode_ticks, frag.duration_ticks,
                                   len(data)))
        first = task.span_index == 0
        init_rel = naming.init_uri("audio", task.track_id, media_dir) if first else ""
        if first:
            _storage.write_bytes(naming.join(root, init_rel), encoded.init)
        return AudioSpanResult(
            task.span_index, task.span_count, tuple(written), encoded.packet_bytes,
            init_uri=init_rel, codecs=codecs_string(encoded.init_info) if first else "",
            timescale=encoded.init_info.timescale, task=task if first else None)


def packaged_track(spans: list[AudioSpanResult]) -> PackagedTrack:
    """The track of its spans' records (in span order): every segment once, each starting
    where the one before it ends."""
    task = spans[0].task
    segments = tuple(s for span in spans for s in span.segments)
    for before, after in itertools.pairwise(segments):
        if (after.number != before.number + 1
                or after.start_ticks != before.start_ticks + before.duration_ticks):
            raise MediaError(f"audio {task.track_id}: segment {after.number} does not follow "
                             f"segment {before.number}")
    return PackagedTrack(
        kind="audio", track_id=task.track_id, codecs=spans[0].codecs,
        timescale=spans[0].timescale, init_uri=spans[0].init_uri, segments=segments,
        language=task.stream.language,
        name=task.stream.name or _display_name(task.stream.language),
        channels=2, sample_rate_hz=SAMPLE_RATE_HZ,
        track_position=task.track_position, track_count=task.track_count,
        media_dir=task.source.media_dir,
    )


class _TrackFn(beam.DoFn):
    @dead_letters("audio")
    def process(self, element):
        _, spans = element
        task = spans[0].task
        try:
            track = packaged_track(spans)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, f"audio ({task.track_id})", exc))
            return
        log.info("%s: audio %s: %d segments from %d span(s), %d bytes of audio packets read",
                 task.title_id, task.track_id, len(track.segments), len(spans),
                 sum(span.packet_bytes for span in spans))
        yield task.source.version_key, track


_NAMES = {
    "und": "Audio", "en": "English", "eng": "English", "fr": "Français", "fra": "Français",
    "fre": "Français", "de": "Deutsch", "deu": "Deutsch", "ger": "Deutsch", "es": "Español",
    "spa": "Español", "it": "Italiano", "ita": "Italiano", "pt": "Português",
    "por": "Português", "nl": "Nederlands", "nld": "Nederlands", "dut": "Nederlands",
    "ja": "日本語", "jpn": "日本語", "ko": "한국어", "kor": "한국어", "zh": "中文", "zho": "中文",
    "chi": "中文", "ru": "Русский", "rus": "Русский", "pl": "Polski", "pol": "Polski",
    "sv": "Svenska", "swe": "Svenska", "tr": "Türkçe", "tur": "Türkçe", "ar": "العربية",
    "ara": "العربية", "hi": "हिन्दी", "hin": "हिन्दी",
}
"""A track's name in players' menus, in its own language, by ISO 639-1/2 code."""


def _display_name(language: str) -> str:
    """The name of `language` (ISO 639 or BCP 47: `fr-CA` is Français), else the tag."""
    return _NAMES.get(language, _NAMES.get(language.split("-")[0].lower(), language))


def _keyed(element):
    """(title id, generation, track id) and the span's Part, typed for a deterministic key."""
    return element


class GatherAudio(beam.PTransform):
    """PCollection[((title, generation, track), Part[AudioSpanResult])] -> {'main':
    ((title, generation), PackagedTrack), 'dead_letter': DeadLetter}: a track per
    (title version, track) once all its spans are in."""

    def __init__(self, title_timeout_s: float = 0.0):
        super().__init__()
        self._title_timeout_s = title_timeout_s

    def expand(self, spans):
        gathered = (
            spans
            | "KeyByTrack" >> beam.Map(_keyed).with_output_types(tuple[tuple[str, str, str], Any])
            | "GatherSpans" >> GatherParts(self._title_timeout_s, "audio (gather)", "span")
        )
        tracks = gathered.main | "Track" >> beam.ParDo(_TrackFn()).with_outputs(
            DEAD_LETTER, main="main")
        rejects = ((gathered[DEAD_LETTER], tracks[DEAD_LETTER]) | "Rejects" >> beam.Flatten())
        return {"main": tracks.main, DEAD_LETTER: rejects}
