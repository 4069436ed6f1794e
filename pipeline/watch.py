"""`--watch` on the DirectRunner: poll a folder or prefix, and run each batch of new or
rewritten sources as a batch job, for as long as the process lives.

Beam's Python DirectRunner runs `fileio.MatchContinuously` (a splittable source) on its
FnApiRunner, which fires no GroupByKey below a source that never finishes; so on that
runner the streaming graph would inspect the first source and go no further. Here the
polling happens in this loop, and every batch job is the ordinary batch graph (all
cores, the same stages). A source is taken once it has stayed the same (size and
modification time) over one poll, so a file still being copied is not read half
written; its modification time is its generation, as with `WatchPrefix`. A title
already published from the same generation is skipped (also after a restart).
Runners with a streaming Python SDF (Flink, Dataflow) run `WatchPrefix` instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from apache_beam.io.filesystems import FileSystems

from media.core.types import IngestEvent
from media.ingest.events import Ignored, watched_file_event
from transforms.events import count_ignored, watch_pattern

__all__ = ["Poller", "watch_in_batches"]

log = logging.getLogger("ladderflow")


class Poller:
    """What changed under a prefix since the last poll, once it has settled."""

    def __init__(self, prefix: str, ignore_prefix: str = ""):
        self._pattern = watch_pattern(prefix)
        self._ignore_prefix = ignore_prefix
        self._last: dict[str, tuple[int, float]] = {}
        self._taken: dict[str, float] = {}
        self._ignored: set[str] = set()

    def poll(self) -> list[IngestEvent]:
        [result] = FileSystems.match([self._pattern])
        now = {m.path: (m.size_in_bytes, m.last_updated_in_seconds)
               for m in result.metadata_list if not m.path.endswith("/")}
        events = []
        for path, (size, updated) in sorted(now.items()):
            settled = self._last.get(path) == (size, updated)
            if not settled or self._taken.get(path) == updated:
                continue
            event = watched_file_event(path, updated, self._ignore_prefix)
            self._taken[path] = updated
            if isinstance(event, Ignored):
                if path not in self._ignored:
                    self._ignored.add(path)
                    count_ignored(event)
                continue
            events.append(event)
        self._last = now
        return events


def watch_in_batches(prefix: str, interval_s: float, ignore_prefix: str,
                     run_batch: Callable[[list[IngestEvent]], None],
                     polls: int | None = None) -> None:
    """Poll `prefix` every `interval_s` s; hand each poll's new sources to `run_batch`.
    Runs until interrupted (or for `polls` polls)."""
    poller = Poller(prefix, ignore_prefix)
    count = 0
    while polls is None or count < polls:
        started = time.monotonic()
        events = poller.poll()
        for event in events:
            log.info("%s: found %s (generation %s)", event.title_id, event.source_uri,
                     event.generation)
        if events:
            run_batch(events)
        count += 1
        time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
