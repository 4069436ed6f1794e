"""Assemble: a rendition's chunks, gathered, become its CMAF track, from their records.

Input: ((title_id, generation, rendition_id), [ChunkResult in chunk order]): each chunk
exactly once (the gather counts a retried chunk once; a list that is not 0..N-1 is a bug,
which fails loudly rather than publish duplicated or missing segments). Each chunk's
encode already wrote its final media segments under `DEST/<title>/video/<rendition>/`
(`media.package.assemble.segment_chunk`), so no chunk media is read here: the records
are checked against the grid, the chunks' init segments must agree, and the first
chunk's init segment (a few hundred bytes) is written as the rendition's. Output: a
`PackagedTrack` describing the track, keyed for the per-title gather.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.errors import MediaError
from media.core.types import ChunkResult, PackagedTrack, Segment
from media.package.assemble import check_track_records
from media.package.codecs import codecs_string
from media.package.isobmff import read_init
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters

__all__ = ["AssembleRenditions", "write_segments", "write_track"]

log = logging.getLogger(__name__)


def write_segments(title_root: str, kind: str, track_id: str, segments: Sequence[bytes],
                   timing: Sequence, media_dir: str = "",
                   first_number: int = 1) -> tuple[Segment, ...]:
    """Write media segments under their published names, numbered from `first_number`
    (a chunk's first segment in its track); return their records."""
    written = []
    for number, (data, frag) in enumerate(zip(segments, timing, strict=True),
                                          start=first_number):
        rel = naming.segment_uri(kind, track_id, number, media_dir)
        _storage.write_bytes(naming.join(title_root, rel), data)
        written.append(
            Segment(
                number=number,
                uri=rel,
                start_ticks=frag.base_decode_ticks,
                duration_ticks=frag.duration_ticks,
                size_bytes=len(data),
                sync_first=frag.first_sample_is_sync,
            )
        )
    return tuple(written)


def write_track(
    title_root: str,
    kind: str,
    track_id: str,
    init: bytes,
    segments: Sequence[bytes],
    timing: list,
    media_dir: str = "",
) -> tuple[str, tuple[Segment, ...]]:
    """Write an init segment and media segments; return the init uri and the segment list."""
    init_rel = naming.init_uri(kind, track_id, media_dir)
    written = write_segments(title_root, kind, track_id, segments, timing, media_dir)
    _storage.write_bytes(naming.join(title_root, init_rel), init)
    return init_rel, written


class _AssembleFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    @dead_letters("assemble")
    def process(self, element):
        (title_id, generation, rendition_id), chunks = element
        task = chunks[0].task
        try:
            track = self._assemble(chunks)
        except (MediaError, OSError) as exc:  # OSError: the first chunk's init unreadable
            source_uri = task.source.source_uri if task else ""
            yield pvalue.TaggedOutput(
                DEAD_LETTER,
                dead_letter_for(title_id, source_uri, f"assemble ({rendition_id})", exc),
            )
            return
        log.info("%s: assembled %s: %d segments", title_id, rendition_id, len(track.segments))
        yield (title_id, generation), track

    def _assemble(self, chunks: list[ChunkResult]) -> PackagedTrack:
        task = chunks[0].task
        if task is None:  # a bug upstream: the first chunk carries its task
            raise RuntimeError(f"{chunks[0].title_id}: chunk {chunks[0].index} of "
                               f"{chunks[0].rendition_id} came first, without its task")
        rid = task.rendition.rendition_id
        indices = [chunk.index for chunk in chunks]
        if indices != list(range(task.chunk_count)):  # a bug upstream: fail loudly
            raise RuntimeError(
                f"{task.title_id}: the chunks of {rid} were gathered "
                f"as {indices}; expected each of 0..{task.chunk_count - 1} once, in order"
            )
        encoders = sorted({chunk.encoder for chunk in chunks})
        if len(encoders) > 1:  # `--encoder auto` resolved differently on two workers
            raise MediaError(
                f"the chunks of {rid} were made by different "
                f"encoders ({', '.join(encoders)}), which cannot be joined",
                hint="Some workers could use NVENC and others could not; run again with "
                "--encoder set explicitly (e.g. x264 or nvenc-h264).",
            )
        odd = [c.index for c in chunks if c.init_key != chunks[0].init_key]
        if odd:
            raise MediaError(
                f"the chunks of {rid} need other decoder settings than its first chunk "
                f"(chunks {', '.join(map(str, odd[:10]))}): they cannot share one init segment",
                hint="The encoder's parameter sets follow each chunk's quality setting; run "
                "with --encoder x264, whose chunks share theirs, or a fixed ladder.",
            )
        # One small read: the first chunk's init segment, which every chunk shares.
        init = _storage.read_bytes(chunks[0].chunk_uri)
        init_info = read_init(init)
        segments = tuple(s for chunk in chunks for s in chunk.segments)
        frames = sum(c.frame_count for c in chunks)
        check_track_records(segments, init_info.timescale, task.grid.segment_frames,
                            task.grid.frame_rate, total_frames=frames,
                            bounds=task.grid.segment_bounds(frames))
        init_rel = naming.init_uri("video", rid, task.source.media_dir)
        _storage.write_bytes(
            naming.join(naming.title_root(task.output_root, task.title_id), init_rel), init)
        return PackagedTrack(
            kind="video",
            track_id=rid,
            codecs=codecs_string(init_info),
            timescale=init_info.timescale,
            init_uri=init_rel,
            segments=segments,
            width=task.rendition.width,
            height=task.rendition.height,
            frame_rate=task.source.frame_rate,
            chunks=tuple(chunks),
            rendition=task.rendition,
            track_position=task.track_position,
            track_count=task.track_count,
            media_dir=task.source.media_dir,
            iframe_ranges=tuple(r for chunk in chunks for r in chunk.iframe_ranges),
        )


class AssembleRenditions(beam.PTransform):
    """PCollection[((title, generation, rendition), [ChunkResult])]
    -> {'main': ((title, generation), PackagedTrack), 'dead_letter': DeadLetter}."""

    def __init__(self, tool_timeout_s: float = 3600.0):
        super().__init__()
        self._timeout_s = tool_timeout_s

    def expand(self, gathered):
        return gathered | "StreamCopyToCmaf" >> beam.ParDo(
            _AssembleFn(self._timeout_s)
        ).with_outputs(DEAD_LETTER, main="main")
