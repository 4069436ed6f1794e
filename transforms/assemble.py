"""Assemble: a rendition's chunks, gathered, become its CMAF track, by stream copy.

Input: ((title_id, generation, rendition_id), [ChunkResult in chunk order]): each chunk
exactly once (the gather counts a retried chunk once; a list that is not 0..N-1 is a bug,
which fails loudly rather than publish duplicated or missing segments). The chunks are fetched,
joined and cut into an init segment and one media segment per grid segment (see
`media.package.assemble`), and written under `DEST/<title>/video/<rendition>/`. Output: a
`PackagedTrack` describing what was written, keyed for the per-title gather.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.errors import MediaError
from media.core.types import ChunkResult, PackagedTrack, Segment
from media.package.assemble import assemble_video
from media.package.codecs import codecs_string
from media.package.iframes import iframe_range
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters

__all__ = ["AssembleRenditions", "write_track"]

log = logging.getLogger(__name__)


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
    written = []
    for number, (data, frag) in enumerate(zip(segments, timing, strict=True), start=1):
        rel = naming.segment_uri(kind, track_id, number, media_dir)
        _storage.write_bytes(naming.join(title_root, rel), data)
        written.append(
            Segment(
                number=number,
                uri=rel,
                start_ticks=frag.base_decode_ticks,
                duration_ticks=frag.duration_ticks,
                size_bytes=len(data),
            )
        )
    _storage.write_bytes(naming.join(title_root, init_rel), init)
    return init_rel, tuple(written)


class _AssembleFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    @dead_letters("assemble")
    def process(self, element):
        (title_id, _, rendition_id), chunks = element
        task = chunks[0].task
        try:
            track = self._assemble(chunks)
        except MediaError as exc:
            yield pvalue.TaggedOutput(
                DEAD_LETTER,
                dead_letter_for(
                    title_id, task.source.source_uri, f"assemble ({rendition_id})", exc
                ),
            )
            return
        log.info("%s: assembled %s: %d segments", title_id, rendition_id, len(track.segments))
        yield task.source.version_key, track

    def _assemble(self, chunks: list[ChunkResult]) -> PackagedTrack:
        task = chunks[0].task
        indices = [chunk.index for chunk in chunks]
        if indices != list(range(task.chunk_count)):  # a bug upstream: fail loudly
            raise RuntimeError(
                f"{task.title_id}: the chunks of {task.rendition.rendition_id} were gathered "
                f"as {indices}; expected each of 0..{task.chunk_count - 1} once, in order"
            )
        encoders = sorted({chunk.encoder for chunk in chunks})
        if len(encoders) > 1:  # `--encoder auto` resolved differently on two workers
            raise MediaError(
                f"the chunks of {task.rendition.rendition_id} were made by different "
                f"encoders ({', '.join(encoders)}), which cannot be joined",
                hint="Some workers could use NVENC and others could not; run again with "
                "--encoder set explicitly (e.g. x264 or nvenc-h264).",
            )
        with tempfile.TemporaryDirectory(prefix="ladderflow-assemble-") as scratch:
            paths = []
            for chunk in chunks:
                path = os.path.join(scratch, f"chunk-{chunk.index:05d}.mp4")
                _storage.download(chunk.chunk_uri, path)
                paths.append(path)
            assembled = assemble_video(
                paths,
                [c.duration_s for c in chunks],
                task.grid.segment_frames,
                task.grid.frame_rate,
                scratch,
                self._timeout_s,
            )
            # The segments are read from the joined file one at a time, while it exists.
            rid = task.rendition.rendition_id
            init_rel, segments = write_track(
                naming.title_root(task.output_root, task.title_id),
                "video",
                rid,
                assembled.init,
                assembled.segments,
                assembled.timing,
                task.source.media_dir,
            )
            iframe_ranges = tuple(
                iframe_range(segment, init=assembled.init) for segment in assembled.segments
            )
        return PackagedTrack(
            kind="video",
            track_id=rid,
            codecs=codecs_string(assembled.init_info),
            timescale=assembled.init_info.timescale,
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
            iframe_ranges=iframe_ranges,
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
