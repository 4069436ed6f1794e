"""Gather all N parts of a key, in batch and in streaming alike.

A stateful DoFn (a bag of parts and the expected count, per key) rather than a
GroupByKey: it fires as soon as the last part of a key arrives, in the global window,
so the same graph works on unbounded input, and one slow title does not hold back
others. Duplicated parts (a retried bundle) are counted once; a key fires once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import BooleanCoder, PickleCoder
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec

__all__ = ["GatherParts", "Part"]


class Part(NamedTuple):
    """Part `index` of `count` parts of a key."""

    index: int
    count: int
    value: Any


class _GatherFn(beam.DoFn):
    PARTS = BagStateSpec("parts", PickleCoder())
    FIRED = ReadModifyWriteStateSpec("fired", BooleanCoder())

    def process(self, element, parts=beam.DoFn.StateParam(PARTS),
                fired=beam.DoFn.StateParam(FIRED)):
        key, part = element
        if fired.read():
            return
        parts.add(part)
        unique: dict[int, Part] = {}
        for seen in parts.read():
            unique.setdefault(seen.index, seen)
        if len(unique) >= part.count:
            parts.clear()
            fired.write(True)
            yield key, [unique[i].value for i in sorted(unique)]


class GatherParts(beam.PTransform):
    """PCollection[(key, Part)] -> PCollection[(key, [values in index order])]."""

    def expand(self, keyed_parts):
        return keyed_parts | "GatherByKey" >> beam.ParDo(_GatherFn())
