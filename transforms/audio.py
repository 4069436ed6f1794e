"""Audio: each audio track of a title becomes AAC-LC stereo CMAF segments.

One task per track (audio is cheap next to video), after a `Reshuffle` so it runs
beside the video chunks. Segments land on the title's segment grid (see `media.encode.audio`)
under `DEST/<title>/audio/<track>/`.
"""

from __future__ import annotations

import logging
import os
import tempfile

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.errors import MediaError
from media.core.types import AudioTask, PackagedTrack
from media.encode.audio import SAMPLE_RATE_HZ, encode_audio
from media.package.codecs import codecs_string
from transforms import _storage
from transforms.assemble import write_track
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters

__all__ = ["EncodeAudio"]

log = logging.getLogger(__name__)


class _EncodeAudioFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    @dead_letters("audio")
    def process(self, task: AudioTask):
        try:
            track = self._encode(task)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, f"audio ({task.track_id})", exc))
            return
        log.info("%s: audio %s: %d segments", task.title_id, task.track_id, len(track.segments))
        yield task.source.version_key, track

    def _encode(self, task: AudioTask) -> PackagedTrack:
        # A title package's audio file starts where the video does; a stream of the
        # video source is placed by the source's own timestamps.
        uri = task.stream.uri or task.source.source_uri
        video_offset_s = (0.0 if task.stream.uri else
                          task.source.video_start_s - task.source.container_start_s)
        with tempfile.TemporaryDirectory(prefix="ladderflow-audio-") as scratch:
            if _storage.is_local(uri):
                path = _storage.local_path(uri)
            else:  # FFmpeg reads local files only; the audio task needs the whole title anyway
                path = os.path.join(scratch, "source")
                _storage.download(uri, path)
            encoded = encode_audio(path, task.stream.stream_index, float(task.source.duration_s),
                                   video_offset_s,
                                   task.grid.segment_s,
                                   task.bitrate_kbps, scratch, self._timeout_s)
        init_rel, segments = write_track(naming.title_root(task.output_root, task.title_id),
                                         "audio", task.track_id, encoded.init,
                                         encoded.segments, encoded.timing,
                                         task.source.media_dir)
        return PackagedTrack(
            kind="audio", track_id=task.track_id, codecs=codecs_string(encoded.init_info),
            timescale=encoded.init_info.timescale, init_uri=init_rel, segments=segments,
            language=task.stream.language,
            name=task.stream.name or _display_name(task.stream.language),
            channels=2, sample_rate_hz=SAMPLE_RATE_HZ,
            track_position=task.track_position, track_count=task.track_count,
            media_dir=task.source.media_dir,
        )


def _display_name(language: str) -> str:
    names = {"und": "Audio", "eng": "English", "en": "English", "fra": "Français",
             "fre": "Français", "deu": "Deutsch", "ger": "Deutsch", "spa": "Español"}
    return names.get(language, language)


class EncodeAudio(beam.PTransform):
    """PCollection[AudioTask] -> {'main': (title, PackagedTrack), 'dead_letter': DeadLetter}."""

    def __init__(self, tool_timeout_s: float = 3600.0):
        super().__init__()
        self._timeout_s = tool_timeout_s

    def expand(self, tasks):
        return (
            tasks
            | "SpreadOverWorkers" >> beam.Reshuffle()
            | "EncodeAac" >> beam.ParDo(_EncodeAudioFn(self._timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
