"""Subtitles: each subtitle file of a title (SRT or WebVTT) becomes WebVTT, segmented on
the title's video grid for HLS (`subtitles/<track>/seg-NNNNN.vtt` with X-TIMESTAMP-MAP)
and whole for DASH (`subtitles/<track>/subtitles.vtt`)."""

from __future__ import annotations

import itertools
import logging
from fractions import Fraction

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.errors import MediaError
from media.core.types import PackagedTrack, Segment, SubtitleTask
from media.package.subtitles import read_subtitles, segment_webvtt, to_webvtt
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters

__all__ = ["ConvertSubtitles", "subtitle_grid"]

log = logging.getLogger(__name__)
TIMESCALE = 1000
"""Subtitle segment times in the report and the DASH sidecar: milliseconds."""


def subtitle_grid(task: SubtitleTask) -> tuple[list[Fraction], list[Fraction]]:
    """(start, duration) of each video segment, in seconds: the grid subtitles follow."""
    grid = task.grid
    bounds = [Fraction(b) / grid.frame_rate for b in grid.segment_bounds(task.source.frame_count)]
    return bounds[:-1], [b - a for a, b in itertools.pairwise(bounds)]


class _ConvertFn(beam.DoFn):
    @dead_letters("subtitles")
    def process(self, task: SubtitleTask):
        try:
            track = self._convert(task)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.track.uri, f"subtitles ({task.track_id})", exc))
            return
        log.info("%s: subtitles %s: %d segments", task.title_id, task.track_id,
                 len(track.segments))
        yield task.source.version_key, track

    def _convert(self, task: SubtitleTask) -> PackagedTrack:
        cues = read_subtitles(_storage.read_bytes(task.track.uri), task.track.uri)
        starts, durations = subtitle_grid(task)
        root = naming.title_root(task.output_root, task.title_id)
        media_dir = task.source.media_dir
        segments = []
        for number, (document, start, duration) in enumerate(
                zip(segment_webvtt(cues, starts, durations), starts, durations, strict=True),
                start=1):
            rel = naming.subtitle_segment_uri(task.track_id, number, media_dir)
            data = document.encode("utf-8")
            _storage.write_bytes(naming.join(root, rel), data)
            segments.append(Segment(number, rel, round(start * TIMESCALE),
                                    round(duration * TIMESCALE), len(data)))
        sidecar = naming.subtitle_sidecar_uri(task.track_id, media_dir)
        _storage.write_bytes(naming.join(root, sidecar), to_webvtt(cues).encode("utf-8"))
        return PackagedTrack(
            kind="subtitles", track_id=task.track_id, codecs="wvtt", timescale=TIMESCALE,
            init_uri="", segments=tuple(segments), language=task.track.language,
            name=task.track.name, track_position=task.track_position,
            track_count=task.track_count, media_dir=media_dir, forced=task.track.forced,
            sidecar_uri=sidecar)


class ConvertSubtitles(beam.PTransform):
    """PCollection[SubtitleTask] -> {'main': ((title, generation), PackagedTrack), ...}."""

    def expand(self, tasks):
        return tasks | "ToWebVtt" >> beam.ParDo(_ConvertFn()).with_outputs(
            DEAD_LETTER, main="main")
