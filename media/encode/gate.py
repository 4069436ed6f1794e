"""The quality gate's encodes of one chunk: "encode and score this chunk at CRF c"
(`GateEncodes`, the function `media.plan.rate_control.encode_to_target` is given), and
the chunk's result from the encode it kept (`chunk_result`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from media.core.types import (
    Attempt,
    ChunkResult,
    ChunkTask,
    Rendition,
)
from media.encode.chunk import encode_staged
from media.encode.encoded import EncodedChunk, encoded_kbps
from media.encode.scoring import scored
from media.encode.staging import StagedSpan

log = logging.getLogger(__name__)


class GateEncodes:
    """Encode and score the task's staged chunk at a rendition's CRF, for the quality
    gate (`media.plan.rate_control.Encode`); `made` keeps every encode, in order. The
    first is `first` (an unscored encode of the group's process) where given; every
    encode is scored against the reference frames the first one kept, if it kept them
    (`first`'s are in the group's scratch folder, above `scratch`)."""

    def __init__(self, task: ChunkTask, staged: StagedSpan, scratch: str,
                 timeout_s: float | None, first: EncodedChunk | None = None):
        self._task, self._staged, self._scratch = task, staged, scratch
        self._timeout_s, self._first = timeout_s, first
        self._reference = first.reference_path if first is not None else ""
        self.made: list[EncodedChunk] = []

    def __call__(self, rendition: Rendition) -> tuple[Attempt, int]:
        task = self._task
        current = dataclasses.replace(task, rendition=rendition)
        attempt = len(self.made)
        if attempt == 0 and self._first is not None:
            encoded = scored(current, self._first, self._staged, self._scratch, 0,
                             self._timeout_s, task.vmaf_subsample)
        else:
            encoded = encode_staged(current, self._staged, self._scratch, attempt,
                                    self._timeout_s, task.vmaf_subsample, self._reference)
        self._reference = encoded.reference_path  # the chunk's reference frames, if kept
        self.made.append(encoded)
        score = encoded.vmaf.mean if encoded.vmaf else None
        p5 = round(encoded.vmaf.p5, 3) if encoded.vmaf and task.gate_floor else None
        made = Attempt(rendition.crf, round(encoded_kbps(task, encoded), 1), score, p5)
        return made, encoded.size_bytes


def chunk_result(task: ChunkTask, made: Sequence[EncodedChunk], attempts: Sequence[Attempt],
                 kept: int, chunk_uri: str, vmaf_log_uri: str,
                 retries: tuple[str, ...] = ()) -> ChunkResult:
    """The result of a chunk's encodes (`made`, as the gate's `attempts`), the one at
    `kept` stored at `chunk_uri`; the seconds are those of every encode."""
    encoded = made[kept]
    return ChunkResult(
        title_id=task.title_id, rendition_id=task.rendition.rendition_id,
        index=task.chunk.index, chunk_count=task.chunk_count, chunk_uri=chunk_uri,
        frame_count=encoded.frame_count, size_bytes=encoded.size_bytes,
        duration_s=task.chunk.frame_count / task.source.frame_rate, vmaf=encoded.vmaf,
        vmaf_log_uri=vmaf_log_uri, encode_s=sum(e.encode_s for e in made),
        score_s=sum(e.score_s for e in made),
        encode_cpu_s=sum(e.encode_cpu_s for e in made),
        score_cpu_s=sum(e.score_cpu_s for e in made), task=task, attempts=tuple(attempts),
        kept=kept, encoder=encoded.encoder, retries=retries)
