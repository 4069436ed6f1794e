"""Gather all N parts of a key, in batch and in streaming alike.

A stateful DoFn (a bag of parts beside a count of arrivals, per key) rather than a
GroupByKey: it fires as soon as the last part of a key arrives, in the global window,
so the same graph works on unbounded input, and one slow title does not hold back
others. Each arriving part costs O(1) state work: a bit per index (75 bytes for 600
chunks) tells a repeat (a retried bundle) from a new part, a new part is appended to the
bag and counted, and the bag is read once, when the count says every part is there. A
key fires once.

On unbounded input the state ends: a key still incomplete `timeout_s` (processing time)
after its first part is a dead letter naming the missing parts, and a key that fired
keeps only its "fired" mark that long (to drop late duplicates), then nothing. On
bounded input (batch) the input ends, and with it the state: no timer is set, and an
incomplete key stays silent, as the stage that lost its parts says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import BooleanCoder, BytesCoder, PickleCoder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Timestamp

from media.core.types import DeadLetter
from transforms import metrics
from transforms.dead_letter import DEAD_LETTER

__all__ = ["TIMEOUT_HINT", "GatherParts", "Part", "index_ranges"]

TIMEOUT_HINT = (
    "Some parts of this title never arrived before --title_timeout_s ran out: their stage's "
    "own dead letter, if any, says why. Run the title again (finished chunks are reused), or "
    "raise --title_timeout_s if titles this long take longer."
)


class Part(NamedTuple):
    """Part `index` of `count` parts of a key."""

    index: int
    count: int
    value: Any


def index_ranges(indexes: Iterable[int]) -> str:
    """Indexes as short runs, for a message about 600 chunks.

    >>> index_ranges([7, 0, 1, 2, 5])
    '0-2, 5, 7'
    """
    runs: list[list[int]] = []
    for i in sorted(set(indexes)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


class _GatherFn(beam.DoFn):
    PARTS = BagStateSpec("parts", PickleCoder())
    SEEN = ReadModifyWriteStateSpec("seen", BytesCoder())
    """A bit per part index: set once the part is in the bag."""
    ARRIVED = ReadModifyWriteStateSpec("arrived", VarIntCoder())
    """Distinct parts in the bag."""
    FIRED = ReadModifyWriteStateSpec("fired", BooleanCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.REAL_TIME)

    def __init__(self, timeout_s: float = 0.0, stage: str = "gather", what: str = "part",
                 clock: Callable[[], float] = time.time):
        self._timeout_s = timeout_s
        self._stage = stage
        self._what = what
        self._clock = clock
        self._timed_out_count = Metrics.counter("ladderflow.gather", f"timed out: {stage}")

    def process(self, element, parts=beam.DoFn.StateParam(PARTS),
                seen=beam.DoFn.StateParam(SEEN), arrived=beam.DoFn.StateParam(ARRIVED),
                fired=beam.DoFn.StateParam(FIRED), expiry=beam.DoFn.TimerParam(EXPIRY)):
        key, part = element
        if fired.read():
            return
        bits = bytearray(seen.read() or b"")
        byte, bit = divmod(part.index, 8)
        if byte < len(bits) and bits[byte] >> bit & 1:
            return
        if byte >= len(bits):
            bits.extend(bytes(max(byte + 1, (part.count + 7) // 8) - len(bits)))
        bits[byte] |= 1 << bit
        count = (arrived.read() or 0) + 1
        if count == 1:
            self._expire_later(expiry)
        seen.write(bytes(bits))
        if count < part.count:
            parts.add(part)
            arrived.write(count)
            return
        every = sorted([*parts.read(), part], key=lambda p: p.index)
        metrics.count_gathered(self._stage, every)
        for state in (parts, seen, arrived):
            state.clear()
        fired.write(True)
        self._expire_later(expiry)
        yield key, [p.value for p in every]

    def _expire_later(self, expiry) -> None:
        if self._timeout_s > 0:
            expiry.set(Timestamp.of(self._clock() + self._timeout_s))

    @on_timer(EXPIRY)
    def expire(self, key=beam.DoFn.KeyParam, parts=beam.DoFn.StateParam(PARTS),
               seen=beam.DoFn.StateParam(SEEN), arrived=beam.DoFn.StateParam(ARRIVED),
               fired=beam.DoFn.StateParam(FIRED)):
        if not fired.read():
            waiting = list(parts.read())
            if waiting:
                self._timed_out_count.inc()
                yield pvalue.TaggedOutput(DEAD_LETTER, self._timed_out(key, waiting))
        for state in (parts, seen, arrived, fired):
            state.clear()

    def _timed_out(self, key, waiting: list[Part]) -> DeadLetter:
        count = waiting[0].count
        have = {p.index for p in waiting}
        missing = sorted(set(range(count)) - have)
        title_id, generation = (key[0], key[1]) if isinstance(key, tuple) else (key, "")
        source = getattr(getattr(waiting[0].value, "task", waiting[0].value), "source", None)
        return DeadLetter(
            title_id=str(title_id), source_uri=str(getattr(source, "source_uri", "")),
            stage=self._stage, generation=str(generation), hint=TIMEOUT_HINT,
            error=(f"timed out after {self._timeout_s:g} s with {len(have)} of {count} "
                   f"{self._what}s: missing {self._what} {index_ranges(missing)}"))


class GatherParts(beam.PTransform):
    """PCollection[(key, Part)] -> {'main': (key, [values in index order]),
    'dead_letter': DeadLetter of each key that timed out (unbounded input only)}.

    Keys are (title id, generation, ...) tuples; `stage` and `what` name the step and
    its parts in a timed-out key's dead letter ("missing chunk 3-5, 17")."""

    def __init__(self, timeout_s: float = 0.0, stage: str = "gather", what: str = "part",
                 clock: Callable[[], float] = time.time):
        super().__init__()
        self._timeout_s = timeout_s
        self._stage = stage
        self._what = what
        self._clock = clock

    def expand(self, keyed_parts):
        timeout_s = 0.0 if keyed_parts.is_bounded else self._timeout_s
        # The break keeps the parts' producer out of the gather's fused stage: a runner
        # runs a stage with state on one worker (the local FnApiRunner does), and the
        # producers (span inspection, trial and chunk encodes) are the parallel work.
        return (keyed_parts
                | "LeaveProducerStage" >> beam.Reshuffle()
                | "GatherByKey" >> beam.ParDo(
            _GatherFn(timeout_s, self._stage, self._what, self._clock)).with_outputs(
            DEAD_LETTER, main="main"))
