"""Streaming: the objects of an IMF package that arrive before its ASSETMAP.

An announced object (a notification or a watched file: it has a generation) that could
belong to a package not yet announced, an `.mxf` or `.xml` object in a folder with no
ASSETMAP, is held by `_SettleFn`, keyed by its folder, until `settle_s` after the
folder's latest such object (at most `MAX_WINDOWS` windows after its first). When the
folder's ASSETMAP is announced, or is there when the window ends, the held objects it
lists are that package's and are dropped here: the package starts from the ASSETMAP's
event (or a later object's) in `transforms.imf._UploadedFn`, which then finds every held
object already stored. Any other held `.mxf` goes on as an ordinary source (a standalone
MXF master), and any other held `.xml` is dropped (an XML file is never a media source).

The fast path (`awaits_assetmap`): an MXF that holds both picture and sound is no IMF
track file (each carries one essence component), so it goes on at once; it costs a read
of the file's header and index. Any other MXF waits: a picture-only MXF may be a track
file, and telling a standalone one apart would take the package that has not come.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable, Iterator

import apache_beam as beam
from apache_beam.coders import FloatCoder, PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Timestamp

from media.core.errors import MediaError
from media.core.types import IngestEvent
from media.ingest.imf.assetmap import ASSETMAP_NAMES, find_assetmap, read_assetmap
from media.ingest.imf.essence import interleaved_essence
from media.ingest.imf.storage import Storage
from transforms._storage import FileSystemsStorage
from transforms.dead_letter import dead_letters

__all__ = ["MAX_WINDOWS", "awaits_assetmap", "is_assetmap"]

log = logging.getLogger(__name__)

MAX_WINDOWS = 10
"""Each object held in a folder restarts its window, up to this many windows after the
folder's first held object: a package's objects may arrive one upload time apart, and a
folder that keeps receiving MXF masters still lets them go."""

_HELD = Metrics.counter("ladderflow.ingest", "imf objects held")
_OF_PACKAGE = Metrics.counter("ladderflow.ingest", "imf held objects of a package")
_RELEASED = Metrics.counter("ladderflow.ingest", "imf held objects released as sources")
_DROPPED = Metrics.counter("ladderflow.ingest", "imf held xml dropped")


def is_assetmap(uri: str) -> bool:
    return posixpath.basename(uri.rstrip("/")) in ASSETMAP_NAMES


def awaits_assetmap(uri: str, storage: Storage) -> bool:
    """Whether an announced object in a folder with no ASSETMAP may be a package's that
    comes before its ASSETMAP: any `.xml`, and an `.mxf` but one that holds both picture
    and sound (that one is logged and goes on at once)."""
    name = uri.lower()
    if name.endswith(".xml"):
        return True
    if not name.endswith(".mxf"):
        return False
    if interleaved_essence(uri, storage):
        log.info("%s: an MXF with picture and sound, no IMF track file: a source at once", uri)
        return False
    return True


class _SettleFn(beam.DoFn):
    """(folder, IngestEvent) -> the held MXF objects of a folder that no ASSETMAP listed
    within the window, as sources. An ASSETMAP's event (the folder's own) settles its
    folder at once. Every state cell ends at the timer."""

    HELD = BagStateSpec("held", PickleCoder())
    LAST_DUE = ReadModifyWriteStateSpec("last_due", FloatCoder())
    """When the folder's window ends at the latest (`MAX_WINDOWS` after its first object)."""
    SETTLE = TimerSpec("settle", TimeDomain.REAL_TIME)

    def __init__(self, settle_s: float, clock: Callable[[], float] = time.time):
        self._settle_s = settle_s
        self._clock = clock

    @dead_letters("ingest (IMF settle)")
    def process(self, element, held=beam.DoFn.StateParam(HELD),
                last_due=beam.DoFn.StateParam(LAST_DUE), settle=beam.DoFn.TimerParam(SETTLE)):
        folder, event = element
        if is_assetmap(event.source_uri):
            objects = list(held.read())
            if objects:
                held.clear()
                last_due.clear()  # the timer still fires, and finds nothing
                yield from self._settle(folder, objects, event.source_uri, "its ASSETMAP arrived")
            return
        now = self._clock()
        due = last_due.read()
        if due is None:
            due = now + MAX_WINDOWS * self._settle_s
            last_due.write(due)
        held.add(event)
        settle.set(Timestamp.of(min(now + self._settle_s, due)))
        _HELD.inc()
        log.info("%s: held up to %g s: no ASSETMAP in %s yet (an IMF package's objects may "
                 "come before it)", event.source_uri, self._settle_s, folder)

    @on_timer(SETTLE)
    def settled(self, key=beam.DoFn.KeyParam, held=beam.DoFn.StateParam(HELD),
                last_due=beam.DoFn.StateParam(LAST_DUE)):
        objects: list[IngestEvent] = list(held.read())
        held.clear()
        last_due.clear()
        if not objects:
            return
        assetmap = find_assetmap(key, FileSystemsStorage())
        yield from self._settle(key, objects, assetmap, "its ASSETMAP is there")

    def _settle(self, folder: str, objects: list[IngestEvent], assetmap: str | None,
                why: str) -> Iterator[IngestEvent]:
        """The objects `assetmap` lists (all when it cannot be read: its package's dead
        letter says why) are its package's; of the others, each MXF is a source."""
        listed = _listed(assetmap) if assetmap else set()
        for event in objects:
            uri = event.source_uri.rstrip("/")
            if assetmap and (listed is None or uri in listed):
                _OF_PACKAGE.inc()
                log.info("%s: part of the IMF package %s (%s)", uri, folder, why)
                continue
            because = (f"the ASSETMAP of {folder} does not list it" if assetmap else
                       f"no ASSETMAP in {folder} within {self._settle_s:g} s")
            if uri.lower().endswith(".mxf"):
                _RELEASED.inc()
                log.info("%s: released as a source: %s", uri, because)
                yield event
            else:
                _DROPPED.inc()
                log.info("%s: dropped: %s, and an XML file is no media source", uri, because)


def _listed(assetmap: str) -> set[str] | None:
    """What an ASSETMAP lists (joined to its folder), None when it cannot be read."""
    try:
        return {asset.path for asset in read_assetmap(assetmap, FileSystemsStorage()).assets}
    except (MediaError, OSError):
        return None
