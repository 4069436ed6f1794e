"""Split: plan a title's ladder and grid, and fan it out into tasks.

For each planned title: the chunks on the plan's segment grid (shared by every track);
then one `ChunkTask` per (chunk, rendition of the plan), grouped by chunk into a
`ChunkGroup` (the encode stage decodes each chunk once for all its renditions), on the
main output, and one
`AudioTask` per span of each audio track on the `audio` output (every audio stream of the
source and every audio file of its title package, as AAC-LC stereo, in spans of
`AUDIO_SPAN_SEGMENTS` whole segments: each span reads and encodes only its own part of the
track), and one `SubtitleTask` per subtitle file on the `subtitles` output.
"""

from __future__ import annotations

import dataclasses
import logging

import apache_beam as beam
from apache_beam import pvalue

from media.core.config import JobConfig
from media.core.naming import audio_track_id, subtitle_track_id
from media.core.types import (
    AudioTask,
    ChunkGroup,
    ChunkTask,
    SourceInfo,
    SubtitleTask,
    TitlePlan,
)
from media.encode import audio_spans
from media.plan.chunking import grid_chunks
from media.plan.ladder import vmaf_height
from media.quality.vmaf import MIN_SCORED_FRAMES, chunk_step
from transforms.dead_letter import DEAD_LETTER, dead_letters

__all__ = ["SUBTITLES", "Split", "chunk_groups", "lean_source", "plan_tasks"]

SUBTITLES = "subtitles"
log = logging.getLogger(__name__)


def lean_source(source: SourceInfo) -> SourceInfo:
    """`source` as every task but each rendition's chunk 0 carries it: without its shot
    cuts (thousands in a feature), which the report reads from chunk 0's source. The
    grid likewise (`SegmentGrid.lean`): each other chunk carries its own segments."""
    return dataclasses.replace(source, shot_cuts_s=None) if source.shot_cuts_s else source


def plan_tasks(plan: TitlePlan, config: JobConfig, audio_span_segments: int | None = None
               ) -> tuple[list[ChunkTask], list[AudioTask], list[SubtitleTask]]:
    """Every task of a title: chunk tasks rendition by rendition, then a task per span of
    each audio track (every audio stream of the source, then a title package's audio
    files; `audio_span_segments` segments a span, `AUDIO_SPAN_SEGMENTS` unless told),
    then one per subtitle track."""
    source = plan.source
    renditions = list(plan.renditions)
    if config.max_renditions and not config.multi_codec:  # codec ladders: cut each
        renditions = renditions[:config.max_renditions]
    grid = plan.grid
    chunks = grid_chunks(source.frame_count, grid)
    audio_streams = list(source.audio)
    track_count = len(renditions) + len(audio_streams) + len(source.subtitles)
    lean = lean_source(source)
    chunk_tasks = [
        ChunkTask(source=source if chunk.index == 0 else lean, rendition=rendition,
                  chunk=chunk, chunk_count=len(chunks),
                  grid=grid if chunk.index == 0 else grid.lean(),
                  output_root=config.output_root, settings=config.encode,
                  score_vmaf=config.score_vmaf, vmaf_height=vmaf_height(source),
                  track_position=position, track_count=track_count,
                  rendition_count=len(renditions),
                  max_attempts=config.max_attempts if config.gates_on else 1,
                  gate_below=config.gate_below, gate_above=config.gate_above,
                  vmaf_subsample=chunk_step(chunk.frame_count, config.vmaf_subsample,
                                            plan.scored_frames or MIN_SCORED_FRAMES))
        for position, rendition in enumerate(renditions)
        for chunk in chunks
    ]
    spans = audio_spans.audio_spans(
        source.duration_s,
        grid.segment_starts_s(source.frame_count) if grid.starts else grid.segment_s,
        audio_span_segments or audio_spans.AUDIO_SPAN_SEGMENTS)
    audio_tasks = [
        AudioTask(source=lean, stream=stream, track_id=audio_track_id(stream.language, i),
                  output_root=config.output_root, grid=grid.lean(),
                  bitrate_kbps=config.audio_kbps, track_position=len(renditions) + i,
                  track_count=track_count, span_index=span.index, span_count=span.count,
                  first_segment=span.first_segment, end_segment=span.end_segment,
                  start_frame=span.start_frame, end_frame=span.end_frame,
                  segment_starts=span.segment_starts)
        for i, stream in enumerate(audio_streams)
        for span in spans
    ]
    first_subtitle = len(renditions) + len(audio_streams)
    subtitle_tasks = [
        SubtitleTask(source=lean, track=track, track_id=subtitle_track_id(track.language, i),
                     output_root=config.output_root, grid=grid,
                     track_position=first_subtitle + i, track_count=track_count)
        for i, track in enumerate(source.subtitles)
    ]
    return chunk_tasks, audio_tasks, subtitle_tasks


def chunk_groups(tasks: list[ChunkTask]) -> list[ChunkGroup]:
    """The tasks grouped by chunk, renditions in ladder order: one encode process each."""
    by_chunk: dict[int, list[ChunkTask]] = {}
    for task in tasks:
        by_chunk.setdefault(task.chunk.index, []).append(task)
    return [ChunkGroup(tuple(group)) for _, group in sorted(by_chunk.items())]


class _SplitFn(beam.DoFn):
    def __init__(self, config: JobConfig):
        self._config = config

    @dead_letters("split")
    def process(self, plan: TitlePlan):
        source = plan.source
        chunk_tasks, audio_tasks, subtitle_tasks = plan_tasks(plan, self._config)
        renditions = sorted({t.rendition.rendition_id for t in chunk_tasks})
        log.info("%s: split into %d chunks x %d renditions (%s), %d audio track(s) in %d "
                 "span(s), %d subtitle track(s)", source.title_id, chunk_tasks[0].chunk_count,
                 len(renditions), ", ".join(renditions), len(source.audio), len(audio_tasks),
                 len(subtitle_tasks))
        # Audio spans first, on the chunks' own output: the encode stage takes both, and a
        # runner that keeps the order (the local FnApiRunner) encodes the longer audio
        # spans first, so that none is left for after the last chunk.
        yield from audio_tasks
        yield from chunk_groups(chunk_tasks)
        for task in subtitle_tasks:
            yield pvalue.TaggedOutput(SUBTITLES, task)


class Split(beam.PTransform):
    """PCollection[TitlePlan] -> {'main': AudioTask | ChunkGroup (the audio spans first),
    'subtitles': SubtitleTask, 'dead_letter': DeadLetter}."""

    def __init__(self, config: JobConfig):
        super().__init__()
        self._config = config

    def expand(self, sources):
        return sources | "PlanTasks" >> beam.ParDo(_SplitFn(self._config)).with_outputs(
            SUBTITLES, DEAD_LETTER, main="main")
