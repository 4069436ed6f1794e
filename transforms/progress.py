"""Progress of long runs: work done / total per title and stage, logged as it finishes.

A stateful count per title (so it is right on any runner and with any number of
workers): `title: encode+score 7/15 chunks (...)`, `title: plan 4/21 trial tasks (...)`.
"""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from media.types import ChunkResult, TrialResult

__all__ = ["ReportProgress", "ReportTrialProgress"]

log = logging.getLogger("ladderflow.progress")


def chunk_line(result: ChunkResult, count: int) -> str:
    total = result.chunk_count * (result.task.rendition_count if result.task else 1)
    stage = "encode+score" if result.vmaf else "encode"
    vmaf = f", VMAF {result.vmaf.mean:.1f}" if result.vmaf else ""
    tries = f", {len(result.attempts)} encodes" if len(result.attempts) > 1 else ""
    reused = " (reused)" if result.reused else ""
    return (f"{result.title_id}: {stage} {count}/{total} chunks ({result.rendition_id} chunk "
            f"{result.index}: {result.bitrate_kbps:.0f} kb/s{vmaf}{tries}){reused}")


def trial_line(result: TrialResult, count: int) -> str:
    task = result.task
    return (f"{task.title_id}: plan {count}/{task.trial_count} trial encodes "
            f"({result.height}p segment {task.span.index} CRF {result.crf:g}: "
            f"VMAF {result.vmaf_mean:.1f})")


class _CountFn(beam.DoFn):
    DONE = ReadModifyWriteStateSpec("done", VarIntCoder())

    def __init__(self, line):
        self._line = line

    def process(self, element, done=beam.DoFn.StateParam(DONE)):
        _, result = element
        count = (done.read() or 0) + 1
        done.write(count)
        log.info("%s", self._line(result, count))
        return []


class _Report(beam.PTransform):
    def __init__(self, line):
        super().__init__()
        self._line = line

    def expand(self, results):
        return (
            results
            | "KeyByTitle" >> beam.Map(lambda r: (r.title_id, r)).with_output_types(
                tuple[str, Any])
            | "Count" >> beam.ParDo(_CountFn(self._line))
        )


class ReportProgress(_Report):
    """PCollection[ChunkResult] -> nothing; logs a line per finished chunk."""

    def __init__(self):
        super().__init__(chunk_line)


class ReportTrialProgress(_Report):
    """PCollection[TrialResult] -> nothing; logs a line per finished trial encode."""

    def __init__(self):
        super().__init__(trial_line)
