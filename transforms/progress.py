"""Progress of long runs: work done / total per title and stage, logged as it finishes.

`title: encode+score 7/15 chunks (...)`, `title: plan 4/21 trial encodes (...)`,
`title: allocate 3/11 chunks probed (...)`.

The line is logged in the stage that did the work, as each piece finishes, and the count
is kept in the worker process (`ProgressCount`), not in Beam state. State would need a
stage of its own after a shuffle, and runners run such a stage once the stage before has
finished (the DirectRunner and Dataflow's batch mode do): every line would come at the
end, when nothing is left to wait for. It would also make the working stage hold state,
which the DirectRunner runs on one worker. Under the DirectRunner (one process, its
workers threads) the count is the title's; on a cluster each worker counts what it
finished, and the runner's own console shows the stage's progress.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Hashable

import apache_beam as beam

from media.core.types import ChunkResult, TrialResult

__all__ = ["ProgressCount", "ReportProbeProgress", "ReportProgress", "ReportTrialProgress"]

log = logging.getLogger("ladderflow.progress")


def chunk_line(result: ChunkResult, count: int) -> str:
    total = chunk_total(result)
    stage = "encode+score" if result.vmaf else "encode"
    vmaf = f", VMAF {result.vmaf.mean:.1f}" if result.vmaf else ""
    tries = f", {len(result.attempts)} encodes" if len(result.attempts) > 1 else ""
    reused = " (reused)" if result.reused else ""
    return (f"{result.title_id}: {stage} {count}/{total} chunks ({result.rendition_id} chunk "
            f"{result.index}: {result.bitrate_kbps:.0f} kb/s{vmaf}{tries}){reused}")


def chunk_total(result: ChunkResult) -> int:
    return result.chunk_count * result.rendition_count


def chunk_piece(result: ChunkResult) -> tuple[Hashable, Hashable, int]:
    return ("encode", result.title_id, result.generation), (result.rendition_id, result.index), \
        chunk_total(result)


def trial_line(result: TrialResult, count: int) -> str:
    task = result.task
    return (f"{task.title_id}: plan {count}/{task.trial_count} trial encodes "
            f"({result.height}p segment {task.span.index} CRF {result.crf:g}: "
            f"VMAF {result.vmaf_mean:.1f})")


def trial_piece(result: TrialResult) -> tuple[Hashable, Hashable, int]:
    return ("plan", *result.task.source.version_key), result.index, result.task.trial_count


def probe_line(keyed, count: int) -> str:
    (title_id, _generation), part = keyed
    record = part.value
    points = sum(len(p.points) for p in record.probes)
    return (f"{title_id}: allocate {count}/{part.count} chunks probed (chunk {part.index}: "
            f"{points} probe encodes, {record.cpu_s:.0f} CPU s)")


def probe_piece(keyed) -> tuple[Hashable, Hashable, int]:
    key, part = keyed
    return ("allocate", *key), part.index, part.count


class ProgressCount:
    """Pieces of work finished per key (a stage of one title version), in this process.

    A piece is counted once however often it is reported (a retried bundle reports its
    pieces again). A key whose last piece is counted keeps only its count, for as long as
    `remembered` keys finished after it have not pushed it out: a late repeat of one of
    its pieces is not counted, while a piece that says there are more in all (planning's
    second round, whose total the first could not know) counts on from there. Keys
    still open are kept for as long as `remembered` keys opened after them have not
    pushed them out (a title that failed half-way never finishes)."""

    def __init__(self, remembered: int = 1024):
        self._lock = threading.Lock()
        self._open: collections.OrderedDict[Hashable, tuple[int, set[Hashable]]] = \
            collections.OrderedDict()
        self._finished: collections.OrderedDict[Hashable, tuple[int, int]] = \
            collections.OrderedDict()
        self._remembered = remembered

    def add(self, key: Hashable, piece: Hashable, total: int) -> int | None:
        """Count `piece` of `key`, one of `total`: how many are done now, or None when
        this piece was counted before."""
        with self._lock:
            counted_before = 0
            if key in self._finished:
                counted_before, finished_total = self._finished[key]
                if total <= finished_total:
                    return None
                del self._finished[key]
            if key not in self._open:
                self._open[key] = (counted_before, set())
                while len(self._open) > self._remembered:
                    self._open.popitem(last=False)
            before, pieces = self._open[key]
            if piece in pieces:
                return None
            pieces.add(piece)
            count = before + len(pieces)
            if count >= total:
                del self._open[key]
                self._finished[key] = (count, total)
                while len(self._finished) > self._remembered:
                    self._finished.popitem(last=False)
            return count


_COUNT = ProgressCount()


class _LogFn(beam.DoFn):
    def __init__(self, piece: Callable, line: Callable):
        self._piece = piece
        self._line = line

    def process(self, result):
        key, piece, total = self._piece(result)
        count = _COUNT.add(key, piece, total)
        if count is not None:
            log.info("%s", self._line(result, count))
        return []


class _Report(beam.PTransform):
    def __init__(self, piece: Callable, line: Callable):
        super().__init__()
        self._piece = piece
        self._line = line

    def expand(self, results):
        return results | "Log" >> beam.ParDo(_LogFn(self._piece, self._line))


class ReportProgress(_Report):
    """PCollection[ChunkResult] -> nothing; logs a line per finished chunk."""

    def __init__(self):
        super().__init__(chunk_piece, chunk_line)


class ReportProbeProgress(_Report):
    """PCollection[((title id, generation), Part(index, count, ProbeRecord))] -> nothing;
    logs a line per chunk probed for the optimal allocation (its probes take about as
    long as the final encodes, and nothing else is logged meanwhile)."""

    def __init__(self):
        super().__init__(probe_piece, probe_line)


class ReportTrialProgress(_Report):
    """PCollection[TrialResult] -> nothing; logs a line per finished trial encode. Apply
    it to each round's results where they are made: the rounds share one count."""

    def __init__(self):
        super().__init__(trial_piece, trial_line)
