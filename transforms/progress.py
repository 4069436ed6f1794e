"""Progress of long runs: chunks done / total per title, logged as they finish."""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

__all__ = ["ReportProgress"]

log = logging.getLogger("ladderflow.progress")


class _CountChunksFn(beam.DoFn):
    DONE = ReadModifyWriteStateSpec("done", VarIntCoder())

    def process(self, element, done=beam.DoFn.StateParam(DONE)):
        title_id, result = element
        count = (done.read() or 0) + 1
        done.write(count)
        total = result.chunk_count * (result.task.rendition_count if result.task else 1)
        stage = "encode+score" if result.vmaf else "encode"
        vmaf = f", VMAF {result.vmaf.mean:.1f}" if result.vmaf else ""
        reused = " (reused)" if result.reused else ""
        log.info("%s: %s %d/%d chunks (%s chunk %d: %.0f kb/s%s)%s", title_id, stage, count,
                 total, result.rendition_id, result.index, result.bitrate_kbps, vmaf, reused)
        return []


class ReportProgress(beam.PTransform):
    """PCollection[ChunkResult] -> nothing; logs a progress line per finished chunk."""

    def expand(self, results):
        return (
            results
            | "KeyByTitle" >> beam.Map(lambda r: (r.title_id, r)).with_output_types(
                tuple[str, Any])
            | "Count" >> beam.ParDo(_CountChunksFn())
        )
